//! Cross-cutting middleware.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;

/// Answers 503 in our error format when a handler runs longer than `limit`. The handler's future is dropped, which
/// cancels its pending Plaid or database calls (database transactions roll back on drop).
pub async fn time_limit(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(limit_secs = limit.as_secs(), "request exceeded its time budget");
            ApiError::Upstream {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "request_timeout".into(),
                message: format!("the request did not finish within {} seconds; please try again", limit.as_secs()),
            }
            .into_response()
        }
    }
}

/// API answers are private and never cached; no page may frame them.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    headers.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    headers.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
    response
}
