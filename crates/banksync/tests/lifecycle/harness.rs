//! A running banksync (the real `Application`) with a fresh SQLite database, a Plaid simulator that delivers real
//! signed webhooks to it, and a small key proxy between the two: banksync's `PLAID_BASE_URL` points at the proxy,
//! which forwards every Plaid call to the simulator except `/webhook_verification_key/get` for the test's own keys.
//! That lets tests sign webhooks the way an attacker (or a clock) would: old `iat`, expired keys, wrong algorithms.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use banksync::auth::password::hash_password;
use banksync::auth::token::{hash_secret, new_api_token};
use banksync::config::{Config, Settings};
use banksync::startup::Application;
use banksync::store::Store;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub const SIM_CLIENT_ID: &str = "lifecycle-client";
pub const SIM_SECRET: &str = "lifecycle-secret";
pub const PASSWORD: &str = "correct horse battery";

pub fn sim_config() -> plaid_sim::SimConfig {
    plaid_sim::SimConfig {
        client_id: SIM_CLIENT_ID.into(),
        secret: SIM_SECRET.into(),
        rate_limits: false,
        deliver_webhooks: true,
        record_exchanges: true,
        ..plaid_sim::SimConfig::default()
    }
}

/// A webhook signing key the test controls, served by the key proxy.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub signing: SigningKey,
    pub expired_at: Option<i64>,
}

impl TestKey {
    pub fn new(kid: &str, expired: bool) -> Self {
        Self {
            kid: kid.to_owned(),
            signing: SigningKey::random(&mut rand::rngs::OsRng),
            expired_at: expired.then(|| chrono::Utc::now().timestamp() - 60),
        }
    }

    fn jwk(&self) -> Value {
        let point = self.signing.verifying_key().to_encoded_point(false);
        json!({
            "alg": "ES256", "crv": "P-256", "kid": self.kid, "kty": "EC", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()),
            "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
            "created_at": chrono::Utc::now().timestamp() - 3600,
            "expired_at": self.expired_at,
        })
    }

    /// A `Plaid-Verification` JWT for `body`, issued `age_secs` ago.
    pub fn sign(&self, body: &[u8], age_secs: i64) -> String {
        let header = json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
        sign_with(&self.signing, &header, &claims(body, age_secs))
    }
}

pub fn claims(body: &[u8], age_secs: i64) -> Value {
    json!({"iat": chrono::Utc::now().timestamp() - age_secs, "request_body_sha256": hex::encode(Sha256::digest(body))})
}

pub fn sign_with(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let sig: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

/// An unsigned token with any header (for `alg: none`, HS256, RS256 forgeries).
pub fn unsigned(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[derive(Clone)]
struct Proxy {
    sim_url: String,
    keys: Arc<Mutex<HashMap<String, TestKey>>>,
    http: reqwest::Client,
}

async fn proxy(State(p): State<Proxy>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if uri.path() == "/webhook_verification_key/get" {
        let kid = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v.get("key_id").and_then(Value::as_str).map(str::to_owned));
        let key = kid.and_then(|kid| p.keys.lock().unwrap().get(&kid).cloned());
        if let Some(key) = key {
            return axum::Json(json!({"key": key.jwk(), "request_id": "proxy"})).into_response();
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

pub struct TestUser {
    pub token: String,
}

pub struct TestApp {
    pub address: String,
    pub sim_url: String,
    /// banksync's PLAID_BASE_URL (the key proxy).
    pub plaid_url: String,
    pub data_path: std::path::PathBuf,
    pub store: Arc<Store>,
    pub db: Db,
    pub http: reqwest::Client,
    pub user: TestUser,
    pub keys: Arc<Mutex<HashMap<String, TestKey>>>,
    /// Kept alive as long as the app.
    _sim: plaid_sim::RunningSim,
    _data_dir: tempfile::TempDir,
}

/// Settings every lifecycle app uses; `tweak` adjusts them (intervals, cooldown).
pub async fn spawn_app(tweak: impl FnOnce(&mut Settings)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info,banksync=debug").with_test_writer().try_init();
    }
    let sim = plaid_sim::Simulator::new(sim_config()).spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let keys = Arc::new(Mutex::new(HashMap::new()));
    let proxy_state = Proxy { sim_url: sim.url(), keys: keys.clone(), http: reqwest::Client::new() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_url = format!("http://{}", listener.local_addr().unwrap());
    let router = axum::Router::new().fallback(proxy).with_state(proxy_state);
    tokio::spawn(async move { axum::serve(listener, router).await });

    let data_dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        // Port 0 for both: banksync fixes the public URL up to its real port, so the simulator's webhooks reach it.
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.path().to_owned()),
        plaid_client_id: Some(SIM_CLIENT_ID.into()),
        plaid_secret: Some(SIM_SECRET.into()),
        plaid_base_url: Some(proxy_url.clone()),
        sync_cooldown: Some("0s".into()),
        ..Settings::default()
    };
    tweak(&mut settings);
    let database_url = settings.database_url.clone();
    let config = Config::resolve(settings).expect("valid test config");
    let app = Application::build(config).await.expect("application builds");
    let address = app.url();
    let store = app.store();
    tokio::spawn(app.run_until_stopped());

    let db = match database_url.as_deref() {
        Some(url) if url.starts_with("postgres") => Db::Postgres(sqlx::PgPool::connect(url).await.unwrap()),
        _ => Db::Sqlite(
            sqlx::SqlitePool::connect(&format!("sqlite://{}", data_dir.path().join("banksync.db").display()))
                .await
                .unwrap(),
        ),
    };
    let user = seed_user(&store, "alice").await;
    let http = reqwest::Client::new();
    TestApp {
        address,
        sim_url: sim.url(),
        plaid_url: proxy_url,
        data_path: data_dir.path().to_owned(),
        store,
        db,
        http,
        user,
        keys,
        _sim: sim,
        _data_dir: data_dir,
    }
}

/// The app's database, for the tests' own read-only checks (`tweak` may point the app at PostgreSQL).
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

pub async fn seed_user(store: &Arc<Store>, username: &str) -> TestUser {
    let hash = hash_password(PASSWORD.to_owned().into()).await.unwrap();
    let user = store.create_user(username, &hash).await.unwrap();
    let token = new_api_token();
    store.create_api_token(&user.id, "test", &hash_secret(&token)).await.unwrap();
    TestUser { token }
}

impl TestApp {
    pub fn add_key(&self, key: &TestKey) {
        self.keys.lock().unwrap().insert(key.kid.clone(), key.clone());
    }

    pub async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.http.request(method, format!("{}{path}", self.address)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> Value {
        let (status, body) = self.call(&self.user.token, reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(&self.user.token, reqwest::Method::POST, path, Some(body)).await
    }

    /// Posts a raw webhook; `(status, body)`.
    pub async fn post_webhook(&self, body: &[u8], jwt: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/webhooks/plaid", self.address))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(jwt) = jwt {
            request = request.header("plaid-verification", jwt);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        let response = self.http.post(format!("{}{path}", self.sim_url)).json(&body).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "simulator {path}: {status} {body}");
        body
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        self.http.get(format!("{}{path}", self.sim_url)).send().await.unwrap().json().await.unwrap()
    }

    /// Link (through the simulator's Link backend) with `link_token`; returns the public token.
    pub async fn complete_link(&self, link_token: &str, institution_index: usize) -> String {
        let session = self.sim_post("/link/session/start", json!({"link_token": link_token})).await;
        let institution_id = match session["institution"]["institution_id"].as_str() {
            Some(id) => id.to_owned(),
            None => session["institutions"][institution_index]["institution_id"].as_str().unwrap().to_owned(),
        };
        let done = self
            .sim_post(
                "/link/session/submit",
                json!({"link_token": link_token, "link_session_id": session["link_session_id"],
                       "institution_id": institution_id, "username": "user_good", "password": "pass_good"}),
            )
            .await;
        done["public_token"].as_str().unwrap().to_owned()
    }

    /// Links a bank as `token`'s user and waits for the link flow's first sync; returns Plaid's item_id.
    pub async fn link_bank_as(&self, token: &str, institution_index: usize) -> String {
        let (status, link) = self.call(token, reqwest::Method::POST, "/api/link/token", Some(json!({}))).await;
        assert_eq!(status, 200, "{link}");
        let public_token = self.complete_link(link["link_token"].as_str().unwrap(), institution_index).await;
        let (status, item) = self
            .call(token, reqwest::Method::POST, "/api/link/exchange", Some(json!({"public_token": public_token})))
            .await;
        assert_eq!(status, 201, "{item}");
        let item_id = item["item_id"].as_str().or_else(|| item["item"]["item_id"].as_str()).unwrap().to_owned();
        let what = format!("first sync of {item_id}");
        eventually(&what, || async { self.count_runs(&item_id, None).await >= 1 && !self.syncing(&item_id).await })
            .await;
        item_id
    }

    pub async fn link_bank(&self, institution_index: usize) -> String {
        self.link_bank_as(&self.user.token.clone(), institution_index).await
    }

    /// A `count(*)` query with text parameters, on whichever backend the app runs.
    pub async fn count(&self, sql: &str, params: &[Option<&str>]) -> i64 {
        match &self.db {
            Db::Sqlite(pool) => {
                let mut query = sqlx::query_scalar(sql);
                for p in params {
                    query = query.bind(*p);
                }
                query.fetch_one(pool).await.unwrap()
            }
            Db::Postgres(pool) => {
                let mut query = sqlx::query_scalar(sql);
                for p in params {
                    query = query.bind(*p);
                }
                query.fetch_one(pool).await.unwrap()
            }
        }
    }

    /// Finished sync runs of the Item, optionally only those with this trigger.
    pub async fn count_runs(&self, item_id: &str, trigger: Option<&str>) -> i64 {
        self.count(
            "SELECT count(*) FROM sync_runs r JOIN items i ON i.id = r.item_ref \
             WHERE i.item_id = $1 AND r.status != 'running' AND ($2 IS NULL OR r.triggered_by = $2)",
            &[Some(item_id), trigger],
        )
        .await
    }

    pub async fn syncing(&self, item_id: &str) -> bool {
        self.count(
            "SELECT count(*) FROM sync_runs r JOIN items i ON i.id = r.item_ref \
             WHERE i.item_id = $1 AND r.status = 'running'",
            &[Some(item_id)],
        )
        .await
            > 0
    }

    /// (webhook deliveries recorded, jobs ever enqueued).
    pub async fn side_effects(&self) -> (i64, i64) {
        (
            self.count("SELECT count(*) FROM webhook_events", &[]).await,
            self.count("SELECT count(*) FROM jobs", &[]).await,
        )
    }

    /// Jobs not finished yet.
    pub async fn open_jobs(&self) -> i64 {
        self.count("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')", &[]).await
    }

    pub async fn item_status(&self, item_id: &str) -> String {
        self.get(&format!("/api/items/{item_id}")).await["health"]["status"].as_str().unwrap_or_default().to_owned()
    }

    /// The API's transactions of the Item as (transaction_id, amount, pending), sorted.
    pub async fn api_transactions(&self, item_id: &str) -> Vec<(String, rust_decimal::Decimal, bool)> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/api/transactions?item_id={item_id}&limit=500");
            if let Some(c) = &cursor {
                path.push_str(&format!(
                    "&cursor={}",
                    url::form_urlencoded::byte_serialize(c.as_bytes()).collect::<String>()
                ));
            }
            let page = self.get(&path).await;
            all.extend(page["transactions"].as_array().unwrap().iter().map(triple));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The simulator's ground truth, in the same shape.
    pub async fn sim_transactions(&self, item_id: &str) -> Vec<(String, rust_decimal::Decimal, bool)> {
        let truth = self.sim_get(&format!("/sim/items/{item_id}/transactions")).await;
        let mut all: Vec<_> = truth["transactions"].as_array().unwrap().iter().map(triple).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

fn triple(t: &Value) -> (String, rust_decimal::Decimal, bool) {
    // The API writes money as a decimal string, the simulator (like Plaid) as a JSON number.
    let text = t["amount"].as_str().map_or_else(|| t["amount"].to_string(), str::to_owned);
    let amount = text.parse().unwrap_or_else(|_| panic!("amount of {t}"));
    (t["transaction_id"].as_str().unwrap().to_owned(), amount, t["pending"].as_bool().unwrap())
}

/// Waits (up to 20 s) until `check` holds.
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::eventually::eventually(what, Duration::from_secs(20), check).await;
}

/// A SYNC_UPDATES_AVAILABLE body the way Plaid sends it (2-space indented JSON).
pub fn sync_updates_body(item_id: &str) -> Vec<u8> {
    serde_json::to_vec_pretty(&json!({
        "webhook_type": "TRANSACTIONS",
        "webhook_code": "SYNC_UPDATES_AVAILABLE",
        "item_id": item_id,
        "initial_update_complete": true,
        "historical_update_complete": true,
        "environment": "sandbox"
    }))
    .unwrap()
}
