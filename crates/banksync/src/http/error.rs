//! The API's one error type and its wire form `{"error": {"code", "message"}}`.
//!
//! Handlers return [`ApiError`]; each variant names its status. Client errors carry a stable machine-readable
//! `code` and a sentence a person can act on. Server errors are logged with their full cause chain and answered
//! with a generic message, so a 5xx body never leaks SQL, paths or upstream responses.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub type ApiResult<T> = Result<T, ApiError>;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a value is invalid.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no valid session cookie or bearer token.
    #[error("authentication required")]
    Unauthorized,
    /// 401 from `POST /api/session`: the same answer for an unknown user and a wrong password.
    #[error("wrong user name or password")]
    InvalidCredentials,
    /// 401 from `POST /webhooks/plaid`: the `Plaid-Verification` signature is missing or does not check out.
    #[error("webhook verification failed")]
    InvalidWebhook,
    /// 403: authenticated, but the request is refused (e.g. a missing CSRF token).
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: unknown id — also for ids that belong to another user, so existence is not revealed.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// 409: the request conflicts with the current state (duplicate link, Item needs re-login, …).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413: the body is larger than the route accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415: the body is not JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 429: throttled (our own cooldowns or Plaid's rate limits).
    #[error("{message}")]
    TooManyRequests { code: &'static str, message: String },
    /// 503 `busy` with `Retry-After`: a bounded resource (the password-hashing pool) is full; try again shortly.
    #[error("the server is busy checking other passwords; try again in {retry_after_secs} s")]
    Busy { retry_after_secs: u64 },
    /// 502/503: Plaid (or the bank behind it) failed; the message is safe to show.
    #[error("{message}")]
    Upstream { status: StatusCode, code: String, message: String },
    /// 500: a bug or an infrastructure failure. Logged in full, answered generically.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict { code, message: message.into() }
    }

    /// 503 for a database that cannot serve right now ([`crate::store::StoreError::outage`]): the cause is logged,
    /// the client gets the code and a sentence saying what is wrong, and retries later.
    pub fn database_outage(error: &crate::store::StoreError) -> Self {
        let (code, message) = error.outage().unwrap_or(crate::store::Outage::Unavailable).describe();
        tracing::error!(error = format!("{error:#}"), code, "database unavailable");
        ApiError::Upstream { status: StatusCode::SERVICE_UNAVAILABLE, code: code.into(), message: message.into() }
    }

    /// A store error met outside a handler's own mapping (e.g. while authenticating): an outage is a 503, anything
    /// else an internal error with `context`.
    pub fn store(error: crate::store::StoreError, context: &'static str) -> Self {
        if error.outage().is_some() {
            return ApiError::database_outage(&error);
        }
        ApiError::Internal(anyhow::Error::new(error).context(context))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::InvalidCredentials | ApiError::InvalidWebhook => {
                StatusCode::UNAUTHORIZED
            }
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Upstream { status, .. } => *status,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &str {
        match self {
            ApiError::BadRequest { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::TooManyRequests { code, .. } => code,
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InvalidWebhook => "invalid_webhook",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Upstream { code, .. } => code,
            ApiError::Busy { .. } => "busy",
            ApiError::Internal(_) => "internal",
        }
    }
}

/// Every error answer's body: `{"error": {"code", "message"}}`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable, e.g. `not_found`, `invalid_query`, `unauthorized`, `csrf_token_invalid`, or
    /// Plaid's error code in lower case.
    #[schema(example = "not_found")]
    pub code: String,
    /// A sentence a person can act on. 5xx answers never carry internals.
    #[schema(example = "item not found")]
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(cause) => {
                // `{:#}` prints the whole context chain on one line; the client only gets the generic sentence.
                tracing::error!(error = format!("{cause:#}"), "request failed");
                "an internal error occurred; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let mut response =
            (status, Json(ErrorBody { error: ErrorDetail { code: self.code().to_owned(), message } })).into_response();
        // A bearer token or the session cookie would help; a webhook's signature is not a credential to retry with.
        if matches!(self, ApiError::Unauthorized | ApiError::InvalidCredentials) {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        if let ApiError::Busy { retry_after_secs } = self {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, retry_after_secs.into());
        }
        response
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                ApiError::UnsupportedMediaType("expected a JSON body with Content-Type: application/json".into())
            }
            JsonRejection::JsonSyntaxError(e) => {
                ApiError::bad_request("malformed_json", format!("malformed JSON: {}", e.body_text()))
            }
            JsonRejection::JsonDataError(e) => ApiError::bad_request("invalid_body", e.body_text()),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge
            }
            other => ApiError::bad_request("invalid_body", other.body_text()),
        }
    }
}

/// Plaid's answers become client-visible errors with Plaid's code (lower-cased) and a sentence for the user
/// (`display_message` when Plaid sent one). Nothing from the request — access tokens included — is echoed.
impl From<plaid::Error> for ApiError {
    fn from(error: plaid::Error) -> Self {
        use plaid::codes;
        match &error {
            plaid::Error::Api { error: plaid_error, .. } => {
                let code = plaid_error.error_code.as_str();
                let status = match code {
                    codes::INVALID_PUBLIC_TOKEN | codes::INVALID_LINK_TOKEN => StatusCode::BAD_REQUEST,
                    codes::ITEM_LOGIN_REQUIRED => StatusCode::CONFLICT,
                    _ if plaid_error.error_type == plaid::ErrorType::RateLimitExceeded => StatusCode::TOO_MANY_REQUESTS,
                    _ if code.starts_with("INSTITUTION_")
                        || plaid_error.error_type == plaid::ErrorType::InstitutionError =>
                    {
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    _ => StatusCode::BAD_GATEWAY,
                };
                tracing::warn!(error_code = code, request_id = ?plaid_error.request_id, "Plaid returned an error");
                ApiError::Upstream {
                    status,
                    code: if code.is_empty() { "plaid_error".into() } else { code.to_ascii_lowercase() },
                    message: plaid_error.user_message(),
                }
            }
            plaid::Error::Timeout { .. } => {
                tracing::warn!(error = %error, "Plaid call timed out");
                ApiError::Upstream {
                    status: StatusCode::GATEWAY_TIMEOUT,
                    code: "plaid_timeout".into(),
                    message: "The bank took too long to answer. Please try again later.".into(),
                }
            }
            plaid::Error::Transport { .. } | plaid::Error::Decode { .. } | plaid::Error::Throttled { .. } => {
                tracing::warn!(error = %error, "Plaid call failed");
                ApiError::Upstream {
                    status: StatusCode::BAD_GATEWAY,
                    code: "plaid_unavailable".into(),
                    message: "Plaid could not be reached or answered unexpectedly. Please try again later.".into(),
                }
            }
            _ => ApiError::Internal(anyhow::Error::new(error)),
        }
    }
}

/// Store errors that reach a handler unhandled. `NotFound` should usually be mapped with
/// [`StoreResultExt::or_not_found`] to name the missing thing.
impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match error {
            StoreError::NotFound => ApiError::NotFound("resource"),
            StoreError::Conflict(message) => ApiError::conflict("conflict", message),
            StoreError::InvalidInput(message) => ApiError::bad_request("invalid_input", message),
            error @ StoreError::Other(_) if error.outage().is_some() => ApiError::database_outage(&error),
            StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}

impl From<crate::auth::hash_pool::PoolError> for ApiError {
    fn from(error: crate::auth::hash_pool::PoolError) -> Self {
        use crate::auth::hash_pool::PoolError;
        match error {
            PoolError::Busy { retry_after } => ApiError::Busy { retry_after_secs: retry_after.as_secs().max(1) },
            PoolError::Failed(e) => ApiError::Internal(e.context("password hashing")),
        }
    }
}

impl From<crate::link::LinkError> for ApiError {
    fn from(error: crate::link::LinkError) -> Self {
        use crate::link::LinkError;
        match error {
            LinkError::Plaid(e) => e.into(),
            LinkError::NotFound => ApiError::NotFound("item"),
            LinkError::Conflict(message) => ApiError::conflict("institution_already_linked", message),
            LinkError::ReplacedNotFound => ApiError::NotFound("item to replace"),
            LinkError::InvalidReplace(message) => ApiError::bad_request("invalid_replaces_item_id", message),
            LinkError::ReplaceConflict(message) => ApiError::conflict("replacement_pending", message),
            LinkError::Store(e) => e.into(),
            LinkError::Vault(e) => ApiError::Internal(anyhow::Error::new(e).context("token vault")),
        }
    }
}

impl From<crate::sync::SyncError> for ApiError {
    fn from(error: crate::sync::SyncError) -> Self {
        use crate::sync::SyncError;
        match error {
            SyncError::Plaid(e) => e.into(),
            SyncError::Store(crate::store::StoreError::NotFound) => ApiError::NotFound("item"),
            SyncError::Store(e) => e.into(),
            SyncError::Vault(e) => ApiError::Internal(anyhow::Error::new(e).context("token vault")),
            e @ SyncError::TooManyRestarts(_) => ApiError::Upstream {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "sync_restarts_exhausted".into(),
                message: e.to_string(),
            },
            SyncError::Other(message) => ApiError::Internal(anyhow::anyhow!("sync failed: {message}")),
        }
    }
}

impl From<crate::balances::BalanceError> for ApiError {
    fn from(error: crate::balances::BalanceError) -> Self {
        use crate::balances::BalanceError;
        match error {
            BalanceError::NotFound => ApiError::NotFound("item"),
            BalanceError::Store(e) => e.into(),
        }
    }
}

pub trait StoreResultExt<T> {
    /// `NotFound` becomes a 404 naming `what`; other errors convert as usual.
    fn or_not_found(self, what: &'static str) -> ApiResult<T>;
}

impl<T> StoreResultExt<T> for Result<T, crate::store::StoreError> {
    fn or_not_found(self, what: &'static str) -> ApiResult<T> {
        self.map_err(|e| match e {
            crate::store::StoreError::NotFound => ApiError::NotFound(what),
            other => other.into(),
        })
    }
}

/// `axum::Json` whose rejections come back in our error format, and which takes only a JSON object: every request
/// body of this API is one, and serde alone would also read a struct from an array (`[null, null]` as a PATCH's
/// note and category, accepted with 200 until schemathesis found it).
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for AppJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(request, state).await?;
        if !value.is_object() {
            return Err(ApiError::bad_request("invalid_body", "the body must be a JSON object"));
        }
        T::deserialize(value).map(AppJson).map_err(|e| {
            ApiError::bad_request(
                "invalid_body",
                format!("Failed to deserialize the JSON body into the target type: {e}"),
            )
        })
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::to_bytes;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let error = ApiError::Internal(anyhow::anyhow!("SELECT * FROM secrets failed at /var/lib/banksync"));
        let (status, body) = body_of(error).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["error"]["code"], "internal");
        let text = body.to_string();
        assert!(!text.contains("SELECT") && !text.contains("/var/lib"), "{text}");
    }

    #[tokio::test]
    async fn client_errors_keep_code_and_message() {
        let (status, body) = body_of(ApiError::NotFound("item")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"]["code"], "not_found");
        assert_eq!(body["error"]["message"], "item not found");
    }
}
