//! `spawn_app()`: a banksync server on a random port with a fresh SQLite database, talking to a Plaid simulator
//! started for the test, plus a seeded user with an API token. `TestApp` has one method per endpoint so tests
//! read as scenarios.

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use banksync::auth::password::hash_password;
use banksync::auth::token::{hash_secret, new_api_token};
use banksync::config::{Config, Settings};
use banksync::startup::Application;
use banksync::store::Store;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

pub const SIM_CLIENT_ID: &str = "test-client";
pub const SIM_SECRET: &str = "test-sim-secret";
pub const PASSWORD: &str = "correct horse battery";

/// Every log line the tests' servers write, to prove secrets never reach the log. Printed with TEST_LOG=1.
pub static LOGS: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(|| {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = CaptureWriter(buffer.clone());
    let filter = tracing_subscriber::EnvFilter::new("info,banksync=debug,plaid=debug,tower_http=debug");
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(move || sink.clone()).init();
    buffer
});

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

pub struct TestUser {
    pub username: String,
    pub token: String,
}

pub struct TestApp {
    pub address: String,
    pub sim_url: String,
    pub store: Arc<Store>,
    /// A client without cookies; requests carry the bearer token explicitly.
    pub http: reqwest::Client,
    pub user: TestUser,
    /// Every response body this app returned through the helpers, to search for leaked secrets.
    pub bodies: Mutex<Vec<String>>,
    pub data_dir: tempfile::TempDir,
    _sim: plaid_sim::RunningSim,
}

pub fn sim_config() -> plaid_sim::SimConfig {
    plaid_sim::SimConfig {
        client_id: SIM_CLIENT_ID.into(),
        secret: SIM_SECRET.into(),
        rate_limits: false,
        deliver_webhooks: false,
        ..plaid_sim::SimConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(sim_config()).await
}

pub async fn spawn_app_with(sim: plaid_sim::SimConfig) -> TestApp {
    LazyLock::force(&LOGS);
    let sim = plaid_sim::Simulator::new(sim).spawn("127.0.0.1:0".parse().unwrap()).await.expect("simulator starts");
    let data_dir = tempfile::tempdir().unwrap();
    let config = Config::resolve(Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.path().to_owned()),
        plaid_client_id: Some(SIM_CLIENT_ID.into()),
        plaid_secret: Some(SIM_SECRET.into()),
        plaid_base_url: Some(sim.url()),
        // Tests sync the same Item several times in a row; the cooldown has its own test (tests/lifecycle).
        sync_cooldown: Some("0s".into()),
        ..Settings::default()
    })
    .expect("valid test config");
    let app = Application::build(config).await.expect("application builds");
    let address = app.url();
    let store = app.store();
    tokio::spawn(app.run_until_stopped());

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let user = seed_user(&store, "alice").await;
    TestApp { address, sim_url: sim.url(), store, http, user, bodies: Mutex::new(Vec::new()), data_dir, _sim: sim }
}

/// A user with the test password and a fresh API token.
pub async fn seed_user(store: &Arc<Store>, username: &str) -> TestUser {
    let hash = hash_password(PASSWORD.to_owned().into()).await.unwrap();
    let user = store.create_user(username, &hash).await.unwrap();
    let token = new_api_token();
    store.create_api_token(&user.id, "test", &hash_secret(&token)).await.unwrap();
    TestUser { username: username.into(), token }
}

/// A decoded response.
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.body);
        self.body
    }

    /// Asserts an error response: status and `error.code`.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["error"]["code"], code, "body: {body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "body: {body}");
        body
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn reply(&self, response: Response) -> Reply {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        self.bodies.lock().unwrap().push(text.clone());
        let body =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        Reply { status, body, headers }
    }

    /// A request as `token`'s user.
    pub async fn call_as(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.reply(request.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call_as(&self.user.token, reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call_as(&self.user.token, reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.call_as(&self.user.token, reqwest::Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call_as(&self.user.token, reqwest::Method::DELETE, path, None).await
    }

    pub async fn raw_post(&self, path: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Reply {
        let response = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.user.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        self.reply(response).await
    }

    // --- banksync endpoints -------------------------------------------------------------------------------------

    pub async fn post_link_token(&self, item_id: Option<&str>) -> Reply {
        let body = match item_id {
            Some(id) => json!({"item_id": id}),
            None => json!({}),
        };
        self.post("/api/link/token", body).await
    }

    pub async fn post_exchange(&self, public_token: &str) -> Reply {
        self.post("/api/link/exchange", json!({"public_token": public_token})).await
    }

    pub async fn get_items(&self) -> Reply {
        self.get("/api/items").await
    }

    pub async fn get_item(&self, item_id: &str) -> Reply {
        self.get(&format!("/api/items/{item_id}")).await
    }

    pub async fn delete_item(&self, item_id: &str) -> Reply {
        self.delete(&format!("/api/items/{item_id}")).await
    }

    pub async fn post_sync(&self, item_id: &str) -> Reply {
        self.post(&format!("/api/items/{item_id}/sync"), json!({})).await
    }

    /// A manual sync that ran by itself. The first sync after linking runs in the background; a request arriving
    /// while it finishes joins it and gets its summary (`coalesced: true`), so ask again until a sync of our own ran.
    pub async fn post_fresh_sync(&self, item_id: &str) -> Reply {
        for _ in 0..50 {
            let reply = self.post_sync(item_id).await;
            if reply.status != 200 || reply.body["coalesced"] != true {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("every sync of {item_id} joined another one");
    }

    pub async fn post_repaired(&self, item_id: &str) -> Reply {
        self.post(&format!("/api/items/{item_id}/repaired"), json!({})).await
    }

    pub async fn get_accounts(&self) -> Reply {
        self.get("/api/accounts").await
    }

    pub async fn post_balances_refresh(&self, item_id: Option<&str>) -> Reply {
        let body = match item_id {
            Some(id) => json!({"item_id": id}),
            None => json!({}),
        };
        self.post("/api/balances/refresh", body).await
    }

    pub async fn get_balance_job(&self, job_id: &str, wait_secs: u64) -> Reply {
        self.get(&format!("/api/balances/refresh/{job_id}?wait={wait_secs}")).await
    }

    pub async fn get_transactions(&self, query: &str) -> Reply {
        self.get(&format!("/api/transactions?{query}")).await
    }

    pub async fn patch_transaction(&self, transaction_id: &str, body: Value) -> Reply {
        self.patch(&format!("/api/transactions/{transaction_id}"), body).await
    }

    /// Every transaction the API lists for `item_id`, following `next_cursor`.
    pub async fn all_transactions(&self, item_id: &str) -> Vec<Value> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("item_id={item_id}&limit=500");
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let page = self.get_transactions(&query).await.expect(200);
            all.extend(page["transactions"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => return all,
            }
        }
    }

    // --- the simulator ------------------------------------------------------------------------------------------

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}{path}", self.sim_url)).json(&body).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "simulator {path}: {status} {body}");
        body
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        let response = self.http.get(format!("{}{path}", self.sim_url)).send().await.unwrap();
        assert!(response.status().is_success(), "simulator {path}: {}", response.status());
        response.json().await.unwrap()
    }

    /// Goes through the simulator's Link UI backend with a link token: returns the public token.
    pub async fn complete_link(&self, link_token: &str, institution_index: usize) -> (String, Value) {
        let session = self.sim_post("/link/session/start", json!({"link_token": link_token})).await;
        let institution_id = match session["institution"]["institution_id"].as_str() {
            Some(id) => id.to_owned(),
            None => session["institutions"][institution_index]["institution_id"].as_str().unwrap().to_owned(),
        };
        let done = self
            .sim_post(
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
        (done["public_token"].as_str().unwrap().to_owned(), done["metadata"].clone())
    }

    /// Link token → Link → public token, for a new Item at the `institution_index`-th simulated bank.
    pub async fn public_token(&self, institution_index: usize) -> String {
        let link = self.post_link_token(None).await.expect(200);
        self.complete_link(link["link_token"].as_str().unwrap(), institution_index).await.0
    }

    /// Links a bank end to end and returns the new Item's body.
    pub async fn link_bank(&self, institution_index: usize) -> Value {
        let public_token = self.public_token(institution_index).await;
        self.post_exchange(&public_token).await.expect(201)
    }

    /// Waits (up to 10 s) until `check` holds.
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        crate::eventually::eventually(what, Duration::from_secs(10), check).await;
    }

    /// No response body so far contains an access token.
    #[track_caller]
    pub fn assert_no_access_token_in_responses(&self) {
        for body in self.bodies.lock().unwrap().iter() {
            assert!(!body.contains("access-"), "a response leaked an access token: {body}");
        }
    }
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
