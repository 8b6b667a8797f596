//! The lifecycle tests' view of the shared harness (tests/common/app.rs): every app's simulator delivers real
//! signed webhooks to it, through the key proxy (tests/common/key_proxy.rs) that serves the test's own signing keys,
//! so tests can sign webhooks the way an attacker (or a clock) would: old `iat`, expired keys, wrong algorithms.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub use crate::app::*;

/// The app every lifecycle test starts from; a test adds what it changes (settings, database).
pub fn lifecycle_app() -> AppBuilder {
    TestApp::builder().webhooks().sim(|sim| sim.record_exchanges = true)
}

pub async fn spawn_app() -> TestApp {
    lifecycle_app().spawn().await
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

impl TestApp {
    pub fn add_key(&self, key: &TestKey) {
        self.serve_webhook_key(&key.kid, key.jwk());
    }

    /// Posts a raw webhook; `(status, body)`.
    pub async fn post_webhook(&self, body: &[u8], jwt: Option<&str>) -> (u16, Value) {
        self.post_webhook_at(&self.address, body, jwt).await
    }

    /// Posts a raw webhook to the banksync at `base` (this app, or another instance on its database).
    pub async fn post_webhook_at(&self, base: &str, body: &[u8], jwt: Option<&str>) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{base}/webhooks/plaid"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(jwt) = jwt {
            request = request.header("plaid-verification", jwt);
        }
        self.reply(request.send().await.unwrap()).await.into_parts()
    }

    /// Links a bank as `token`'s user and waits for the link flow's first sync; returns Plaid's item_id.
    pub async fn link_and_sync_as(&self, token: &str, institution_index: usize) -> String {
        let item = self.link_bank_as(token, institution_index).await;
        let item_id = item["item_id"].as_str().or_else(|| item["item"]["item_id"].as_str()).unwrap().to_owned();
        let what = format!("first sync of {item_id}");
        eventually(&what, || async { self.count_runs(&item_id, None).await >= 1 && !self.syncing(&item_id).await })
            .await;
        item_id
    }

    pub async fn link_and_sync(&self, institution_index: usize) -> String {
        self.link_and_sync_as(&self.user.token, institution_index).await
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
        let item = self.get_item(item_id).await.expect(200);
        item["health"]["status"].as_str().unwrap_or_default().to_owned()
    }

    /// The API's transactions of the Item as (transaction_id, amount, pending), sorted.
    pub async fn api_transactions(&self, item_id: &str) -> Vec<(String, rust_decimal::Decimal, bool)> {
        let mut all: Vec<_> = self.all_transactions(item_id).await.iter().map(|t| triple(t, Money::Text)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The simulator's ground truth, in the same shape.
    pub async fn sim_transactions(&self, item_id: &str) -> Vec<(String, rust_decimal::Decimal, bool)> {
        let truth = self.sim_get(&format!("/sim/items/{item_id}/transactions")).await;
        let mut all: Vec<_> =
            truth["transactions"].as_array().unwrap().iter().map(|t| triple(t, Money::Number)).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

/// How a side writes money: the API as a decimal string, the simulator (like Plaid) as an exact JSON number.
#[derive(Clone, Copy)]
enum Money {
    Text,
    Number,
}

fn triple(t: &Value, money: Money) -> (String, rust_decimal::Decimal, bool) {
    let text = match (money, &t["amount"]) {
        (Money::Text, Value::String(s)) => s.clone(),
        (Money::Number, n @ Value::Number(_)) => n.to_string(),
        _ => {
            panic!("the amount must be a {} here: {t}", if matches!(money, Money::Text) { "string" } else { "number" })
        }
    };
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
