//! `POST /webhooks/plaid`: the route in front of [`WebhookReceiver`] (`crate::webhooks`). No user auth: Plaid's
//! signature in `Plaid-Verification` is checked against the raw body before anything reads it; a rejection is a
//! 401 `invalid_webhook` with no side effect, a store failure a 500 (Plaid retries), both in our error format.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::HeaderMap;
use plaid::webhook::VERIFICATION_HEADER;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody};
use crate::state::AppState;
use crate::webhooks::{MAX_BODY_BYTES, WebhookReceiver};

/// The receiver's route, with its own body limit. Its state is the receiver, taken from any state that holds one
/// (`AppState` in the service; the receiver itself in the webhook benchmark).
pub fn router<S>() -> OpenApiRouter<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<WebhookReceiver>: FromRef<S>,
{
    OpenApiRouter::new().routes(routes!(receive)).layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

impl FromRef<AppState> for Arc<WebhookReceiver> {
    fn from_ref(state: &AppState) -> Self {
        state.webhooks.clone()
    }
}

/// What the receiver did with a verified delivery.
#[derive(Serialize, utoipa::ToSchema)]
struct WebhookAck {
    /// enqueued | duplicate | updated | ignored | unknown_item
    #[schema(example = "enqueued")]
    status: &'static str,
}

/// Receives one of Plaid's webhooks.
///
/// Verified, recorded once per signed delivery, turned into a queued sync or a health update; answered at once.
#[utoipa::path(
    post,
    path = crate::webhooks::PATH,
    tag = "webhooks",
    operation_id = "receive_plaid_webhook",
    request_body(content = serde_json::Value, description = "Plaid's webhook JSON, exactly as signed",
        content_type = "application/json"),
    responses(
        (status = 200, description = "Accepted (also for unknown Items and legacy webhooks)", body = WebhookAck),
        (status = 401, description = "`invalid_webhook`: the signature is missing or wrong", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 500, description = "`internal`: the delivery could not be stored; Plaid retries it", body = ErrorBody),
    ),
    security(("plaid_verification" = [])),
)]
async fn receive(
    State(receiver): State<Arc<WebhookReceiver>>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<AppJson<WebhookAck>> {
    // HeaderMap lookups are case-insensitive, as Plaid's docs require (HTTP/2 sends the name in lower case).
    let header = headers.get(VERIFICATION_HEADER).and_then(|v| v.to_str().ok());
    let verified = receiver.verify(&body, header).await.map_err(|_| ApiError::InvalidWebhook)?;
    let handled = receiver.handle(&body, &verified).await.map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("cannot process a verified webhook; Plaid will retry it"))
    })?;
    Ok(AppJson(WebhookAck { status: handled.as_str() }))
}
