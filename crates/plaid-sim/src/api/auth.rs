//! API keys: `PLAID-CLIENT-ID`/`PLAID-SECRET` headers or `client_id`/`secret` body fields.

use axum::http::HeaderMap;
use subtle_free_eq::ct_eq;

use super::Req;
use super::errors::ApiError;
use crate::config::SimConfig;

mod subtle_free_eq {
    /// Constant-time comparison so the secret check does not leak timing.
    pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

fn credential<'a>(headers: &'a HeaderMap, req: &'a Req, header: &str, field: &str) -> Option<&'a str> {
    headers.get(header).and_then(|v| v.to_str().ok()).or_else(|| req.get(field).and_then(|v| v.as_str()))
}

pub fn check(config: &SimConfig, headers: &HeaderMap, req: &Req) -> Result<(), ApiError> {
    let client_id = credential(headers, req, "plaid-client-id", "client_id");
    let secret = credential(headers, req, "plaid-secret", "secret");
    match (client_id, secret) {
        (Some(id), Some(secret)) if id == config.client_id && ct_eq(secret.as_bytes(), config.secret.as_bytes()) => {
            Ok(())
        }
        _ => Err(ApiError::invalid_api_keys()),
    }
}
