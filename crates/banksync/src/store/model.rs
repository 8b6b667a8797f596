//! Domain types the store reads and writes. They are banksync's own (not Plaid's wire models): the sync engine
//! normalizes Plaid objects into them following the architecture's rules.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::vault::Sealed;

#[derive(Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A server-side session. The cookie carries a random token; only its hash (`id_hash`) is stored.
#[derive(Clone)]
pub struct Session {
    pub id_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession").field("user_id", &self.user_id).finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub user_id: String,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}

/// Health of an Item, as Plaid reports it through errors and webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Good,
    LoginRequired,
    PendingDisconnect,
    PendingExpiration,
    Revoked,
    Error,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::LoginRequired => "login_required",
            Self::PendingDisconnect => "pending_disconnect",
            Self::PendingExpiration => "pending_expiration",
            Self::Revoked => "revoked",
            Self::Error => "error",
        }
    }
}

impl FromStr for ItemStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "good" => Self::Good,
            "login_required" => Self::LoginRequired,
            "pending_disconnect" => Self::PendingDisconnect,
            "pending_expiration" => Self::PendingExpiration,
            "revoked" => Self::Revoked,
            "error" => Self::Error,
            other => return Err(format!("unknown item status {other:?}")),
        })
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A linked Item. `id` is ours (foreign keys use it); `item_id` is Plaid's (URLs and webhooks use it).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: String,
    pub item_id: String,
    pub user_id: String,
    pub institution_id: Option<String>,
    pub institution_name: Option<String>,
    #[serde(skip)]
    pub access_token: Sealed,
    /// The `/transactions/sync` cursor of the last committed sync; `None` before the first one.
    #[serde(skip)]
    pub cursor: Option<String>,
    pub status: ItemStatus,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub display_message: Option<String>,
    pub consent_expires_at: Option<DateTime<Utc>>,
    pub disconnect_at: Option<DateTime<Utc>>,
    pub new_accounts_available: bool,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_successful_sync_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewItem {
    pub item_id: String,
    pub user_id: String,
    pub institution_id: Option<String>,
    pub institution_name: Option<String>,
    pub access_token: Sealed,
}

/// Replaces an Item's health fields as a whole (a reset to `Good` clears the error fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemHealth {
    pub status: ItemStatus,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Plaid's `display_message`: safe to show to the user.
    pub display_message: Option<String>,
    /// PENDING_DISCONNECT: when the connection will stop working.
    pub disconnect_at: Option<DateTime<Utc>>,
}

impl ItemHealth {
    pub fn good() -> Self {
        Self {
            status: ItemStatus::Good,
            error_code: None,
            error_message: None,
            display_message: None,
            disconnect_at: None,
        }
    }
}

/// Where a balance came from: `/accounts/balance/get` (live) or Plaid's cached `/accounts/get` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceSource {
    Live,
    Cached,
}

impl BalanceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Cached => "cached",
        }
    }
}

impl FromStr for BalanceSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "live" => Ok(Self::Live),
            "cached" => Ok(Self::Cached),
            other => Err(format!("unknown balance source {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Balances {
    #[serde(with = "rust_decimal::serde::arbitrary_precision_option")]
    pub available: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::arbitrary_precision_option")]
    pub current: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::arbitrary_precision_option")]
    pub limit: Option<Decimal>,
    /// `iso_currency_code`, else `unofficial_currency_code`.
    pub currency: Option<String>,
    /// True when `currency` is an ISO code.
    pub currency_is_official: bool,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account_id: String,
    pub name: String,
    pub official_name: Option<String>,
    pub mask: Option<String>,
    pub account_type: String,
    pub subtype: Option<String>,
    pub balances: Balances,
    pub balance_as_of: Option<DateTime<Utc>>,
    pub balance_source: BalanceSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub account_id: String,
    /// Plaid's item_id of the owning Item.
    pub item_id: String,
    pub name: String,
    pub official_name: Option<String>,
    pub mask: Option<String>,
    #[serde(rename = "type")]
    pub account_type: String,
    pub subtype: Option<String>,
    pub balances: Balances,
    pub balance_as_of: Option<DateTime<Utc>>,
    pub balance_source: BalanceSource,
    pub removed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Plaid's item_id.
    pub item_id: Option<String>,
    pub include_removed: bool,
}

#[derive(Debug, Clone)]
pub struct BalanceUpdate {
    pub account_id: String,
    pub balances: Balances,
    pub as_of: DateTime<Utc>,
    pub source: BalanceSource,
}

/// A transaction as the sync engine normalized it (see ARCHITECTURE.md, "Normalization rules").
#[derive(Debug, Clone, PartialEq)]
pub struct NewTransaction {
    pub transaction_id: String,
    pub account_id: String,
    /// Plaid's sign: positive = money out of the account.
    pub amount: Decimal,
    pub currency: Option<String>,
    pub currency_is_official: bool,
    /// `datetime`, else `authorized_datetime`, else midnight UTC of `authorized_date`/`date`.
    pub datetime: DateTime<Utc>,
    /// True when `datetime` was made from a date.
    pub time_unknown: bool,
    pub date: NaiveDate,
    pub authorized_date: Option<NaiveDate>,
    pub name: String,
    pub merchant_name: Option<String>,
    pub logo_url: Option<String>,
    pub website: Option<String>,
    pub pfc_primary: Option<String>,
    pub pfc_detailed: Option<String>,
    pub pfc_confidence: Option<String>,
    pub pfc_icon_url: Option<String>,
    pub payment_channel: Option<String>,
    pub pending: bool,
    pub pending_transaction_id: Option<String>,
    /// JSON text.
    pub counterparties: Option<String>,
    /// JSON text.
    pub location: Option<String>,
    pub account_owner: Option<String>,
    /// Plaid's transaction object as received (JSON text), for re-normalization without calling Plaid.
    pub raw: String,
}

impl NewTransaction {
    /// `merchant_name`, else `name`.
    pub fn display_name(&self) -> &str {
        self.merchant_name.as_deref().filter(|m| !m.trim().is_empty()).unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Transaction {
    pub transaction_id: String,
    /// Plaid's item_id.
    pub item_id: String,
    pub account_id: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub amount: Decimal,
    pub currency: Option<String>,
    pub currency_is_official: bool,
    pub datetime: DateTime<Utc>,
    pub time_unknown: bool,
    pub date: NaiveDate,
    pub authorized_date: Option<NaiveDate>,
    pub name: String,
    pub merchant_name: Option<String>,
    pub display_name: String,
    pub logo_url: Option<String>,
    pub website: Option<String>,
    pub pfc_primary: Option<String>,
    pub pfc_detailed: Option<String>,
    pub pfc_confidence: Option<String>,
    pub pfc_icon_url: Option<String>,
    pub payment_channel: Option<String>,
    pub pending: bool,
    pub pending_transaction_id: Option<String>,
    /// JSON text.
    pub counterparties: Option<String>,
    /// JSON text.
    pub location: Option<String>,
    pub account_owner: Option<String>,
    /// JSON text.
    #[serde(skip)]
    pub raw: String,
    pub user_note: Option<String>,
    pub user_category: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Changes from `/transactions/sync` pages. Within one page or run, a later change to the same transaction_id wins
/// (added, then modified, then removed).
#[derive(Debug, Clone, Default)]
pub struct SyncPage {
    pub added: Vec<NewTransaction>,
    pub modified: Vec<NewTransaction>,
    pub removed: Vec<String>,
}

/// A whole sync applied in one call: the changes plus the cursor to store with them.
#[derive(Debug, Clone, Default)]
pub struct SyncBatch {
    pub page: SyncPage,
    /// `None` leaves the stored cursor as it is.
    pub next_cursor: Option<String>,
}

/// What one apply/commit changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ApplyStats {
    /// Rows inserted or updated (including restored soft-deleted rows).
    pub upserted: u64,
    /// Rows soft-deleted because Plaid removed them.
    pub removed: u64,
    /// Pending rows replaced by their posted transaction.
    pub pending_replaced: u64,
}

/// Filters for `list_transactions`. `start`/`end` are inclusive and apply to the transaction's `date`; the order is
/// `datetime` descending, then `transaction_id` descending, which the cursor continues.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub account_id: Option<String>,
    /// Plaid's item_id.
    pub item_id: Option<String>,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    /// Matches the user's category, else the PFC primary category; or the PFC detailed category.
    pub category: Option<String>,
    pub pending: Option<bool>,
    /// Case-insensitive substring of the name or merchant name.
    pub q: Option<String>,
    pub min_amount: Option<Decimal>,
    pub max_amount: Option<Decimal>,
    /// 1..=500; 0 means the default (100).
    pub limit: u32,
    /// `Page::next_cursor` of the previous page.
    pub after: Option<String>,
}

impl TransactionFilter {
    pub const DEFAULT_LIMIT: u32 = 100;
    pub const MAX_LIMIT: u32 = 500;

    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            0 => Self::DEFAULT_LIMIT,
            n => n.min(Self::MAX_LIMIT),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Present when more rows follow; pass it back as `after`.
    pub next_cursor: Option<String>,
}

/// PATCH semantics: `None` leaves a field alone, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserFieldsPatch {
    pub note: Option<Option<String>>,
    pub category: Option<Option<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncRunStatus {
    Running,
    Succeeded,
    Failed,
}

impl SyncRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for SyncRunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "running" => Ok(Self::Running),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown sync run status {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncRun {
    pub id: String,
    pub item_ref: String,
    pub triggered_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: SyncRunStatus,
    pub added: i64,
    pub modified: i64,
    pub removed: i64,
    pub pages: i64,
    pub restarts: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SyncRunOutcome {
    pub succeeded: bool,
    pub added: i64,
    pub modified: i64,
    pub removed: i64,
    pub pages: i64,
    pub restarts: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// One row of the Plaid call audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct PlaidCall {
    pub endpoint: String,
    /// Plaid's item_id, when the call concerned one Item.
    pub item_id: Option<String>,
    pub request_id: Option<String>,
    pub http_status: Option<i64>,
    /// e.g. "ok", "plaid_error", "timeout", "transport_error".
    pub outcome: String,
    pub error_type: Option<String>,
    pub error_code: Option<String>,
    pub latency_ms: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewWebhookEvent {
    /// Identifies one delivery so Plaid's retries and duplicates are recorded once (e.g. SHA-256 of the body).
    pub dedupe_key: String,
    pub item_id: Option<String>,
    pub webhook_type: String,
    pub webhook_code: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: String,
    /// False when this delivery had been recorded before.
    pub is_new: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown job state {other:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    /// Jobs with the same (kind, coalesce_key) coalesce while queued; `None` never coalesces.
    pub coalesce_key: Option<String>,
    pub user_id: Option<String>,
    /// Plaid's item_id, when the job concerns one Item.
    pub item_id: Option<String>,
    /// JSON text.
    pub payload: String,
    pub run_after: DateTime<Utc>,
    pub max_attempts: i64,
}

impl NewJob {
    /// A job to run now, coalescing per (kind, item).
    pub fn for_item(kind: &str, item_id: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            coalesce_key: Some(item_id.to_owned()),
            user_id: None,
            item_id: Some(item_id.to_owned()),
            payload: "{}".to_owned(),
            run_after: Utc::now(),
            max_attempts: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: String,
    /// True when an identical queued job existed and this request joined it.
    pub coalesced: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub coalesce_key: Option<String>,
    pub user_id: Option<String>,
    pub item_id: Option<String>,
    pub payload: String,
    pub result: Option<String>,
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
