//! What the two backends do differently, beyond how they connect: where a sync run's staged pages live, and how a
//! job is claimed. Everything else is one SQL text for both.

use async_trait::async_trait;

use super::Result;
use super::exec::{Pool, Tx};

#[async_trait]
pub(super) trait Dialect: Send + Sync + 'static {
    /// Takes the next due job in one statement (`$1` worker, `$2` lease expiry, `$3` now; see `jobs.rs`).
    fn claim_job_sql(&self) -> &'static str;

    /// Inside `tx`, before staging rows: makes sure the staging table exists where this backend keeps it.
    async fn prepare_staging(&self, tx: &mut Tx) -> Result<()>;

    /// After staging a page of `run_id` in `tx`: notes where it was staged.
    async fn remember_run(&self, tx: &mut Tx, run_id: &str) -> Result<()>;

    /// Before committing `run_id` in `tx`: fails when the run's staged pages are no longer reachable.
    async fn check_run(&self, tx: &mut Tx, run_id: &str) -> Result<()>;

    /// Inside the committing `tx`: deletes the run's staged rows.
    async fn clear_staging(&self, tx: &mut Tx, run_id: &str) -> Result<()>;

    /// The run is committed or discarded.
    fn forget_run(&self, run_id: &str);

    /// `rows` transaction rows were written (the planner's statistics may no longer describe the table).
    fn note_rows_written(&self, _rows: u64) {}

    /// After a commit: refreshes the planner's statistics when enough rows were written since the last refresh.
    /// Never fails the caller (the commit is done); a failure is logged.
    async fn refresh_statistics_if_due(&self, _pool: &Pool) {}
}

/// Deletes one run's staged rows (both backends; SQLite clears its whole temp table when it can).
pub(super) const DELETE_STAGING: &str = "DELETE FROM sync_staging WHERE run_id = $1";

/// $1 worker, $2 lease expiry, $3 now. One statement, so it is atomic on SQLite; PostgreSQL adds
/// `FOR UPDATE SKIP LOCKED` so concurrent claimers in several processes skip each other's rows.
macro_rules! claim_job_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, ",
            "updated_at = $3 WHERE id = (SELECT id FROM jobs j WHERE (j.state = 'queued' AND j.run_after <= $3 ",
            // A queued job waits while another job for the same work is running under a live lease, in any
            // process: two banksync instances must never sync one Item at the same time.
            "AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.kind = j.kind AND r.coalesce_key = j.coalesce_key ",
            "AND r.state = 'running' AND r.lease_expires_at >= $3)) ",
            "OR (j.state = 'running' AND j.lease_expires_at < $3 AND j.attempts < j.max_attempts) ",
            "ORDER BY j.run_after, j.created_at, j.id LIMIT 1",
            $lock,
            ") RETURNING id, kind, coalesce_key, user_id, item_id, payload, result, state, attempts, max_attempts, ",
            "run_after, lease_owner, lease_expires_at, last_error, created_at, updated_at"
        )
    };
}
pub(super) const CLAIM_JOB_SQLITE: &str = claim_job_sql!("");
pub(super) const CLAIM_JOB_POSTGRES: &str = claim_job_sql!(" FOR UPDATE SKIP LOCKED");
