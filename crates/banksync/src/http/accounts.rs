//! `GET /api/accounts`: the caller's accounts with their last known balances.

use std::collections::HashMap;

use axum::extract::{Query, State};
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody};
use super::views::AccountView;
use crate::auth::CurrentUser;
use crate::domain::{AccountFilter, PlaidItemId};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Serialize, utoipa::ToSchema)]
struct AccountList {
    accounts: Vec<AccountView>,
}

/// The caller's accounts with their last known balances.
///
/// Optional `item_id` narrows to one Item; `include_removed=true` also lists accounts the bank no longer reports.
#[utoipa::path(
    get,
    path = "/api/accounts",
    tag = "accounts",
    operation_id = "list_accounts",
    params(
        ("item_id" = Option<String>, Query, description = "Only this Item's accounts"),
        ("include_removed" = Option<bool>, Query, description = "Also accounts the bank no longer reports"),
    ),
    responses(
        (status = 200, description = "The accounts", body = AccountList),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<AccountList>> {
    let mut filter = AccountFilter::default();
    for (name, value) in params {
        match name.as_str() {
            "item_id" => filter.item_id = Some(PlaidItemId::from(value)),
            "include_removed" => {
                filter.include_removed = super::transactions::parse_bool("include_removed", &value)?;
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}; expected item_id or include_removed"),
                ));
            }
        }
    }
    let accounts = state.store.list_accounts(user.id(), &filter).await?;
    Ok(AppJson(AccountList { accounts: accounts.iter().map(AccountView::of).collect() }))
}
