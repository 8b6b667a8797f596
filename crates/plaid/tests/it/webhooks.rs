//! Webhook JWT verification and the key cache.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, TimeDelta, Utc};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use plaid::webhook::{self, Jwk, KeyCache, KeyCacheConfig, Rejection, StaticKeys, verify_with_key};
use serde_json::json;
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_partial_json, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

const KID: &str = "bfbd5111-8e33-4643-8ced-b2e642a72f3c";

/// Plaid sends bodies pretty-printed with 2-space indentation; the hash is over these bytes.
const BODY: &[u8] = b"{\n  \"environment\": \"sandbox\",\n  \"historical_update_complete\": false,\n  \"initial_update_complete\": true,\n  \"item_id\": \"wz666MBjYWTp2PDzzggYhM6oWWmBb\",\n  \"webhook_code\": \"SYNC_UPDATES_AVAILABLE\",\n  \"webhook_type\": \"TRANSACTIONS\"\n}";

struct Signer {
    key: SigningKey,
    kid: String,
}

impl Signer {
    fn new(kid: &str) -> Self {
        Signer { key: SigningKey::random(&mut rand::thread_rng()), kid: kid.into() }
    }

    fn jwk(&self) -> Jwk {
        let point = self.key.verifying_key().to_encoded_point(false);
        Jwk {
            alg: "ES256".into(),
            crv: "P-256".into(),
            kid: self.kid.clone(),
            kty: "EC".into(),
            key_use: "sig".into(),
            x: B64.encode(point.x().unwrap()),
            y: B64.encode(point.y().unwrap()),
            created_at: 1_560_466_150,
            expired_at: None,
        }
    }

    fn sign_with_header(&self, header: serde_json::Value, body: &[u8], iat: DateTime<Utc>) -> String {
        let payload = json!({
            "iat": iat.timestamp(),
            "request_body_sha256": hex::encode(Sha256::digest(body)),
        });
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(payload.to_string()));
        let signature: Signature = self.key.sign(input.as_bytes());
        format!("{input}.{}", B64.encode(signature.to_bytes()))
    }

    fn sign(&self, body: &[u8], iat: DateTime<Utc>) -> String {
        self.sign_with_header(json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"}), body, iat)
    }
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_000_000, 0).unwrap()
}

/// A token with an arbitrary header and a syntactically fine payload and signature.
fn forged(header: serde_json::Value) -> String {
    let payload = json!({"iat": now().timestamp(), "request_body_sha256": hex::encode(Sha256::digest(BODY))});
    format!("{}.{}.{}", B64.encode(header.to_string()), B64.encode(payload.to_string()), B64.encode([7u8; 64]))
}

#[test]
fn a_valid_signature_verifies() {
    let signer = Signer::new(KID);
    let jwt = signer.sign(BODY, now() - TimeDelta::seconds(10));
    let claims = verify_with_key(BODY, &jwt, &signer.jwk(), now()).unwrap();
    assert_eq!(claims.kid, KID);
    assert_eq!(claims.issued_at, now() - TimeDelta::seconds(10));
    assert_eq!(claims.request_body_sha256, hex::encode(Sha256::digest(BODY)));
}

#[test]
fn other_algorithms_are_rejected() {
    let signer = Signer::new(KID);
    for alg in ["none", "HS256", "RS256", "ES384", "es256", ""] {
        let jwt = forged(json!({"alg": alg, "kid": KID}));
        assert_eq!(
            verify_with_key(BODY, &jwt, &signer.jwk(), now()),
            Err(Rejection::UnsupportedAlgorithm(alg.into())),
            "{alg}"
        );
    }
    // alg none with an empty signature part.
    let none = format!("{}.{}.", B64.encode(json!({"alg": "none", "kid": KID}).to_string()), B64.encode("{}"));
    assert!(matches!(verify_with_key(BODY, &none, &signer.jwk(), now()), Err(Rejection::UnsupportedAlgorithm(_))));
}

#[test]
fn a_missing_kid_is_rejected() {
    let signer = Signer::new(KID);
    let jwt = signer.sign_with_header(json!({"alg": "ES256"}), BODY, now());
    assert_eq!(verify_with_key(BODY, &jwt, &signer.jwk(), now()), Err(Rejection::MissingKid));
}

#[test]
fn malformed_tokens_are_rejected() {
    let jwk = Signer::new(KID).jwk();
    for jwt in ["", "abc", "a.b", "a.b.c.d", "!!!.e30.e30", "e30.e30.e30"] {
        let result = verify_with_key(BODY, jwt, &jwk, now());
        assert!(matches!(result, Err(Rejection::MalformedJwt(_))), "{jwt}: {result:?}");
    }
}

#[test]
fn the_wrong_key_is_rejected() {
    let signer = Signer::new(KID);
    let impostor = Signer::new(KID);
    let jwt = impostor.sign(BODY, now());
    assert_eq!(verify_with_key(BODY, &jwt, &signer.jwk(), now()), Err(Rejection::BadSignature));
    // A key for another kid is not used at all.
    let other = Signer::new("other-kid");
    assert_eq!(verify_with_key(BODY, &signer.sign(BODY, now()), &other.jwk(), now()), Err(Rejection::UnknownKey));
}

#[test]
fn a_tampered_payload_or_signature_is_rejected() {
    let signer = Signer::new(KID);
    let jwt = signer.sign(BODY, now());
    let parts: Vec<&str> = jwt.split('.').collect();
    let other_payload = B64.encode(
        json!({"iat": now().timestamp(), "request_body_sha256": hex::encode(Sha256::digest(b"{}"))}).to_string(),
    );
    let swapped = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
    assert_eq!(verify_with_key(b"{}", &swapped, &signer.jwk(), now()), Err(Rejection::BadSignature));
    let mut signature = B64.decode(parts[2]).unwrap();
    signature[10] ^= 1;
    let flipped = format!("{}.{}.{}", parts[0], parts[1], B64.encode(signature));
    assert_eq!(verify_with_key(BODY, &flipped, &signer.jwk(), now()), Err(Rejection::BadSignature));
}

#[test]
fn a_body_changed_by_one_byte_is_rejected() {
    let signer = Signer::new(KID);
    let jwt = signer.sign(BODY, now());
    let mut body = BODY.to_vec();
    let last = body.len() - 2;
    body[last] = b' ';
    assert_eq!(verify_with_key(&body, &jwt, &signer.jwk(), now()), Err(Rejection::BodyMismatch));
    // Re-serializing the JSON (same content, other whitespace) also fails: bytes are hashed.
    let compact = serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(BODY).unwrap()).unwrap();
    assert_eq!(verify_with_key(&compact, &jwt, &signer.jwk(), now()), Err(Rejection::BodyMismatch));
}

#[test]
fn iat_must_be_recent_and_not_in_the_future() {
    let signer = Signer::new(KID);
    let jwk = signer.jwk();
    let six_minutes_old = signer.sign(BODY, now() - TimeDelta::minutes(6));
    assert_eq!(verify_with_key(BODY, &six_minutes_old, &jwk, now()), Err(Rejection::Stale));
    let almost_five = signer.sign(BODY, now() - TimeDelta::seconds(299));
    assert!(verify_with_key(BODY, &almost_five, &jwk, now()).is_ok());
    let slight_skew = signer.sign(BODY, now() + TimeDelta::seconds(30));
    assert!(verify_with_key(BODY, &slight_skew, &jwk, now()).is_ok());
    let future = signer.sign(BODY, now() + TimeDelta::minutes(10));
    assert_eq!(verify_with_key(BODY, &future, &jwk, now()), Err(Rejection::IssuedInFuture));
}

#[test]
fn an_expired_key_is_rejected() {
    let signer = Signer::new(KID);
    let mut jwk = signer.jwk();
    jwk.expired_at = Some(1_700_000_000);
    assert_eq!(verify_with_key(BODY, &signer.sign(BODY, now()), &jwk, now()), Err(Rejection::KeyExpired));
}

#[test]
fn keys_that_are_not_p256_are_rejected() {
    let signer = Signer::new(KID);
    let jwt = signer.sign(BODY, now());
    let mut rsa = signer.jwk();
    rsa.kty = "RSA".into();
    assert!(matches!(verify_with_key(BODY, &jwt, &rsa, now()), Err(Rejection::InvalidKey(_))));
    let mut off_curve = signer.jwk();
    off_curve.y = B64.encode([1u8; 32]);
    assert!(matches!(verify_with_key(BODY, &jwt, &off_curve, now()), Err(Rejection::InvalidKey(_))));
}

#[tokio::test]
async fn verify_needs_the_header_and_a_known_key() {
    let signer = Signer::new(KID);
    let keys = StaticKeys(vec![signer.jwk()]);
    let jwt = signer.sign(BODY, now());
    assert!(webhook::verify(BODY, Some(&jwt), &keys, now()).await.is_ok());
    assert_eq!(webhook::verify(BODY, None, &keys, now()).await, Err(Rejection::MissingHeader));
    assert_eq!(webhook::verify(BODY, Some("  "), &keys, now()).await, Err(Rejection::MissingHeader));
    let stranger = Signer::new("unknown-kid");
    assert_eq!(
        webhook::verify(BODY, Some(&stranger.sign(BODY, now())), &keys, now()).await,
        Err(Rejection::UnknownKey)
    );
}

fn key_response(jwk: &Jwk) -> ResponseTemplate {
    json(&json!({"key": jwk, "request_id": "key-req"}).to_string())
}

#[tokio::test]
async fn key_cache_fetches_an_unknown_kid_once() {
    let server = MockServer::start().await;
    let signer = Signer::new(KID);
    Mock::given(path("/webhook_verification_key/get"))
        .and(body_partial_json(json!({"key_id": KID})))
        .respond_with(key_response(&signer.jwk()))
        .expect(1)
        .mount(&server)
        .await;
    let cache = KeyCache::new(client(&server));
    for _ in 0..3 {
        let jwt = signer.sign(BODY, now());
        webhook::verify(BODY, Some(&jwt), &cache, now()).await.unwrap();
    }
}

#[tokio::test]
async fn key_cache_honours_expired_at() {
    let server = MockServer::start().await;
    let signer = Signer::new(KID);
    let mut expired = signer.jwk();
    expired.expired_at = Some(1_700_000_000);
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(key_response(&expired))
        .expect(1)
        .mount(&server)
        .await;
    let cache = KeyCache::new(client(&server));
    for _ in 0..2 {
        let jwt = signer.sign(BODY, now());
        assert_eq!(webhook::verify(BODY, Some(&jwt), &cache, now()).await, Err(Rejection::KeyExpired));
    }
}

#[tokio::test]
async fn kids_unknown_to_plaid_are_negatively_cached() {
    let server = MockServer::start().await;
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(plaid_error(400, "INVALID_INPUT", "INVALID_WEBHOOK_VERIFICATION_KEY_ID"))
        .expect(1)
        .mount(&server)
        .await;
    let cache = KeyCache::new(client(&server));
    let forger = Signer::new("forged-kid");
    for _ in 0..3 {
        let jwt = forger.sign(BODY, now());
        assert_eq!(webhook::verify(BODY, Some(&jwt), &cache, now()).await, Err(Rejection::UnknownKey));
    }
}

#[tokio::test]
async fn a_flood_of_forged_kids_is_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(plaid_error(400, "INVALID_INPUT", "INVALID_WEBHOOK_VERIFICATION_KEY_ID"))
        .expect(3)
        .mount(&server)
        .await;
    let cache = KeyCache::with_config(
        client(&server),
        KeyCacheConfig { max_fetches_per_minute: 3, ..KeyCacheConfig::default() },
    );
    let mut throttled = 0;
    for i in 0..20 {
        let forger = Signer::new(&format!("forged-{i}"));
        match webhook::verify(BODY, Some(&forger.sign(BODY, now())), &cache, now()).await {
            Err(Rejection::UnknownKey) => {}
            Err(Rejection::KeyFetch(_)) => throttled += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(throttled, 17);
}

/// Forged kids may only use the unvouched share of the fetch budget: after a flood that exhausts it, a kid the
/// caller vouches for (a genuine webhook after a key rotation) is still fetched at once.
#[tokio::test]
async fn a_flood_of_forged_kids_leaves_the_reserve_for_a_vouched_new_key() {
    let server = MockServer::start().await;
    let genuine = Signer::new("rotated-genuine-kid");
    Mock::given(path("/webhook_verification_key/get"))
        .and(body_partial_json(json!({"key_id": "rotated-genuine-kid"})))
        .respond_with(key_response(&genuine.jwk()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(plaid_error(400, "INVALID_INPUT", "INVALID_WEBHOOK_VERIFICATION_KEY_ID"))
        .expect(4)
        .mount(&server)
        .await;
    let cache = KeyCache::new(client(&server));
    let mut throttled = 0;
    for i in 0..50 {
        let forger = Signer::new(&format!("forged-{i}"));
        match webhook::verify(BODY, Some(&forger.sign(BODY, now())), &cache, now()).await {
            Err(Rejection::UnknownKey) => {}
            Err(Rejection::KeyFetch(_)) => throttled += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(throttled, 46, "only the unvouched share (4 a minute) went to forged kids");
    let key = cache.key_vouched("rotated-genuine-kid").await.unwrap().expect("the genuine key is fetched");
    let verified = webhook::verify(BODY, Some(&genuine.sign(BODY, now())), &StaticKeys(vec![key]), now()).await;
    assert!(verified.is_ok(), "{verified:?}");
    // Once fetched, an unvouched lookup of the same kid is a cache hit, and `cached` answers it without a fetch;
    // a forged kid (known to be unknown) and one never seen are not cached keys.
    assert!(webhook::verify(BODY, Some(&genuine.sign(BODY, now())), &cache, now()).await.is_ok());
    assert_eq!(cache.cached("rotated-genuine-kid").map(|k| k.kid), Some("rotated-genuine-kid".to_owned()));
    assert!(cache.cached("forged-0").is_none() && cache.cached("never-seen").is_none());
}

#[tokio::test]
async fn kids_that_cannot_be_plaids_are_refused_without_a_fetch() {
    let server = MockServer::start().await;
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let cache = KeyCache::new(client(&server));
    for kid in ["", "../../etc/passwd", "kid with spaces", &"k".repeat(65)] {
        let forger = Signer::new(kid);
        let result = webhook::verify(BODY, Some(&forger.sign(BODY, now())), &cache, now()).await;
        assert!(matches!(result, Err(Rejection::UnknownKey | Rejection::MissingKid)), "{kid:?}: {result:?}");
    }
}

#[tokio::test]
async fn bad_algorithms_never_trigger_a_key_fetch() {
    let server = MockServer::start().await;
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    let cache = KeyCache::new(client(&server));
    for alg in ["none", "HS256", "RS256"] {
        let jwt = forged(json!({"alg": alg, "kid": KID}));
        assert_eq!(
            webhook::verify(BODY, Some(&jwt), &cache, now()).await,
            Err(Rejection::UnsupportedAlgorithm(alg.into()))
        );
    }
}

#[tokio::test]
async fn key_fetch_failures_are_reported() {
    let server = MockServer::start().await;
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR"))
        .mount(&server)
        .await;
    let cache = KeyCache::new(client(&server));
    let signer = Signer::new(KID);
    let result = webhook::verify(BODY, Some(&signer.sign(BODY, now())), &cache, now()).await;
    assert!(matches!(result, Err(Rejection::KeyFetch(_))), "{result:?}");
}

#[test]
fn verified_bodies_parse_as_webhooks() {
    let webhook = plaid::Webhook::from_slice(BODY).unwrap();
    assert_eq!(
        webhook.event,
        plaid::WebhookEvent::SyncUpdatesAvailable { initial_update_complete: true, historical_update_complete: false }
    );
}

#[tokio::test]
async fn a_stale_key_is_refreshed_and_kept_when_the_refresh_fails() {
    let server = MockServer::start().await;
    let signer = Signer::new(KID);
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(key_response(&signer.jwk()))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR"))
        .expect(1)
        .mount(&server)
        .await;
    // ttl zero: every lookup refreshes.
    let cache = KeyCache::with_config(
        client(&server),
        KeyCacheConfig { ttl: std::time::Duration::ZERO, ..KeyCacheConfig::default() },
    );
    for _ in 0..2 {
        let jwt = signer.sign(BODY, now());
        webhook::verify(BODY, Some(&jwt), &cache, now()).await.unwrap();
    }
}

#[tokio::test]
async fn a_refresh_learns_that_a_key_expired() {
    let server = MockServer::start().await;
    let signer = Signer::new(KID);
    let mut expired = signer.jwk();
    expired.expired_at = Some(1_700_000_000);
    Mock::given(path("/webhook_verification_key/get"))
        .respond_with(key_response(&signer.jwk()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/webhook_verification_key/get")).respond_with(key_response(&expired)).mount(&server).await;
    let cache = KeyCache::with_config(
        client(&server),
        KeyCacheConfig { ttl: std::time::Duration::ZERO, ..KeyCacheConfig::default() },
    );
    let jwt = signer.sign(BODY, now());
    assert!(webhook::verify(BODY, Some(&jwt), &cache, now()).await.is_ok());
    assert_eq!(webhook::verify(BODY, Some(&jwt), &cache, now()).await, Err(Rejection::KeyExpired));
}
