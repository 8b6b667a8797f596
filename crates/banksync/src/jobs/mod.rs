//! Background work on the store's durable job queue: the worker pool, the scheduler and the manual-sync cooldown.
//!
//! Jobs live in the database (`jobs` table), so they survive restarts and can be shared by several banksync
//! processes on one PostgreSQL: a worker *leases* a job for a while and keeps extending the lease while it runs; a
//! crashed worker's lease runs out and any worker claims the job again. Jobs for one Item coalesce while queued, so
//! three webhooks for one update become one sync. Producers in this process ([`JobQueue::enqueue_sync`]) wake the
//! local workers at once; jobs enqueued by other processes are found by polling.

mod cooldown;
mod lease;
mod scheduler;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::Notify;

pub use cooldown::Cooldown;
pub(crate) use lease::LeaseKeeper;
pub use scheduler::{Scheduler, SchedulerOptions};
pub use worker::{WorkerOptions, WorkerPool};

use crate::domain::{Enqueued, NewJob, PlaidItemId};
use crate::store::{Result as StoreResult, Store};
use crate::sync::SyncTrigger;

/// `jobs.kind` of a transactions sync of one Item (`item_id` = Plaid's item_id).
pub const KIND_SYNC: &str = "sync";
/// Attempts of a sync job before it is given up (transient errors back off exponentially in between).
pub const SYNC_MAX_ATTEMPTS: i64 = 5;

/// Enqueues jobs and wakes this process's workers.
#[derive(Clone)]
pub struct JobQueue {
    store: Arc<Store>,
    wake: Arc<Notify>,
    /// Plaid item_id → no sync before this instant (after a Plaid rate limit for the Item).
    backoff: Arc<parking_lot::Mutex<HashMap<PlaidItemId, Instant>>>,
}

impl JobQueue {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store, wake: Arc::new(Notify::new()), backoff: Arc::default() }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Queues a sync of the Item (Plaid's `item_id`), `delay` from now; joins an already queued sync of it. An Item
    /// that Plaid rate-limited is not synced before its backoff ends, whoever asks (webhook, scheduler).
    pub async fn enqueue_sync(
        &self,
        item_id: &PlaidItemId,
        trigger: SyncTrigger,
        delay: Duration,
    ) -> StoreResult<Enqueued> {
        let delay = delay.max(self.backoff_remaining(item_id));
        let job = NewJob {
            payload: serde_json::json!({ "trigger": trigger.as_str() }).to_string(),
            run_after: Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default(),
            max_attempts: SYNC_MAX_ATTEMPTS,
            ..NewJob::for_item(KIND_SYNC, item_id)
        };
        let enqueued = self.store.enqueue_job(&job).await?;
        if delay.is_zero() {
            self.wake.notify_one();
        }
        Ok(enqueued)
    }

    /// Holds the Item's syncs back until `until` (after a Plaid rate limit).
    pub fn back_off(&self, item_id: &PlaidItemId, until: Instant) {
        let mut backoff = self.backoff.lock();
        let now = Instant::now();
        backoff.retain(|_, at| *at > now);
        backoff.insert(item_id.clone(), until);
    }

    /// How long the Item's syncs are still held back (zero when they are not).
    pub fn backoff_remaining(&self, item_id: &PlaidItemId) -> Duration {
        self.backoff.lock().get(item_id).map_or(Duration::ZERO, |at| at.saturating_duration_since(Instant::now()))
    }

    /// Resolves when something was enqueued in this process (a missed wake-up is kept for the next wait).
    pub(crate) async fn woken(&self) {
        self.wake.notified().await;
    }
}

/// The trigger recorded in a sync job's payload.
pub(crate) fn trigger_of(payload: &str) -> SyncTrigger {
    let trigger = serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("trigger").and_then(|t| t.as_str()).map(str::to_owned));
    match trigger.as_deref() {
        Some("manual") => SyncTrigger::Manual,
        Some("schedule") => SyncTrigger::Schedule,
        Some("link") => SyncTrigger::Link,
        _ => SyncTrigger::Webhook,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn backoff_is_per_item_ends_and_delays_enqueues() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<Store> = Arc::new(crate::store::Store::open_sqlite(&dir.path().join("j.db")).await.unwrap());
        store.migrate().await.unwrap();
        let queue = JobQueue::new(store.clone());
        queue.back_off(&"i1".into(), Instant::now() + Duration::from_secs(120));
        assert!(queue.backoff_remaining(&"i1".into()) > Duration::from_secs(119));
        assert_eq!(queue.backoff_remaining(&"i2".into()), Duration::ZERO);
        queue.back_off(&"i2".into(), Instant::now());
        assert_eq!(queue.backoff_remaining(&"i2".into()), Duration::ZERO);
        // A webhook for a rate-limited Item waits for the backoff instead of hitting Plaid again at once.
        let job = queue.enqueue_sync(&"i1".into(), SyncTrigger::Webhook, Duration::ZERO).await.unwrap();
        let job = store.get_job(&job.job_id).await.unwrap();
        assert!(job.run_after > Utc::now() + chrono::Duration::seconds(100), "run_after {}", job.run_after);
    }

    #[test]
    fn triggers_round_trip_through_the_payload() {
        for t in [SyncTrigger::Manual, SyncTrigger::Schedule, SyncTrigger::Link, SyncTrigger::Webhook] {
            let payload = serde_json::json!({ "trigger": t.as_str() }).to_string();
            assert_eq!(trigger_of(&payload), t);
        }
        assert_eq!(trigger_of("not json"), SyncTrigger::Webhook);
    }
}
