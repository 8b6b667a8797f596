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

/// Puts error responses that did not come from [`ApiError`] — axum's own rejections of a bad path or query string,
/// 405 Method Not Allowed — into our `{"error": {"code", "message"}}` format, so clients parse one shape.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text =
        axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let (code, message) = match status {
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "this route does not accept that method".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "request body too large".to_owned()),
        s if s.is_client_error() && !text.trim().is_empty() => ("bad_request", text.trim().to_owned()),
        s if s.is_client_error() => ("bad_request", "the request is invalid".to_owned()),
        _ => {
            tracing::error!(status = status.as_u16(), "unhandled server error response");
            ("internal", "an internal error occurred; it has been logged".to_owned())
        }
    };
    let mut rebuilt =
        (status, axum::Json(serde_json::json!({"error": {"code": code, "message": message}}))).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rebuilt.headers_mut().insert(name.clone(), value.clone());
        }
    }
    rebuilt
}
