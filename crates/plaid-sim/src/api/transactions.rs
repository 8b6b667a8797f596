//! `/transactions/sync` and `/transactions/refresh`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{ApiResult, item_for, only_fields, opt_bool, opt_int, opt_obj, opt_str, prelude, respond};
use crate::api::sandbox::webhook_body;
use crate::item::{SyncError, SyncPage};
use crate::model::Txn;
use crate::persist::ItemChange;
use crate::state::{SharedItem, SimState};
use std::time::Duration;

pub async fn sync(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    match run_sync(&state, &headers, &body).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

/// The success body, written straight from the page's transactions into one buffer (keys in the
/// order Plaid's examples use, the same bytes a derived `Serialize` of these fields would give).
fn sync_body(page: &SyncPage, accounts: &[Value], include_original: bool) -> Result<Vec<u8>, ApiError> {
    use crate::model::write;
    // A transaction is up to ~1.5 kB of JSON.
    let mut out = Vec::with_capacity(1024 + (page.added.len() + page.modified.len()) * 1600 + page.removed.len() * 100);
    out.extend_from_slice(b"{\"transactions_update_status\":\"HISTORICAL_UPDATE_COMPLETE\",\"accounts\":");
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
    // Calling sync arms SYNC_UPDATES_AVAILABLE and initializes Transactions on the Item.
    state.change_item(&mut item, ItemChange::SyncCalled)?;
    if !item.is_ready(state.clock.now(), state.config.product_ready_delay) {
        if item.webhook.is_some() && !item.ready_webhook_scheduled {
            item.ready_webhook_scheduled = true;
            notify_when_ready(Arc::clone(state), Arc::clone(&shared));
        }
        return Ok(respond(Ok(json!({
            "transactions_update_status": "NOT_READY",
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
    let bytes = sync_body(&page, &accounts, include_original)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// Plaid tells an Item's webhook when its transactions become available, if sync was called.
/// Holds the simulator weakly, so a dropped simulator is not kept alive by the wait.
fn notify_when_ready(state: Arc<SimState>, shared: SharedItem) {
    let weak = Arc::downgrade(&state);
    drop(state);
    tokio::spawn(async move {
        let state = loop {
            let Some(state) = weak.upgrade() else {
                return;
            };
            if shared.lock().is_ready(state.clock.now(), state.config.product_ready_delay) {
                break state;
            }
            drop(state);
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        // Look the Item up before locking it: the lock order is always items map, then Item.
        let item_id = shared.lock().item_id.clone();
        if state.item_by_id(&item_id).is_none() {
            return;
        }
        let mut item = shared.lock();
        if let Some(body) = webhook_body(&state, &item, "TRANSACTIONS", "SYNC_UPDATES_AVAILABLE") {
            if state.fire_item_webhook(&mut item, body).is_err() {
                tracing::warn!("the transactions-ready webhook was not sent: its record could not be saved");
            }
        }
    });
}

pub async fn refresh(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(run_refresh(&state, &headers, &body).await)
}

async fn run_refresh(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/transactions/refresh", headers, body, &["access_token"]).await?;
    let shared = item_for(state, &req)?;
    let mut item = shared.lock();
    state.rate_limits.check("/transactions/refresh", &item.item_id)?;
    if item.login_required {
        return Err(ApiError::item_login_required());
    }
    if !item.is_ready(state.clock.now(), state.config.product_ready_delay) {
        return Err(ApiError::product_not_ready());
    }
    if item.institution.down {
        return Err(ApiError::institution_down());
    }
    // The world changes when time moves (`/sim/.../advance`); a refresh re-reads balances. Like
    // Plaid's `user_transactions_dynamic`, such Items also get a new day of activity per refresh.
    if item.username == "user_transactions_dynamic" {
        let report = state.change_item(&mut item, ItemChange::Advance { days: 1 })?;
        if report.added + report.modified + report.removed > 0 && item.sync_called {
            if let Some(body) = webhook_body(state, &item, "TRANSACTIONS", "SYNC_UPDATES_AVAILABLE") {
                state.fire_item_webhook(&mut item, body)?;
            }
        }
    }
    state.change_item(&mut item, ItemChange::RefreshCache)?;
    state.change_item(&mut item, ItemChange::Updated)?;
    Ok(json!({}))
}
