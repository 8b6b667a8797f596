//! `/item/public_token/exchange`, `/item/get`, `/item/remove`, `/item/webhook/update`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{ApiResult, check_url, item_for, opt_str, prelude, req_str, respond};
use crate::clock::rfc3339;
use crate::persist::ItemChange;
use crate::state::SimState;
use crate::webhooks;

pub async fn public_token_exchange(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(exchange(&state, &headers, &body).await)
}

async fn exchange(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/item/public_token/exchange", headers, body, &["public_token"]).await?;
    let token = req_str(&req, "", "public_token")?;
    let (access_token, item_id) = state.exchange_public_token(token)?;
    Ok(json!({ "access_token": access_token, "item_id": item_id }))
}

pub async fn get(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(item_get(&state, &headers, &body).await)
}

async fn item_get(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/item/get", headers, body, &["access_token"]).await?;
    let item = item_for(state, &req)?;
    let mut item = item.lock();
    state.rate_limits.check("/item/get", &item.item_id)?;
    crate::updates::settle(state, &mut item);
    let mut item_json = item.item_json();
    if let Some(obj) = item_json.as_object_mut() {
        obj.insert("created_at".to_owned(), json!(rfc3339(item.created_at)));
    }
    let last_webhook = match &item.last_webhook {
        Some((at, code)) => json!({ "sent_at": rfc3339(*at), "code_sent": code }),
        None => Value::Null,
    };
    Ok(json!({
        "item": item_json,
        "status": {
            "transactions": {
                "last_successful_update": rfc3339(item.last_successful_update),
                "last_failed_update": null,
                // Not Plaid's: the phase of the Item's data, as /transactions/sync reports it
                // (ItemStatusTransactions allows additional properties).
                "transactions_update_status": item.phase().update_status(),
            },
            "last_webhook": last_webhook,
        },
    }))
}

pub async fn remove(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(item_remove(&state, &headers, &body).await)
}

const REASON_CODES: &[&str] = &[
    "FRAUD_FIRST_PARTY",
    "FRAUD_FALSE_IDENTITY",
    "FRAUD_ABUSE",
    "FRAUD_OTHER",
    "CONNECTION_IS_NON_FUNCTIONAL",
    "OTHER",
];

async fn item_remove(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/item/remove", headers, body, &["access_token", "reason_code", "reason_note"]).await?;
    let item = item_for(state, &req)?;
    if let Some(code) = opt_str(&req, "", "reason_code")? {
        if !REASON_CODES.contains(&code) {
            return Err(ApiError::invalid_field(format!("reason_code must be one of: {}", REASON_CODES.join(", "))));
        }
    }
    if opt_str(&req, "", "reason_note")?.is_some_and(|n| n.chars().count() > 512) {
        return Err(ApiError::invalid_field("reason_note must be at most 512 characters"));
    }
    let item_id = item.lock().item_id.clone();
    state.remove_item(&item_id)?;
    Ok(json!({}))
}

pub async fn webhook_update(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(update_webhook(&state, &headers, &body).await)
}

async fn update_webhook(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/item/webhook/update", headers, body, &["access_token", "webhook"]).await?;
    let item = item_for(state, &req)?;
    let webhook = opt_str(&req, "", "webhook")?;
    if let Some(w) = webhook {
        check_url(w, "webhook")?;
    }
    let mut item = item.lock();
    state.change_item(&mut item, ItemChange::Webhook { url: webhook.map(str::to_owned) })?;
    if let Some(url) = webhook {
        let body = webhooks::body(
            "ITEM",
            "WEBHOOK_UPDATE_ACKNOWLEDGED",
            &item.item_id,
            json!({ "new_webhook_url": url, "error": null }),
        );
        state.fire_item_webhook(&mut item, body)?;
    }
    Ok(json!({ "item": item.item_json() }))
}
