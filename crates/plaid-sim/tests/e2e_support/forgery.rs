//! Forged webhook JWTs: a token re-signed with a key that is not the simulator's, keeping the
//! simulator's header (and so its `kid`) and payload.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::Value;

/// `jwt` with its signature replaced by a valid ES256 signature from a fresh P-256 key.
pub fn resign_with_foreign_key(jwt: &str) -> String {
    let (signing_input, _) = jwt.rsplit_once('.').expect("a compact JWS");
    let foreign = SigningKey::random(&mut rand::rngs::OsRng);
    let signature: Signature = foreign.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// The decoded JOSE header of `jwt`.
pub fn header(jwt: &str) -> Value {
    let encoded = jwt.split('.').next().expect("a compact JWS");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(encoded).expect("base64url header")).expect("JSON header")
}

/// A token with `header` (any JSON) over `jwt`'s payload, signed by a fresh P-256 key.
pub fn with_header(jwt: &str, header: &Value) -> String {
    let payload = jwt.split('.').nth(1).expect("a compact JWS");
    let encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
    resign_with_foreign_key(&format!("{encoded_header}.{payload}.x"))
}
