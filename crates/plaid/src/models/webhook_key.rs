//! `/webhook_verification_key/get` and the JWK it returns.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookVerificationKeyGetResponse {
    pub key: Jwk,
    #[serde(default)]
    pub request_id: String,
}

/// A webhook signing public key (spec `JWKPublicKey`): an EC P-256 key, `x`/`y` base64url.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    #[serde(default)]
    pub alg: String,
    #[serde(default)]
    pub crv: String,
    pub kid: String,
    #[serde(default)]
    pub kty: String,
    #[serde(rename = "use", default)]
    pub key_use: String,
    pub x: String,
    pub y: String,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: i64,
    /// Unix seconds; set once Plaid has retired the key. Such keys must be rejected.
    #[serde(default)]
    pub expired_at: Option<i64>,
}
