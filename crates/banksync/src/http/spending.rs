//! `GET /api/spending/categories` and `GET /api/spending/cash-flow`: the web app's charts (spending by category per
//! month, income vs spending), per currency, from the store's summary (`store/spending.rs`; which transactions count
//! is in `domain::spending`). Drill down with `GET /api/transactions?effective_category=…&start=…&end=…`.

use std::collections::HashMap;

use axum::extract::{Query, State};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody};
use crate::auth::CurrentUser;
use crate::domain::{AccountId, CashFlow, CategorySpending, MAX_SPENDING_MONTHS, Month, SpendingScope};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(categories)).routes(routes!(cash_flow))
}

/// Spending per effective category and month, per currency: the sum of positive amounts of the transactions that
/// count (posted, not removed, not transfers between your own accounts or credit card payments). Categories with
/// no spending in the range are left out; the rest are sorted by total, descending.
#[utoipa::path(
    get,
    path = "/api/spending/categories",
    tag = "spending",
    operation_id = "spending_by_category",
    params(
        ("from" = Option<String>, Query, description = "First month, YYYY-MM (default: 11 months before `to`)"),
        ("to" = Option<String>, Query, description = "Last month, YYYY-MM, inclusive (default: this month, UTC)"),
        ("account_id" = Option<String>, Query, description = "Only this account"),
    ),
    responses(
        (status = 200, description = "Totals per category and month", body = CategorySpending),
        (status = 400, description = "`invalid_query`: a bad month, `from` after `to`, or more than 36 months", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn categories(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<CategorySpending>> {
    let scope = parse_scope(params, Month::of(chrono::Utc::now().date_naive()))?;
    let groups = state.store.spending_groups(user.id(), &scope).await?;
    Ok(AppJson(CategorySpending::from_groups(&scope, &groups)))
}

/// Income (minus the sum of negative amounts), spending (the sum of positive amounts) and net per month, per
/// currency, of the transactions that count. Every month of the range is listed, zeros included.
#[utoipa::path(
    get,
    path = "/api/spending/cash-flow",
    tag = "spending",
    operation_id = "cash_flow",
    params(
        ("from" = Option<String>, Query, description = "First month, YYYY-MM (default: 11 months before `to`)"),
        ("to" = Option<String>, Query, description = "Last month, YYYY-MM, inclusive (default: this month, UTC)"),
        ("account_id" = Option<String>, Query, description = "Only this account"),
    ),
    responses(
        (status = 200, description = "Income, spending and net per month", body = CashFlow),
        (status = 400, description = "`invalid_query`: a bad month, `from` after `to`, or more than 36 months", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn cash_flow(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<CashFlow>> {
    let scope = parse_scope(params, Month::of(chrono::Utc::now().date_naive()))?;
    let groups = state.store.spending_groups(user.id(), &scope).await?;
    Ok(AppJson(CashFlow::from_groups(&scope, &groups)))
}

fn bad(message: String) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// `from`, `to` (default: the 12 months ending `this_month`) and `account_id`, each checked.
fn parse_scope(params: HashMap<String, String>, this_month: Month) -> ApiResult<SpendingScope> {
    let (mut from, mut to, mut account_id) = (None, None, None);
    for (name, value) in params {
        let month = || Month::parse(value.trim()).ok_or_else(|| bad(format!("{name} must be a month like 2026-01")));
        match name.as_str() {
            "from" => from = Some(month()?),
            "to" => to = Some(month()?),
            "account_id" => {
                let v = value.trim();
                if v.chars().count() > 200 {
                    return Err(bad("account_id must have at most 200 characters".into()));
                }
                account_id = Some(v).filter(|v| !v.is_empty()).map(AccountId::from);
            }
            other => {
                return Err(bad(format!("unknown query parameter {other:?}; expected one of from, to, account_id")));
            }
        }
    }
    let to = to.unwrap_or(this_month);
    let from = from.unwrap_or_else(|| to.minus(11));
    match from.count_through(to) {
        0 => Err(bad("from must not be after to".into())),
        n if n > MAX_SPENDING_MONTHS => Err(bad(format!("at most {MAX_SPENDING_MONTHS} months at once (asked {n})"))),
        _ => Ok(SpendingScope { from, to, account_id }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(pairs: &[(&str, &str)]) -> ApiResult<SpendingScope> {
        let now = Month::parse("2026-11").unwrap();
        parse_scope(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(), now)
    }

    #[test]
    fn scope_defaults_limits_and_names_bad_parameters() {
        let s = scope(&[]).unwrap();
        assert_eq!((s.from.to_string(), s.to.to_string()), ("2025-12".into(), "2026-11".into()));
        let s = scope(&[("to", "2026-03")]).unwrap();
        assert_eq!(s.from.to_string(), "2025-04");
        let s = scope(&[("from", "2023-12"), ("to", "2026-11"), ("account_id", "acc")]).unwrap();
        assert_eq!(s.account_id.as_ref().map(AccountId::as_str), Some("acc"));
        for (pairs, needle) in [
            (vec![("from", "2023-11"), ("to", "2026-11")], "36 months"),
            (vec![("from", "2026-02"), ("to", "2026-01")], "after"),
            (vec![("from", "2026-1")], "from"),
            (vec![("to", "nov")], "to"),
            (vec![("month", "2026-01")], "month"),
        ] {
            let err = scope(&pairs).unwrap_err().to_string();
            assert!(err.contains(needle), "{pairs:?}: {err}");
        }
    }
}
