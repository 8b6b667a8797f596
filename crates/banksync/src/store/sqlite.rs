//! SQLite backend: the default, one file in the data directory.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::dialect::{CLAIM_JOB_SQLITE, DELETE_STAGING, Dialect};
use super::exec::{Pool, Sql, Tx};
use super::{Backend, Result, Store, StoreError};

/// Created on the writer connection before the first staging; copies the staging table's columns.
const PREPARE_TEMP_STAGING: [&str; 5] = [
    "CREATE TEMP TABLE IF NOT EXISTS banksync_connection AS SELECT lower(hex(randomblob(16))) AS epoch",
    "CREATE TEMP TABLE IF NOT EXISTS sync_staging AS SELECT * FROM main.sync_staging WHERE 0",
    "CREATE UNIQUE INDEX IF NOT EXISTS temp.sync_staging_key ON sync_staging(run_id, transaction_id)",
    "CREATE INDEX IF NOT EXISTS temp.sync_staging_removals ON sync_staging(run_id, transaction_id) \
        WHERE op = 'remove'",
    "CREATE INDEX IF NOT EXISTS temp.sync_staging_pending_links \
        ON sync_staging(run_id, pending_transaction_id, transaction_id) \
        WHERE op = 'upsert' AND pending_transaction_id IS NOT NULL",
];
const PAGE_SIZE: u32 = 16 * 1024;
/// 100,000 pages (~1.6 GB at 16 KiB, ~400 MB on a database created with 4 KiB pages): past any single sync's
/// commit, so that commit never checkpoints inline.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 100_000;
/// The writer's page caches (SQLite's default is 2 MB each). A sync commit inserts rows in Plaid's order, i.e. at
/// random places in the primary-key and time indexes; with a cache smaller than those indexes, SQLite spills dirty
/// pages to the WAL mid-transaction and writes many of them several times. Fixed sizes, so memory does not grow
/// with history (the readers keep the default).
const WRITER_CACHE_KIB: u32 = 32 * 1024;
/// The temp database holds the staged pages of a running sync.
const STAGING_CACHE_KIB: u32 = 16 * 1024;
/// How much of the database file each reader maps into memory (`mmap_size`; the build raises SQLite's 2 GB cap to
/// this in `.cargo/config.toml`). A listing that tests a column outside its index reads a table page per walked row,
/// and through SQLite's own 2 MB cache that was a `pread` copy each: the category filter at 1,000,000 rows walked
/// ~2,500 rows in 8.5 ms, 2.5 ms mapped. Mapped pages are the kernel's page cache, shared and reclaimable, not this
/// process's heap; the writer keeps `pread` (a sync would otherwise map, and count in its RSS, the whole file).
const READER_MMAP_BYTES: u64 = 64 << 30;
/// Connections of the scanner pool (exports, backups, integrity checks, copies), closed when idle this long.
const SCANNERS: u32 = 2;
const SCANNER_IDLE: Duration = Duration::from_secs(30);
/// Rows in flight between a connection's thread and its caller: a whole page of the largest listing.
const ROW_BUFFER: usize = 512;
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);

/// Copies the WAL back into the database file off the writer's path: with SQLite's default (checkpoint every
/// 1,000 pages inside the committing call) a large sync commit would also pay for rewriting the whole database
/// file. PASSIVE never blocks readers or the writer. Ends when the store is closed or dropped.
async fn checkpoint_in_background(pool: SqlitePool, store_alive: std::sync::Weak<()>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if pool.is_closed() || store_alive.strong_count() == 0 {
            return;
        }
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            if pool.is_closed() {
                return;
            }
            tracing::debug!(error = %e, "background WAL checkpoint failed; will retry");
        }
    }
}

/// sqlx's pools ping a connection before handing it out, by default: for SQLite a round trip to the connection's
/// own thread (and back) before every statement, on top of the one when it is released. An SQLite connection is
/// this process's own open file, nothing on another end can drop it, so the ping finds nothing to test.
fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new().test_before_acquire(false)
}

const CONNECTION_EPOCH: &str = "SELECT epoch FROM temp.banksync_connection";

impl Store {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`, `sqlite:file.db`, or
    /// `sqlite::memory:`).
    pub(super) async fn connect_sqlite_url(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidInput(format!("invalid SQLite URL: {e}")))?;
        Self::connect_sqlite(options).await
    }

    /// Opens the database file at `path`, creating it if missing.
    pub async fn open_sqlite(path: &std::path::Path) -> Result<Self> {
        Self::connect_sqlite(SqliteConnectOptions::new().filename(path)).await
    }

    pub async fn connect_sqlite(options: SqliteConnectOptions) -> Result<Self> {
        let in_memory = options.get_filename().to_str().is_some_and(|f| f.is_empty() || f.contains(":memory:"));
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // A stored transaction is ~2 KB (normalized columns plus Plaid's raw JSON): on 4 KiB pages only one fits
            // per page, so half of every page was wasted and a sync wrote twice the bytes. 16 KiB pages hold seven.
            // Only takes effect when the file is created (an existing database keeps its page size); the temp
            // database (staging) is created lazily by each connection, after this.
            .page_size(PAGE_SIZE)
            .pragma("temp.page_size", PAGE_SIZE.to_string())
            // Checkpoints normally run in the background (below); a commit only checkpoints inline once the WAL
            // has grown past ~400 MB, the safety net should the background task fall behind.
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
            // After a checkpoint, shrink a WAL that a large sync grew back to 64 MiB on disk.
            .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
            // sqlx steps each statement on the connection's own thread and hands the rows over through a channel
            // of this many; with sqlx's 50, a listing's page (up to 501 rows) filled it and the two threads
            // took turns, a context switch every few rows (a fifth of the newest page's time under load).
            .row_buffer_size(ROW_BUFFER);
        let writer = pool_options()
            .max_connections(1)
            // Keep the writer (and its temp staging table) for the life of the store.
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(
                options
                    .clone()
                    .pragma("cache_size", format!("-{WRITER_CACHE_KIB}"))
                    .pragma("temp.cache_size", format!("-{STAGING_CACHE_KIB}"))
                    // The temp database's rollback journal only has to undo a failed staging transaction of this
                    // connection (the temp database does not survive a crash anyway): keep it in memory rather than
                    // writing and truncating a journal file per staged page. It holds the pages a page's insert
                    // changed, so it is bounded by a page too.
                    .pragma("temp.journal_mode", "MEMORY"),
            )
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot open the SQLite database"))?;
        // An in-memory database exists once per connection, so it cannot have separate readers.
        let (reader, scanner) = if in_memory {
            (writer.clone(), writer.clone())
        } else {
            let reader = pool_options()
                .max_connections(4)
                .connect_with(options.clone().pragma("mmap_size", READER_MMAP_BYTES.to_string()))
                .await
                .map_err(|e| anyhow::Error::new(e).context("cannot open the SQLite database"))?;
            // Mapped pages a read touched stay in the process's RSS, once per connection that mapped them: an
            // export of 1,000,000 rows through the readers peaked at 7-11 GB RSS for a 3.7 GB file. Copying the
            // pages instead (`pread`) holds it at ~27 MB, for ~30 % more time (csv: 9.4-10.3 s -> 11.7-13.7 s,
            // interleaved; a larger page cache did not change that).
            let scanner = pool_options()
                .max_connections(SCANNERS)
                .min_connections(0)
                .idle_timeout(SCANNER_IDLE)
                .connect_lazy_with(options);
            (reader, scanner)
        };
        let alive = std::sync::Arc::new(());
        if !in_memory {
            tokio::spawn(checkpoint_in_background(reader.clone(), std::sync::Arc::downgrade(&alive)));
        }
        Ok(Store {
            backend: Backend::Sqlite,
            writer: Pool::Sqlite(writer),
            reader: Pool::Sqlite(reader),
            scanner: Pool::Sqlite(scanner),
            dialect: Box::new(SqliteDialect { run_epochs: Mutex::new(HashMap::new()), _alive: alive }),
            migrator: sqlx::migrate!("./migrations/sqlite"),
        })
    }
}

/// SQLite allows one writer at a time. Sending every write through one connection turns lock contention inside this
/// process into a queue (no SQLITE_BUSY), while readers use their own connections and, thanks to WAL, never wait.
///
/// Staged sync pages live in a TEMP table of that writer connection (shadowing the unused `main.sync_staging`):
/// they are only meaningful within this process's sync run, and a temp table is neither journaled to the WAL nor
/// checkpointed, which roughly halves the bytes a large sync writes. Should the writer connection ever be replaced
/// mid-run, its temp table is gone; each connection therefore carries a random epoch, the store remembers the epoch
/// a run was staged under, and `commit_sync` refuses (so the sync retries from its old cursor) when they differ.
struct SqliteDialect {
    run_epochs: Mutex<HashMap<String, String>>,
    /// The background checkpointer stops once this is dropped with the store.
    _alive: std::sync::Arc<()>,
}

impl SqliteDialect {
    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.run_epochs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn connection_replaced(run_id: &str) -> StoreError {
        StoreError::Other(anyhow::anyhow!(
            "the database connection was replaced during sync run {run_id}; its staged pages are lost, restart the sync"
        ))
    }
}

async fn connection_epoch(tx: &mut Tx) -> Result<Option<String>> {
    match tx.fetch_optional::<(String,)>(&Sql::new(CONNECTION_EPOCH)).await {
        Ok(epoch) => Ok(epoch.map(|(e,)| e)),
        // No such table: this connection never staged anything.
        Err(StoreError::Other(e)) if format!("{e:#}").contains("no such table") => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Dialect for SqliteDialect {
    fn claim_job_sql(&self) -> &'static str {
        CLAIM_JOB_SQLITE
    }

    async fn prepare_staging(&self, tx: &mut Tx) -> Result<()> {
        for statement in PREPARE_TEMP_STAGING {
            tx.execute(&Sql::new(statement)).await?;
        }
        Ok(())
    }

    async fn remember_run(&self, tx: &mut Tx, run_id: &str) -> Result<()> {
        let epoch = connection_epoch(tx).await?.ok_or_else(|| anyhow::anyhow!("staging table missing"))?;
        let mut runs = self.runs();
        let known = runs.entry(run_id.to_owned()).or_insert_with(|| epoch.clone());
        if *known != epoch {
            return Err(Self::connection_replaced(run_id));
        }
        Ok(())
    }

    async fn check_run(&self, tx: &mut Tx, run_id: &str) -> Result<()> {
        let expected = self.runs().get(run_id).cloned();
        let Some(expected) = expected else {
            return Ok(()); // Nothing staged: the commit only moves the cursor.
        };
        if connection_epoch(tx).await?.as_deref() != Some(expected.as_str()) {
            self.forget_run(run_id);
            return Err(Self::connection_replaced(run_id));
        }
        Ok(())
    }

    /// Deletes a committed run's staged rows. When no other run is staged, the whole table is emptied, which
    /// SQLite does by dropping its pages instead of deleting row by row.
    async fn clear_staging(&self, tx: &mut Tx, run_id: &str) -> Result<()> {
        let only_run = self.runs().keys().all(|k| k == run_id);
        // Every write uses the one writer connection, so no other run can be mid-staging right now; an
        // `apply_sync` clears its own rows inside its transaction.
        if only_run && connection_epoch(tx).await?.is_some() {
            tx.execute(&Sql::new("DELETE FROM temp.sync_staging")).await?;
        } else {
            tx.execute(&Sql::new(DELETE_STAGING).bind(run_id)).await?;
        }
        Ok(())
    }

    fn forget_run(&self, run_id: &str) {
        self.runs().remove(run_id);
    }
}
