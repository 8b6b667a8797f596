//! `GET /api/accounts`: the caller's accounts with their last known balances.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::get;
use serde::Serialize;

use super::error::{ApiError, ApiResult, AppJson};
use super::views::AccountView;
use crate::auth::CurrentUser;
use crate::domain::AccountFilter;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/accounts", get(list))
}

#[derive(Serialize)]
struct AccountList {
    accounts: Vec<AccountView>,
}

/// Optional `item_id` narrows to one Item; `include_removed=true` also lists accounts the bank no longer reports.
async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<AccountList>> {
    let mut filter = AccountFilter::default();
    for (name, value) in params {
        match name.as_str() {
            "item_id" => filter.item_id = Some(value),
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
