//! Webhook signing and delivery. Plaid signs each webhook with an ES256 JWT in the
//! `Plaid-Verification` header: header `{"alg":"ES256","kid":…,"typ":"JWT"}`, payload
//! `{"iat":…,"request_body_sha256":…}` where the hash covers the exact body bytes (JSON with
//! 2-space indentation). Deliveries run in background tasks with a short timeout and retries.

use std::sync::{Arc, Weak};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::clock::rfc3339;

struct KeyEntry {
    kid: String,
    signing: SigningKey,
    created_at: i64,
    expired_at: Option<i64>,
}

/// A signing key as the state journal saves it, so webhooks signed before a restart still verify
/// (`/webhook_verification_key/get` keeps answering their `kid`). `secret` is the private scalar in
/// hex: it only ever goes to the state directory, never to logs (Debug redacts it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMaterial {
    pub kid: String,
    pub secret: String,
    pub created_at: i64,
}

impl KeyMaterial {
    fn of(k: &KeyEntry) -> Self {
        Self { kid: k.kid.clone(), secret: hex::encode(k.signing.to_bytes()), created_at: k.created_at }
    }
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyMaterial")
            .field("kid", &self.kid)
            .field("secret", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// One delivery attempt, as listed by `GET /sim/webhooks`.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub url: String,
    pub webhook_type: String,
    pub webhook_code: String,
    pub item_id: String,
    pub body: Value,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: String,
}

pub struct Webhooks {
    keys: RwLock<Vec<KeyEntry>>,
    log: Mutex<Vec<Attempt>>,
    client: reqwest::Client,
    deliver: bool,
    queue: Mutex<Option<mpsc::UnboundedSender<Job>>>,
}

/// Delays before the retries of a failed delivery (Plaid: 30 s, then ×4; shortened here).
const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(4)];
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

impl Webhooks {
    pub fn new(deliver: bool) -> Self {
        let client = reqwest::Client::builder().timeout(DELIVERY_TIMEOUT).build().unwrap_or_default();
        Self {
            keys: RwLock::new(vec![Self::fresh_key()]),
            log: Mutex::new(Vec::new()),
            client,
            deliver,
            queue: Mutex::new(None),
        }
    }

    fn fresh_key() -> KeyEntry {
        KeyEntry {
            kid: uuid::Uuid::new_v4().to_string(),
            signing: SigningKey::random(&mut rand::rngs::OsRng),
            created_at: Utc::now().timestamp(),
            expired_at: None,
        }
    }

    /// A new random key, not yet in use (see [`Webhooks::install`]).
    pub fn new_key() -> KeyMaterial {
        KeyMaterial::of(&Self::fresh_key())
    }

    /// The key that signs now, for saving.
    pub fn current_key(&self) -> Option<KeyMaterial> {
        self.keys.read().last().map(KeyMaterial::of)
    }

    /// Puts `key` in use. `replace`: it becomes the only key (a restored initial key); otherwise it
    /// is a rotation and the older keys expire when it was created.
    pub fn install(&self, key: &KeyMaterial, replace: bool) -> Result<(), String> {
        let bytes = hex::decode(&key.secret).map_err(|_| format!("signing key {} is not hex", key.kid))?;
        let signing =
            SigningKey::from_slice(&bytes).map_err(|_| format!("signing key {} is not a P-256 key", key.kid))?;
        let entry = KeyEntry { kid: key.kid.clone(), signing, created_at: key.created_at, expired_at: None };
        let mut keys = self.keys.write();
        if replace {
            keys.clear();
        }
        for k in keys.iter_mut() {
            k.expired_at.get_or_insert(key.created_at);
        }
        keys.push(entry);
        Ok(())
    }

    /// The current signing key id.
    pub fn current_kid(&self) -> String {
        self.keys.read().last().map(|k| k.kid.clone()).unwrap_or_default()
    }

    /// A new key signs from now on; the old ones stay retrievable, marked expired.
    pub fn rotate(&self) -> String {
        let key = Self::new_key();
        // A key this module just made always installs.
        let _ = self.install(&key, false);
        key.kid
    }

    /// The JWK for `/webhook_verification_key/get`.
    pub fn jwk(&self, kid: &str) -> Option<Value> {
        let keys = self.keys.read();
        let k = keys.iter().find(|k| k.kid == kid)?;
        let point = k.signing.verifying_key().to_encoded_point(false);
        Some(json!({
            "alg": "ES256",
            "crv": "P-256",
            "kid": k.kid,
            "kty": "EC",
            "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(point.x()?),
            "y": URL_SAFE_NO_PAD.encode(point.y()?),
            "created_at": k.created_at,
            "expired_at": k.expired_at,
        }))
    }

    /// The `Plaid-Verification` JWT for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        let keys = self.keys.read();
        let Some(k) = keys.last() else {
            return String::new();
        };
        let header = json!({"alg": "ES256", "kid": k.kid, "typ": "JWT"});
        let payload = json!({
            "iat": Utc::now().timestamp(),
            "request_body_sha256": hex::encode(Sha256::digest(body)),
        });
        let signing_input =
            format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(payload.to_string()));
        let sig: Signature = k.signing.sign(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.log.lock().clone()
    }

    pub fn clear(&self) {
        self.log.lock().clear();
    }

    fn record(&self, a: Attempt) {
        self.log.lock().push(a);
    }

    /// Queues `body` for delivery to `url` and returns at once. First attempts go out in order
    /// from one background worker; failed deliveries are retried by their own tasks.
    pub fn send(self: &Arc<Self>, url: &str, body: Value) {
        let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let attempt = Attempt {
            url: url.to_owned(),
            webhook_type: field("webhook_type"),
            webhook_code: field("webhook_code"),
            item_id: field("item_id"),
            body: body.clone(),
            status: None,
            error: None,
            at: rfc3339(Utc::now()),
        };
        if !self.deliver {
            self.record(Attempt { error: Some("delivery disabled".to_owned()), ..attempt });
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.record(Attempt { error: Some("no async runtime to deliver from".to_owned()), ..attempt });
            return;
        };
        let job = Job { bytes: serde_json::to_vec_pretty(&body).unwrap_or_default(), attempt };
        let mut queue = self.queue.lock();
        let job = match queue.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(mpsc::error::SendError(job)) => job,
            },
            None => job,
        };
        // No live worker (first webhook, or the runtime it ran on is gone): start one.
        let (tx, rx) = mpsc::unbounded_channel();
        let _ = tx.send(job);
        runtime.spawn(worker(Arc::downgrade(self), rx));
        *queue = Some(tx);
    }

    /// One POST; records the attempt and says whether it succeeded.
    async fn attempt(&self, job: &Job) -> bool {
        let result = self
            .client
            .post(&job.attempt.url)
            .header("Content-Type", "application/json")
            .header("Plaid-Verification", self.sign(&job.bytes))
            .body(job.bytes.clone())
            .send()
            .await;
        let (status, error) = match result {
            Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
            Ok(r) => (Some(r.status().as_u16()), Some(format!("HTTP {}", r.status()))),
            Err(e) => (None, Some(transport_error(&e))),
        };
        let ok = error.is_none();
        self.record(Attempt { status, error, at: rfc3339(Utc::now()), ..job.attempt.clone() });
        ok
    }
}

#[derive(Clone)]
struct Job {
    bytes: Vec<u8>,
    attempt: Attempt,
}

/// Delivers queued webhooks in order. Holds only a weak reference so it ends with the simulator.
async fn worker(hooks: Weak<Webhooks>, mut rx: mpsc::UnboundedReceiver<Job>) {
    while let Some(job) = rx.recv().await {
        let Some(this) = hooks.upgrade() else {
            return;
        };
        if !this.attempt(&job).await {
            let weak = Arc::downgrade(&this);
            tokio::spawn(async move {
                for delay in RETRY_DELAYS {
                    tokio::time::sleep(delay).await;
                    let Some(this) = weak.upgrade() else {
                        return;
                    };
                    if this.attempt(&job).await {
                        return;
                    }
                }
            });
        }
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// The common envelope of every webhook body.
pub fn body(webhook_type: &str, webhook_code: &str, item_id: &str, extra: Value) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("webhook_type".to_owned(), json!(webhook_type));
    obj.insert("webhook_code".to_owned(), json!(webhook_code));
    obj.insert("item_id".to_owned(), json!(item_id));
    if let Value::Object(more) = extra {
        obj.extend(more);
    }
    obj.insert("environment".to_owned(), json!("sandbox"));
    Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::VerifyingKey;
    use p256::ecdsa::signature::Verifier;

    #[test]
    fn signatures_verify_with_the_published_jwk() {
        let w = Webhooks::new(false);
        let kid = w.current_kid();
        let body = br#"{"a": 1}"#;
        let jwt = w.sign(body);
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
        assert_eq!(header, json!({"alg": "ES256", "kid": kid, "typ": "JWT"}));
        let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(payload["request_body_sha256"], json!(hex::encode(Sha256::digest(body))));
        let jwk = w.jwk(&kid).expect("jwk");
        let mut sec1 = vec![4u8];
        sec1.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().expect("x")).expect("b64"));
        sec1.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().expect("y")).expect("b64"));
        let vk = VerifyingKey::from_sec1_bytes(&sec1).expect("point");
        let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).expect("b64")).expect("sig");
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(vk.verify(input.as_bytes(), &sig).is_ok());
        assert!(vk.verify(b"forged", &sig).is_err());
        let new_kid = w.rotate();
        assert_ne!(new_kid, kid);
        assert!(w.jwk(&kid).expect("old key")["expired_at"].is_i64());
        assert!(w.jwk(&new_kid).expect("new key")["expired_at"].is_null());
    }
}
