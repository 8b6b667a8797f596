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

use std::sync::Arc;
use std::time::Duration;

pub use budget::{CallLimit, Reservation};
pub use codec::{TxnCursor, amount_key};
pub use copy::{COPY_TABLES, Snapshot, TableColumns, TableDigest};
pub use doctor::{ItemAttention, JobHealth};
pub use logos::{CachedLogo, LogoImage};
pub use overview::ChangesSince;
pub use user_admin::UserSummary;

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
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// Opens the store named by `url`: `sqlite:…` or `postgres://…`/`postgresql://…`. Anything else is an error, never
/// a silently created file. Does not migrate.
pub async fn connect(url: &str) -> Result<Arc<Store>> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") => Ok(Arc::new(Store::connect_sqlite_url(url).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(Store::connect_postgres_url(url).await?)),
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
