//! The transactions sync engine: `/transactions/sync` pages → the store, one sync at a time per Item.
//!
//! - **Single flight.** A sync runs as its own task (so a caller that goes away, e.g. a closed HTTP request, does
//!   not cancel it half-way). The engine keeps a map Item → in-flight run; a second caller for the same Item
//!   subscribes to the running one and gets its summary with `coalesced = true`.
//! - **Atomic, memory bounded by a page.** Each page is normalized and staged (`stage_sync_page`) while the next
//!   one is already being fetched; after the last page the run's changes and the final cursor are committed in one
//!   database transaction (`commit_sync`). Nothing is visible before the commit, and no database lock is held
//!   while waiting for Plaid.
//! - **Rate limits.** Plaid allows an Item 50 `/transactions/sync` calls a minute, fewer than a large initial sync
//!   needs. When the limit outlasts the client's own retries in the middle of pagination, the run pauses
//!   (`rate_limit_pause`, at most `rate_limit_budget` in all) and asks again for the same cursor: the pages staged
//!   so far stay, nothing is fetched twice. On a run's first page there is nothing to keep: it fails at once (a
//!   queued sync is then retried after the job queue's per-Item backoff).
//! - **Restarts.** TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION discards the staged pages and restarts from the
//!   cursor the run started with, at most `max_restarts` times.
//! - **Not ready.** An empty `next_cursor` means Plaid has no data for the Item yet: the run ends without error and
//!   without touching the cursor (`summary.not_ready`).
//! - **Health.** A Plaid error that describes the Item updates its health; a successful sync resets
//!   login_required/error to good (revoked and pending expiry/disconnect need the user, not a sync).
//! - **Balances.** The accounts in the sync response refresh the cached balances.

mod error;
mod run;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

pub use error::SyncError;

use crate::domain::{Item, ItemRef, PlaidItemId, SyncPhase};
use crate::store::Store;
use crate::vault::Vault;

#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Transactions per `/transactions/sync` page (1..=500).
    pub page_size: u32,
    /// Restarts after TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION before giving up.
    pub max_restarts: u32,
    /// Pause before asking again for the same page after Plaid's rate limit (RATE_LIMIT_EXCEEDED, e.g.
    /// TRANSACTIONS_SYNC_LIMIT: 50 pages per Item per minute) outlasted the client's own retries.
    pub rate_limit_pause: std::time::Duration,
    /// Total time one sync may spend in those pauses before it fails with the rate-limit error.
    pub rate_limit_budget: std::time::Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            page_size: 500,
            max_restarts: 3,
            rate_limit_pause: std::time::Duration::from_secs(15),
            rate_limit_budget: std::time::Duration::from_secs(180),
        }
    }
}

/// What started a sync (recorded in the sync run history).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncTrigger {
    /// The first sync of a newly linked Item.
    Link,
    /// "Sync now".
    Manual,
    /// After the user repaired the login in Link's update mode.
    Repair,
    Webhook,
    Schedule,
    /// Looking again while Plaid's data is not ready or the history incomplete.
    FollowUp,
}

impl SyncTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Link => "link",
            Self::Manual => "manual",
            Self::Repair => "repair",
            Self::Webhook => "webhook",
            Self::Schedule => "schedule",
            Self::FollowUp => "follow_up",
        }
    }

    /// A person asked for this sync: it claims the Item's cooldown.
    pub fn is_user_request(self) -> bool {
        matches!(self, Self::Manual | Self::Repair)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SyncSummary {
    pub run_id: String,
    /// Plaid's item_id.
    #[schema(value_type = String)]
    pub item_id: PlaidItemId,
    /// Counts as Plaid reported them, summed over the committed pages.
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
    pub pages: u64,
    pub restarts: u64,
    /// Plaid has no transactions for the Item yet (empty `next_cursor`); nothing changed.
    pub not_ready: bool,
    /// Where Plaid is with the Item's data after this sync (`not_ready`, `initial_update_complete`: the last ~30
    /// days, `historical_update_complete`: everything); banksync keeps looking until it is complete.
    pub phase: SyncPhase,
    /// This caller joined a sync that was already running.
    pub coalesced: bool,
}

type Outcome = Arc<Result<SyncSummary, SyncError>>;

#[derive(Clone)]
pub struct SyncEngine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    plaid: plaid::PlaidClient,
    vault: Arc<Vault>,
    options: SyncOptions,
    /// Item ref → the running sync's outcome channel (None until it finishes).
    in_flight: Mutex<HashMap<ItemRef, watch::Receiver<Option<Outcome>>>>,
    /// Live events for the browser (set once at startup).
    events: std::sync::OnceLock<crate::events::EventHub>,
    /// Plaid's rate budget, asked before each page (set once at startup; none = unbudgeted).
    budget: std::sync::OnceLock<crate::budget::Budget>,
}

impl SyncEngine {
    pub fn new(store: Arc<Store>, plaid: plaid::PlaidClient, vault: Arc<Vault>, options: SyncOptions) -> Self {
        let options = SyncOptions { page_size: options.page_size.clamp(1, 500), ..options };
        Self {
            inner: Arc::new(Inner {
                store,
                plaid,
                vault,
                options,
                in_flight: Mutex::new(HashMap::new()),
                events: Default::default(),
                budget: Default::default(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.inner.store
    }

    pub fn plaid(&self) -> &plaid::PlaidClient {
        &self.inner.plaid
    }

    pub fn vault(&self) -> &Arc<Vault> {
        &self.inner.vault
    }

    /// Publishes `sync_finished` (and health changes) for every run from now on.
    pub fn set_events(&self, events: crate::events::EventHub) {
        let _ = self.inner.events.set(events);
    }

    /// Plaid's rate budget, if one is set.
    pub fn budget(&self) -> Option<&crate::budget::Budget> {
        self.inner.budget.get()
    }

    /// Reserves each `/transactions/sync` page in Plaid's rate budget from now on.
    pub fn set_budget(&self, budget: crate::budget::Budget) {
        let _ = self.inner.budget.set(budget);
    }

    /// True while a sync of this Item (our `Item::id`) runs.
    pub fn is_syncing(&self, item_ref: &ItemRef) -> bool {
        self.inner.in_flight.lock().contains_key(item_ref)
    }

    /// One sync at a time per Item; a call while one runs waits for it and returns its summary (coalesced=true).
    /// Memory bounded by a page (stage_sync_page + commit_sync). Restarts from the start cursor on
    /// TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION. Empty next_cursor = not ready (no error). Updates Item health
    /// from Plaid errors and back to good after success; writes sync_runs; refreshes cached account balances from
    /// the sync response's accounts.
    pub async fn sync_item(&self, item: &Item, trigger: SyncTrigger) -> Result<SyncSummary, SyncError> {
        let (leader, mut follower) = {
            let mut in_flight = self.inner.in_flight.lock();
            match in_flight.get(&item.id) {
                Some(rx) => (None, Some(rx.clone())),
                None => {
                    let (tx, rx) = watch::channel(None);
                    in_flight.insert(item.id.clone(), rx);
                    let (leader_tx, leader_rx) = oneshot::channel();
                    self.spawn_run(item.clone(), trigger, tx, leader_tx);
                    (Some(leader_rx), None)
                }
            }
        };
        if let Some(leader) = leader {
            return match leader.await {
                Ok(result) => result,
                // The task panicked (its followers are released by the guard).
                Err(_) => Err(SyncError::Other("the sync task stopped unexpectedly".into())),
            };
        }
        let rx = follower.as_mut().expect("either leader or follower");
        let outcome = match rx.wait_for(Option::is_some).await {
            Ok(value) => value.clone().expect("waited for Some"),
            Err(_) => return Err(SyncError::Other("the sync task stopped unexpectedly".into())),
        };
        match &*outcome {
            Ok(summary) => Ok(SyncSummary { coalesced: true, ..summary.clone() }),
            Err(e) => Err(e.duplicate()),
        }
    }

    fn spawn_run(
        &self,
        item: Item,
        trigger: SyncTrigger,
        followers: watch::Sender<Option<Outcome>>,
        leader: oneshot::Sender<Result<SyncSummary, SyncError>>,
    ) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            // Removes the map entry even if the run panics, so the Item can sync again.
            struct Release {
                inner: Arc<Inner>,
                item_ref: ItemRef,
            }
            impl Drop for Release {
                fn drop(&mut self) {
                    self.inner.in_flight.lock().remove(&self.item_ref);
                }
            }
            let release = Release { inner: inner.clone(), item_ref: item.id.clone() };
            let result = crate::audit::with_item(&item.item_id, run::run(&inner, &item, trigger)).await;
            // Leave the map first: whoever subscribed before this point gets the outcome below; anyone later
            // starts a fresh sync.
            drop(release);
            if let Some(events) = inner.events.get() {
                publish_sync_outcome(events, &inner.store, &item, &result).await;
            }
            let shared = match &result {
                Ok(summary) => Ok(summary.clone()),
                Err(e) => Err(e.duplicate()),
            };
            followers.send_replace(Some(Arc::new(shared)));
            let _ = leader.send(result);
        });
    }
}

/// Tells the Item's owner that a sync ended (the sync engine calls this for every run, whatever triggered it), and
/// whether it changed the Item's health.
pub async fn publish_sync_outcome(
    events: &crate::events::EventHub,
    store: &Arc<Store>,
    item: &Item,
    result: &Result<SyncSummary, SyncError>,
) {
    let (summary, error) = match result {
        Ok(summary) => (serde_json::to_value(summary).ok(), None),
        Err(e) => (None, Some(sync_error_message(e))),
    };
    events.publish(&item.user_id, crate::events::Event::SyncFinished { item_id: item.item_id.clone(), summary, error });
    crate::events::publish_health_change(events, store, item).await;
}

/// A message safe to show the user: Plaid's display message for Plaid errors, else a generic sentence.
pub fn sync_error_message(e: &SyncError) -> String {
    match e.plaid_error() {
        Some(p) => p.user_message(),
        None => match e {
            SyncError::TooManyRestarts(_) => e.to_string(),
            _ => "The sync failed; it will be retried.".to_owned(),
        },
    }
}
