//! Transactions as banksync stores and serves them, the sync pages that change them, and the filter that lists them.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

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
