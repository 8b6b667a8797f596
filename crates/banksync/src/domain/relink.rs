//! Relinking: an Item linked to replace an older one of the same user and institution, and the merge that folds
//! the old Item's history and the user's edits into the new one (`relink.rs` decides what matches,
//! `store::relink` applies it in one database transaction). The report says what the merge did, so nothing it
//! could not place is lost silently: it is stored with the new Item and shown by `GET /api/items/{id}`.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::{AccountId, ItemRef, PlaidItemId, TransactionId, UserId};

/// What a merge did (or why it did nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MergeReport {
    /// Plaid's item_id of the replaced Item.
    #[schema(value_type = String)]
    pub replaced_item_id: PlaidItemId,
    pub outcome: MergeOutcome,
    pub merged_at: DateTime<Utc>,
    /// Old accounts and the new accounts they became.
    pub accounts_matched: Vec<AccountMatch>,
    /// Old accounts with no counterpart in the new Item: moved over as removed (closed) accounts, with all their
    /// transactions, so their history stays.
    #[schema(value_type = Vec<String>)]
    pub accounts_kept: Vec<AccountId>,
    /// Old transactions paired with a new one (same account, date, amount and name).
    pub transactions_matched: u64,
    /// New transactions that received the user's note and/or category from their old counterpart.
    pub notes_carried: u64,
    /// Old transactions older than the new Item's history of their account (or of a kept account): moved over.
    pub kept_old: u64,
    /// Old transactions inside the new Item's history without a counterpart there (Plaid's new data is the
    /// truth for those days); they went with the old Item, their edits are listed in `edits_not_carried`.
    pub dropped_old: u64,
    /// Matches refused rather than guessed.
    pub ambiguous: Vec<Ambiguity>,
    /// The user's notes and categories the merge could not place on a new transaction, kept here.
    pub edits_not_carried: Vec<UncarriedEdit>,
    /// `/item/remove` of the old Item at Plaid succeeded. False when it failed (logged; the merge stands) or was
    /// not tried yet.
    pub removed_at_plaid: bool,
    /// Plaid's error code when `/item/remove` failed (a revoked Item answers one; nothing to do then).
    pub plaid_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeOutcome {
    /// The old Item's data is merged and the old Item deleted.
    Merged,
    /// The old Item was already gone (removed by the user) when the merge ran: nothing to merge.
    ReplacedItemGone,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AccountMatch {
    #[schema(value_type = String)]
    pub old_account_id: AccountId,
    #[schema(value_type = String)]
    pub new_account_id: AccountId,
    pub matched_by: AccountMatchedBy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountMatchedBy {
    /// Plaid's `persistent_account_id`, the same across Items.
    PersistentAccountId,
    /// Same mask, type and subtype (the institution is the same by construction).
    MaskAndSubtype,
}

/// A match the merge refused to guess.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ambiguity {
    /// The old account concerned.
    #[schema(value_type = String)]
    pub account_id: AccountId,
    /// For transactions: the shared date, amount (exact decimal text) and name.
    pub date: Option<NaiveDate>,
    pub amount: Option<String>,
    pub name: Option<String>,
    /// How many old and new candidates share the key.
    pub old_count: u64,
    pub new_count: u64,
    pub reason: String,
}

/// A note or category of an old transaction that is not on any new transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UncarriedEdit {
    #[schema(value_type = String)]
    pub transaction_id: TransactionId,
    #[schema(value_type = String)]
    pub account_id: AccountId,
    pub date: NaiveDate,
    pub amount: String,
    pub name: String,
    pub user_note: Option<String>,
    pub user_category: Option<String>,
    pub reason: String,
}

/// The rows a merge plans from: both Items' accounts and visible transactions, with what guards the plan
/// (nothing may change between reading them and applying the plan).
#[derive(Debug, Clone)]
pub struct RelinkSnapshot {
    pub old_accounts: Vec<RelinkAccount>,
    pub new_accounts: Vec<RelinkAccount>,
    pub old_transactions: Vec<RelinkTransaction>,
    pub new_transactions: Vec<RelinkTransaction>,
    pub guard: RelinkGuard,
}

#[derive(Debug, Clone)]
pub struct RelinkAccount {
    pub account_id: AccountId,
    pub persistent_account_id: Option<String>,
    pub mask: Option<String>,
    pub account_type: String,
    pub subtype: Option<String>,
    pub removed: bool,
}

/// What matching needs of a transaction.
#[derive(Debug, Clone)]
pub struct RelinkTransaction {
    pub transaction_id: TransactionId,
    pub account_id: AccountId,
    pub date: NaiveDate,
    pub datetime: DateTime<Utc>,
    /// Exact decimal text, normalized (`12.3` and `12.30` are one amount).
    pub amount: String,
    pub name: String,
    pub user_note: Option<String>,
    pub user_category: Option<String>,
}

/// The state a plan was made from: both Items' cursors and a fingerprint of each one's transactions (row count
/// and latest `updated_at`, which every sync commit and every user edit moves). The merge applies only if all
/// still hold, so it never acts on rows it did not see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelinkGuard {
    pub new: ItemFingerprint,
    pub old: ItemFingerprint,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFingerprint {
    pub cursor: Option<String>,
    pub rows: i64,
    pub last_update: Option<String>,
}

/// Everything the store does in the merge's one database transaction.
#[derive(Debug, Clone)]
pub struct RelinkPlan {
    pub user_id: UserId,
    pub new_item: ItemRef,
    pub old_item: ItemRef,
    pub guard: RelinkGuard,
    /// Matched accounts; old transactions dated before `keep_before` (all of them when `None`: the new account
    /// has no history) move to the new account.
    pub account_moves: Vec<AccountMove>,
    /// Unmatched old accounts: moved to the new Item as removed, with all their transactions.
    pub kept_accounts: Vec<AccountId>,
    /// Notes and categories to copy from an old transaction to its new counterpart (only values the new one lacks).
    pub carries: Vec<Carry>,
    /// The report to store with the new Item (its counts are the plan's; the guard makes them exact).
    pub report: MergeReport,
}

#[derive(Debug, Clone)]
pub struct AccountMove {
    pub old_account_id: AccountId,
    pub new_account_id: AccountId,
    pub keep_before: Option<NaiveDate>,
}

#[derive(Debug, Clone)]
pub struct Carry {
    pub new: TransactionId,
    pub user_note: Option<String>,
    pub user_category: Option<String>,
}

/// What applying a plan changed, as the database counted it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelinkApplied {
    /// Old transactions moved to the new Item (kept history, including kept accounts' transactions).
    pub moved: u64,
    /// New transactions that received a note or category.
    pub carried: u64,
}
