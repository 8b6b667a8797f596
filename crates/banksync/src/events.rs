//! Live updates for the browser: a per-process event hub, which the `GET /api/events` server-sent events stream
//! (`crate::http::events`) reads.
//!
//! Producers (the sync engine, the balance refresher, the webhook receiver) publish `(user_id, event)` into one tokio broadcast channel;
//! each SSE connection subscribes and forwards only its own user's events. Publishing never blocks and never
//! fails: with no subscriber the event is dropped, and a client that falls more than [`CAPACITY`] events behind
//! skips the ones it missed (it is told with a `lagged` event and can reload) instead of slowing anyone down.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::domain::{Item, JobId, PlaidItemId, UserId};
use crate::store::Store;

/// Events buffered per subscriber before it starts skipping.
pub const CAPACITY: usize = 1024;
/// How often an idle stream sends a comment line, so proxies keep the connection open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a user's pages are told about. Serialized as the SSE `data` (JSON); the SSE event name is [`Event::name`].
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A sync of one Item ended; `summary` is the run's summary, `error` a safe message when it failed.
    SyncFinished {
        #[schema(value_type = String)]
        item_id: PlaidItemId,
        summary: Option<serde_json::Value>,
        error: Option<String>,
    },
    /// Live balances arrived for an Item (or all of a refresh job's Items).
    BalancesUpdated {
        #[schema(value_type = Option<String>)]
        job_id: Option<JobId>,
        #[schema(value_type = Option<String>)]
        item_id: Option<PlaidItemId>,
    },
    /// An Item's health changed (e.g. `login_required` after an ITEM ERROR webhook, `good` after a repair).
    ItemHealthChanged {
        #[schema(value_type = String)]
        item_id: PlaidItemId,
        status: String,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Self::SyncFinished { .. } => "sync_finished",
            Self::BalancesUpdated { .. } => "balances_updated",
            Self::ItemHealthChanged { .. } => "item_health_changed",
        }
    }
}

/// Cheap to clone; every clone publishes into the same channel.
#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<(UserId, Event)>>,
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new()
    }
}

impl EventHub {
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(CAPACITY);
        Self { tx }
    }

    /// Sends `event` to `user_id`'s open streams, if any. Never blocks.
    pub fn publish(&self, user_id: &UserId, event: Event) {
        tracing::debug!(event = event.name(), "event published");
        // An error only means nobody is listening right now.
        let _ = self.tx.send(Arc::new((user_id.clone(), event)));
    }

    /// The events for `user_id` from now on. `Err(n)` items report `n` skipped events (the subscriber lagged).
    pub fn subscribe(&self, user_id: &UserId) -> impl Stream<Item = Result<Event, u64>> + Send + 'static + use<> {
        let rx = self.tx.subscribe();
        let user_id = user_id.clone();
        futures::stream::unfold((rx, user_id), |(mut rx, user_id)| async move {
            loop {
                match rx.recv().await {
                    Ok(entry) if entry.0 == user_id => return Some((Ok(entry.1.clone()), (rx, user_id))),
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => return Some((Err(n), (rx, user_id))),
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }

    /// Open subscriptions (all users).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

/// Tells the Item's owner that a live balance refresh of the Item ended (balances when `ok`), and whether it
/// changed the Item's health.
pub async fn publish_balance_outcome(events: &EventHub, store: &Arc<Store>, item: &Item, job_id: &JobId, ok: bool) {
    if ok {
        events.publish(
            &item.user_id,
            Event::BalancesUpdated { job_id: Some(job_id.clone()), item_id: Some(item.item_id.clone()) },
        );
    }
    publish_health_change(events, store, item).await;
}

/// Publishes `item_health_changed` when the stored status differs from `before`'s.
pub async fn publish_health_change(events: &EventHub, store: &Arc<Store>, before: &Item) {
    match store.get_item_by_plaid_id(&before.item_id).await {
        Ok(Some(after)) if after.status != before.status => events.publish(
            &after.user_id,
            Event::ItemHealthChanged { item_id: after.item_id.clone(), status: after.status.as_str().to_owned() },
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the Item to report its health"),
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::*;

    fn health(item: &str) -> Event {
        Event::ItemHealthChanged { item_id: item.into(), status: "good".into() }
    }

    #[tokio::test]
    async fn subscribers_get_only_their_own_users_events() {
        let hub = EventHub::new();
        let mut alice = Box::pin(hub.subscribe(&"alice".into()));
        let mut bob = Box::pin(hub.subscribe(&"bob".into()));
        hub.publish(&"bob".into(), health("b1"));
        hub.publish(&"alice".into(), health("a1"));
        assert_eq!(alice.next().await, Some(Ok(health("a1"))));
        assert_eq!(bob.next().await, Some(Ok(health("b1"))));
        let nothing = tokio::time::timeout(Duration::from_millis(50), alice.next()).await;
        assert!(nothing.is_err(), "alice saw an event that was not hers: {nothing:?}");
    }

    #[tokio::test]
    async fn a_slow_subscriber_skips_instead_of_blocking_the_producer() {
        let hub = EventHub::new();
        let mut slow = Box::pin(hub.subscribe(&"u".into()));
        // Far more than the buffer holds: publish must neither block nor fail.
        for i in 0..(CAPACITY * 3) {
            hub.publish(&"u".into(), health(&i.to_string()));
        }
        let first = slow.next().await.expect("stream open");
        assert!(matches!(first, Err(n) if n > 0), "expected a lag report, got {first:?}");
        // It then continues with the newest events it still has.
        assert!(matches!(slow.next().await, Some(Ok(Event::ItemHealthChanged { .. }))));
    }

    #[test]
    fn events_serialize_with_their_type() {
        let json = serde_json::to_value(health("i")).unwrap();
        assert_eq!(json, serde_json::json!({"type": "item_health_changed", "item_id": "i", "status": "good"}));
        assert_eq!(health("i").name(), "item_health_changed");
    }
}
