//! API keys: `PLAID-CLIENT-ID`/`PLAID-SECRET` headers or `client_id`/`secret` body fields.

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use super::Req;
use super::errors::ApiError;
use crate::config::SimConfig;

fn credential<'a>(headers: &'a HeaderMap, req: &'a Req, header: &str, field: &str) -> Option<&'a str> {
    headers.get(header).and_then(|v| v.to_str().ok()).or_else(|| req.get(field).and_then(|v| v.as_str()))
}

/// The secret is compared in constant time so the check does not leak it through timing.
pub fn check(config: &SimConfig, headers: &HeaderMap, req: &Req) -> Result<(), ApiError> {
    let client_id = credential(headers, req, "plaid-client-id", "client_id");
    let secret = credential(headers, req, "plaid-secret", "secret");
    match (client_id, secret) {
        (Some(id), Some(secret))
            if id == config.client_id && bool::from(secret.as_bytes().ct_eq(config.secret.as_bytes())) =>
        {
            Ok(())
        }
        _ => Err(ApiError::invalid_api_keys()),
    }
}
