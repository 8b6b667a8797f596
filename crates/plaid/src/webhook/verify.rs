//! The verification core.

use std::future::Future;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, TimeDelta, Utc};
use p256::ecdsa::VerifyingKey;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::models::Jwk;

/// The header that carries the JWT (match it case-insensitively).
pub const VERIFICATION_HEADER: &str = "Plaid-Verification";

/// Oldest acceptable `iat`.
pub const MAX_AGE: TimeDelta = TimeDelta::minutes(5);

/// How far in the future `iat` may be, for clock skew between Plaid and us.
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::seconds(60);

/// base64url, with or without padding (JWS uses none; accepting both costs nothing).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// What a valid webhook signature proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedClaims {
    /// The key that signed it.
    pub kid: String,
    /// When Plaid signed it.
    pub issued_at: DateTime<Utc>,
    /// Lowercase hex SHA-256 of the body, equal to the body we were given.
    pub request_body_sha256: String,
}

/// Why a webhook was not accepted. Each variant is a distinct failure so callers can log and
/// count them; none of them should ever lead to reading the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("missing Plaid-Verification header")]
    MissingHeader,
    #[error("malformed JWT: {0}")]
    MalformedJwt(&'static str),
    #[error("unsupported JWT algorithm {0:?} (only ES256 is accepted)")]
    UnsupportedAlgorithm(String),
    #[error("JWT header has no kid")]
    MissingKid,
    #[error("no verification key for this kid")]
    UnknownKey,
    #[error("verification key has expired")]
    KeyExpired,
    #[error("verification key is not a usable P-256 key: {0}")]
    InvalidKey(&'static str),
    #[error("signature does not verify")]
    BadSignature,
    #[error("JWT is older than 5 minutes")]
    Stale,
    #[error("JWT is issued in the future")]
    IssuedInFuture,
    #[error("body does not match request_body_sha256")]
    BodyMismatch,
    #[error("could not fetch the verification key: {0}")]
    KeyFetch(String),
}

/// Looks up webhook verification keys by `kid`.
pub trait KeySource {
    /// `Ok(None)` means Plaid does not know the kid; `Err` means we could not find out.
    fn key(&self, kid: &str) -> impl Future<Output = Result<Option<Jwk>, Error>> + Send;
}

/// A fixed set of keys; for tests and for callers that fetch keys themselves.
#[derive(Debug, Clone, Default)]
pub struct StaticKeys(pub Vec<Jwk>);

impl StaticKeys {
    /// The key for `kid`, if it is one of these: all a fixed set ever answers (like [`super::KeyCache::cached`]).
    pub fn cached(&self, kid: &str) -> Option<Jwk> {
        self.0.iter().find(|k| k.kid == kid).cloned()
    }
}

impl KeySource for StaticKeys {
    async fn key(&self, kid: &str) -> Result<Option<Jwk>, Error> {
        Ok(self.cached(kid))
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iat: i64,
    request_body_sha256: String,
}

struct Parts<'a> {
    /// The whole compact token, trimmed.
    jwt: &'a str,
    header_b64: &'a str,
    payload_b64: &'a str,
    signature_b64: &'a str,
    kid: String,
}

/// Splits the compact JWS and checks its header, without trusting anything in it.
fn parse(jwt: &str) -> Result<Parts<'_>, Rejection> {
    let jwt = jwt.trim();
    let mut pieces = jwt.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (pieces.next(), pieces.next(), pieces.next(), pieces.next())
    else {
        return Err(Rejection::MalformedJwt("expected three dot-separated parts"));
    };
    let header_bytes = B64URL.decode(header_b64).map_err(|_| Rejection::MalformedJwt("header is not base64url"))?;
    let header: Header = serde_json::from_slice(&header_bytes)
        .map_err(|_| Rejection::MalformedJwt("header is not a JSON object with alg"))?;
    if header.alg != "ES256" {
        return Err(Rejection::UnsupportedAlgorithm(header.alg));
    }
    let kid = header.kid.filter(|kid| !kid.is_empty()).ok_or(Rejection::MissingKid)?;
    Ok(Parts { jwt, header_b64, payload_b64, signature_b64, kid })
}

/// The key as a SEC1 uncompressed point (`0x04 || x || y`), checked to be a P-256 ES256 key on the curve.
fn sec1_point(key: &Jwk) -> Result<[u8; 65], Rejection> {
    if key.kty != "EC" {
        return Err(Rejection::InvalidKey("kty is not EC"));
    }
    if key.crv != "P-256" {
        return Err(Rejection::InvalidKey("crv is not P-256"));
    }
    if !key.alg.is_empty() && key.alg != "ES256" {
        return Err(Rejection::InvalidKey("alg is not ES256"));
    }
    let x = B64URL.decode(&key.x).map_err(|_| Rejection::InvalidKey("x is not base64url"))?;
    let y = B64URL.decode(&key.y).map_err(|_| Rejection::InvalidKey("y is not base64url"))?;
    if x.len() != 32 || y.len() != 32 {
        return Err(Rejection::InvalidKey("coordinates must be 32 bytes"));
    }
    let mut sec1 = [0x04; 65];
    sec1[1..33].copy_from_slice(&x);
    sec1[33..].copy_from_slice(&y);
    // The curve check is a few field operations; doing it here keeps "not a usable key" apart from "bad signature".
    VerifyingKey::from_sec1_bytes(&sec1).map_err(|_| Rejection::InvalidKey("not on the curve"))?;
    Ok(sec1)
}

/// Verifies a webhook against a known key. Pure: no I/O, the clock is a parameter.
pub fn verify_with_key(body: &[u8], jwt: &str, key: &Jwk, now: DateTime<Utc>) -> Result<VerifiedClaims, Rejection> {
    let parts = parse(jwt)?;
    verify_parts(body, &parts, key, now)
}

fn verify_parts(body: &[u8], parts: &Parts<'_>, key: &Jwk, now: DateTime<Utc>) -> Result<VerifiedClaims, Rejection> {
    if key.kid != parts.kid {
        return Err(Rejection::UnknownKey);
    }
    if key.expired_at.is_some() {
        return Err(Rejection::KeyExpired);
    }
    let public_key = sec1_point(key)?;

    let signature_bytes =
        B64URL.decode(parts.signature_b64).map_err(|_| Rejection::MalformedJwt("signature is not base64url"))?;
    // JWS ES256 signatures are the raw 64-byte r || s, not DER.
    if signature_bytes.len() != 64 {
        return Err(Rejection::BadSignature);
    }
    // The signed input is the JWT's first two parts as sent, i.e. the token up to its second dot.
    let signing_input = &parts.jwt[..parts.header_b64.len() + 1 + parts.payload_b64.len()];
    // ring's P-256 (assembly, fixed-size r || s) rather than the pure-Rust `p256` verifier: the signature check
    // was the largest part of a webhook's receipt (see benches/webhook_receiver.rs). Both reject a zero or
    // out-of-range r or s and verify the same ECDSA; the tests sign with `p256` and verify here.
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &public_key)
        .verify(signing_input.as_bytes(), &signature_bytes)
        .map_err(|_| Rejection::BadSignature)?;

    // Only now is the payload trusted enough to read.
    let payload = B64URL.decode(parts.payload_b64).map_err(|_| Rejection::MalformedJwt("payload is not base64url"))?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|_| Rejection::MalformedJwt("payload lacks iat or request_body_sha256"))?;

    let issued_at =
        DateTime::<Utc>::from_timestamp(claims.iat, 0).ok_or(Rejection::MalformedJwt("iat out of range"))?;
    if now - issued_at > MAX_AGE {
        return Err(Rejection::Stale);
    }
    if issued_at - now > MAX_FUTURE_SKEW {
        return Err(Rejection::IssuedInFuture);
    }

    let actual = hex::encode(Sha256::digest(body));
    let expected = claims.request_body_sha256.as_bytes();
    if !bool::from(actual.as_bytes().ct_eq(expected)) {
        return Err(Rejection::BodyMismatch);
    }

    Ok(VerifiedClaims { kid: parts.kid.clone(), issued_at, request_body_sha256: actual })
}

/// Verifies a webhook: `header_value` is the `Plaid-Verification` header (if any), `keys`
/// resolves its `kid`. The algorithm and kid are checked before any key lookup, so forged
/// tokens with `alg: none` cause no network traffic.
pub async fn verify<K: KeySource + ?Sized>(
    body: &[u8],
    header_value: Option<&str>,
    keys: &K,
    now: DateTime<Utc>,
) -> Result<VerifiedClaims, Rejection> {
    let jwt = header_value.map(str::trim).filter(|v| !v.is_empty()).ok_or(Rejection::MissingHeader)?;
    let parts = parse(jwt)?;
    let key =
        keys.key(&parts.kid).await.map_err(|e| Rejection::KeyFetch(e.to_string()))?.ok_or(Rejection::UnknownKey)?;
    verify_parts(body, &parts, &key, now)
}
