//! `/transactions/sync` and `/transactions/refresh`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{ApiResult, item_for, only_fields, opt_bool, opt_int, opt_obj, opt_str, prelude, respond};
use std::sync::atomic::Ordering;

use crate::item::{Phase, SyncError, SyncPage};
use crate::model::Txn;
use crate::persist::ItemChange;
use crate::state::SimState;
use crate::updates;

pub async fn sync(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    match run_sync(&state, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The success body, written straight from the page's transactions into one buffer (keys in the
/// order Plaid's examples use, the same bytes a derived `Serialize` of these fields would give).
fn sync_body(page: &SyncPage, status: Phase, accounts: &[Value], include_original: bool) -> Result<Vec<u8>, ApiError> {
    use crate::model::write;
    // A transaction is up to ~1.5 kB of JSON.
    let mut out = Vec::with_capacity(1024 + (page.added.len() + page.modified.len()) * 1600 + page.removed.len() * 100);
    out.extend_from_slice(b"{\"transactions_update_status\":");
    write::str(&mut out, status.update_status());
    out.extend_from_slice(b",\"accounts\":");
    serde_json::to_writer(&mut out, accounts).map_err(|_| ApiError::internal())?;
    out.extend_from_slice(b",\"added\":");
    Txn::write_json_array(&mut out, page.added.iter().map(|t| &**t), include_original);
    out.extend_from_slice(b",\"modified\":");
    Txn::write_json_array(&mut out, page.modified.iter().map(|t| &**t), include_original);
    out.extend_from_slice(b",\"removed\":[");
    for (k, (id, account)) in page.removed.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        // serde_json's map (a BTreeMap) orders the keys: account_id first.
        out.extend_from_slice(b"{\"account_id\":");
        write::str(&mut out, account);
        out.extend_from_slice(b",\"transaction_id\":");
        write::str(&mut out, id);
        out.push(b'}');
    }
    out.extend_from_slice(b"],\"next_cursor\":");
    write::str(&mut out, &page.next_cursor);
    out.extend_from_slice(b",\"has_more\":");
    write::bool(&mut out, page.has_more);
    out.extend_from_slice(b",\"request_id\":");
    write::str(&mut out, &crate::ids::request_id());
    out.push(b'}');
    Ok(out)
}

const OPTIONS: &[&str] = &[
    "include_original_description",
    "include_personal_finance_category",
    "include_logo_and_counterparty_beta",
    "personal_finance_category_version",
    "days_requested",
    "account_id",
];

async fn run_sync(state: &Arc<SimState>, headers: &HeaderMap, body: &Bytes) -> Result<Response, ApiError> {
    let req =
        prelude(state, "/transactions/sync", headers, body, &["access_token", "cursor", "count", "options"]).await?;
    let shared = item_for(state, &req)?;
    let count = match opt_int(&req, "", "count")? {
        None => 100,
        Some(c) if (1..=500).contains(&c) => c as u64,
        Some(_) => return Err(ApiError::invalid_field("count must be between 1 and 500")),
    };
    let cursor = opt_str(&req, "", "cursor")?;
    if cursor.is_some_and(|c| c.len() > 256) {
        return Err(ApiError::invalid_field("cursor must be at most 256 characters"));
    }
    let mut include_original = false;
    let mut account_id = None;
    if let Some(options) = opt_obj(&req, "", "options")? {
        only_fields(options, "options.", OPTIONS)?;
        include_original = opt_bool(options, "options.", "include_original_description")?.unwrap_or(false);
        opt_bool(options, "options.", "include_personal_finance_category")?;
        opt_bool(options, "options.", "include_logo_and_counterparty_beta")?;
        if let Some(v) = opt_str(options, "options.", "personal_finance_category_version")? {
            if v != "v1" && v != "v2" {
                return Err(ApiError::invalid_field("options.personal_finance_category_version must be v1 or v2"));
            }
        }
        if opt_int(options, "options.", "days_requested")?.is_some_and(|d| !(1..=730).contains(&d)) {
            return Err(ApiError::invalid_field("options.days_requested must be between 1 and 730"));
        }
        account_id = opt_str(options, "options.", "account_id")?;
    }
    let mut item = shared.lock();
    state.rate_limits.check("/transactions/sync", &item.item_id)?;
    if item.login_required {
        return Err(ApiError::item_login_required());
    }
    if let Some(acc) = account_id {
        if !item.has_account(acc) {
            return Err(ApiError::invalid_account_id());
        }
    }
    updates::settle(state, &mut item);
    // Calling sync arms SYNC_UPDATES_AVAILABLE and initializes Transactions on the Item.
    state.change_item(&mut item, ItemChange::SyncCalled)?;
    updates::watch(state, &mut item);
    let phase = item.phase();
    if phase == Phase::NotReady {
        return Ok(respond(Ok(json!({
            "transactions_update_status": phase.update_status(),
            "accounts": [],
            "added": [],
            "modified": [],
            "removed": [],
            "next_cursor": "",
            "has_more": false,
        }))));
    }
    let page = item.sync(cursor, count, account_id).map_err(|e| match e {
        SyncError::InvalidCursor => {
            ApiError::invalid_field("cursor is invalid: use a next_cursor returned by /transactions/sync for this Item")
        }
        SyncError::MutationDuringPagination => ApiError::mutation_during_pagination(),
    })?;
    let cached = item.cached_balances();
    let accounts: Vec<Value> = page.accounts.iter().map(|&i| item.account_json(i, &cached[i])).collect();
    // The page holds its own transactions: serialize without holding the Item's lock.
    drop(item);
    let bytes = sync_body(&page, phase, &accounts, include_original)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

pub async fn refresh(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(run_refresh(&state, &headers, &body).await)
}

/// Plaid asks the bank for news; the bank answers `refresh_delay` later (on the simulator's
/// clock), when the unpulled activity joins the log, `last_successful_update` moves and, if that
/// changed transactions, SYNC_UPDATES_AVAILABLE goes out (see `updates`).
async fn run_refresh(state: &Arc<SimState>, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/transactions/refresh", headers, body, &["access_token"]).await?;
    if !state.transactions_refresh_enabled.load(Ordering::SeqCst) {
        return Err(ApiError::invalid_product(&["transactions_refresh"]));
    }
    let shared = item_for(state, &req)?;
    let mut item = shared.lock();
    state.rate_limits.check("/transactions/refresh", &item.item_id)?;
    if item.login_required {
        return Err(ApiError::item_login_required());
    }
    updates::settle(state, &mut item);
    if item.phase() == Phase::NotReady {
        return Err(ApiError::product_not_ready());
    }
    if item.institution.down {
        return Err(ApiError::institution_down());
    }
    // Like Plaid's `user_transactions_dynamic`, such Items get a new day of activity per refresh.
    if item.username == "user_transactions_dynamic" {
        state.change_item(&mut item, ItemChange::AdvanceUnpulled { days: 1 })?;
    }
    let due = state.clock.now() + chrono::Duration::from_std(state.config.refresh_delay).unwrap_or_default();
    state.change_item(&mut item, ItemChange::RequestPull { due })?;
    updates::settle(state, &mut item);
    updates::watch(state, &mut item);
    Ok(json!({}))
}
