//! `/webhook_verification_key/get`: the JWK for a webhook JWT's `kid`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde_json::json;

use super::errors::ApiError;
use super::{ApiResult, prelude, req_str, respond};
use crate::state::SimState;

pub async fn get(State(state): State<Arc<SimState>>, headers: HeaderMap, body: Bytes) -> Response {
    respond(run(&state, &headers, &body).await)
}

async fn run(state: &SimState, headers: &HeaderMap, body: &Bytes) -> ApiResult {
    let req = prelude(state, "/webhook_verification_key/get", headers, body, &["key_id"]).await?;
    let kid = req_str(&req, "", "key_id")?;
    let key = state.webhooks.jwk(kid).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
            "invalid key_id provided. note that key_ids are specific to Plaid environments, and verification requests must be made to the same environment that the webhook was sent from",
        )
    })?;
    Ok(json!({ "key": key }))
}
