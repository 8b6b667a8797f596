//! `/sim/*`: control and inspection endpoints for tests and demos (plain JSON, errors as
//! `{"error": "..."}`), addressed by item_id so callers never need an access token.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::api::errors::ApiError;
use crate::api::sandbox::{force_login_required, webhook_body};
use crate::faults::FaultSpec;
use crate::item::Phase;
use crate::model::Txn;
use crate::persist::ItemChange;
use crate::state::{SharedItem, SimState};
use crate::updates;

type S = State<Arc<SimState>>;

pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/sim/items", get(list_items))
        .route("/sim/items/{item_id}/advance", post(advance))
        .route("/sim/items/{item_id}/ready", post(ready))
        .route("/sim/items/{item_id}/reset_login", post(reset_login))
        .route("/sim/items/{item_id}/fire_webhook", post(fire_webhook))
        .route("/sim/items/{item_id}/transactions", get(transactions))
        .route("/sim/faults", post(add_fault).get(list_faults).delete(clear_faults))
        .route("/sim/clock/advance", post(clock_advance))
        .route("/sim/webhooks", get(list_webhooks).delete(clear_webhooks))
        .route("/sim/exchanges", get(list_exchanges).delete(clear_exchanges))
        .route("/sim/keys/rotate", post(rotate_key))
        .route("/sim/client", get(client_settings).post(set_client_settings))
}

/// A control-endpoint error: `{"error": "..."}` with a 4xx status.
struct CtlError(StatusCode, String);

impl IntoResponse for CtlError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

/// A Plaid error inside a control endpoint (a state change that could not be saved).
impl From<ApiError> for CtlError {
    fn from(e: ApiError) -> Self {
        CtlError(e.status, e.error_message)
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> CtlError {
    CtlError(status, message.into())
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn object(body: &Bytes) -> Result<serde_json::Map<String, Value>, CtlError> {
    let body = if body.is_empty() { &b"{}"[..] } else { &body[..] };
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(error(StatusCode::BAD_REQUEST, "body must be a JSON object")),
    }
}

fn item(state: &SimState, item_id: &str) -> Result<SharedItem, CtlError> {
    state.item_by_id(item_id).ok_or_else(|| error(StatusCode::NOT_FOUND, format!("unknown item_id {item_id}")))
}

async fn list_items(State(state): S) -> Response {
    let items: Vec<SharedItem> = state.items.read().values().cloned().collect();
    let mut list: Vec<Value> = items
        .iter()
        .map(|i| {
            let mut i = i.lock();
            updates::settle(&state, &mut i);
            json!({
                "item_id": i.item_id,
                "institution_id": i.institution.id,
                "webhook": i.webhook,
                "login_required": i.login_required,
                "transactions_update_status": i.phase().update_status(),
                "transactions_count": i.transactions_count(),
                "transactions_count_full": i.transactions_count_full(),
                "unpulled_days": i.unpulled_days,
            })
        })
        .collect();
    list.sort_by(|a, b| a["item_id"].as_str().cmp(&b["item_id"].as_str()));
    ok(Value::Array(list))
}

/// `{"days": N}` moves the bank N days on and Plaid pulls at once (the log grows, the webhook
/// goes out). `{"days": N, "pulled": false}` moves only the bank: the activity stays invisible to
/// `/transactions/sync` until Plaid pulls (a `/transactions/refresh` answered, or a pulled advance).
async fn advance(State(state): S, Path(item_id): Path<String>, body: Bytes) -> Response {
    let run = || -> Result<Value, CtlError> {
        let req = object(&body)?;
        let days = match req.get("days").and_then(Value::as_u64) {
            Some(d) if (1..=3650).contains(&d) => d as u32,
            _ => return Err(error(StatusCode::BAD_REQUEST, "days must be an integer between 1 and 3650")),
        };
        let pulled = match req.get("pulled") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(error(StatusCode::BAD_REQUEST, "pulled must be a boolean")),
        };
        let shared = item(&state, &item_id)?;
        let mut item = shared.lock();
        updates::settle(&state, &mut item);
        if !pulled {
            state.change_item(&mut item, ItemChange::AdvanceUnpulled { days })?;
            return Ok(json!({ "pulled": false, "unpulled_days": item.unpulled_days }));
        }
        let report = state.change_item(&mut item, ItemChange::Pull { days })?;
        state.change_item(&mut item, ItemChange::Updated)?;
        // Plaid only sends SYNC_UPDATES_AVAILABLE once /transactions/sync was called on the Item.
        if report.changed() && item.sync_called {
            if let Some(b) = webhook_body(&state, &item, "TRANSACTIONS", "SYNC_UPDATES_AVAILABLE") {
                state.fire_item_webhook(&mut item, b)?;
            }
        }
        Ok(json!(report))
    };
    match run() {
        Ok(v) => ok(v),
        Err(e) => e.into_response(),
    }
}

/// `{"phase": "initial" | "historical"}`: that phase of the Item's data is ready now (and
/// announced by SYNC_UPDATES_AVAILABLE if sync was called), instead of after its configured delay.
async fn ready(State(state): S, Path(item_id): Path<String>, body: Bytes) -> Response {
    let run = || -> Result<Value, CtlError> {
        let req = object(&body)?;
        let Some(phase) = req.get("phase").and_then(Value::as_str).and_then(Phase::parse) else {
            return Err(error(StatusCode::BAD_REQUEST, "phase must be \"initial\" or \"historical\""));
        };
        let shared = item(&state, &item_id)?;
        let mut item = shared.lock();
        state.change_item(&mut item, ItemChange::MakeReady { historical: phase == Phase::Historical })?;
        updates::settle(&state, &mut item);
        updates::watch(&state, &mut item);
        Ok(json!({ "transactions_update_status": item.phase().update_status() }))
    };
    match run() {
        Ok(v) => ok(v),
        Err(e) => e.into_response(),
    }
}

async fn reset_login(State(state): S, Path(item_id): Path<String>) -> Response {
    match item(&state, &item_id) {
        Ok(shared) => match force_login_required(&state, &mut shared.lock()) {
            Ok(()) => ok(json!({ "reset_login": true })),
            Err(e) => CtlError::from(e).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

async fn fire_webhook(State(state): S, Path(item_id): Path<String>, body: Bytes) -> Response {
    let run = || -> Result<Value, CtlError> {
        let req = object(&body)?;
        let field = |k: &str| req.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(webhook_type), Some(code)) = (field("webhook_type"), field("webhook_code")) else {
            return Err(error(StatusCode::BAD_REQUEST, "webhook_type and webhook_code are required strings"));
        };
        let shared = item(&state, &item_id)?;
        let mut item = shared.lock();
        if item.webhook.is_none() {
            return Err(error(StatusCode::BAD_REQUEST, "the Item has no webhook URL"));
        }
        // Keep the Item's state coherent with what the webhook announces.
        let required = match (webhook_type.as_str(), code.as_str()) {
            ("ITEM", "ERROR") => Some(true),
            ("ITEM", "LOGIN_REPAIRED") => Some(false),
            _ => None,
        };
        if let Some(required) = required {
            state.change_item(&mut item, ItemChange::LoginRequired { required })?;
        }
        let body = webhook_body(&state, &item, &webhook_type, &code)
            .ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("unsupported webhook {webhook_type}/{code}")))?;
        Ok(json!({ "webhook_fired": state.fire_item_webhook(&mut item, body)? }))
    };
    match run() {
        Ok(v) => ok(v),
        Err(e) => e.into_response(),
    }
}

/// Ground truth. By default what a complete sync reaches now: nothing before the Item's data is
/// ready, the last 30 days (and what happened since) in the initial phase, everything after; bank
/// activity Plaid has not pulled is never in it. `?view=full`: as if the full history were ready.
async fn transactions(State(state): S, Path(item_id): Path<String>, RawQuery(query): RawQuery) -> Response {
    let mut full = false;
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match (k.as_ref(), v.as_ref()) {
            ("view", "synced") => full = false,
            ("view", "full") => full = true,
            _ => {
                return error(StatusCode::BAD_REQUEST, format!("unknown query {k}={v}: use view=synced or view=full"))
                    .into_response();
            }
        }
    }
    match item(&state, &item_id) {
        Ok(shared) => {
            let txns = {
                let mut item = shared.lock();
                updates::settle(&state, &mut item);
                if full { item.transactions_full() } else { item.transactions() }
            };
            // `{"transactions":[...]}`, written straight from the transactions.
            let mut out = Vec::with_capacity(32 + txns.len() * 1600);
            out.extend_from_slice(b"{\"transactions\":");
            Txn::write_json_array(&mut out, txns.iter().map(|t| &**t), false);
            out.push(b'}');
            ([(header::CONTENT_TYPE, "application/json")], out).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn add_fault(State(state): S, body: Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid fault: {e}")).into_response(),
    };
    match state.faults.add(spec) {
        Ok(id) => ok(json!({ "fault_id": id })),
        Err(e) => error(StatusCode::BAD_REQUEST, e).into_response(),
    }
}

async fn list_faults(State(state): S) -> Response {
    ok(json!(state.faults.list()))
}

async fn clear_faults(State(state): S) -> Response {
    state.faults.clear();
    ok(json!({ "cleared": true }))
}

async fn clock_advance(State(state): S, body: Bytes) -> Response {
    let req = match object(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match req.get("seconds").and_then(Value::as_i64) {
        Some(s) if s >= 0 => match state.advance_clock(s) {
            Ok(offset) => ok(json!({ "offset_seconds": offset, "now": crate::clock::rfc3339(state.clock.now()) })),
            Err(e) => CtlError::from(e).into_response(),
        },
        _ => error(StatusCode::BAD_REQUEST, "seconds must be a non-negative integer").into_response(),
    }
}

async fn list_webhooks(State(state): S) -> Response {
    ok(json!(state.webhooks.attempts()))
}

async fn clear_webhooks(State(state): S) -> Response {
    state.webhooks.clear();
    ok(json!({ "cleared": true }))
}

async fn list_exchanges(State(state): S) -> Response {
    ok(Value::Array(state.exchanges.lock().clone()))
}

async fn clear_exchanges(State(state): S) -> Response {
    state.exchanges.lock().clear();
    ok(json!({ "cleared": true }))
}

async fn rotate_key(State(state): S) -> Response {
    match state.rotate_key() {
        Ok(kid) => ok(json!({ "kid": kid })),
        Err(e) => CtlError::from(e).into_response(),
    }
}

fn client_json(state: &SimState) -> Value {
    json!({ "transactions_refresh_enabled": state.transactions_refresh_enabled.load(Ordering::SeqCst) })
}

/// The client's plan: which add-ons it has.
async fn client_settings(State(state): S) -> Response {
    ok(client_json(&state))
}

/// `{"transactions_refresh_enabled": bool}` grants or withdraws the Transactions Refresh add-on.
async fn set_client_settings(State(state): S, body: Bytes) -> Response {
    let req = match object(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    for (key, value) in &req {
        match (key.as_str(), value) {
            ("transactions_refresh_enabled", Value::Bool(b)) => {
                state.transactions_refresh_enabled.store(*b, Ordering::SeqCst);
            }
            ("transactions_refresh_enabled", _) => {
                return error(StatusCode::BAD_REQUEST, "transactions_refresh_enabled must be a boolean")
                    .into_response();
            }
            _ => return error(StatusCode::BAD_REQUEST, format!("unknown setting {key}")).into_response(),
        }
    }
    ok(client_json(&state))
}
