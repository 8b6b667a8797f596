//! `GET /api/overview` and `POST /api/overview/seen`: the page's first view — net worth per currency, balances by
//! account type, banks that need attention with their one-click fix, and what changed since the last visit.
//!
//! Money is summed per currency with exact decimals and never converted. Balances are each account's `current`
//! balance in Plaid's sign convention for its type: for `credit` and `loan` accounts it is the amount owed (a
//! liability, subtracted from net worth); for every other type (`depository`, `investment`, `other`, and types Plaid
//! adds later) it is an asset. An account without a currency or a current balance is counted but adds nothing.
//! "Since" is the user's previous visit, kept server-side (`overview_visits`), so it follows the user across
//! browsers; the page marks a visit with `POST /api/overview/seen` once it has shown the changes.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, AppJson, ErrorBody};
use super::views::HealthView;
use crate::auth::CurrentUser;
use crate::domain::{Account, AccountFilter, Item, ItemRef, ItemStatus, SyncState};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(overview)).routes(routes!(seen))
}

/// Account types whose balance is owed (Plaid: "credit" and "loan" balances are the amount owed).
const LIABILITY_TYPES: &[&str] = &["credit", "loan"];
/// The order `by_type` lists Plaid's types in; others follow alphabetically.
const TYPE_ORDER: &[&str] = &["depository", "credit", "loan", "investment", "other"];

#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    /// Per currency (sorted by code); no conversion between currencies.
    pub net_worth: Vec<NetWorth>,
    /// Per currency and account type.
    pub by_type: Vec<TypeTotal>,
    /// Banks that need something done, with the fix.
    pub needs_attention: Vec<Attention>,
    /// The user's previous visit (`POST /api/overview/seen`); null before the first one.
    pub since: Option<DateTime<Utc>>,
    /// What happened after `since` (everything so far when it is null).
    pub changes: Changes,
}

#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct NetWorth {
    pub currency: String,
    /// Decimal string: the sum of asset accounts' current balances.
    #[schema(example = "10500.25")]
    pub assets: String,
    /// Decimal string: the sum of credit and loan accounts' current balances (what is owed).
    #[schema(example = "1200.00")]
    pub liabilities: String,
    /// Decimal string: assets − liabilities.
    #[schema(example = "9300.25")]
    pub net: String,
}

#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct TypeTotal {
    pub currency: String,
    /// Plaid's account type: depository, credit, loan, investment, other.
    #[serde(rename = "type")]
    pub account_type: String,
    /// Decimal string: the sum of the current balances (owed amounts for credit and loan).
    pub total: String,
    /// Accounts of this type and currency.
    pub accounts: u32,
}

#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct Attention {
    pub item_id: String,
    pub institution_name: Option<String>,
    /// The Item's health status (good | login_required | pending_disconnect | pending_expiration | revoked | error).
    pub health: String,
    /// A sentence for the user.
    pub message: String,
    /// What fixes it: `reconnect` (Link in update mode; for a revoked Item, link the bank again), `wait` (the bank
    /// or Plaid is busy; banksync retries on its own), `sync` (try "sync now").
    pub fix: Fix,
}

#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Fix {
    Reconnect,
    Wait,
    Sync,
}

#[derive(Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct Changes {
    /// Transactions banksync stored since then.
    pub new_transactions: i64,
    /// Banks synced successfully since then.
    pub items_synced: i64,
}

/// The overview of the caller's money and banks.
#[utoipa::path(
    get,
    path = "/api/overview",
    tag = "overview",
    operation_id = "get_overview",
    responses(
        (status = 200, description = "Net worth, balances by type, banks needing attention, changes", body = Overview),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn overview(State(state): State<AppState>, user: CurrentUser) -> ApiResult<AppJson<Overview>> {
    let accounts = state.store.list_accounts(user.id(), &AccountFilter::default()).await?;
    let items = state.store.list_items(user.id()).await?;
    let sync_states = state.store.sync_states_of_user(user.id()).await?;
    let since = state.store.overview_seen_at(user.id()).await?;
    let changes = state.store.changes_since(user.id(), since).await?;
    let (net_worth, by_type) = balances(&accounts);
    Ok(AppJson(Overview {
        net_worth,
        by_type,
        needs_attention: needs_attention(&items, &sync_states, Utc::now()),
        since,
        changes: Changes { new_transactions: changes.new_transactions, items_synced: changes.items_synced },
    }))
}

/// Marks now as the caller's last overview visit: the next overview counts changes from here.
#[utoipa::path(
    post,
    path = "/api/overview/seen",
    tag = "overview",
    operation_id = "overview_seen",
    responses(
        (status = 204, description = "Recorded"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn seen(State(state): State<AppState>, user: CurrentUser) -> ApiResult<StatusCode> {
    state.store.mark_overview_seen(user.id(), Utc::now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An account type's place in Plaid's order, then its name (unknown types last, alphabetically).
type TypeRank<'a> = (usize, &'a str);

fn type_rank(account_type: &str) -> TypeRank<'_> {
    (TYPE_ORDER.iter().position(|t| *t == account_type).unwrap_or(TYPE_ORDER.len()), account_type)
}

/// Net worth per currency and totals per (currency, type).
pub fn balances(accounts: &[Account]) -> (Vec<NetWorth>, Vec<TypeTotal>) {
    let mut worth: BTreeMap<&str, (Decimal, Decimal)> = BTreeMap::new();
    // (currency, type) → (total, number of accounts)
    let mut types: BTreeMap<(&str, TypeRank<'_>), (Decimal, u32)> = BTreeMap::new();
    for a in accounts.iter().filter(|a| !a.removed) {
        let Some(currency) = a.balances.currency.as_deref() else { continue };
        let current = a.balances.current.unwrap_or_default();
        let entry = types.entry((currency, type_rank(&a.account_type))).or_default();
        entry.0 += current;
        entry.1 += 1;
        let (assets, liabilities) = worth.entry(currency).or_default();
        if LIABILITY_TYPES.contains(&a.account_type.as_str()) {
            *liabilities += current;
        } else {
            *assets += current;
        }
    }
    let net_worth = worth
        .into_iter()
        .map(|(currency, (assets, liabilities))| NetWorth {
            currency: currency.to_owned(),
            assets: assets.to_string(),
            liabilities: liabilities.to_string(),
            net: (assets - liabilities).to_string(),
        })
        .collect();
    let by_type = types
        .into_iter()
        .map(|((currency, (_, account_type)), (total, accounts))| TypeTotal {
            currency: currency.to_owned(),
            account_type: account_type.to_owned(),
            total: total.to_string(),
            accounts,
        })
        .collect();
    (net_worth, by_type)
}

/// Plaid error codes that clear up by themselves: the bank or Plaid is busy or down.
const TRANSIENT_CODES: &[&str] = &[
    "INSTITUTION_DOWN",
    "INSTITUTION_NOT_RESPONDING",
    "INSTITUTION_NOT_AVAILABLE",
    "INSTITUTION_NO_LONGER_SUPPORTED",
    "RATE_LIMIT_EXCEEDED",
    "PRODUCT_NOT_READY",
    "INTERNAL_SERVER_ERROR",
    "PLANNED_MAINTENANCE",
];

/// The Items that need something done, in the order `items` lists them.
pub fn needs_attention(
    items: &[Item],
    sync_states: &std::collections::HashMap<ItemRef, SyncState>,
    now: DateTime<Utc>,
) -> Vec<Attention> {
    items
        .iter()
        .filter_map(|item| {
            let health = HealthView::of(item);
            let state = sync_states.get(&item.id);
            let (fix, message) = if health.needs_reconnect || item.status == ItemStatus::Revoked {
                (Fix::Reconnect, health.message.clone())
            } else if item.status == ItemStatus::Error {
                let transient = item.error_code.as_deref().is_some_and(|c| TRANSIENT_CODES.contains(&c));
                (if transient { Fix::Wait } else { Fix::Sync }, health.message.clone())
            } else if let Some(stalled) = state.and_then(|s| s.stalled_message.clone()) {
                (Fix::Wait, Some(stalled))
            } else if let Some(until) = state.and_then(|s| s.hold_until).filter(|t| *t > now) {
                let message = format!(
                    "Plaid asked banksync to slow down for this bank; it syncs again on its own after {}.",
                    until.format("%H:%M UTC")
                );
                (Fix::Wait, Some(message))
            } else {
                return None;
            };
            Some(Attention {
                item_id: item.item_id.as_str().to_owned(),
                institution_name: item.institution_name.clone(),
                health: item.status.as_str().to_owned(),
                message: message.unwrap_or_else(|| "This bank connection needs attention.".to_owned()),
                fix,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::str::FromStr;

    use super::*;
    use crate::domain::{BalanceSource, Balances};

    fn account(kind: &str, current: Option<&str>, currency: Option<&str>) -> Account {
        Account {
            account_id: format!("acc-{kind}-{current:?}").into(),
            persistent_account_id: None,
            item_id: "item".into(),
            name: kind.into(),
            official_name: None,
            mask: None,
            account_type: kind.into(),
            subtype: None,
            balances: Balances {
                available: None,
                current: current.map(|c| Decimal::from_str(c).unwrap()),
                limit: None,
                currency: currency.map(str::to_owned),
                currency_is_official: true,
            },
            balance_as_of: None,
            balance_source: BalanceSource::Cached,
            removed: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn liabilities_are_subtracted_per_currency_with_exact_decimals() {
        let mut removed = account("depository", Some("1000000"), Some("USD"));
        removed.removed = true;
        let accounts = [
            account("depository", Some("0.10"), Some("USD")),
            account("depository", Some("0.20"), Some("USD")),
            account("credit", Some("410.55"), Some("USD")),
            account("loan", Some("10000"), Some("USD")),
            account("investment", Some("5000.05"), Some("USD")),
            account("depository", Some("100"), Some("EUR")),
            account("credit", None, Some("EUR")),
            account("depository", Some("7"), None),
            removed,
        ];
        let (worth, types) = balances(&accounts);
        assert_eq!(
            worth,
            vec![
                NetWorth { currency: "EUR".into(), assets: "100".into(), liabilities: "0".into(), net: "100".into() },
                NetWorth {
                    currency: "USD".into(),
                    assets: "5000.35".into(),
                    liabilities: "10410.55".into(),
                    net: "-5410.20".into()
                },
            ]
        );
        let t = |c: &str, k: &str, total: &str, n: u32| TypeTotal {
            currency: c.into(),
            account_type: k.into(),
            total: total.into(),
            accounts: n,
        };
        assert_eq!(
            types,
            vec![
                t("EUR", "depository", "100", 1),
                t("EUR", "credit", "0", 1),
                t("USD", "depository", "0.30", 2),
                t("USD", "credit", "410.55", 1),
                t("USD", "loan", "10000", 1),
                t("USD", "investment", "5000.05", 1),
            ]
        );
    }

    fn item(id: &str, status: ItemStatus, code: Option<&str>) -> Item {
        Item {
            id: ItemRef::new(format!("ref-{id}")),
            item_id: id.into(),
            user_id: "u".into(),
            institution_id: None,
            institution_name: Some(format!("Bank {id}")),
            access_token: crate::vault::Sealed { ciphertext: vec![], nonce: vec![], key_id: "k".into() },
            cursor: None,
            status,
            error_code: code.map(str::to_owned),
            error_message: None,
            display_message: None,
            consent_expires_at: None,
            disconnect_at: None,
            new_accounts_available: false,
            last_sync_at: None,
            last_successful_sync_at: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
            replaces_item_id: None,
            relink_report: None,
        }
    }

    #[test]
    fn each_broken_bank_gets_its_fix() {
        let items = [
            item("fine", ItemStatus::Good, None),
            item("login", ItemStatus::LoginRequired, Some("ITEM_LOGIN_REQUIRED")),
            item("down", ItemStatus::Error, Some("INSTITUTION_DOWN")),
            item("odd", ItemStatus::Error, Some("SOMETHING_ELSE")),
            item("gone", ItemStatus::Revoked, None),
            item("held", ItemStatus::Good, None),
            item("stalled", ItemStatus::Good, None),
        ];
        let now = Utc::now();
        let mut states = HashMap::new();
        states.insert(
            ItemRef::new("ref-held".to_owned()),
            SyncState { hold_until: Some(now + chrono::TimeDelta::minutes(1)), ..SyncState::default() },
        );
        states.insert(
            ItemRef::new("ref-stalled".to_owned()),
            SyncState { stalled_message: Some("Plaid has not sent data for 6 hours.".into()), ..SyncState::default() },
        );
        let got: Vec<(String, Fix)> =
            needs_attention(&items, &states, now).into_iter().map(|a| (a.item_id, a.fix)).collect();
        let want = [
            ("login", Fix::Reconnect),
            ("down", Fix::Wait),
            ("odd", Fix::Sync),
            ("gone", Fix::Reconnect),
            ("held", Fix::Wait),
            ("stalled", Fix::Wait),
        ];
        assert_eq!(got, want.iter().map(|(i, f)| ((*i).to_owned(), *f)).collect::<Vec<_>>());
        let all = needs_attention(&items, &states, now);
        assert!(all.iter().all(|a| !a.message.is_empty()), "every entry says what is wrong");
        assert_eq!(all[5].message, "Plaid has not sent data for 6 hours.");
    }
}
