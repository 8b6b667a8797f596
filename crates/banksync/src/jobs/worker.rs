//! The worker pool: claims jobs from the store with a lease, runs them with bounded concurrency, heartbeats while
//! they run, and completes or fails them.
//!
//! - **Wake-up.** A job enqueued in this process wakes the pool at once ([`JobQueue`]'s notify); jobs from other
//!   processes sharing the database are found by polling every [`WorkerOptions::poll_interval`].
//! - **Leases.** Each claim leases the job for [`WorkerOptions::lease`]; a heartbeat ([`LeaseKeeper`]) renews it every
//!   third of that. A worker that dies stops renewing, and after the lease runs out any worker (in any process) claims
//!   the job again, while attempts remain. Expired jobs without attempts left are marked failed periodically.
//! - **Outcomes.** Success completes the job. Plaid rate limits (429) retry after a growing delay and pause this
//!   pool's claims briefly (the limit is often per client). Errors that describe the Item (login required, revoked,
//!   …) are not retried: the sync engine already recorded the Item's health and only the user can fix it. Other
//!   failures retry with the store's exponential backoff.
//! - **Shutdown.** [`WorkerPool::shutdown`] stops claiming and lets running jobs finish up to a deadline; what is
//!   still running then is dropped and its lease expires, so another worker picks it up later.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{JobQueue, KIND_SYNC, LeaseKeeper, trigger_of};
use crate::domain::{ItemStatus, Job};
use crate::store::StoreError;
use crate::sync::{SyncEngine, SyncError};

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Jobs run at the same time in this process.
    pub concurrency: usize,
    /// How long a claim is valid without a heartbeat.
    pub lease: Duration,
    /// How often to look for jobs other processes enqueued.
    pub poll_interval: Duration,
    /// How often to fail jobs whose lease expired with no attempts left.
    pub reclaim_interval: Duration,
    /// How long shutdown waits for running jobs.
    pub shutdown_grace: Duration,
    /// Claims pause this long after a Plaid rate limit.
    pub rate_limit_pause: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(5),
            reclaim_interval: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(20),
            rate_limit_pause: Duration::from_secs(10),
        }
    }
}

/// A running pool; dropping it without [`WorkerPool::shutdown`] aborts it (as a crash would).
pub struct WorkerPool {
    worker_id: String,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    reclaimer: JoinHandle<()>,
}

struct Ctx {
    worker_id: String,
    queue: JobQueue,
    engine: SyncEngine,
    options: WorkerOptions,
    /// No claims before this instant (after a Plaid rate limit).
    paused_until: Mutex<Option<Instant>>,
}

enum Outcome {
    Done(String),
    Retry { error: String, after: Option<Duration> },
}

impl WorkerPool {
    /// Starts the pool. Sync outcomes reach the browser through the engine's event hook
    /// ([`SyncEngine::set_events`]), whatever started the sync.
    pub fn start(queue: JobQueue, engine: SyncEngine, options: WorkerOptions) -> WorkerPool {
        let worker_id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let (stop, stop_rx) = watch::channel(false);
        let ctx =
            Arc::new(Ctx { worker_id: worker_id.clone(), queue, engine, options, paused_until: Mutex::new(None) });
        let reclaimer = tokio::spawn(reclaim_loop(ctx.clone()));
        let task = tokio::spawn(run(ctx, stop_rx));
        tracing::info!(worker_id = %worker_id, "job workers started");
        WorkerPool { worker_id, stop, task: Some(task), reclaimer }
    }

    /// The lease owner name this pool claims jobs as.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// Stops claiming, waits for running jobs up to the grace period, then stops.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.reclaimer.abort();
        tracing::info!(worker_id = %self.worker_id, "job workers stopped");
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.reclaimer.abort();
    }
}

async fn run(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(ctx.options.concurrency.max(1)));
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stop.changed() => break,
        };
        let pause = *ctx.paused_until.lock();
        if let Some(until) = pause.filter(|u| *u > Instant::now()) {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {}
                _ = stop.changed() => break,
            }
        }
        match ctx.queue.store().claim_job(&ctx.worker_id, ctx.options.lease).await {
            Ok(Some(job)) => {
                running.spawn(run_job(ctx.clone(), job, permit));
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot claim jobs"),
        }
        drop(permit);
        tokio::select! {
            () = ctx.queue.woken() => {}
            () = tokio::time::sleep(ctx.options.poll_interval) => {}
            _ = stop.changed() => break,
        }
    }
    if !running.is_empty() {
        tracing::info!(running = running.len(), "waiting for running jobs before stopping");
        let drained =
            tokio::time::timeout(ctx.options.shutdown_grace, async { while running.join_next().await.is_some() {} })
                .await;
        if drained.is_err() {
            tracing::warn!(
                abandoned = running.len(),
                "jobs still running at the shutdown deadline; their leases will expire and they will run again"
            );
        }
    }
}

async fn reclaim_loop(ctx: Arc<Ctx>) {
    let mut tick = tokio::time::interval(ctx.options.reclaim_interval);
    loop {
        tick.tick().await;
        match ctx.queue.store().reclaim_expired_jobs().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(jobs = n, "jobs whose lease expired with no attempts left were marked failed"),
            Err(e) => tracing::warn!(error = %e, "cannot reclaim expired jobs"),
        }
    }
}

async fn run_job(ctx: Arc<Ctx>, job: Job, _permit: OwnedSemaphorePermit) {
    let store = ctx.queue.store();
    let lease = LeaseKeeper::start(store.clone(), &job.id, &ctx.worker_id, ctx.options.lease);
    let outcome = match job.kind.as_str() {
        KIND_SYNC => run_sync(&ctx, &job).await,
        other => Outcome::Done(serde_json::json!({ "skipped": format!("unknown job kind {other:?}") }).to_string()),
    };
    lease.release().await;
    let recorded = match &outcome {
        Outcome::Done(result) => store.complete_job(&job.id, &ctx.worker_id, Some(result)).await.map(|()| None),
        Outcome::Retry { error, after } => store.fail_job(&job.id, &ctx.worker_id, error, *after).await.map(Some),
    };
    match recorded {
        Ok(None) => tracing::debug!(job_id = %job.id, kind = %job.kind, "job done"),
        Ok(Some(state)) => tracing::info!(job_id = %job.id, kind = %job.kind, attempts = job.attempts,
            state = state.as_str(), "job failed"),
        // Another worker took the job over after our lease ran out; its run is the one that counts.
        Err(StoreError::NotFound) => tracing::warn!(job_id = %job.id, "lost the job's lease before finishing"),
        Err(e) => tracing::warn!(job_id = %job.id, error = %e, "cannot record the job's outcome"),
    }
}

fn skipped(why: &str) -> Outcome {
    Outcome::Done(serde_json::json!({ "skipped": why }).to_string())
}

async fn run_sync(ctx: &Ctx, job: &Job) -> Outcome {
    let store = ctx.queue.store();
    let Some(item_id) = job.item_id.as_ref() else {
        return skipped("no item");
    };
    let item = match store.get_item_by_plaid_id(item_id).await {
        Ok(Some(item)) => item,
        Ok(None) => return skipped("item removed"),
        Err(e) => return Outcome::Retry { error: format!("store: {e}"), after: None },
    };
    if item.status == ItemStatus::Revoked {
        return skipped("item revoked");
    }
    let trigger = trigger_of(&job.payload);
    let mut result = ctx.engine.sync_item(&item, trigger).await;
    // Joining a sync that was already running is not enough: it may have fetched its pages before the change this
    // job announces (a webhook that arrived mid-run). Run once more after it, from its new cursor.
    for _ in 0..2 {
        if !matches!(&result, Ok(summary) if summary.coalesced) {
            break;
        }
        let Ok(Some(fresh)) = store.get_item_by_plaid_id(item_id).await else { break };
        result = ctx.engine.sync_item(&fresh, trigger).await;
    }

    match result {
        Ok(summary) => Outcome::Done(serde_json::to_string(&summary).unwrap_or_default()),
        Err(e) => classify_failure(ctx, job, &e),
    }
}

fn classify_failure(ctx: &Ctx, job: &Job, e: &SyncError) -> Outcome {
    let error = e.to_string();
    if e.is_rate_limited() {
        let after = rate_limit_backoff(job.attempts);
        let pause_until = Instant::now() + ctx.options.rate_limit_pause;
        *ctx.paused_until.lock() = Some(pause_until);
        if let Some(item_id) = job.item_id.as_ref() {
            ctx.queue.back_off(item_id, (Instant::now() + after).into_std());
        }
        tracing::warn!(item_id = ?job.item_id, retry_in = ?after, "Plaid rate limit: backing off");
        return Outcome::Retry { error, after: Some(after) };
    }
    if let Some(p) = e.plaid_error() {
        if crate::health::health_from_error(p).is_some() {
            // An Item problem (the engine updated its health): retrying cannot help until the user acts.
            return Outcome::Done(serde_json::json!({ "error": p.error_code }).to_string());
        }
    }
    Outcome::Retry { error, after: None }
}

/// Delay before retrying a sync that hit a rate limit: one minute, doubling per attempt, at most an hour (Plaid's
/// per-Item sync limit is per minute).
fn rate_limit_backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 6)).unwrap_or(6);
    Duration::from_secs(60 * 2u64.pow(exp)).min(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_backoff_grows_and_is_capped() {
        assert_eq!(rate_limit_backoff(1), Duration::from_secs(60));
        assert_eq!(rate_limit_backoff(2), Duration::from_secs(120));
        assert_eq!(rate_limit_backoff(20), Duration::from_secs(3600));
    }
}
