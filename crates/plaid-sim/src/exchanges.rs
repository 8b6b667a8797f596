//! Records every Plaid API exchange (request and response JSON) for `GET /sim/exchanges`, so a
//! harness can validate all traffic against the OpenAPI spec. The request's `secret` is redacted.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};

use crate::state::SimState;

const MAX_BODY: usize = 64 * 1024 * 1024;

fn as_json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

pub async fn record(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    if !state.config.record_exchanges {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let method = parts.method.to_string();
    let path = parts.uri.path().to_owned();
    let Ok(req_bytes) = to_bytes(body, MAX_BODY).await else {
        return next.run(Request::from_parts(parts, Body::empty())).await;
    };
    let response = next.run(Request::from_parts(parts, Body::from(req_bytes.clone()))).await;
    let (res_parts, res_body) = response.into_parts();
    let Ok(res_bytes) = to_bytes(res_body, MAX_BODY).await else {
        return Response::from_parts(res_parts, Body::empty());
    };
    let mut request = as_json(&req_bytes);
    if let Some(obj) = request.as_object_mut() {
        if obj.contains_key("secret") {
            obj.insert("secret".to_owned(), json!("[REDACTED]"));
        }
    }
    state.exchanges.lock().push(json!({
        "method": method,
        "path": path,
        "request": request,
        "status": res_parts.status.as_u16(),
        "response": as_json(&res_bytes),
    }));
    Response::from_parts(res_parts, Body::from(res_bytes))
}
