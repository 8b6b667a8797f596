//! `/accounts/get` (cached balances) and `/accounts/balance/get` (live balances, slow).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use rand::Rng;
use serde_json::json;

use super::errors::ApiError;
use super::{ApiResult, Req, item_for, only_fields, opt_obj, opt_str, opt_str_array, prelude, respond};
use crate::item::Item;
use crate::persist::ItemChange;
use crate::state::SimState;

pub async fn get(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(accounts_get(&state, &headers, &body).await)
}

/// `options.account_ids`: every id must belong to the Item.
fn account_filter(req: &Req, allowed: &[&str]) -> Result<Option<Vec<String>>, ApiError> {
    let Some(options) = opt_obj(req, "", "options")? else {
        return Ok(None);
    };
    only_fields(options, "options.", allowed)?;
    // An empty list selects every account, like an absent one.
    Ok(opt_str_array(options, "options.", "account_ids")?.filter(|ids| !ids.is_empty()))
}

fn check_accounts(item: &Item, ids: Option<&[String]>) -> Result<(), ApiError> {
    match ids {
        Some(ids) if ids.iter().any(|id| !item.has_account(id)) => Err(ApiError::invalid_account_id()),
        _ => Ok(()),
    }
}

async fn accounts_get(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/accounts/get", headers, body, &["access_token", "options"]).await?;
    let item = item_for(state, &req)?;
    let ids = account_filter(&req, &["account_ids"])?;
    let mut item = item.lock();
    state.rate_limits.check("/accounts/get", &item.item_id)?;
    // A refresh answered by now has updated the cached balances.
    crate::updates::settle(state, &mut item);
    if item.login_required {
        return Err(ApiError::item_login_required());
    }
    check_accounts(&item, ids.as_deref())?;
    Ok(json!({
        "accounts": item.accounts_json(item.cached_balances(), ids.as_deref()),
        "item": item.item_json(),
    }))
}

pub async fn balance_get(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(balance(&state, &headers, &body).await)
}

async fn balance(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/accounts/balance/get", headers, body, &["access_token", "options"]).await?;
    let shared = item_for(state, &req)?;
    let ids = account_filter(&req, &["account_ids", "min_last_updated_datetime"])?;
    if let Some(options) = opt_obj(&req, "", "options")? {
        // Only Capital One (ins_128026, not in this world) uses it; the format is still checked.
        if let Some(t) = opt_str(options, "options.", "min_last_updated_datetime")? {
            if chrono::DateTime::parse_from_rfc3339(t).is_err() {
                return Err(ApiError::invalid_field(
                    "options.min_last_updated_datetime must be an ISO 8601 timestamp (YYYY-MM-DDTHH:mm:ssZ)",
                ));
            }
        }
    }
    {
        let item = shared.lock();
        state.rate_limits.check("/accounts/balance/get", &item.item_id)?;
        if item.login_required {
            return Err(ApiError::item_login_required());
        }
        check_accounts(&item, ids.as_deref())?;
        if item.institution.down {
            return Err(ApiError::institution_down());
        }
    }
    // The bank takes its time; sleep without holding any lock so nothing else waits.
    let latency = {
        let range = &state.config.balance_latency;
        let (lo, hi) = (range.start().as_millis() as u64, range.end().as_millis() as u64);
        if hi > lo {
            Duration::from_millis(state.latency_rng.lock().gen_range(lo..=hi))
        } else {
            Duration::from_millis(lo)
        }
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut item = shared.lock();
    state.change_item(&mut item, ItemChange::RefreshCache)?;
    let live = item.live_balances();
    Ok(json!({
        "accounts": item.accounts_json(&live, ids.as_deref()),
        "item": item.item_json(),
    }))
}
