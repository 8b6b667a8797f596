//! Persistence: one [`Store`] handle with a method per use case, over one of two backends.
//!
//! - SQLite (the default, `sqlite.rs`): WAL, `synchronous=NORMAL`, a busy timeout, one writer connection plus a pool of
//!   readers, so writes never fail with SQLITE_BUSY inside one process and reads never wait for writes.
//! - PostgreSQL (`postgres.rs`): for several banksync processes sharing one PostgreSQL (jobs are claimed with `FOR UPDATE SKIP
//!   LOCKED`).
//!
//! The backend is chosen at runtime from the database URL's scheme ([`connect`]). Each area of the schema is a module
//! holding its own SQL, row types and `impl Store` block: `users` (users, sessions, API tokens), `items` (Items),
//! `accounts` (accounts and balances), `transactions` (reading and editing transactions), `sync_write` (applying
//! syncs), `audit` (sync runs, Plaid calls, webhooks), `jobs` (the durable queue), `budget` (Plaid's rate budget:
//! reserved calls, blocks, named locks), `overview` (the user's last overview visit, what changed since),
//! `logos` (the merchant logo cache), `search` (full-text `q`: FTS5 / `tsvector`), `spending` (the charts'
//! summary, kept by triggers). Statements are runtime SQL with
//! `$n` placeholders, one text for both backends; `exec.rs` is the only code that matches on the backend, and
//! `dialect.rs` declares the few things the backends do differently (where staged sync pages live, claiming jobs).
//! Migrations are two trees with identical versions and names, `migrations/sqlite` and `migrations/postgres`. The schema uses portable types only (see the migration header):
//! TEXT ids and fixed-width RFC 3339 UTC timestamps, exact decimal text for money with an order-preserving key for
//! comparisons, BOOLEAN flags, JSON as TEXT.
//!
//! ## Applying a sync atomically with memory bounded by a page
//! `/transactions/sync` returns pages; the architecture wants the whole run's changes and the final cursor applied
//! atomically, without holding a write lock across network calls and without keeping the run in memory. So pages
//! are *staged*: [`Store::stage_sync_page`] writes each page into `sync_staging` keyed by the sync run (a later change
//! to the same transaction replaces an earlier one), and [`Store::commit_sync`] moves the whole run into
//! `transactions` and stores the cursor in one database transaction, using set-based `INSERT … SELECT`. A
//! mutation-during-pagination restart calls [`Store::discard_sync`] (or starts a new run id). Until the commit
//! nothing is visible and the old cursor stays. [`Store::apply_sync`] does the same for a batch already in memory,
//! in one transaction. The commit is a compare-and-set on the cursor the caller's `Item` was read with, so two
//! overlapping syncs of one Item cannot both commit. On SQLite the staging table is a TEMP table of the writer
//! connection (not journaled; see `sqlite.rs`), so a run must be staged and committed by the same process; on
//! PostgreSQL it is a shared table.
//!
//! The rules applied at commit: upsert by `transaction_id` (normalized columns and raw JSON; user fields are never
//! overwritten; a soft-deleted row that comes back is restored); a posted transaction naming a pending one in
//! `pending_transaction_id` takes over that row's user note and category (unless it has its own) and the pending
//! row is soft-deleted, so both are never visible; removed ids are soft-deleted; the cursor is stored.

mod accounts;
mod audit;
mod budget;
mod codec;
mod copy;
mod dialect;
mod doctor;
mod exec;
mod export;
mod items;
mod jobs;
mod logos;
mod overview;
mod postgres;
mod raw_json;
mod relink;
mod retention;
mod search;
mod spending;
mod sqlite;
mod sync_state;
mod sync_write;
mod transaction_row;
mod transactions;
mod user_admin;
mod users;
mod webhook_sync;

use std::sync::Arc;
use std::time::Duration;

pub use budget::{CallLimit, Reservation};
pub use codec::{TxnCursor, amount_band, amount_key};
pub use copy::{COPY_TABLES, Snapshot, TableColumns, TableDigest};
pub use doctor::{ItemAttention, JobHealth};
pub use logos::{CachedLogo, LogoImage};
pub use overview::ChangesSince;
pub use sync_write::InitialWrite;
pub use user_admin::{DeleteUser, UserSummary};
pub use webhook_sync::{WebhookSync, WebhookSyncOutcome};

use dialect::Dialect;
use exec::Pool;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    pub(crate) fn corrupt(what: impl std::fmt::Display) -> Self {
        Self::Other(anyhow::anyhow!("unreadable value in the database: {what}"))
    }

    /// Whether this error is the database being unavailable rather than a bug: the server down or restarting, no
    /// connection free in time, the disk full, the file read-only. The API answers these 503 with what is wrong, so
    /// a client retries and an operator knows what to fix.
    pub fn outage(&self) -> Option<Outage> {
        let StoreError::Other(e) = self else { return None };
        e.chain().filter_map(|cause| cause.downcast_ref::<sqlx::Error>()).find_map(outage_of)
    }
}

/// Why the database cannot serve a request right now ([`StoreError::outage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The server is unreachable, shutting down or starting, or no pooled connection came free in time.
    Unavailable,
    /// No space left (a full disk, a file-size limit) or a failing disk.
    Storage,
    /// The database only accepts reads.
    ReadOnly,
}

impl Outage {
    /// A stable code and a sentence for the API's 503.
    pub fn describe(self) -> (&'static str, &'static str) {
        match self {
            Outage::Unavailable => (
                "database_unavailable",
                "The database is unavailable right now (restarting or unreachable). Retry shortly.",
            ),
            Outage::Storage => {
                ("database_storage_full", "The database cannot write to its disk (full or failing). Nothing was saved.")
            }
            Outage::ReadOnly => ("database_read_only", "The database is read-only right now. Nothing was saved."),
        }
    }
}

fn outage_of(e: &sqlx::Error) -> Option<Outage> {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            Some(Outage::Unavailable)
        }
        sqlx::Error::Database(db) => {
            let code = db.code()?;
            if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
                // SQLSTATEs: 08 connection exceptions, 57P0x shutting down / starting up, 53 insufficient resources
                // (53100 disk full), 25006 read-only transaction (a hot standby).
                return match &*code {
                    c if c.starts_with("08") || c.starts_with("57P") => Some(Outage::Unavailable),
                    c if c.starts_with("53") => Some(Outage::Storage),
                    "25006" => Some(Outage::ReadOnly),
                    _ => None,
                };
            }
            // SQLite's extended result codes: the primary code is the low byte.
            match code.parse::<i32>().ok()? & 0xff {
                8 => Some(Outage::ReadOnly),      // SQLITE_READONLY
                10 | 13 => Some(Outage::Storage), // SQLITE_IOERR, SQLITE_FULL
                14 => Some(Outage::Unavailable),  // SQLITE_CANTOPEN
                _ => None,
            }
        }
        _ => None,
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict(
                db.constraint().map_or_else(|| "already exists".to_owned(), |c| format!("{c} already exists")),
            ),
            _ => Self::Other(anyhow::Error::new(e).context("database error")),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Self::Other(anyhow::Error::new(e).context("database migration failed"))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything banksync persists, behind one handle (share it as `Arc<Store>`). Methods taking a `user_id` are
/// scoped to that owner: another user's row is `NotFound`, never `Forbidden`, so existence is not revealed.
/// `item_ref` is our internal `Item::id`; `item_id` is Plaid's. The methods live in the area modules.
pub struct Store {
    backend: Backend,
    /// Writes (and reads that must see this process's latest write). On SQLite its only connection.
    writer: Pool,
    /// Reads; on SQLite a separate pool that WAL lets read while the writer writes. The same pool on PostgreSQL.
    reader: Pool,
    /// Reads that walk most of the database (exports, backups, integrity checks, copies to another store). On SQLite
    /// their own connections, without the readers' memory map; the same pool as `reader` elsewhere.
    scanner: Pool,
    dialect: Box<dyn Dialect>,
    migrator: sqlx::migrate::Migrator,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print connection details.
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Store {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations of this backend's tree.
    pub async fn migrate(&self) -> Result<()> {
        self.writer.migrate(&self.migrator).await
    }

    /// Cheap round trip for `/health`.
    pub async fn ping(&self) -> Result<()> {
        self.reader.execute(&exec::Sql::new("SELECT 1")).await?;
        Ok(())
    }

    /// Closes the pools (on SQLite this checkpoints the WAL).
    pub async fn close(&self) {
        self.scanner.close().await;
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The PostgreSQL connection pool: how many connections, and how long a caller waits for one before the call fails
/// (an outage then answers quickly instead of piling requests up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    pub size: u32,
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { size: 10, acquire_timeout: Duration::from_secs(5) }
    }
}

/// Opens the store named by `url`: `sqlite:…` or `postgres://…`/`postgresql://…`. Anything else is an error, never
/// a silently created file. Does not migrate.
pub async fn connect(url: &str) -> Result<Arc<Store>> {
    connect_with(url, PoolSettings::default()).await
}

/// [`connect`] with these pool settings (used by PostgreSQL; SQLite keeps its one writer and small reader pool).
pub async fn connect_with(url: &str, pool: PoolSettings) -> Result<Arc<Store>> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") => Ok(Arc::new(Store::connect_sqlite_url(url).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(Store::connect_postgres_url(url, pool).await?)),
        _ => Err(StoreError::InvalidInput(
            "the database URL must start with sqlite: or postgres:// (e.g. sqlite://data/banksync.db)".into(),
        )),
    }
}

/// How long a live balance (`/accounts/balance/get`) stays preferred over a cached one whose age is unknown.
pub const LIVE_BALANCE_RECENT: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Backoff for a failed job's `attempts`-th attempt.
pub(crate) fn job_backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    Duration::from_secs(5u64.saturating_mul(2u64.saturating_pow(exp))).min(Duration::from_secs(3600))
}

/// An UPDATE/DELETE that must hit exactly one row: zero means the row is not there (or not the caller's).
fn one_row(affected: u64) -> Result<()> {
    if affected == 0 { Err(StoreError::NotFound) } else { Ok(()) }
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365 * 100))
}

/// Rows per multi-row statement with `columns` binds each: well below both engines' bind-parameter limits
/// (SQLite 32766, PostgreSQL 65535).
const fn rows_per_statement(columns: usize) -> usize {
    30_000 / columns
}
