//! Plaid's error bodies (spec `PlaidError`) and the HTTP statuses Plaid uses for them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_type: &'static str,
    pub error_code: String,
    pub error_message: String,
    pub display_message: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        error_type: &'static str,
        error_code: &str,
        error_message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error_type,
            error_code: error_code.to_owned(),
            error_message: error_message.into(),
            display_message: None,
        }
    }

    pub fn with_display(mut self, display: &str) -> Self {
        self.display_message = Some(display.to_owned());
        self
    }

    pub fn invalid_body() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "INVALID_BODY", "body could not be parsed as JSON")
    }

    pub fn missing_fields(fields: &[String]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "MISSING_FIELDS",
            format!("the following required fields are missing: {}", fields.join(", ")),
        )
    }

    pub fn unknown_fields(fields: &[String]) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "UNKNOWN_FIELDS",
            format!("the following fields are not recognized by this endpoint: {}", fields.join(", ")),
        )
    }

    pub fn invalid_field(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "INVALID_FIELD", message)
    }

    pub fn invalid_api_keys() -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", "INVALID_API_KEYS", "invalid client_id or secret provided")
    }

    pub fn invalid_access_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_ACCESS_TOKEN",
            "could not find matching access token",
        )
    }

    pub fn malformed_access_token() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_ACCESS_TOKEN",
            "provided access token is in an invalid format. expected format: access-<environment>-<identifier>",
        )
    }

    pub fn invalid_public_token(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN", message)
    }

    pub fn invalid_link_token(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_INPUT", "INVALID_LINK_TOKEN", message)
    }

    pub fn invalid_account_id() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_ACCOUNT_ID",
            "one or more of the account IDs is invalid",
        )
    }

    pub fn invalid_credentials() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ITEM_ERROR",
            "INVALID_CREDENTIALS",
            "the provided credentials were not correct",
        )
        .with_display("The provided credentials were not correct. Please try again.")
    }

    pub fn item_login_required() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ITEM_ERROR",
            "ITEM_LOGIN_REQUIRED",
            "the login details of this item have changed (credentials, MFA, or required user action) and a user login is required to update this information. use Link's update mode to restore the item to a good state",
        )
    }

    pub fn product_not_ready() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ITEM_ERROR",
            "PRODUCT_NOT_READY",
            "the requested product is not yet ready. please provide a webhook or try the request again later",
        )
    }

    /// The client's plan lacks a product (here: the Transactions Refresh add-on).
    pub fn invalid_product(products: &[&str]) -> Self {
        let list: Vec<String> = products.iter().map(|p| format!("\"{p}\"")).collect();
        Self::new(
            StatusCode::BAD_REQUEST,
            "INVALID_INPUT",
            "INVALID_PRODUCT",
            format!("client is not authorized to access the following products: [{}]", list.join(",")),
        )
    }

    pub fn mutation_during_pagination() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "TRANSACTIONS_ERROR",
            "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
            "Underlying transaction data changed since last page was fetched. Please restart pagination from last update.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "API_ERROR",
            "INTERNAL_SERVER_ERROR",
            "an unexpected error occurred",
        )
        .with_display("Internal Error")
    }

    pub fn rate_limit(code: &str, per_item: bool) -> Self {
        let message = if per_item {
            "rate limit exceeded for attempts to access this item. please try again later"
        } else {
            "rate limit exceeded for this client. please try again later"
        };
        Self::new(StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED", code, message)
    }

    pub fn institution_down() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INSTITUTION_ERROR",
            "INSTITUTION_DOWN",
            "this institution is not currently responding to this request. please try again soon",
        )
        .with_display(
            "This financial institution is not currently responding to requests. We apologize for the inconvenience.",
        )
    }

    pub fn institution_not_responding() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "INSTITUTION_ERROR",
            "INSTITUTION_NOT_RESPONDING",
            "this institution is not currently responding to this request. please try again soon",
        )
        .with_display(
            "This financial institution is not currently responding to requests. We apologize for the inconvenience.",
        )
    }

    pub fn sandbox(code: &str, message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "SANDBOX_ERROR", code, message)
    }

    fn documentation_url(&self) -> String {
        let kind = self.error_type.strip_suffix("_ERROR").unwrap_or(self.error_type).to_lowercase().replace('_', "-");
        format!("https://plaid.com/docs/?ref=error#{kind}-errors")
    }

    /// The HTTP error body (Plaid's shape: no `status`, which only webhooks carry).
    pub fn to_json(&self, request_id: &str) -> Value {
        json!({
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "display_message": self.display_message,
            "request_id": request_id,
            "documentation_url": self.documentation_url(),
            "suggested_action": null,
        })
    }

    /// The form used inside `item.error`.
    pub fn to_item_error(&self) -> Value {
        json!({
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "display_message": self.display_message,
        })
    }

    /// The form used in webhooks: `status` set, no `request_id`.
    pub fn to_webhook_error(&self) -> Value {
        json!({
            "error_type": self.error_type,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "display_message": self.display_message,
            "status": self.status.as_u16(),
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.to_json(&crate::ids::request_id());
        super::json_response(self.status, &body)
    }
}
