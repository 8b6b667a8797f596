//! Cross-cutting middleware.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::server::ServerLimits;

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

/// Reads the whole request body within the body-read timeout ([`ServerLimits::body_read`]) before any handler runs —
/// every route, `/webhooks/plaid` included, whose time budgets start only after this. A body that does not arrive
/// in time is answered `408 request_timeout` with `Connection: close` (hyper then closes the connection instead of
/// reading the rest); one beyond [`super::MAX_BODY_BYTES`] is a 413 without reading further. Bodies here are small
/// JSON documents, so holding one in memory is what the handlers did anyway.
pub async fn read_body(request: Request, next: Next) -> Response {
    let limit = request.extensions().get::<ServerLimits>().copied().unwrap_or_default().body_read;
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(limit, axum::body::to_bytes(body, super::MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|inner| inner.downcast_ref::<http_body_util::LengthLimitError>().is_some());
            if too_large {
                return close(ApiError::PayloadTooLarge.into_response());
            }
            return close(ApiError::bad_request("bad_request", "the request body could not be read").into_response());
        }
        Err(_) => {
            tracing::info!(limit_secs = limit.as_secs_f64(), "request body did not arrive in time");
            let body = serde_json::json!({"error": {"code": "request_timeout", "message":
                format!("the request body did not arrive within {} seconds", limit.as_secs_f64())}});
            return close((StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response());
        }
    };
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

/// Asks hyper to close the connection after this answer (the rest of the request was not read).
fn close(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The CSP of every non-page answer (JSON, the event stream, files): nothing may load, nothing may frame it.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";
/// `Strict-Transport-Security` when the public URL is https.
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Security headers computed once at start from the mode (see `contracts.md`): the page's Content-Security-Policy
/// names Plaid Link's origin and Plaid's API origin (real keys: `https://cdn.plaid.com` and
/// `https://{sandbox,production}.plaid.com`; demo: the embedded simulator's origin for both); HSTS only behind https.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    page_csp: HeaderValue,
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    pub fn new(link_origin: &str, api_origin: &str, https: bool) -> Self {
        let page_csp = HeaderValue::from_str(&page_csp(link_origin, api_origin))
            .expect("origins are ASCII serializations of URLs");
        SecurityHeaders { page_csp, hsts: https.then(|| HeaderValue::from_static(HSTS)) }
    }

    pub fn page_csp(&self) -> &str {
        self.page_csp.to_str().unwrap_or_default()
    }

    pub fn hsts(&self) -> Option<&str> {
        self.hsts.as_ref().and_then(|h| h.to_str().ok())
    }
}

impl Default for SecurityHeaders {
    /// Real Plaid's sandbox over plain http (what [`super::router`] uses when the caller gives none).
    fn default() -> Self {
        SecurityHeaders::new("https://cdn.plaid.com", "https://sandbox.plaid.com", false)
    }
}

/// The page's policy: scripts, styles and frames only from us and Link; connections only to us, Link and Plaid's
/// API; no inline script or style, no plugins, no `<base>`, no framing.
fn page_csp(link: &str, api: &str) -> String {
    let connect = if link == api { format!("'self' {link}") } else { format!("'self' {link} {api}") };
    format!(
        "default-src 'none'; script-src 'self' {link}; style-src 'self' {link}; img-src 'self' data:; \
         font-src 'self'; connect-src {connect}; frame-src {link}; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    )
}

/// API answers are private and never cached; no page may frame them. Every answer carries a CSP (the page's for
/// HTML, [`API_CSP`] for everything else) and, behind https, HSTS.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let policy = request.extensions().get::<SecurityHeaders>().cloned().unwrap_or_default();
    let mut response = next.run(request).await;
    let is_page = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let headers = response.headers_mut();
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    headers.entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    headers.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    headers.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("no-referrer"));
    let csp = if is_page { policy.page_csp } else { HeaderValue::from_static(API_CSP) };
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    if let Some(hsts) = policy.hsts {
        headers.insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_policy_with_real_keys_is_exactly_the_contract() {
        let headers = SecurityHeaders::new("https://cdn.plaid.com", "https://production.plaid.com", true);
        assert_eq!(
            headers.page_csp(),
            "default-src 'none'; script-src 'self' https://cdn.plaid.com; style-src 'self' https://cdn.plaid.com; \
             img-src 'self' data:; font-src 'self'; connect-src 'self' https://cdn.plaid.com \
             https://production.plaid.com; frame-src https://cdn.plaid.com; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'"
        );
        assert_eq!(headers.hsts.as_ref().map(|h| h.to_str().unwrap()), Some(HSTS));
    }

    #[test]
    fn demo_mode_names_the_simulator_once_and_plain_http_gets_no_hsts() {
        let headers = SecurityHeaders::new("http://127.0.0.1:4567", "http://127.0.0.1:4567", false);
        assert!(
            headers.page_csp().contains("connect-src 'self' http://127.0.0.1:4567; frame-src http://127.0.0.1:4567;")
        );
        assert!(!headers.page_csp().contains("plaid.com"));
        assert!(headers.hsts.is_none());
    }
}
