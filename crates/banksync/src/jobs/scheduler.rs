//! The scheduler: the fallback for missed webhooks (self-hosters behind NAT never get any). Every
//! [`SchedulerOptions::scan_every`] it enqueues a sync for each Item whose last successful sync is older than
//! [`SchedulerOptions::interval`], spread over [`SchedulerOptions::jitter`] so a restart does not hit Plaid with
//! every Item at once. Items that need the user (revoked, login required) are skipped: a sync cannot succeed and
//! Plaid bills and throttles. Several processes may schedule at once; the queue coalesces their requests and holds
//! rate-limited Items back. (A new Item's first data does not wait for this: follow-ups fetch it within seconds.)

use std::time::Duration;

use chrono::Utc;
use rand::Rng as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::JobQueue;
use crate::domain::{Item, ItemStatus};
use crate::sync::SyncTrigger;

#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// An Item is due when its last successful sync is older than this.
    pub interval: Duration,
    /// How often the scheduler looks for due Items.
    pub scan_every: Duration,
    /// Each scheduled sync starts after a random delay up to this.
    pub jitter: Duration,
}

impl SchedulerOptions {
    /// Scans every tenth of the interval (between 1 s and 5 min), with jitter up to a tenth of the interval
    /// (at most 5 min).
    pub fn for_interval(interval: Duration) -> Self {
        let tenth = interval / 10;
        Self {
            interval,
            scan_every: tenth.clamp(Duration::from_secs(1), Duration::from_secs(300)),
            jitter: tenth.min(Duration::from_secs(300)),
        }
    }
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self::for_interval(Duration::from_secs(6 * 3600))
    }
}

pub struct Scheduler {
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl Scheduler {
    pub fn start(queue: JobQueue, options: SchedulerOptions) -> Scheduler {
        let (stop, mut stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(options.scan_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop_rx.changed() => return,
                }
                match scan(&queue, &options).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(items = n, "scheduled syncs for stale Items"),
                    Err(e) => tracing::warn!(error = %e, "scheduler scan failed"),
                }
            }
        });
        Scheduler { stop, task: Some(task) }
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Enqueues a sync for every due Item; returns how many were enqueued.
pub async fn scan(queue: &JobQueue, options: &SchedulerOptions) -> anyhow::Result<usize> {
    let items = queue.store().list_all_items().await?;
    let now = Utc::now();
    let mut enqueued = 0;
    for item in items.iter().filter(|item| is_due(item, now, options.interval)) {
        let delay = jitter(options.jitter);
        match queue.request_sync(item, SyncTrigger::Schedule, delay).await {
            Ok(_) => enqueued += 1,
            Err(super::SyncRefused::Store(e)) => return Err(e.into()),
            Err(refused) => tracing::debug!(item_id = %item.item_id, %refused, "not scheduled"),
        }
    }
    Ok(enqueued)
}

/// Whether the scheduler should sync `item` now.
pub fn is_due(item: &Item, now: chrono::DateTime<Utc>, interval: Duration) -> bool {
    if matches!(item.status, ItemStatus::Revoked | ItemStatus::LoginRequired) {
        return false;
    }
    let interval = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
    // Never synced successfully: measured from the Item's creation (the link flow runs the first sync itself).
    let since = item.last_successful_sync_at.unwrap_or(item.created_at);
    now.signed_duration_since(since) >= interval
}

fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::thread_rng().gen_range(0..=u64::try_from(max.as_millis()).unwrap_or(u64::MAX)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_scale_with_the_interval() {
        let six_hours = SchedulerOptions::default();
        assert_eq!(six_hours.interval, Duration::from_secs(6 * 3600));
        assert_eq!(six_hours.scan_every, Duration::from_secs(300));
        assert_eq!(six_hours.jitter, Duration::from_secs(300));
        let short = SchedulerOptions::for_interval(Duration::from_secs(2));
        assert_eq!(short.scan_every, Duration::from_secs(1));
        assert_eq!(short.jitter, Duration::from_millis(200));
    }

    #[test]
    fn jitter_stays_within_its_bound() {
        for _ in 0..100 {
            assert!(jitter(Duration::from_millis(10)) <= Duration::from_millis(10));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
