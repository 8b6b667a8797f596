//! Transactions as banksync stores and serves them, the sync pages that change them, and the filter that lists them.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::{AccountId, PlaidItemId, TransactionId};

/// Declares, once, the fields of a transaction that banksync takes from Plaid (normalized by `normalize.rs`).
/// `$callback!` receives them as `#[attributes] name: Type,` entries. [`TransactionFields`] is defined from this
/// list below (its serde attributes give the API's names and forms), and the store derives its columns, binds and
/// row type from the same list (`store::transactions`). Adding a field means adding one entry here, plus a
/// migration of both schemas.
macro_rules! transaction_fields {
    ($callback:ident) => {
        $callback! {
            #[schema(value_type = String)]
            account_id: crate::domain::AccountId,
            /// Plaid's sign: positive = money out of the account. Exact decimal text in the API.
            #[serde(serialize_with = "crate::domain::money_text")]
            #[schema(value_type = String, example = "-12.34")]
            amount: Decimal,
            currency: Option<String>,
            #[serde(skip)]
            currency_is_official: bool,
            /// `datetime`, else `authorized_datetime`, else midnight UTC of `authorized_date`/`date`.
            datetime: DateTime<Utc>,
            /// True when `datetime` was made from a date.
            time_unknown: bool,
            date: NaiveDate,
            authorized_date: Option<NaiveDate>,
            name: String,
            merchant_name: Option<String>,
            logo_url: Option<String>,
            website: Option<String>,
            #[serde(rename = "category")]
            pfc_primary: Option<String>,
            #[serde(rename = "category_detailed")]
            pfc_detailed: Option<String>,
            #[serde(rename = "category_confidence")]
            pfc_confidence: Option<String>,
            #[serde(rename = "category_icon_url")]
            pfc_icon_url: Option<String>,
            payment_channel: Option<String>,
            pending: bool,
            #[schema(value_type = Option<String>)]
            pending_transaction_id: Option<crate::domain::TransactionId>,
            /// JSON text (an array of Plaid counterparties); a JSON value in the API.
            #[serde(serialize_with = "crate::domain::json_text")]
            #[schema(value_type = Option<Vec<Object>>)]
            counterparties: Option<String>,
            /// JSON text (Plaid's location object); a JSON value in the API.
            #[serde(serialize_with = "crate::domain::json_text")]
            #[schema(value_type = Option<Object>)]
            location: Option<String>,
            account_owner: Option<String>,
        }
    };
}
pub(crate) use transaction_fields;

macro_rules! define_transaction_fields {
    ($($(#[$attr:meta])* $name:ident: $ty:ty,)*) => {
        /// What Plaid says about a transaction, normalized (see ARCHITECTURE.md, "Normalization rules").
        #[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
        pub struct TransactionFields {
            $($(#[$attr])* pub $name: $ty,)*
        }
    };
}
transaction_fields!(define_transaction_fields);

/// Serializes money as exact decimal text (`"12.34"`), never a float.
pub(crate) fn money_text<S: serde::Serializer>(amount: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(amount)
}

/// Serializes stored JSON text as the JSON value it holds (`null` when absent or unreadable).
pub(crate) fn json_text<S: serde::Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    let value = text.as_deref().and_then(|t| serde_json::from_str::<&serde_json::value::RawValue>(t).ok());
    value.serialize(s)
}

/// A transaction as the sync engine normalized it, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTransaction {
    pub transaction_id: TransactionId,
    pub fields: TransactionFields,
    /// Plaid's transaction object as received (JSON text), for re-normalization without calling Plaid.
    pub raw: String,
}

impl NewTransaction {
    /// `merchant_name`, else `name`.
    pub fn display_name(&self) -> &str {
        let f = &self.fields;
        f.merchant_name.as_deref().filter(|m| !m.trim().is_empty()).unwrap_or(&f.name)
    }
}

/// A stored transaction with the user's own fields.
#[derive(Debug, Clone)]
pub struct Transaction {
    pub transaction_id: TransactionId,
    /// Plaid's item_id.
    pub item_id: PlaidItemId,
    pub fields: TransactionFields,
    pub display_name: String,
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
    pub removed: Vec<TransactionId>,
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

impl ApplyStats {
    /// Rows written, whatever the change (what the statistics refresh counts).
    pub fn rows_changed(&self) -> u64 {
        self.upserted + self.removed + self.pending_replaced
    }
}

/// Filters for `list_transactions`. `start`/`end` are inclusive and apply to the transaction's `date`; the order is
/// `date`, then `datetime`, then `transaction_id`, all descending, which the cursor continues.
#[derive(Debug, Clone, Default)]
pub struct TransactionFilter {
    pub account_id: Option<AccountId>,
    /// Plaid's item_id.
    pub item_id: Option<PlaidItemId>,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    /// Matches the user's category, else the PFC primary category; or the PFC detailed category.
    pub category: Option<String>,
    /// Exactly the effective category: the user's, else Plaid's primary, else `UNCATEGORIZED` (the spending
    /// charts' drill-down).
    pub effective_category: Option<String>,
    /// Exactly Plaid's detailed category.
    pub detailed_category: Option<String>,
    pub pending: Option<bool>,
    /// Full-text search over the name, merchant name and the user's note: every word, the last one as a prefix,
    /// case-insensitive (see `store/search.rs`).
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
