//! Retention of the append-only tables: `webhook_events`, `plaid_calls`, `sync_runs`.
//!
//! Each call deletes at most `batch` rows in one short statement (its own transaction), so a prune never holds
//! SQLite's single writer or PostgreSQL row locks for long; `crate::retention` loops over batches with a pause
//! between them. Runs still `running` are never deleted (a claimed initial sync names its run), and every Item keeps
//! its newest `keep` runs however old they are.

use chrono::{DateTime, Utc};

use super::exec::Sql;
use super::{Result, Store, codec};

const PRUNE_WEBHOOK_EVENTS: &str = "DELETE FROM webhook_events WHERE id IN \
    (SELECT id FROM webhook_events WHERE received_at < $1 LIMIT $2)";
const PRUNE_PLAID_CALLS: &str =
    "DELETE FROM plaid_calls WHERE id IN (SELECT id FROM plaid_calls WHERE at < $1 LIMIT $2)";
const PRUNE_SYNC_RUNS: &str = "DELETE FROM sync_runs WHERE id IN (SELECT id FROM (SELECT id, started_at, status, \
    ROW_NUMBER() OVER (PARTITION BY item_ref ORDER BY started_at DESC, id DESC) AS newest FROM sync_runs) ranked \
    WHERE newest > $3 AND started_at < $1 AND status <> 'running' LIMIT $2)";

impl Store {
    /// Deletes up to `batch` webhook deliveries received before `before`; returns how many.
    pub async fn prune_webhook_events(&self, before: DateTime<Utc>, batch: u32) -> Result<u64> {
        let delete = Sql::new(PRUNE_WEBHOOK_EVENTS).bind(codec::ts(before)).bind(i64::from(batch.max(1)));
        self.writer.execute(&delete).await
    }

    /// Deletes up to `batch` audited Plaid calls made before `before`; returns how many.
    pub async fn prune_plaid_calls(&self, before: DateTime<Utc>, batch: u32) -> Result<u64> {
        let delete = Sql::new(PRUNE_PLAID_CALLS).bind(codec::ts(before)).bind(i64::from(batch.max(1)));
        self.writer.execute(&delete).await
    }

    /// Deletes up to `batch` finished sync runs started before `before`, except each Item's newest `keep`.
    pub async fn prune_sync_runs(&self, before: DateTime<Utc>, keep: u32, batch: u32) -> Result<u64> {
        let delete =
            Sql::new(PRUNE_SYNC_RUNS).bind(codec::ts(before)).bind(i64::from(batch.max(1))).bind(i64::from(keep));
        self.writer.execute(&delete).await
    }
}
