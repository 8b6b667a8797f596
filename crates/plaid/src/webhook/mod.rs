//! Plaid webhook verification (<https://plaid.com/docs/api/webhooks/webhook-verification/>).
//!
//! Plaid signs each webhook with an ES256 JWT in the `Plaid-Verification` header. Its payload
//! is `{"iat": <unix seconds>, "request_body_sha256": "<lowercase hex>"}`. Verification:
//!
//! 1. decode the JWT header without trusting it; require `alg == "ES256"` exactly and a `kid`;
//! 2. get the key for `kid` ([`KeySource`]; [`KeyCache`] caches `/webhook_verification_key/get`)
//!    and refuse keys with `expired_at` set;
//! 3. check the ES256 signature (raw `r || s`, 64 bytes, base64url);
//! 4. refuse tokens whose `iat` is more than 5 minutes old, or more than a minute in the future;
//! 5. compare SHA-256 of the raw body bytes with `request_body_sha256` in constant time.
//!
//! [`verify_with_key`] is the pure core (bytes, token, key, clock in; verdict out);
//! [`verify`] adds the header handling and the key lookup.

mod key_cache;
mod verify;

pub use key_cache::{KeyCache, KeyCacheConfig, plausible_kid};
pub use verify::{
    KeySource, MAX_AGE, MAX_FUTURE_SKEW, Rejection, StaticKeys, VERIFICATION_HEADER, VerifiedClaims, verify,
    verify_with_key,
};

pub use crate::models::Jwk;
