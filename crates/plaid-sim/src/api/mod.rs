//! Plaid's API surface: request parsing and validation shared by every endpoint, the success
//! envelope (`request_id`), and the router.

pub mod accounts;
pub mod auth;
pub mod errors;
pub mod items;
pub mod link;
pub mod link_session;
pub mod oauth;
pub mod sandbox;
pub mod transactions;
pub mod webhook_key;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::state::{SharedItem, SimState};
use errors::ApiError;

pub type Req = Map<String, Value>;
pub type ApiResult = Result<Value, ApiError>;

/// The Plaid API routes (all POST).
pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/link/token/create", post(link::token_create))
        .route("/item/public_token/exchange", post(items::public_token_exchange))
        .route("/item/get", post(items::get))
        .route("/item/remove", post(items::remove))
        .route("/item/webhook/update", post(items::webhook_update))
        .route("/accounts/get", post(accounts::get))
        .route("/accounts/balance/get", post(accounts::balance_get))
        .route("/transactions/sync", post(transactions::sync))
        .route("/transactions/refresh", post(transactions::refresh))
        .route("/webhook_verification_key/get", post(webhook_key::get))
        .route("/sandbox/public_token/create", post(sandbox::public_token_create))
        .route("/sandbox/item/fire_webhook", post(sandbox::fire_webhook))
        .route("/sandbox/item/reset_login", post(sandbox::reset_login))
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
}

/// Turns an endpoint's result into Plaid's response: the body plus a fresh `request_id`.
pub fn respond(result: ApiResult) -> Response {
    match result {
        Ok(mut body) => {
            if let Some(obj) = body.as_object_mut() {
                obj.insert("request_id".to_owned(), Value::String(crate::ids::request_id()));
            }
            json_response(StatusCode::OK, &body)
        }
        Err(e) => e.into_response(),
    }
}

/// Everything Plaid checks before an endpoint's own logic: the body is a JSON object, the API
/// keys are right, no unknown top-level fields. Then injected faults apply.
pub async fn prelude(
    state: &SimState,
    endpoint: &'static str,
    headers: &HeaderMap,
    body: &Bytes,
    allowed: &[&str],
) -> Result<Req, ApiError> {
    let req = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        _ => return Err(ApiError::invalid_body()),
    };
    auth::check(&state.config, headers, &req)?;
    let unknown: Vec<String> =
        req.keys().filter(|k| !allowed.contains(&k.as_str()) && *k != "client_id" && *k != "secret").cloned().collect();
    if !unknown.is_empty() {
        return Err(ApiError::unknown_fields(&unknown));
    }
    let action = state.faults.check(endpoint);
    if !action.latency.is_zero() {
        tokio::time::sleep(action.latency).await;
    }
    if action.hang {
        // Never answer: the client gives up (and the server drops this future) on its own.
        std::future::pending::<()>().await;
    }
    match action.error {
        Some(e) => Err(e),
        None => Ok(req),
    }
}

/// MISSING_FIELDS for required fields that are absent or null (all of them are listed).
pub fn require(req: &Req, prefix: &str, fields: &[&str]) -> Result<(), ApiError> {
    let missing: Vec<String> =
        fields.iter().filter(|f| req.get(**f).is_none_or(Value::is_null)).map(|f| format!("{prefix}{f}")).collect();
    if missing.is_empty() { Ok(()) } else { Err(ApiError::missing_fields(&missing)) }
}

pub fn opt_str<'a>(req: &'a Req, prefix: &str, field: &str) -> Result<Option<&'a str>, ApiError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid_field(format!("{prefix}{field} must be a string"))),
    }
}

pub fn req_str<'a>(req: &'a Req, prefix: &str, field: &str) -> Result<&'a str, ApiError> {
    require(req, prefix, &[field])?;
    opt_str(req, prefix, field)?.ok_or_else(|| ApiError::missing_fields(&[format!("{prefix}{field}")]))
}

pub fn opt_int(req: &Req, prefix: &str, field: &str) -> Result<Option<i64>, ApiError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            n.as_i64().map(Some).ok_or_else(|| ApiError::invalid_field(format!("{prefix}{field} must be an integer")))
        }
        Some(_) => Err(ApiError::invalid_field(format!("{prefix}{field} must be an integer"))),
    }
}

pub fn opt_bool(req: &Req, prefix: &str, field: &str) -> Result<Option<bool>, ApiError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_field(format!("{prefix}{field} must be a boolean"))),
    }
}

/// An optional object; Plaid rejects `null` for `options` objects.
pub fn opt_obj<'a>(req: &'a Req, prefix: &str, field: &str) -> Result<Option<&'a Req>, ApiError> {
    match req.get(field) {
        None => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(ApiError::invalid_field(format!("{prefix}{field} must be an object"))),
    }
}

pub fn opt_str_array(req: &Req, prefix: &str, field: &str) -> Result<Option<Vec<String>>, ApiError> {
    match req.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| ApiError::invalid_field(format!("{prefix}{field} must be an array of strings"))),
        Some(_) => Err(ApiError::invalid_field(format!("{prefix}{field} must be an array of strings"))),
    }
}

/// Rejects unknown keys inside a nested object.
pub fn only_fields(req: &Req, prefix: &str, allowed: &[&str]) -> Result<(), ApiError> {
    let unknown: Vec<String> =
        req.keys().filter(|k| !allowed.contains(&k.as_str())).map(|k| format!("{prefix}{k}")).collect();
    if unknown.is_empty() { Ok(()) } else { Err(ApiError::unknown_fields(&unknown)) }
}

/// A webhook URL must be an absolute http(s) URL.
pub fn check_url(url: &str, field: &str) -> Result<(), ApiError> {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        _ => Err(ApiError::invalid_field(format!("{field} must be a valid http or https URL"))),
    }
}

/// The Item behind the request's `access_token`.
pub fn item_for(state: &SimState, req: &Req) -> Result<SharedItem, ApiError> {
    let token = req_str(req, "", "access_token")?;
    state.item_by_token(token)
}

pub const PRODUCTS: &[&str] = &[
    "assets",
    "auth",
    "balance",
    "balance_plus",
    "beacon",
    "identity",
    "identity_match",
    "investments",
    "investments_auth",
    "liabilities",
    "payment_initiation",
    "identity_verification",
    "transactions",
    "credit_details",
    "income",
    "income_verification",
    "standing_orders",
    "transfer",
    "employment",
    "recurring_transactions",
    "transactions_refresh",
    "signal",
    "statements",
    "processor_payments",
    "processor_identity",
    "profile",
    "cra_base_report",
    "cra_income_insights",
    "cra_partner_insights",
    "cra_network_insights",
    "cra_cashflow_insights",
    "cra_monitoring",
    "cra_lend_score",
    "cra_plaid_credit_score",
    "layer",
    "pay_by_bank",
    "protect_linked_bank",
    "protect_transactions",
];

/// Validates a products array against Plaid's Products enum.
pub fn products(req: &Req, field: &str) -> Result<Option<Vec<String>>, ApiError> {
    let list = opt_str_array(req, "", field)?;
    if let Some(l) = &list {
        if let Some(bad) = l.iter().find(|p| !PRODUCTS.contains(&p.as_str())) {
            return Err(ApiError::invalid_field(format!("{field} contains an invalid product: {bad}")));
        }
    }
    Ok(list)
}
