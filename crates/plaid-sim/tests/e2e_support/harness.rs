//! One simulator per test, served on `127.0.0.1:0`, and a `PlaidClient` pointed at it with
//! short timeouts, fast retries and a recording observer. `/sim/*` control calls go through a
//! plain reqwest client: they are the test's hands on the bank, not part of the Plaid API.

use std::sync::Arc;
use std::time::Duration;

use plaid::{
    AccessToken, ClientConfig, Environment, PlaidClient, Product, RetryPolicy, SandboxPublicTokenCreateRequest,
    Timeouts, Transaction,
};
use plaid_sim::{RunningSim, SimConfig, Simulator};
use serde_json::{Value, json};
use url::Url;

use super::observer::RecordingObserver;

/// First Platypus Bank, the sandbox's default institution.
pub const PLATYPUS: &str = "ins_109508";

/// A simulator config for tests: a little balance latency (the call is still asynchronous),
/// data ready at once, everything else at its default (rate limits on, webhooks delivered).
pub fn test_config() -> SimConfig {
    SimConfig {
        balance_latency: Duration::from_millis(5)..=Duration::from_millis(20),
        product_ready_delay: Duration::ZERO,
        ..SimConfig::default()
    }
}

/// Short limits: everything here runs on loopback. Sync pages of 500 and bulk Items get more.
pub fn test_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        default: Duration::from_secs(10),
        transactions_sync: Duration::from_secs(30),
        balance: Duration::from_secs(10),
    }
}

/// Three attempts, 10 ms apart (jittered), so retry tests take milliseconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::new(3, Duration::from_millis(10))
}

pub struct Harness {
    pub sim: RunningSim,
    pub client: PlaidClient,
    pub observer: Arc<RecordingObserver>,
    http: reqwest::Client,
}

/// An Item as the application holds it.
pub struct LinkedItem {
    pub access_token: AccessToken,
    pub item_id: String,
}

impl Harness {
    pub async fn start(config: SimConfig) -> Harness {
        let sim = Simulator::new(config)
            .spawn("127.0.0.1:0".parse().expect("loopback address"))
            .await
            .expect("simulator starts on loopback");
        let observer = Arc::new(RecordingObserver::default());
        let client = PlaidClient::new(Harness::client_config_for(&sim, None))
            .expect("client builds")
            .with_observer(observer.clone());
        Harness { sim, client, observer, http: reqwest::Client::new() }
    }

    /// The configuration of the harness's client; `secret` overrides the simulator's secret.
    pub fn client_config(&self, secret: Option<&str>) -> ClientConfig {
        Harness::client_config_for(&self.sim, secret)
    }

    fn client_config_for(sim: &RunningSim, secret: Option<&str>) -> ClientConfig {
        let config = sim.simulator().config();
        let url = Url::parse(&sim.url()).expect("simulator URL");
        let secret = secret.unwrap_or(&config.secret).to_owned();
        ClientConfig {
            timeouts: test_timeouts(),
            retry: fast_retry(),
            ..ClientConfig::new(Environment::Custom(url), config.client_id.clone(), secret)
        }
    }

    /// `/sandbox/public_token/create` then `/item/public_token/exchange`.
    pub async fn link(&self, request: SandboxPublicTokenCreateRequest) -> LinkedItem {
        let created = self.client.sandbox_public_token_create(&request).await.expect("sandbox public token");
        let exchanged = self.client.item_public_token_exchange(&created.public_token).await.expect("exchange");
        LinkedItem { access_token: exchanged.access_token, item_id: exchanged.item_id }
    }

    /// A First Platypus Bank Item (user_good) with `days` of history.
    pub async fn link_platypus(&self, days: u32) -> LinkedItem {
        self.link(SandboxPublicTokenCreateRequest::new(PLATYPUS, [Product::Transactions]).days_requested(days)).await
    }

    // ---- /sim control ----------------------------------------------------------------------

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.url())
    }

    async fn control(&self, request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.expect("control request");
        let status = response.status();
        let body: Value = response.json().await.expect("control response is JSON");
        assert!(status.is_success(), "control call failed with {status}: {body}");
        body
    }

    async fn sim_post(&self, path: &str, body: Value) -> Value {
        self.control(self.http.post(self.url(path)).json(&body)).await
    }

    async fn sim_get(&self, path: &str) -> Value {
        self.control(self.http.get(self.url(path))).await
    }

    /// Moves the Item's bank `days` days forward; returns the `{added, modified, removed, posted}` report.
    pub async fn advance(&self, item_id: &str, days: u32) -> Value {
        self.sim_post(&format!("/sim/items/{item_id}/advance"), json!({ "days": days })).await
    }

    pub async fn reset_login(&self, item_id: &str) {
        self.sim_post(&format!("/sim/items/{item_id}/reset_login"), json!({})).await;
    }

    /// Registers a fault (`POST /sim/faults`); returns its id.
    pub async fn inject_fault(&self, spec: Value) -> String {
        let body = self.sim_post("/sim/faults", spec).await;
        body["fault_id"].as_str().expect("fault_id").to_owned()
    }

    /// How often the fault has fired so far (counted when a request matches it, before any latency or hang).
    pub async fn fault_fired(&self, fault_id: &str) -> u64 {
        let list = self.sim_get("/sim/faults").await;
        let fault = list.as_array().expect("faults").iter().find(|f| f["fault_id"] == fault_id).expect("listed");
        fault["fired"].as_u64().expect("fired")
    }

    /// Waits (up to 30 s) until the fault has fired `times`: that many requests reached the simulator.
    pub async fn wait_fired(&self, fault_id: &str, times: u64) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while self.fault_fired(fault_id).await < times {
            assert!(tokio::time::Instant::now() < deadline, "fault {fault_id} never fired {times} times");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn clear_faults(&self) {
        self.control(self.http.delete(self.url("/sim/faults"))).await;
    }

    /// The Item's transactions as a complete sync must leave them, decoded by the client's model.
    pub async fn ground_truth(&self, item_id: &str) -> Vec<Transaction> {
        let mut body = self.sim_get(&format!("/sim/items/{item_id}/transactions")).await;
        let Value::Array(list) = body["transactions"].take() else {
            panic!("ground truth has no transactions array");
        };
        list.into_iter().map(|t| Transaction::from_value(t).expect("ground truth decodes as a Transaction")).collect()
    }

    /// `transactions_count` of the Item in `GET /sim/items`.
    pub async fn sim_transactions_count(&self, item_id: &str) -> u64 {
        let items = self.sim_get("/sim/items").await;
        let item = items
            .as_array()
            .expect("item list")
            .iter()
            .find(|i| i["item_id"] == item_id)
            .unwrap_or_else(|| panic!("{item_id} not in /sim/items"));
        item["transactions_count"].as_u64().expect("transactions_count")
    }

    /// `POST /link/session/start`: what the drop-in Link would show for `link_token`.
    pub async fn link_session_start(&self, link_token: &str) -> Value {
        self.control(self.http.post(self.url("/link/session/start")).json(&json!({ "link_token": link_token }))).await
    }

    /// `POST /link/session/submit` with `username`/`password` at `institution_id`, as the Link
    /// form does; returns (HTTP status, body).
    pub async fn link_session_submit(
        &self,
        link_token: &str,
        link_session_id: &str,
        institution_id: &str,
        username: &str,
        password: &str,
    ) -> (u16, Value) {
        let body = json!({
            "link_token": link_token,
            "link_session_id": link_session_id,
            "institution_id": institution_id,
            "username": username,
            "password": password,
        });
        let response = self.http.post(self.url("/link/session/submit")).json(&body).send().await.expect("submit");
        let status = response.status().as_u16();
        (status, response.json().await.expect("submit answers JSON"))
    }

    /// `POST /sim/keys/rotate`: the simulator signs with a new key from now on; returns its kid.
    pub async fn rotate_webhook_key(&self) -> String {
        let body = self.sim_post("/sim/keys/rotate", json!({})).await;
        body["kid"].as_str().expect("kid").to_owned()
    }
}
