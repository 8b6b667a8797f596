//! Sandbox-only endpoints: `/sandbox/public_token/create`, `/sandbox/item/fire_webhook`,
//! `/sandbox/item/reset_login`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use chrono::{Duration, NaiveDate};
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{
    ApiResult, check_url, item_for, only_fields, opt_int, opt_obj, opt_str, prelude, products, req_str, require,
    respond,
};
use crate::item::Item;
use crate::persist::ItemChange;
use crate::state::{CreateItem, SimState};
use crate::webhooks;

pub async fn public_token_create(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(create(&state, &headers, &body).await)
}

async fn create(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(
        state,
        "/sandbox/public_token/create",
        headers,
        body,
        &["institution_id", "initial_products", "options", "user_token", "user_id"],
    )
    .await?;
    require(&req, "", &["institution_id", "initial_products"])?;
    let institution_id = req_str(&req, "", "institution_id")?;
    let institution = SimState::institution(institution_id).ok_or_else(|| {
        ApiError::invalid_field(format!("institution_id {institution_id} is not a known Sandbox institution"))
    })?;
    let initial = products(&req, "initial_products")?.unwrap_or_default();
    if initial.is_empty() {
        return Err(ApiError::invalid_field("initial_products must contain at least one product"));
    }
    let (mut webhook, mut username, mut password, mut days) = (None, "user_good", "pass_good", 90u32);
    if let Some(options) = opt_obj(&req, "", "options")? {
        only_fields(
            options,
            "options.",
            &["webhook", "override_username", "override_password", "transactions", "statements", "income_verification"],
        )?;
        if let Some(w) = opt_str(options, "options.", "webhook")? {
            check_url(w, "options.webhook")?;
            webhook = Some(w.to_owned());
        }
        username = opt_str(options, "options.", "override_username")?.unwrap_or(username);
        password = opt_str(options, "options.", "override_password")?.unwrap_or(password);
        if let Some(t) = options.get("transactions").and_then(Value::as_object) {
            only_fields(t, "options.transactions.", &["start_date", "end_date", "days_requested"])?;
            if let Some(d) = opt_int(t, "options.transactions.", "days_requested")? {
                if !(1..=730).contains(&d) {
                    return Err(ApiError::invalid_field(
                        "options.transactions.days_requested must be between 1 and 730",
                    ));
                }
                days = d as u32;
            }
            if let Some(start) = opt_str(t, "options.transactions.", "start_date")? {
                let start = NaiveDate::parse_from_str(start, "%Y-%m-%d").map_err(|_| {
                    ApiError::invalid_field("options.transactions.start_date must be a YYYY-MM-DD date")
                })?;
                let span = (state.clock.now().date_naive() - start).num_days() + 1;
                days = span.clamp(1, 730) as u32;
            }
        }
    }
    let item_id =
        state.create_item(CreateItem { institution, username, password, webhook, days, products: initial })?;
    Ok(json!({ "public_token": state.issue_public_token(&item_id)? }))
}

const FIRE_CODES: &[&str] = &[
    "DEFAULT_UPDATE",
    "NEW_ACCOUNTS_AVAILABLE",
    "SMS_MICRODEPOSITS_VERIFICATION",
    "AUTHORIZATION_GRANTED",
    "USER_PERMISSION_REVOKED",
    "USER_ACCOUNT_REVOKED",
    "PENDING_DISCONNECT",
    "RECURRING_TRANSACTIONS_UPDATE",
    "LOGIN_REPAIRED",
    "SYNC_UPDATES_AVAILABLE",
    "PRODUCT_READY",
    "ERROR",
];
const FIRE_TYPES: &[&str] =
    &["AUTH", "HOLDINGS", "INVESTMENTS_TRANSACTIONS", "ITEM", "LIABILITIES", "TRANSACTIONS", "ASSETS"];

/// The webhook types a code can be fired as through `/sandbox/item/fire_webhook` (the first is the
/// default). In this endpoint ERROR and PRODUCT_READY are Assets webhooks.
fn types_for(code: &str) -> &'static [&'static str] {
    match code {
        "DEFAULT_UPDATE" => &["TRANSACTIONS", "HOLDINGS", "INVESTMENTS_TRANSACTIONS", "LIABILITIES"],
        "SYNC_UPDATES_AVAILABLE" | "RECURRING_TRANSACTIONS_UPDATE" => &["TRANSACTIONS"],
        "PRODUCT_READY" | "ERROR" => &["ASSETS"],
        "SMS_MICRODEPOSITS_VERIFICATION" | "AUTHORIZATION_GRANTED" => &["AUTH"],
        _ => &["ITEM"],
    }
}

/// The body Plaid sends for `webhook_type`/`webhook_code`, or None for combinations the
/// simulated Items cannot produce.
pub fn webhook_body(state: &SimState, item: &Item, webhook_type: &str, code: &str) -> Option<Value> {
    let id = &item.item_id;
    let extra = match (webhook_type, code) {
        ("TRANSACTIONS", "SYNC_UPDATES_AVAILABLE") => {
            let (initial, historical) = item.phase().flags();
            json!({ "initial_update_complete": initial, "historical_update_complete": historical })
        }
        ("TRANSACTIONS", "DEFAULT_UPDATE") => json!({ "new_transactions": 0, "error": null }),
        ("TRANSACTIONS", "INITIAL_UPDATE" | "HISTORICAL_UPDATE") => {
            json!({ "new_transactions": item.transactions_count(), "error": null })
        }
        ("TRANSACTIONS", "RECURRING_TRANSACTIONS_UPDATE") => {
            json!({ "account_ids": item.account_ids().collect::<Vec<_>>() })
        }
        ("ITEM", "ERROR") => json!({ "error": ApiError::item_login_required().to_webhook_error() }),
        ("ITEM", "NEW_ACCOUNTS_AVAILABLE") => json!({ "error": null }),
        ("ITEM", "USER_PERMISSION_REVOKED") => json!({
            "error": ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "ITEM_ERROR",
                "USER_PERMISSION_REVOKED",
                "the holder of this account has revoked their permission for your application to access it",
            )
            .to_webhook_error(),
        }),
        ("ITEM", "USER_ACCOUNT_REVOKED") => json!({ "account_id": item.account_ids().next() }),
        ("ITEM", "PENDING_DISCONNECT") => json!({
            "reason": "INSTITUTION_TOKEN_EXPIRATION",
            "disconnect_time": crate::clock::rfc3339(state.clock.now() + Duration::days(7)),
        }),
        ("ITEM", "PENDING_EXPIRATION") => json!({
            "consent_expiration_time": crate::clock::rfc3339(state.clock.now() + Duration::days(7)),
        }),
        ("ITEM", "LOGIN_REPAIRED") => json!({}),
        ("ITEM", "WEBHOOK_UPDATE_ACKNOWLEDGED") => {
            json!({ "new_webhook_url": item.webhook, "error": null })
        }
        _ => return None,
    };
    Some(webhooks::body(webhook_type, code, id, extra))
}

pub async fn fire_webhook(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(fire(&state, &headers, &body).await)
}

async fn fire(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req =
        prelude(state, "/sandbox/item/fire_webhook", headers, body, &["access_token", "webhook_type", "webhook_code"])
            .await?;
    require(&req, "", &["access_token", "webhook_code"])?;
    let shared = item_for(state, &req)?;
    let code = req_str(&req, "", "webhook_code")?;
    if !FIRE_CODES.contains(&code) {
        return Err(ApiError::invalid_field(format!("webhook_code must be one of: {}", FIRE_CODES.join(", "))));
    }
    let allowed = types_for(code);
    let webhook_type = match opt_str(&req, "", "webhook_type")? {
        Some(t) if !FIRE_TYPES.contains(&t) => {
            return Err(ApiError::invalid_field(format!("webhook_type must be one of: {}", FIRE_TYPES.join(", "))));
        }
        Some(t) if !allowed.contains(&t) => {
            return Err(ApiError::invalid_field(format!("webhook_code {code} cannot be fired with webhook_type {t}")));
        }
        Some(t) => t,
        None => allowed[0],
    };
    let mut item = shared.lock();
    // SYNC_UPDATES_AVAILABLE carries the phase the data is in now.
    crate::updates::settle(state, &mut item);
    if item.webhook.is_none() {
        return Err(ApiError::sandbox(
            "SANDBOX_WEBHOOK_INVALID",
            "Webhook for this item is either not set up, or invalid. Please update the item's webhook and try again.",
        ));
    }
    let Some(body) = webhook_body(state, &item, webhook_type, code) else {
        return Err(ApiError::sandbox(
            "SANDBOX_PRODUCT_NOT_ENABLED",
            "The product for this webhook is not enabled for this item. Please initialize the item with the product and try again.",
        ));
    };
    Ok(json!({ "webhook_fired": state.fire_item_webhook(&mut item, body)? }))
}

pub async fn reset_login(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(reset(&state, &headers, &body).await)
}

async fn reset(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/sandbox/item/reset_login", headers, body, &["access_token"]).await?;
    let shared = item_for(state, &req)?;
    let mut item = shared.lock();
    force_login_required(state, &mut item)?;
    Ok(json!({ "reset_login": true }))
}

/// ITEM_LOGIN_REQUIRED plus the ITEM/ERROR webhook (when the Item has one).
pub fn force_login_required(state: &SimState, item: &mut Item) -> Result<(), ApiError> {
    state.change_item(item, ItemChange::LoginRequired { required: true })?;
    if let Some(body) = webhook_body(state, item, "ITEM", "ERROR") {
        state.fire_item_webhook(item, body)?;
    }
    Ok(())
}
