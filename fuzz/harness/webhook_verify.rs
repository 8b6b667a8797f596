//! Fuzz harness: Plaid webhook verification (`plaid::webhook::verify` and its pure core `verify_with_key`).
//!
//! Shared, byte for byte, by the libFuzzer target `fuzz/fuzz_targets/webhook_verify.rs` and by the replay test
//! `crates/plaid/tests/it/fuzz_corpus.rs`, which runs every committed corpus file through [`run`] in CI.
//!
//! Input: the `Plaid-Verification` header value, a newline, then the raw body. The key is fixed (derived from a
//! constant scalar) and so is the clock, so an input that verifies today verifies forever; [`signed`] builds such
//! inputs for the seed corpus. Properties: no panic on any input; an accepted webhook's claims match the key, the
//! clock window and the SHA-256 of exactly the body given; the header-handling entry point agrees with the core.

use std::future::Future;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use plaid::webhook::{Jwk, MAX_AGE, MAX_FUTURE_SKEW, StaticKeys, verify, verify_with_key};
use sha2::{Digest, Sha256};

pub const KID: &str = "fuzz-key-1";

/// The clock every input is judged at.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_735_000_000, 0).unwrap()
}

fn signing_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::from_slice(&[0x5a; 32]).expect("a valid P-256 scalar"))
}

pub fn jwk() -> &'static Jwk {
    static JWK: OnceLock<Jwk> = OnceLock::new();
    JWK.get_or_init(|| {
        let point = signing_key().verifying_key().to_encoded_point(false);
        Jwk {
            alg: "ES256".into(),
            crv: "P-256".into(),
            kid: KID.into(),
            kty: "EC".into(),
            key_use: "sig".into(),
            x: B64.encode(point.x().unwrap()),
            y: B64.encode(point.y().unwrap()),
            created_at: 1_700_000_000,
            expired_at: None,
        }
    })
}

/// A correctly signed input (header line + body) issued at `now() - age_secs`. (Used by the replay test to write
/// seeds; the fuzz target itself never calls it.)
#[allow(dead_code)]
pub fn signed(body: &[u8], age_secs: i64) -> Vec<u8> {
    let header = format!(r#"{{"alg":"ES256","kid":"{KID}","typ":"JWT"}}"#);
    let payload = format!(
        r#"{{"iat":{},"request_body_sha256":"{}"}}"#,
        now().timestamp() - age_secs,
        hex::encode(Sha256::digest(body))
    );
    let input = format!("{}.{}", B64.encode(header), B64.encode(payload));
    let signature: Signature = signing_key().sign(input.as_bytes());
    let mut out = format!("{input}.{}\n", B64.encode(signature.to_bytes())).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Polls a future that never waits (the static key source answers at once).
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("verify waited on a static key source"),
    }
}

/// Runs one input; panics when a property breaks. Returns whether the webhook was accepted.
pub fn run(data: &[u8]) -> bool {
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(data.len());
    let (header, body) = (&data[..split], data.get(split + 1..).unwrap_or_default());
    let header = String::from_utf8_lossy(header);
    let core = verify_with_key(body, &header, jwk(), now());
    if let Ok(claims) = &core {
        assert_eq!(claims.kid, KID);
        assert_eq!(claims.request_body_sha256, hex::encode(Sha256::digest(body)));
        assert!(now() - claims.issued_at <= MAX_AGE && claims.issued_at - now() <= MAX_FUTURE_SKEW);
    }
    let keys = StaticKeys(vec![jwk().clone()]);
    let full = ready(verify(body, Some(&header), &keys, now()));
    assert_eq!(full.is_ok(), core.is_ok(), "verify and verify_with_key disagree: {full:?} vs {core:?}");
    assert_eq!(full.as_ref().ok(), core.as_ref().ok());
    core.is_ok()
}
