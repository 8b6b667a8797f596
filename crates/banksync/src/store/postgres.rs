//! PostgreSQL backend: for several banksync processes sharing one database.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::dialect::{CLAIM_JOB_POSTGRES, DELETE_STAGING, Dialect};
use super::exec::{Pool, Sql, Tx};
use super::{Backend, PoolSettings, Result, Store, StoreError};

impl Store {
    pub(super) async fn connect_postgres_url(url: &str, pool: PoolSettings) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidInput(format!("invalid PostgreSQL URL: {e}")))?;
        Self::connect_postgres_with(options, pool).await
    }

    /// One pool of up to `max_connections` for reads and writes (the default acquire timeout).
    pub async fn connect_postgres(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        Self::connect_postgres_with(options, PoolSettings { size: max_connections, ..PoolSettings::default() }).await
    }

    /// One pool for reads and writes. A connection is tested before use, so after a server restart the pool drops
    /// the dead connections and reconnects by itself: while the server is away calls fail after
    /// `acquire_timeout` (answered 503 by the API), and the first call after it is back succeeds.
    pub async fn connect_postgres_with(options: PgConnectOptions, pool: PoolSettings) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(pool.size)
            .acquire_timeout(pool.acquire_timeout)
            .test_before_acquire(true)
            // No JIT: it compiles a query whose estimated cost passes `jit_above_cost`, which a search of a common
            // word at 1,000,000 rows did: 14 ms of compiling for a query that runs in 6 ms. Every query here is
            // short and indexed; JIT pays off only for long analytical scans.
            .connect_with(options.options([("jit", "off")]))
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot connect to PostgreSQL"))?;
        Ok(Store {
            backend: Backend::Postgres,
            writer: Pool::Postgres(pool.clone()),
            reader: Pool::Postgres(pool),
            dialect: Box::new(PgDialect { unanalyzed_rows: AtomicU64::new(0) }),
            migrator: sqlx::migrate!("./migrations/postgres"),
        })
    }
}

/// Rows written since the last `ANALYZE` that make the next commit refresh the statistics.
const ANALYZE_AFTER_ROWS: u64 = 10_000;

/// Staged pages live in the shared `sync_staging` table, so any connection (or process) can commit a run.
///
/// Planner statistics: autovacuum analyzes a table once ~10% of it changed, but only on its next round and after
/// the load; right after a bulk write (an initial sync of 100,000 rows into an empty or small table) the planner
/// still believes the old statistics and picked a bitmap scan of every row for the newest page (222 ms instead of
/// 0.7 ms, measured in issue 12). So this process counts the transaction rows it writes and, at the first commit
/// after [`ANALYZE_AFTER_ROWS`] of them, runs `ANALYZE` on `transactions`, the spending summary, `items` and
/// `accounts` (it samples a fixed number of rows, 60,000 for the search column's statistics target: ~2 s at
/// 1,000,000 rows, less for a smaller table; see the migration `search_statistics`). Smaller, gradual changes are
/// autovacuum's: they do not move the distributions the plans depend on (one user's rows, newest first).
struct PgDialect {
    unanalyzed_rows: AtomicU64,
}

#[async_trait]
impl Dialect for PgDialect {
    fn claim_job_sql(&self) -> &'static str {
        CLAIM_JOB_POSTGRES
    }

    async fn prepare_staging(&self, _tx: &mut Tx) -> Result<()> {
        Ok(())
    }

    async fn remember_run(&self, _tx: &mut Tx, _run_id: &str) -> Result<()> {
        Ok(())
    }

    async fn check_run(&self, _tx: &mut Tx, _run_id: &str) -> Result<()> {
        Ok(())
    }

    async fn clear_staging(&self, tx: &mut Tx, run_id: &str) -> Result<()> {
        tx.execute(&Sql::new(DELETE_STAGING).bind(run_id)).await?;
        Ok(())
    }

    fn forget_run(&self, _run_id: &str) {}

    fn note_rows_written(&self, rows: u64) {
        self.unanalyzed_rows.fetch_add(rows, Ordering::Relaxed);
    }

    async fn refresh_statistics_if_due(&self, pool: &Pool) {
        if self.unanalyzed_rows.load(Ordering::Relaxed) < ANALYZE_AFTER_ROWS {
            return;
        }
        self.unanalyzed_rows.store(0, Ordering::Relaxed);
        let started = std::time::Instant::now();
        // `items` and `accounts` too: they are small and change rarely, so autovacuum (50 changed rows) never
        // analyzes them, and without statistics the planner took the join with `items` to keep 1 row in 110. A
        // search for a common word then looked rare, and was answered by fetching and sorting every match
        // (200 ms at 1,000,000 rows) instead of walking the time index for one page (6.5 ms).
        match pool.execute(&Sql::new("ANALYZE transactions, spending_months, items, accounts")).await {
            Ok(_) => tracing::debug!(elapsed = ?started.elapsed(), "refreshed planner statistics after a bulk write"),
            Err(e) => tracing::warn!(error = %e, "ANALYZE after a bulk write failed; autovacuum will catch up"),
        }
    }
}
