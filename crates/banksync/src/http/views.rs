//! Response bodies. Each is an explicit struct built from store rows, so a field added to a row (an Item's sealed
//! access token, a transaction's raw Plaid JSON) never reaches a client by accident.
//!
//! Money is an exact decimal **string** ("12.34", "-5.00"): JSON numbers are parsed as binary floats by most
//! clients, and a string keeps every digit.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::domain::{Account, Item, SyncRun, Transaction, TransactionFields};

fn money(value: Option<Decimal>) -> Option<String> {
    value.map(|v| v.to_string())
}

#[derive(Debug, Serialize)]
pub struct HealthView {
    /// good | login_required | pending_disconnect | pending_expiration | revoked | error
    pub status: &'static str,
    pub error_code: Option<String>,
    /// A sentence for the user: Plaid's display_message when it sent one, else an actionable sentence.
    pub message: Option<String>,
    /// Plaid's own display_message, verbatim.
    pub display_message: Option<String>,
    pub disconnect_at: Option<DateTime<Utc>>,
    pub consent_expires_at: Option<DateTime<Utc>>,
    /// True when only the user can fix it, through Link in update mode ("Reconnect").
    pub needs_reconnect: bool,
}

impl HealthView {
    pub fn of(item: &Item) -> Self {
        let plaid_error = item.error_code.as_ref().map(|code| plaid::PlaidError {
            error_code: code.clone(),
            display_message: item.display_message.clone(),
            ..plaid::PlaidError::default()
        });
        let message = match item.status {
            crate::domain::ItemStatus::Good => None,
            _ => Some(plaid_error.as_ref().map_or_else(
                || item.display_message.clone().unwrap_or_else(|| status_sentence(item.status).to_owned()),
                plaid::PlaidError::user_message,
            )),
        };
        HealthView {
            status: item.status.as_str(),
            error_code: item.error_code.clone(),
            message,
            display_message: item.display_message.clone(),
            disconnect_at: item.disconnect_at,
            consent_expires_at: item.consent_expires_at,
            needs_reconnect: matches!(
                item.status,
                crate::domain::ItemStatus::LoginRequired
                    | crate::domain::ItemStatus::PendingDisconnect
                    | crate::domain::ItemStatus::PendingExpiration
            ) || plaid_error.as_ref().is_some_and(plaid::PlaidError::requires_user_action),
        }
    }
}

fn status_sentence(status: crate::domain::ItemStatus) -> &'static str {
    use crate::domain::ItemStatus::*;
    match status {
        Good => "Connected.",
        LoginRequired => "Your bank needs you to sign in again. Reconnect this bank to resume updates.",
        PendingDisconnect | PendingExpiration => {
            "This bank connection will stop working soon. Reconnect the bank to keep it working."
        }
        Revoked => "Access to this bank was revoked. Link the bank again if you want to keep syncing it.",
        Error => "There is a problem with this bank connection. Try syncing again later.",
    }
}

#[derive(Debug, Serialize)]
pub struct ItemView {
    pub item_id: String,
    pub institution_id: Option<String>,
    pub institution_name: Option<String>,
    pub health: HealthView,
    pub new_accounts_available: bool,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_successful_sync_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<Vec<AccountView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recent_sync_runs: Option<Vec<SyncRunView>>,
}

impl ItemView {
    pub fn of(item: &Item) -> Self {
        ItemView {
            item_id: item.item_id.clone(),
            institution_id: item.institution_id.clone(),
            institution_name: item.institution_name.clone(),
            health: HealthView::of(item),
            new_accounts_available: item.new_accounts_available,
            last_sync_at: item.last_sync_at,
            last_successful_sync_at: item.last_successful_sync_at,
            created_at: item.created_at,
            accounts: None,
            recent_sync_runs: None,
        }
    }

    pub fn with_accounts(mut self, accounts: &[Account]) -> Self {
        self.accounts = Some(accounts.iter().map(AccountView::of).collect());
        self
    }
}

#[derive(Debug, Serialize)]
pub struct BalancesView {
    pub available: Option<String>,
    pub current: Option<String>,
    pub limit: Option<String>,
    pub currency: Option<String>,
    pub currency_is_official: bool,
    /// When the bank reported these balances.
    pub as_of: Option<DateTime<Utc>>,
    /// `live` (asked the bank just now through /accounts/balance/get) or `cached` (Plaid's stored data).
    pub source: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AccountView {
    pub account_id: String,
    pub item_id: String,
    pub name: String,
    pub official_name: Option<String>,
    pub mask: Option<String>,
    #[serde(rename = "type")]
    pub account_type: String,
    pub subtype: Option<String>,
    pub balances: BalancesView,
    pub removed: bool,
}

impl AccountView {
    pub fn of(a: &Account) -> Self {
        AccountView {
            account_id: a.account_id.clone(),
            item_id: a.item_id.clone(),
            name: a.name.clone(),
            official_name: a.official_name.clone(),
            mask: a.mask.clone(),
            account_type: a.account_type.clone(),
            subtype: a.subtype.clone(),
            balances: BalancesView {
                available: money(a.balances.available),
                current: money(a.balances.current),
                limit: money(a.balances.limit),
                currency: a.balances.currency.clone(),
                currency_is_official: a.balances.currency_is_official,
                as_of: a.balance_as_of,
                source: a.balance_source.as_str(),
            },
            removed: a.removed,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SyncRunView {
    pub run_id: String,
    pub triggered_by: String,
    pub status: &'static str,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub added: i64,
    pub modified: i64,
    pub removed: i64,
    pub pages: i64,
    pub restarts: i64,
    pub error_code: Option<String>,
}

impl SyncRunView {
    pub fn of(run: &SyncRun) -> Self {
        SyncRunView {
            run_id: run.id.clone(),
            triggered_by: run.triggered_by.clone(),
            status: run.status.as_str(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            added: run.added,
            modified: run.modified,
            removed: run.removed,
            pages: run.pages,
            restarts: run.restarts,
            error_code: run.error_code.clone(),
        }
    }
}

/// A transaction in the API: Plaid's fields under their API names (see `domain::transaction_fields!`), plus the
/// user's own fields.
#[derive(Debug, Serialize)]
pub struct TransactionView {
    pub transaction_id: String,
    pub item_id: String,
    #[serde(flatten)]
    pub fields: TransactionFields,
    pub display_name: String,
    pub user_note: Option<String>,
    pub user_category: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl TransactionView {
    pub fn of(t: &Transaction) -> Self {
        TransactionView {
            transaction_id: t.transaction_id.clone(),
            item_id: t.item_id.clone(),
            fields: t.fields.clone(),
            display_name: t.display_name.clone(),
            user_note: t.user_note.clone(),
            user_category: t.user_category.clone(),
            updated_at: t.updated_at,
        }
    }
}
