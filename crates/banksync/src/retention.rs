//! Retention: the webhook log (`webhook_events`), the Plaid call audit (`plaid_calls`) and the sync history
//! (`sync_runs`) would otherwise grow forever.
//!
//! Settings (`config::RetentionSettings`): `BANKSYNC_RETENTION_EVENTS` (30 days: a delivery only matters for
//! deduplication within minutes, and for debugging recent ones), `BANKSYNC_RETENTION_AUDIT` (180 days, long enough to
//! answer a Plaid support ticket with request ids), `BANKSYNC_RETENTION_RUNS` (180 days) while each Item keeps its
//! last `BANKSYNC_RETENTION_RUNS_KEEP` runs (50) however old, so a quiet Item still shows its history.
//!
//! [`Pruner::start`] runs a prune shortly after start and then every [`PRUNE_EVERY`]. A prune deletes in batches of
//! [`BATCH`] rows, one short statement each, with a pause between batches: SQLite's single writer is never held for
//! more than a moment, so syncs and webhooks keep writing while a large backlog drains. Every instance sharing a
//! PostgreSQL database may prune; the deletes are idempotent.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::config::RetentionSettings;
use crate::store::{Store, StoreError};

/// Rows per delete statement.
pub const BATCH: u32 = 500;
/// How often the background task prunes.
pub const PRUNE_EVERY: Duration = Duration::from_secs(6 * 3600);
/// Pause between two batches, so other writers get the database in between.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);

/// Rows deleted by one prune.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub webhook_events: u64,
    pub plaid_calls: u64,
    pub sync_runs: u64,
}

/// Deletes everything past retention, batch by batch.
pub async fn prune(store: &Store, settings: &RetentionSettings) -> Result<Pruned, StoreError> {
    prune_in_batches(store, settings, BATCH, BETWEEN_BATCHES).await
}

/// [`prune`] with its batch size and pause given (tests use small batches to prove batching).
pub async fn prune_in_batches(
    store: &Store,
    settings: &RetentionSettings,
    batch: u32,
    pause: Duration,
) -> Result<Pruned, StoreError> {
    let now = Utc::now();
    let cutoff = |age: Duration| now - chrono::Duration::from_std(age).unwrap_or(chrono::Duration::days(365 * 100));
    let keep = u32::try_from(settings.runs_keep).unwrap_or(u32::MAX);
    let mut pruned = Pruned::default();
    loop {
        let events = store.prune_webhook_events(cutoff(settings.events), batch).await?;
        let calls = store.prune_plaid_calls(cutoff(settings.audit), batch).await?;
        let runs = store.prune_sync_runs(cutoff(settings.runs), keep, batch).await?;
        pruned.webhook_events += events;
        pruned.plaid_calls += calls;
        pruned.sync_runs += runs;
        let full = u64::from(batch);
        if events < full && calls < full && runs < full {
            return Ok(pruned);
        }
        tokio::time::sleep(pause).await;
    }
}

/// The background task; stops when dropped.
pub struct Pruner {
    task: tokio::task::JoinHandle<()>,
}

impl Pruner {
    pub fn start(store: Arc<Store>, settings: RetentionSettings) -> Pruner {
        let task = tokio::spawn(async move {
            // Not at the very start: let the server come up first.
            tokio::time::sleep(Duration::from_secs(60)).await;
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                match prune(&store, &settings).await {
                    Ok(p) if p == Pruned::default() => {}
                    Ok(p) => tracing::info!(
                        webhook_events = p.webhook_events,
                        plaid_calls = p.plaid_calls,
                        sync_runs = p.sync_runs,
                        "retention: old rows deleted"
                    ),
                    Err(e) => tracing::warn!(error = %e, "retention: cannot delete old rows; will try again"),
                }
            }
        });
        Pruner { task }
    }
}

impl Drop for Pruner {
    fn drop(&mut self) {
        self.task.abort();
    }
}
