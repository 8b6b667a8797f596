//! The worker pool: claims jobs from the store with a lease, runs them with bounded concurrency, heartbeats while
//! they run, and completes or fails them.
//!
//! - **Wake-up.** A job enqueued in this process wakes the pool at once ([`JobQueue`]'s notify); jobs from other
//!   processes sharing the database are found by polling every [`WorkerOptions::poll_interval`].
//! - **Leases.** Each claim leases the job for [`WorkerOptions::lease`]; a heartbeat ([`LeaseKeeper`]) renews it every
//!   third of that. A worker that dies stops renewing, and after the lease runs out any worker (in any process) claims
//!   the job again, while attempts remain. Expired jobs without attempts left are marked failed periodically.
//! - **Outcomes.** What a job kind's runner returns: done, retry (after its own delay or the store's exponential
//!   backoff, while attempts remain), or reschedule (put back without using an attempt: the job may not run yet).
//!   Sync jobs are [`super::sync_job`].
//! - **Shutdown.** [`WorkerPool::shutdown`] stops claiming and lets running jobs finish up to a deadline; what is
//!   still running then is dropped and its lease expires, so another worker picks it up later.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use super::{JobQueue, KIND_SYNC, LeaseKeeper, sync_job};
use crate::domain::Job;
use crate::store::StoreError;
use crate::sync::SyncEngine;

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
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 4,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(5),
            reclaim_interval: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

impl WorkerOptions {
    /// `concurrency` workers whose claims last `lease`. A lease shorter than the defaults also shortens how often
    /// the pool looks for jobs and reclaims expired ones, so a crashed process's job is taken over about one lease
    /// after the crash rather than one default reclaim interval.
    pub fn with_lease(concurrency: usize, lease: Duration) -> Self {
        let defaults = WorkerOptions::default();
        WorkerOptions {
            concurrency,
            lease,
            poll_interval: defaults.poll_interval.min(lease / 2),
            reclaim_interval: defaults.reclaim_interval.min(lease),
            ..defaults
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

pub(super) struct Ctx {
    worker_id: String,
    pub queue: JobQueue,
    pub engine: SyncEngine,
    options: WorkerOptions,
    permits: Arc<Semaphore>,
}

pub(super) enum Outcome {
    /// Finished, with its `result`.
    Done(String),
    /// Failed; runs again after `after` (else the store's backoff) while attempts remain. `result` replaces the
    /// job's result meanwhile.
    Retry { error: String, after: Option<Duration>, result: Option<String> },
    /// May not run yet: back to the queue after `after`, without using an attempt.
    Reschedule { after: Duration },
}

impl Outcome {
    pub fn retry(error: String, after: Option<Duration>, result: Option<String>) -> Self {
        Self::Retry { error, after, result }
    }
}

/// A job's share of the pool's concurrency, which it can give up while it only waits.
pub(super) struct Slot {
    permits: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Slot {
    pub fn release(&mut self) {
        self.permit = None;
    }

    pub async fn reacquire(&mut self) {
        if self.permit.is_none() {
            self.permit = Some(self.permits.clone().acquire_owned().await.expect("the semaphore is never closed"));
        }
    }
}

impl WorkerPool {
    /// Starts the pool. Sync outcomes reach the browser through the engine's event hook
    /// ([`SyncEngine::set_events`]), whatever started the sync.
    pub fn start(queue: JobQueue, engine: SyncEngine, options: WorkerOptions) -> WorkerPool {
        let worker_id = format!("{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        let (stop, stop_rx) = watch::channel(false);
        let permits = Arc::new(Semaphore::new(options.concurrency.max(1)));
        let ctx = Arc::new(Ctx { worker_id: worker_id.clone(), queue, engine, options, permits });
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
    let mut running = JoinSet::new();
    loop {
        while running.try_join_next().is_some() {}
        if *stop.borrow() {
            break;
        }
        let permit = tokio::select! {
            permit = ctx.permits.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            _ = stop.changed() => break,
        };
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

async fn run_job(ctx: Arc<Ctx>, job: Job, permit: OwnedSemaphorePermit) {
    let store = ctx.queue.store();
    let lease = LeaseKeeper::start(store.clone(), &job.id, &ctx.worker_id, ctx.options.lease);
    let mut slot = Slot { permits: ctx.permits.clone(), permit: Some(permit) };
    let outcome = match job.kind.as_str() {
        KIND_SYNC => sync_job::run(&ctx, &job, &mut slot).await,
        other => Outcome::Done(serde_json::json!({ "skipped": format!("unknown job kind {other:?}") }).to_string()),
    };
    lease.release().await;
    let recorded = match &outcome {
        Outcome::Done(result) => store.complete_job(&job.id, &ctx.worker_id, Some(result)).await.map(|()| None),
        Outcome::Retry { error, after, result } => {
            store.fail_job(&job.id, &ctx.worker_id, error, *after, result.as_deref()).await.map(Some)
        }
        Outcome::Reschedule { after } => store.reschedule_job(&job.id, &ctx.worker_id, *after).await.map(|()| None),
    };
    ctx.queue.job_finished();
    match recorded {
        Ok(None) => tracing::debug!(job_id = %job.id, kind = %job.kind, "job done"),
        Ok(Some(state)) => tracing::info!(job_id = %job.id, kind = %job.kind, attempts = job.attempts,
            state = state.as_str(), "job failed"),
        // Another worker took the job over after our lease ran out; its run is the one that counts.
        Err(StoreError::NotFound) => tracing::warn!(job_id = %job.id, "lost the job's lease before finishing"),
        Err(e) => tracing::warn!(job_id = %job.id, error = %e, "cannot record the job's outcome"),
    }
}
