//! The Plaid simulator as the tests run it: its settings, a client for it, and its control and Link APIs over HTTP.
//! Shared by the app harness (tests/common/app.rs), the service-layer tests (tests/support) and the job tests.

use plaid_sim::SimConfig;
use serde_json::{Value, json};

pub const SIM_CLIENT_ID: &str = "test-client";
pub const SIM_SECRET: &str = "test-sim-secret";

/// Simulator settings for tests: the tests' credentials, no rate limits (tests make many calls quickly) and no
/// webhook deliveries (nothing listens unless a test asks for them).
pub fn sim_config() -> SimConfig {
    SimConfig {
        client_id: SIM_CLIENT_ID.into(),
        secret: SIM_SECRET.into(),
        rate_limits: false,
        deliver_webhooks: false,
        ..SimConfig::default()
    }
}

/// A Plaid client for the simulator at `sim_url`, with the tests' credentials.
pub fn plaid_client(sim_url: &str) -> plaid::PlaidClient {
    let env = plaid::Environment::Custom(sim_url.parse().unwrap());
    plaid::PlaidClient::new(plaid::ClientConfig::new(env, SIM_CLIENT_ID, SIM_SECRET.to_owned())).unwrap()
}

/// A POST to the simulator's control or Link API; panics unless it succeeds.
pub async fn post(http: &reqwest::Client, sim_url: &str, path: &str, body: Value) -> Value {
    let response = http.post(format!("{sim_url}{path}")).json(&body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "simulator {path}: {status} {body}");
    body
}

/// A GET from the simulator's control API; panics unless it succeeds.
pub async fn get(http: &reqwest::Client, sim_url: &str, path: &str) -> Value {
    let response = http.get(format!("{sim_url}{path}")).send().await.unwrap();
    assert!(response.status().is_success(), "simulator {path}: {}", response.status());
    response.json().await.unwrap()
}

/// Goes through the simulator's Link UI backend with `link_token`, logging in as the good sandbox user at the
/// `institution_index`-th bank (or at the Item's own bank in update mode). Returns the session as it started and
/// the submit's answer (`public_token`, `metadata`).
pub async fn link(http: &reqwest::Client, sim_url: &str, link_token: &str, institution_index: usize) -> (Value, Value) {
    let session = post(http, sim_url, "/link/session/start", json!({"link_token": link_token})).await;
    let institution_id = match session["institution"]["institution_id"].as_str() {
        Some(id) => id.to_owned(),
        None => session["institutions"][institution_index]["institution_id"].as_str().unwrap().to_owned(),
    };
    let done = post(
        http,
        sim_url,
        "/link/session/submit",
        json!({
            "link_token": link_token,
            "link_session_id": session["link_session_id"],
            "institution_id": institution_id,
            "username": "user_good",
            "password": "pass_good",
        }),
    )
    .await;
    (session, done)
}
