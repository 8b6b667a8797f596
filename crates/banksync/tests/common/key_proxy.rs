//! A small proxy between banksync and the simulator: banksync's `PLAID_BASE_URL` points at it, and it forwards every
//! Plaid call to the simulator except `/webhook_verification_key/get` for the test's own keys. That lets tests sign
//! webhooks the way an attacker (or a clock) would: old `iat`, expired keys, wrong algorithms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The webhook verification keys (JWKs) the proxy serves, by `kid`.
pub type Keys = Arc<Mutex<HashMap<String, Value>>>;

/// Starts the proxy in front of the simulator at `sim_url` on a random port; returns its URL.
pub async fn start(sim_url: String, keys: Keys) -> String {
    let state = Proxy { sim_url, keys, http: reqwest::Client::new() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(proxy).with_state(state);
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

#[derive(Clone)]
struct Proxy {
    sim_url: String,
    keys: Keys,
    http: reqwest::Client,
}

async fn proxy(State(p): State<Proxy>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if uri.path() == "/webhook_verification_key/get" {
        let kid = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("key_id").and_then(Value::as_str).map(str::to_owned));
        let key = kid.and_then(|kid| p.keys.lock().unwrap().get(&kid).cloned());
        if let Some(key) = key {
            return axum::Json(json!({"key": key, "request_id": "proxy"})).into_response();
        }
    }
    let mut request = p.http.request(method, format!("{}{}", p.sim_url, uri));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.body(body).send().await {
        Ok(r) => {
            let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
            let content_type = r.headers().get("content-type").cloned();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut response = (status, bytes).into_response();
            if let Some(ct) = content_type {
                response.headers_mut().insert("content-type", ct);
            }
            response
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
