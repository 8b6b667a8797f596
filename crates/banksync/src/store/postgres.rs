//! PostgreSQL backend: for several banksync processes sharing one database.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _};

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

    /// One pool for reads and writes. A connection that sat idle is tested before use ([`ping_if_idle`]), so after a
    /// server restart the pool drops the dead connections and reconnects by itself: while the server is away calls
    /// fail after `acquire_timeout` (answered 503 by the API), and the first call after it is back succeeds.
    pub async fn connect_postgres_with(options: PgConnectOptions, pool: PoolSettings) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(pool.size)
            .acquire_timeout(pool.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
            .connect_with(planner_settings(options))
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot connect to PostgreSQL"))?;
        Ok(Store {
            backend: Backend::Postgres,
            writer: Pool::Postgres(pool.clone()),
            reader: Pool::Postgres(pool.clone()),
            scanner: Pool::Postgres(pool),
            dialect: Box::new(PgDialect::new()),
            migrator: sqlx::migrate!("./migrations/postgres"),
        })
    }
}

/// Planner settings for banksync's sessions, sent with the connection (startup parameters: no round trip, and the
/// server's settings for its other databases stay as they are). A setting the URL's `options` already give is left
/// to the URL, so an operator can still choose.
///
/// - No JIT: it compiles a query whose estimated cost passes `jit_above_cost`, which a search of a common word at
///   1,000,000 rows did: 14 ms of compiling for a query that runs in 6 ms. Every query here is short and indexed;
///   JIT pays off only for long analytical scans.
/// - A random read priced like a sequential one, as PostgreSQL's documentation advises when the data is mostly
///   cached or on an SSD (the default of 4 prices a disk seek). banksync rereads one user's recent history all the
///   time, so its working set stays in memory. At 4 the planner preferred reading the user's time index in order to
///   the account's (fewer pages "in sequence"), and an account filtered by a search read ~12,000 rows instead of
///   ~2,400 for a page at 1,000,000 rows: 12 ms against 2 ms (`EXPLAIN ANALYZE`, warm; the queries benchmark's
///   "account + search + keyset").
fn planner_settings(options: PgConnectOptions) -> PgConnectOptions {
    const SETTINGS: [(&str, &str); 2] = [("jit", "off"), ("random_page_cost", "1.1")];
    let given = options.get_options().unwrap_or_default().to_owned();
    options.options(SETTINGS.into_iter().filter(|(name, _)| !given.contains(&format!("{name}="))))
}

/// A pooled connection idle at least this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// sqlx's `test_before_acquire` pings every connection on every acquire: a round trip to the server before each
/// query, on top of the one sqlx makes when the connection is released. A request of the API acquires twice (its
/// caller, then its data), so the newest page made four pings beside its two queries. Only a connection that sat
/// idle can have died unnoticed (a server restart, an idle timeout in between): one in use fails its query, and the
/// ping on its release then drops it.
async fn ping_if_idle(conn: &mut sqlx::PgConnection, meta: sqlx::pool::PoolConnectionMetadata) -> sqlx::Result<bool> {
    if meta.idle_for >= PING_AFTER_IDLE {
        conn.ping().await?;
    }
    Ok(true)
}

/// Rows written since the last `ANALYZE` that make the next commit refresh the statistics, at least: a larger table
/// waits for a tenth of its size, as autovacuum does (its rows' distributions move no sooner).
const ANALYZE_AFTER_ROWS: u64 = 10_000;

/// Staged pages live in the shared `sync_staging` table, so any connection (or process) can commit a run.
///
/// Planner statistics: autovacuum analyzes a table once ~10% of it changed, but only on its next round and after
/// the load; right after a bulk write (an initial sync of 100,000 rows into an empty or small table) the planner
/// still believes the old statistics and picked a bitmap scan of every row for the newest page (222 ms instead of
/// 0.7 ms, measured in issue 12). So this process counts the transaction rows it writes and, at the first commit
/// after [`ANALYZE_AFTER_ROWS`] of them (or a tenth of the table, when that is more), runs `ANALYZE` on
/// `transactions`, the spending summary, `items` and `accounts` (it samples a fixed number of rows, 60,000 for the
/// search column's statistics target: ~2 s at 1,000,000 rows, less for a smaller table; see the migration
/// `search_statistics`). Smaller, gradual changes are autovacuum's: they do not move the distributions the plans
/// depend on (one user's rows, newest first).
///
/// Several processes share the database, and a second `ANALYZE` of a table waits for the first: three instances
/// syncing at once queued theirs for 9.8 s on a loaded CI machine, each holding a pooled connection the job leases'
/// heartbeats needed. So one refresh runs at a time per process, on its own connection (never one of the pool's),
/// and skips a table another session is analyzing (`SKIP_LOCKED`): that session's statistics are as fresh.
struct PgDialect {
    unanalyzed_rows: AtomicU64,
    /// `transactions`' row count at this process's last refresh (0 before the first).
    analyzed_rows: AtomicU64,
    refreshing: tokio::sync::Mutex<()>,
}

impl PgDialect {
    fn new() -> Self {
        Self { unanalyzed_rows: AtomicU64::new(0), analyzed_rows: AtomicU64::new(0), refreshing: Default::default() }
    }

    /// Runs `ANALYZE` on a connection of its own; returns `transactions`' row count as ANALYZE estimated it.
    async fn analyze(pool: &PgPool) -> std::result::Result<u64, sqlx::Error> {
        let mut conn = pool.connect_options().connect().await?;
        // A table skipped for a lock is reported as a WARNING notice, which is not a problem worth a log line.
        sqlx::query("SET client_min_messages = error").execute(&mut conn).await?;
        sqlx::query("ANALYZE (SKIP_LOCKED) transactions, spending_months, items, accounts").execute(&mut conn).await?;
        let rows: i64 = sqlx::query_scalar(
            "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = 'transactions'::regclass",
        )
        .fetch_one(&mut conn)
        .await?;
        conn.close().await?;
        Ok(u64::try_from(rows).unwrap_or(0))
    }
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
        let written = self.unanalyzed_rows.load(Ordering::Relaxed);
        if written < ANALYZE_AFTER_ROWS.max(self.analyzed_rows.load(Ordering::Relaxed) / 10) {
            return;
        }
        // A refresh already running here started after most of these rows were written: it covers them.
        let Ok(_refreshing) = self.refreshing.try_lock() else { return };
        let Pool::Postgres(pool) = pool else { return };
        self.unanalyzed_rows.fetch_sub(written, Ordering::Relaxed);
        let started = std::time::Instant::now();
        // `items` and `accounts` too: they are small and change rarely, so autovacuum (50 changed rows) never
        // analyzes them, and without statistics the planner took the join with `items` to keep 1 row in 110. A
        // search for a common word then looked rare, and was answered by fetching and sorting every match
        // (200 ms at 1,000,000 rows) instead of walking the time index for one page (6.5 ms).
        match Self::analyze(pool).await {
            Ok(rows) => {
                self.analyzed_rows.store(rows, Ordering::Relaxed);
                tracing::debug!(elapsed = ?started.elapsed(), rows, "refreshed planner statistics after a bulk write");
            }
            Err(e) => tracing::warn!(error = %e, "ANALYZE after a bulk write failed; autovacuum will catch up"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planner_settings_are_added_unless_the_url_gives_them() {
        let settings = |url: &str| {
            planner_settings(PgConnectOptions::from_str(url).unwrap()).get_options().unwrap_or_default().to_owned()
        };
        assert_eq!(settings("postgres://h/db"), "-c jit=off -c random_page_cost=1.1");
        assert_eq!(settings("postgres://h/db?options=-c%20random_page_cost%3D4"), "-c random_page_cost=4 -c jit=off");
    }
}
