//! Persistence: one `Store` trait with a method per use case, and two backends behind it.
//!
//! - [`SqliteStore`] (the default): WAL, `synchronous=NORMAL`, a busy timeout, one writer connection plus a pool of
//!   readers, so writes never fail with SQLITE_BUSY inside one process and reads never wait for writes.
//! - [`PgStore`]: for several banksync processes sharing one PostgreSQL (jobs are claimed with `FOR UPDATE SKIP
//!   LOCKED`).
//!
//! The backend is chosen at runtime from the database URL's scheme ([`connect`]). Queries are runtime `query_as`
//! with `$1` placeholders; the SQL text lives once in `sql.rs` and both backends share it, forking only where the
//! dialects differ (claiming jobs). Migrations are two trees with identical versions and names,
//! `migrations/sqlite` and `migrations/postgres`. The schema uses portable types only (see the migration header):
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
//! connection (not journaled; see [`SqliteStore`]), so a run must be staged and committed by the same process; on
//! PostgreSQL it is a shared table.
//!
//! The rules applied at commit: upsert by `transaction_id` (normalized columns and raw JSON; user fields are never
//! overwritten; a soft-deleted row that comes back is restored); a posted transaction naming a pending one in
//! `pending_transaction_id` takes over that row's user note and category (unless it has its own) and the pending
//! row is soft-deleted, so both are never visible; removed ids are soft-deleted; the cursor is stored.

mod codec;
mod rows;
#[macro_use]
mod sql;
mod postgres;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use codec::{TxnCursor, amount_key};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::domain::*;
use crate::vault::Sealed;

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

/// Everything banksync persists. Methods taking a `user_id` are scoped to that owner: another user's row is
/// `NotFound`, never `Forbidden`, so existence is not revealed. `item_ref` is our internal `Item::id`; `item_id` is
/// Plaid's.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    /// Applies pending migrations of this backend's tree.
    async fn migrate(&self) -> Result<()>;
    /// Cheap round trip for `/health`.
    async fn ping(&self) -> Result<()>;

    // Users, sessions, API tokens.
    /// `Conflict` when the username is taken.
    async fn create_user(&self, username: &str, password_hash: &str) -> Result<User>;
    async fn find_user_by_username(&self, username: &str) -> Result<Option<User>>;
    async fn get_user(&self, user_id: &str) -> Result<User>;
    async fn create_session(&self, session: &NewSession) -> Result<Session>;
    /// The session if it exists and has not expired.
    async fn find_session(&self, id_hash: &str) -> Result<Option<Session>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    async fn delete_expired_sessions(&self) -> Result<u64>;
    async fn create_api_token(&self, user_id: &str, name: &str, token_hash: &str) -> Result<ApiToken>;
    /// The token's owner, recording the use.
    async fn find_user_by_api_token_hash(&self, token_hash: &str) -> Result<Option<User>>;
    async fn list_api_tokens(&self, user_id: &str) -> Result<Vec<ApiToken>>;
    async fn delete_api_token(&self, user_id: &str, token_id: &str) -> Result<()>;

    // Items.
    /// `Conflict` when Plaid's item_id is already stored.
    async fn insert_item(&self, item: &NewItem) -> Result<Item>;
    /// The user's Item at that institution, to refuse linking it twice.
    async fn find_item_by_institution(&self, user_id: &str, institution_id: &str) -> Result<Option<Item>>;
    async fn get_item(&self, user_id: &str, item_id: &str) -> Result<Item>;
    /// Unscoped, for webhooks and jobs.
    async fn get_item_by_plaid_id(&self, item_id: &str) -> Result<Option<Item>>;
    async fn list_items(&self, user_id: &str) -> Result<Vec<Item>>;
    /// Every Item of every user, for the scheduler and key rotation.
    async fn list_all_items(&self) -> Result<Vec<Item>>;
    async fn update_item_status(&self, item_ref: &str, health: &ItemHealth) -> Result<()>;
    async fn set_item_consent_expiration(
        &self,
        item_ref: &str,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<()>;
    async fn set_new_accounts_available(&self, item_ref: &str, available: bool) -> Result<()>;
    /// Re-sealed access token (key rotation, or a new token from Plaid).
    async fn update_item_access_token(&self, item_ref: &str, sealed: &Sealed) -> Result<()>;
    /// Forgets the cursor so the next sync starts from scratch.
    async fn reset_item_cursor(&self, item_ref: &str) -> Result<()>;
    /// Deletes the Item with its accounts, transactions and sync runs.
    async fn delete_item(&self, user_id: &str, item_id: &str) -> Result<()>;

    // Accounts and balances.
    /// Inserts or updates accounts (clearing `removed`). With `full_list`, the Item's accounts missing from `accounts`
    /// are flagged removed. A stored balance stays when it is newer than the incoming one (`balance_as_of`), or
    /// when it is live and recent ([`LIVE_BALANCE_RECENT`]) and the incoming one is cached.
    async fn upsert_accounts(&self, item: &Item, accounts: &[NewAccount], full_list: bool) -> Result<()>;
    async fn list_accounts(&self, user_id: &str, filter: &AccountFilter) -> Result<Vec<Account>>;
    /// Updates balances of the Item's accounts; unknown account ids are ignored. Returns rows updated.
    async fn update_balances(&self, item_ref: &str, updates: &[BalanceUpdate]) -> Result<u64>;

    // Transactions.
    /// Applies a whole batch and its cursor in one database transaction (see the module docs). `Conflict` when the
    /// Item's stored cursor is no longer `item.cursor`.
    async fn apply_sync(&self, item: &Item, batch: &SyncBatch) -> Result<ApplyStats>;
    /// Stages one page of a sync run; nothing becomes visible before `commit_sync`.
    async fn stage_sync_page(&self, run_id: &str, page: &SyncPage) -> Result<()>;
    /// Moves the run's staged pages into `transactions` and stores `next_cursor`, atomically. `Conflict` (and
    /// nothing changed) when the stored cursor is no longer `item.cursor`.
    async fn commit_sync(&self, item: &Item, run_id: &str, next_cursor: &str) -> Result<ApplyStats>;
    /// Drops a run's staged pages (restart or failure).
    async fn discard_sync(&self, run_id: &str) -> Result<()>;
    /// An Item's first sync can skip staging: the Item has nothing to keep consistent, so its pages go straight into
    /// `transactions`, hidden from every reader until [`Store::commit_initial_sync`] reveals them together with the
    /// cursor (a large history is then written once instead of twice). This claims that for `run_id`: `true` when
    /// the Item has never committed a sync and holds no transactions, or when a previous run's claim is left over
    /// (that run died or was overtaken; its hidden rows are deleted). `false`: stage the run's pages instead.
    async fn claim_initial_sync(&self, item: &Item, run_id: &str) -> Result<bool>;
    /// Writes consecutive pages of a claimed initial sync in one database transaction (hidden until the commit).
    /// `Conflict` when the claim was lost.
    async fn write_initial_pages(&self, item: &Item, run_id: &str, pages: &[SyncPage]) -> Result<ApplyStats>;
    /// Stores the cursor and reveals the written pages, atomically. `Conflict` when the claim was lost.
    async fn commit_initial_sync(&self, item: &Item, run_id: &str, next_cursor: &str) -> Result<()>;
    /// Gives up the claim (restart or failure) and deletes the pages written under it. A no-op when the claim is no
    /// longer this run's.
    async fn release_initial_sync(&self, item: &Item, run_id: &str) -> Result<()>;
    async fn list_transactions(&self, user_id: &str, filter: &TransactionFilter) -> Result<Page<Transaction>>;
    async fn get_transaction(&self, user_id: &str, transaction_id: &str) -> Result<Transaction>;
    async fn update_transaction_user_fields(
        &self,
        user_id: &str,
        transaction_id: &str,
        patch: &UserFieldsPatch,
    ) -> Result<Transaction>;

    // Sync runs and audit trails.
    async fn start_sync_run(&self, item_ref: &str, triggered_by: &str) -> Result<SyncRun>;
    /// Closes the run; also records the Item's `last_sync_at`.
    async fn finish_sync_run(&self, run_id: &str, outcome: &SyncRunOutcome) -> Result<SyncRun>;
    async fn list_sync_runs(&self, item_ref: &str, limit: u32) -> Result<Vec<SyncRun>>;
    async fn record_plaid_call(&self, call: &PlaidCall) -> Result<()>;
    /// Newest first; all Items when `item_id` is `None`.
    async fn list_plaid_calls(&self, item_id: Option<&str>, limit: u32) -> Result<Vec<PlaidCall>>;
    /// Records a webhook delivery once per dedupe key.
    async fn record_webhook_event(&self, event: &NewWebhookEvent) -> Result<WebhookRecord>;
    async fn mark_webhook_processed(&self, id: &str) -> Result<()>;

    // Durable job queue.
    /// Adds a job, or joins the queued job with the same (kind, coalesce_key), moving its `run_after` earlier if
    /// this request is more urgent (the queued job keeps its payload).
    async fn enqueue_job(&self, job: &NewJob) -> Result<Enqueued>;
    /// Leases the next due job (or one whose lease expired and has attempts left) to `worker_id`.
    async fn claim_job(&self, worker_id: &str, lease: Duration) -> Result<Option<Job>>;
    /// Extends the lease; `NotFound` when the worker no longer holds it.
    async fn heartbeat_job(&self, job_id: &str, worker_id: &str, lease: Duration) -> Result<()>;
    /// `NotFound` when the worker no longer holds the lease.
    async fn complete_job(&self, job_id: &str, worker_id: &str, result: Option<&str>) -> Result<()>;
    /// Records a failure: back to `queued` after a backoff (`retry_after`, else exponential from 5 s, capped at one
    /// hour) while attempts remain, else `failed`. Returns the new state.
    async fn fail_job(
        &self,
        job_id: &str,
        worker_id: &str,
        error: &str,
        retry_after: Option<Duration>,
    ) -> Result<JobState>;
    /// Fails running jobs whose lease expired with no attempts left (those with attempts left are simply claimable
    /// again). Returns how many.
    async fn reclaim_expired_jobs(&self) -> Result<u64>;
    async fn get_job(&self, job_id: &str) -> Result<Job>;

    // Jobs run by the process that asked for them (live balance refreshes), recorded for every process to read.
    /// Creates job `id` already `running`, leased to `worker_id` for `lease`, with `result` as its progress and its
    /// only attempt used (`job.max_attempts` and `job.run_after` do not apply): `claim_job` never takes it, and
    /// `reclaim_expired_jobs` fails it once its holder stops renewing the lease (`heartbeat_job`). When a job with
    /// the same (kind, coalesce_key) is running under a live lease, that one is returned (`coalesced`) instead;
    /// best effort across processes on PostgreSQL (two simultaneous requests may both create one).
    async fn create_running_job(
        &self,
        id: &str,
        job: &NewJob,
        worker_id: &str,
        lease: Duration,
        result: &str,
    ) -> Result<Enqueued>;
    /// Replaces the progress (`result`) of a running job; `NotFound` when the worker no longer holds it.
    async fn update_running_job_result(&self, job_id: &str, worker_id: &str, result: &str) -> Result<()>;
    /// Deletes `done`/`failed` jobs of `kind` due (`run_after`) before `before`; returns how many.
    async fn delete_finished_jobs(&self, kind: &str, before: chrono::DateTime<chrono::Utc>) -> Result<u64>;
}

/// Opens the store named by `url`: `sqlite:…` or `postgres://…`/`postgresql://…`. Anything else is an error, never
/// a silently created file. Does not migrate.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme.as_deref() {
        Some("sqlite") => Ok(Arc::new(SqliteStore::connect(url).await?)),
        Some("postgres" | "postgresql") => Ok(Arc::new(PgStore::connect(url).await?)),
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
