//! Response bodies. Each is an explicit struct built from store rows, so a field added to a row (an Item's sealed
//! access token, a transaction's raw Plaid JSON) never reaches a client by accident.
//!
//! Money is an exact decimal **string** ("12.34", "-5.00"): JSON numbers are parsed as binary floats by most
//! clients, and a string keeps every digit.
//!
//! Each view derives its OpenAPI schema (`ToSchema`); the `…Schema` types at the end only describe answers that are
//! serialized from types outside `http` (the balance refresh job).

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{
    Account, AccountId, BalanceSource, Item, ItemStatus, MergeReport, PlaidItemId, SyncPhase, SyncRun, SyncRunStatus,
    SyncState, Transaction, TransactionFields, TransactionId,
};

fn money(value: Option<Decimal>) -> Option<String> {
    value.map(|v| v.to_string())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// good | login_required | pending_disconnect | pending_expiration | revoked | error
    #[schema(value_type = ItemStatus)]
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

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    #[schema(value_type = String)]
    pub item_id: PlaidItemId,
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
    /// The Item this one was linked to replace (Plaid's item_id), if any.
    #[schema(value_type = Option<String>)]
    pub replaces_item_id: Option<PlaidItemId>,
    /// What merging the replaced Item did; null while the merge has not run (or nothing is replaced).
    pub relink_report: Option<MergeReport>,
    pub sync: SyncStateView,
}

/// Where an Item's data stands and when it may sync next.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct SyncStateView {
    /// Plaid's data phase as of the last sync: `not_ready`, `initial_update_complete` (the last ~30 days are in, the
    /// rest of the history is coming), `historical_update_complete`, `unknown`; null before the first sync.
    pub phase: Option<SyncPhase>,
    /// Since when banksync has been waiting for Plaid's data (it keeps looking on its own); null when complete.
    pub waiting_since: Option<DateTime<Utc>>,
    /// The wait has lasted too long: what to tell the user.
    pub stalled_message: Option<String>,
    /// When Plaid last heard from the bank (its `last_successful_update`), beside banksync's own last sync.
    pub institution_last_update: Option<DateTime<Utc>>,
    /// "Sync now" is refused (429 `sync_cooldown`) until then.
    pub manual_sync_available_at: Option<DateTime<Utc>>,
    /// Plaid rate-limited the Item: no sync before then.
    pub held_until: Option<DateTime<Utc>>,
}

impl SyncStateView {
    pub fn of(state: &SyncState) -> Self {
        let now = Utc::now();
        let future = |t: Option<DateTime<Utc>>| t.filter(|t| *t > now);
        SyncStateView {
            phase: state.phase,
            waiting_since: state.waiting_since,
            stalled_message: state.stalled_message.clone(),
            institution_last_update: state.institution_updated_at,
            manual_sync_available_at: future(state.cooldown_until),
            held_until: future(state.hold_until),
        }
    }
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
            replaces_item_id: item.replaces_item_id.clone(),
            relink_report: item.relink_report.clone(),
            sync: SyncStateView::default(),
        }
    }

    pub fn with_sync_state(mut self, state: Option<&SyncState>) -> Self {
        self.sync = state.map(SyncStateView::of).unwrap_or_default();
        self
    }

    pub fn with_accounts(mut self, accounts: &[Account]) -> Self {
        self.accounts = Some(accounts.iter().map(AccountView::of).collect());
        self
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BalancesView {
    /// Decimal string.
    #[schema(example = "1234.56")]
    pub available: Option<String>,
    /// Decimal string.
    #[schema(example = "1300.00")]
    pub current: Option<String>,
    /// Decimal string (credit limit).
    #[schema(example = "5000")]
    pub limit: Option<String>,
    pub currency: Option<String>,
    pub currency_is_official: bool,
    /// When the bank reported these balances.
    pub as_of: Option<DateTime<Utc>>,
    /// `live` (asked the bank just now through /accounts/balance/get) or `cached` (Plaid's stored data).
    #[schema(value_type = BalanceSource)]
    pub source: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountView {
    #[schema(value_type = String)]
    pub account_id: AccountId,
    #[schema(value_type = String)]
    pub item_id: PlaidItemId,
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

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncRunView {
    pub run_id: String,
    /// link | manual | webhook | schedule
    pub triggered_by: String,
    #[schema(value_type = SyncRunStatus)]
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
#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionView {
    #[schema(value_type = String)]
    pub transaction_id: TransactionId,
    #[schema(value_type = String)]
    pub item_id: PlaidItemId,
    #[serde(flatten)]
    pub fields: TransactionFields,
    pub display_name: String,
    pub user_note: Option<String>,
    pub user_category: Option<String>,
    pub updated_at: DateTime<Utc>,
    /// The merchant's logo through banksync (`/api/logos/{id}`), when the logo proxy is on and Plaid sent a
    /// `logo_url`; else null (show the category icon).
    pub logo_path: Option<String>,
}

impl TransactionView {
    /// Sets `logo_path` from `logo_url` when logos are proxied (`BANKSYNC_MERCHANT_LOGOS=proxy`).
    pub fn with_logo(mut self, logos: crate::config::MerchantLogos) -> Self {
        self.logo_path = match logos {
            crate::config::MerchantLogos::Proxy => self.fields.logo_url.as_deref().map(crate::logos::logo_path),
            crate::config::MerchantLogos::Off => None,
        };
        self
    }

    pub fn of(t: Transaction) -> Self {
        TransactionView {
            transaction_id: t.transaction_id,
            item_id: t.item_id,
            fields: t.fields,
            display_name: t.display_name,
            user_note: t.user_note,
            user_category: t.user_category,
            updated_at: t.updated_at,
            logo_path: None,
        }
    }
}

// Schema of `crate::balances::BalanceJob`, which `GET /api/balances/refresh/{job_id}` serializes as it is. It only
// describes it (the type lives with the refresher); the test below keeps the two in step.
/// A live balance refresh: its state and each Item's outcome.
#[derive(ToSchema)]
#[schema(as = BalanceJob)]
#[allow(dead_code)]
pub struct BalanceJobView {
    job_id: String,
    state: BalanceJobStateSchema,
    started_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
    items: Vec<ItemBalanceOutcomeSchema>,
}

/// `running` until every Item has an outcome, then `done`.
#[derive(Serialize, ToSchema)]
#[schema(as = BalanceJobState)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum BalanceJobStateSchema {
    Running,
    Done,
}

#[derive(ToSchema)]
#[schema(as = ItemBalanceOutcome)]
#[allow(dead_code)]
struct ItemBalanceOutcomeSchema {
    /// Plaid's item_id.
    item_id: String,
    institution_name: Option<String>,
    state: ItemRefreshStateSchema,
    accounts_updated: u64,
    /// Every account already had a live balance younger than `BANKSYNC_BALANCE_MAX_AGE`: Plaid was not called.
    fresh: bool,
    error: Option<UserFacingErrorSchema>,
    finished_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ItemRefreshState)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum ItemRefreshStateSchema {
    Pending,
    Ok,
    Error,
}

/// An error safe to show to the user.
#[derive(ToSchema)]
#[schema(as = UserFacingError)]
#[allow(dead_code)]
struct UserFacingErrorSchema {
    /// Lower-case Plaid error code (e.g. `institution_down`), or `timeout` / `plaid_unavailable` / `internal` /
    /// `interrupted`.
    code: String,
    message: String,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;
    use utoipa::PartialSchema;

    use super::*;
    use crate::balances::{BalanceJob, ItemBalanceOutcome, ItemRefreshState, RefreshState, UserFacingError};

    fn properties<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["properties"].as_object().expect("an object schema").keys().cloned().collect()
    }

    fn keys(value: &Value) -> BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    }

    fn variants<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["enum"].as_array().expect("a string enum").iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    fn names<T: Serialize>(values: &[T]) -> BTreeSet<String> {
        values.iter().map(|v| serde_json::to_value(v).unwrap().as_str().unwrap().to_owned()).collect()
    }

    /// The balance job's schema describes exactly what the route serializes.
    #[test]
    fn the_balance_job_schema_matches_the_serialized_job() {
        let job = BalanceJob {
            job_id: "j".into(),
            state: RefreshState::Done,
            started_at: Utc::now(),
            finished_at: Some(Utc::now()),
            items: vec![ItemBalanceOutcome {
                item_id: "i".into(),
                institution_name: None,
                state: ItemRefreshState::Error,
                accounts_updated: 0,
                fresh: false,
                error: Some(UserFacingError { code: "timeout".into(), message: "m".into() }),
                finished_at: None,
            }],
        };
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(keys(&json), properties::<BalanceJobView>());
        assert_eq!(keys(&json["items"][0]), properties::<ItemBalanceOutcomeSchema>());
        assert_eq!(keys(&json["items"][0]["error"]), properties::<UserFacingErrorSchema>());
        assert_eq!(names(&[RefreshState::Running, RefreshState::Done]), variants::<BalanceJobStateSchema>());
        assert_eq!(
            names(&[ItemRefreshState::Pending, ItemRefreshState::Ok, ItemRefreshState::Error]),
            variants::<ItemRefreshStateSchema>()
        );
    }

    /// Views carry status strings from `as_str()`; their schemas name the domain enums, whose serde names match.
    #[test]
    fn status_strings_are_the_enum_schemas_values() {
        use crate::domain::{BalanceSource as B, ItemStatus as I, SyncRunStatus as S};
        let items = [I::Good, I::LoginRequired, I::PendingDisconnect, I::PendingExpiration, I::Revoked, I::Error];
        assert_eq!(items.iter().map(|s| s.as_str().to_owned()).collect::<BTreeSet<_>>(), variants::<I>());
        assert_eq!(names(&items), variants::<I>());
        let runs = [S::Running, S::Succeeded, S::Failed];
        assert_eq!(runs.iter().map(|s| s.as_str().to_owned()).collect::<BTreeSet<_>>(), variants::<S>());
        let sources = [B::Live, B::Cached];
        assert_eq!(sources.iter().map(|s| s.as_str().to_owned()).collect::<BTreeSet<_>>(), variants::<B>());
    }
}
