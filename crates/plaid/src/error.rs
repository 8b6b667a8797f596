//! Errors: Plaid's own error object, and the client's error type around it.
//!
//! Callers branch on [`PlaidError::error_type`] and [`PlaidError::error_code`] (Plaid calls
//! both "safe for programmatic use"), never on message text. `Display` of [`Error`] never
//! includes a response body or a request body: the exchange response carries an access token
//! and every request body carries one.

use serde::{Deserialize, Serialize};

use crate::endpoint::Endpoint;
use crate::string_enum::string_enum;

string_enum! {
    /// Plaid's `error_type` (spec `PlaidErrorType`). Plaid may add values.
    pub enum ErrorType {
        InvalidRequest => "INVALID_REQUEST",
        InvalidResult => "INVALID_RESULT",
        InvalidInput => "INVALID_INPUT",
        InstitutionError => "INSTITUTION_ERROR",
        RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
        ApiError => "API_ERROR",
        ItemError => "ITEM_ERROR",
        AssetReportError => "ASSET_REPORT_ERROR",
        RecaptchaError => "RECAPTCHA_ERROR",
        OauthError => "OAUTH_ERROR",
        PaymentError => "PAYMENT_ERROR",
        BankTransferError => "BANK_TRANSFER_ERROR",
        IncomeVerificationError => "INCOME_VERIFICATION_ERROR",
        MicrodepositsError => "MICRODEPOSITS_ERROR",
        SandboxError => "SANDBOX_ERROR",
        PartnerError => "PARTNER_ERROR",
        SignalError => "SIGNAL_ERROR",
        TransactionsError => "TRANSACTIONS_ERROR",
        TransactionError => "TRANSACTION_ERROR",
        TransferError => "TRANSFER_ERROR",
        CheckReportError => "CHECK_REPORT_ERROR",
        ConsumerReportError => "CONSUMER_REPORT_ERROR",
        UserError => "USER_ERROR",
    }
}

impl Default for ErrorType {
    fn default() -> Self {
        ErrorType::Other(String::new())
    }
}

/// Error codes this crate gives meaning to. `error_code` stays a `String` because Plaid has
/// hundreds of codes and adds more; these constants only avoid typos at call sites.
pub mod codes {
    pub const ITEM_LOGIN_REQUIRED: &str = "ITEM_LOGIN_REQUIRED";
    pub const PRODUCT_NOT_READY: &str = "PRODUCT_NOT_READY";
    /// The client is not enabled for a product it asked for (e.g. the Transactions Refresh add-on).
    pub const INVALID_PRODUCT: &str = "INVALID_PRODUCT";
    pub const PRODUCTS_NOT_SUPPORTED: &str = "PRODUCTS_NOT_SUPPORTED";
    pub const TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION: &str = "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION";
    pub const INSTITUTION_NOT_RESPONDING: &str = "INSTITUTION_NOT_RESPONDING";
    pub const INSTITUTION_DOWN: &str = "INSTITUTION_DOWN";
    pub const INSTITUTION_NO_LONGER_SUPPORTED: &str = "INSTITUTION_NO_LONGER_SUPPORTED";
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    pub const INVALID_ACCESS_TOKEN: &str = "INVALID_ACCESS_TOKEN";
    pub const INVALID_PUBLIC_TOKEN: &str = "INVALID_PUBLIC_TOKEN";
    pub const INVALID_LINK_TOKEN: &str = "INVALID_LINK_TOKEN";
    pub const INVALID_API_KEYS: &str = "INVALID_API_KEYS";
    pub const INVALID_ACCOUNT_ID: &str = "INVALID_ACCOUNT_ID";
    pub const INVALID_WEBHOOK_VERIFICATION_KEY_ID: &str = "INVALID_WEBHOOK_VERIFICATION_KEY_ID";
    pub const UNAUTHORIZED_ENVIRONMENT: &str = "UNAUTHORIZED_ENVIRONMENT";
    pub const USER_PERMISSION_REVOKED: &str = "USER_PERMISSION_REVOKED";
    pub const ITEM_NOT_FOUND: &str = "ITEM_NOT_FOUND";
    pub const ITEM_LOCKED: &str = "ITEM_LOCKED";
    pub const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
    pub const INVALID_MFA: &str = "INVALID_MFA";
    pub const INSUFFICIENT_CREDENTIALS: &str = "INSUFFICIENT_CREDENTIALS";
    pub const USER_SETUP_REQUIRED: &str = "USER_SETUP_REQUIRED";
    pub const PASSWORD_RESET_REQUIRED: &str = "PASSWORD_RESET_REQUIRED";
    pub const ACCESS_NOT_GRANTED: &str = "ACCESS_NOT_GRANTED";
    pub const ADDITIONAL_CONSENT_REQUIRED: &str = "ADDITIONAL_CONSENT_REQUIRED";
    pub const NO_ACCOUNTS: &str = "NO_ACCOUNTS";
    pub const PENDING_EXPIRATION: &str = "PENDING_EXPIRATION";
    pub const RATE_LIMIT_EXCEEDED: &str = "RATE_LIMIT_EXCEEDED";
    pub const LAST_UPDATED_DATETIME_OUT_OF_RANGE: &str = "LAST_UPDATED_DATETIME_OUT_OF_RANGE";
    pub const MISSING_FIELDS: &str = "MISSING_FIELDS";
    pub const INVALID_FIELD: &str = "INVALID_FIELD";
}

/// Plaid's error object (spec `PlaidError`): the body of every non-2xx response, `item.error`
/// in `/item/get`, and `error` in ITEM webhooks.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PlaidError {
    #[serde(default)]
    pub error_type: ErrorType,
    #[serde(default)]
    pub error_code: String,
    #[serde(default)]
    pub error_message: String,
    /// User-facing text from Plaid; null when the user did not cause the error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_message: Option<String>,
    /// Absent in webhook errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// HTTP status; only present when the error arrives in a webhook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// OAuth Item errors only: `OAUTH_INVALID_TOKEN`, `OAUTH_CONSENT_EXPIRED`, `OAUTH_USER_REVOKED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggested_action: Option<String>,
}

impl PlaidError {
    /// True if the same request may succeed later without any change: rate limits, Plaid
    /// internal errors, and an institution that is down or not responding. The HTTP status is
    /// not needed for this decision; see [`crate::retry::should_retry`] for the full rule the
    /// client applies.
    pub fn is_retryable(&self) -> bool {
        crate::retry::is_transient_plaid_error(&self.error_type, &self.error_code)
    }

    /// True if only the end user can fix this, by going through Link in update mode (or
    /// linking again): expired or changed credentials, revoked consent, a locked account.
    pub fn requires_user_action(&self) -> bool {
        use codes::*;
        let by_code = matches!(
            self.error_code.as_str(),
            ITEM_LOGIN_REQUIRED
                | PENDING_EXPIRATION
                | ITEM_LOCKED
                | INVALID_CREDENTIALS
                | INVALID_MFA
                | INSUFFICIENT_CREDENTIALS
                | USER_SETUP_REQUIRED
                | PASSWORD_RESET_REQUIRED
                | ACCESS_NOT_GRANTED
                | ADDITIONAL_CONSENT_REQUIRED
                | NO_ACCOUNTS
                | USER_PERMISSION_REVOKED
        );
        // OAuth Items report expired or revoked consent through error_code_reason.
        let by_oauth_reason = self.error_type == ErrorType::ItemError
            && self.error_code_reason.as_deref().is_some_and(|reason| {
                matches!(reason, "OAUTH_INVALID_TOKEN" | "OAUTH_CONSENT_EXPIRED" | "OAUTH_USER_REVOKED")
            });
        by_code || by_oauth_reason
    }

    /// A sentence for an end user. Plaid's own `display_message` wins when present; otherwise
    /// an actionable sentence for the common codes, and a generic one for the rest.
    pub fn user_message(&self) -> String {
        if let Some(message) = self.display_message.as_deref().filter(|m| !m.trim().is_empty()) {
            return message.to_owned();
        }
        use codes::*;
        let text = match self.error_code.as_str() {
            ITEM_LOGIN_REQUIRED
            | INVALID_CREDENTIALS
            | INVALID_MFA
            | INSUFFICIENT_CREDENTIALS
            | PASSWORD_RESET_REQUIRED => "Your bank needs you to sign in again. Reconnect this bank to resume updates.",
            PENDING_EXPIRATION => {
                "Your consent for this bank connection is about to expire. Reconnect the bank to keep it working."
            }
            ITEM_LOCKED => {
                "Your bank has locked the account after too many sign-in attempts. Unlock it at your bank, then reconnect."
            }
            USER_SETUP_REQUIRED => {
                "Your bank needs you to finish an action on its website first. Sign in there, then reconnect."
            }
            ACCESS_NOT_GRANTED | ADDITIONAL_CONSENT_REQUIRED => {
                "The bank connection is missing a permission it needs. Reconnect the bank and grant access."
            }
            USER_PERMISSION_REVOKED => {
                "Access to this bank was revoked. Link the bank again if you want to keep syncing it."
            }
            NO_ACCOUNTS => "No eligible accounts were found at this bank.",
            INSTITUTION_DOWN | INSTITUTION_NOT_RESPONDING => {
                "Your bank is temporarily unavailable. Please try again later."
            }
            INSTITUTION_NO_LONGER_SUPPORTED => "This bank is no longer supported.",
            PRODUCT_NOT_READY => "Your bank data is still being prepared. Please try again in a few minutes.",
            INVALID_API_KEYS | UNAUTHORIZED_ENVIRONMENT => {
                "The Plaid credentials are not valid for this environment. Check PLAID_CLIENT_ID and PLAID_SECRET."
            }
            INVALID_PUBLIC_TOKEN | INVALID_LINK_TOKEN => {
                "The bank connection session expired or was already used. Please link the bank again."
            }
            INVALID_ACCESS_TOKEN | ITEM_NOT_FOUND => "This bank connection is no longer valid. Link the bank again.",
            TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION => {
                "Your bank data changed while it was being read. Please try again."
            }
            _ => match self.error_type {
                ErrorType::RateLimitExceeded => "Too many requests right now. Please try again later.",
                ErrorType::ApiError => "Plaid had an internal problem. Please try again later.",
                ErrorType::InstitutionError => "Your bank is temporarily unavailable. Please try again later.",
                ErrorType::ItemError => {
                    "There is a problem with this bank connection. Reconnecting the bank may fix it."
                }
                _ => "Something went wrong while talking to the bank. Please try again later.",
            },
        };
        text.to_owned()
    }
}

impl std::fmt::Display for PlaidError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.error_type, self.error_code)?;
        if !self.error_message.is_empty() {
            write!(f, ": {}", self.error_message)?;
        }
        if let Some(request_id) = &self.request_id {
            write!(f, " (request_id {request_id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PlaidError {}

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Plaid answered with an error object. Branch on `error.error_type` / `error.error_code`.
    #[error("Plaid API error (HTTP {status}) {error}")]
    Api { status: u16, error: Box<PlaidError> },
    /// No complete response within the endpoint's timeout. The request may or may not have been
    /// processed by Plaid.
    #[error("timed out calling Plaid {endpoint}")]
    Timeout { endpoint: Endpoint },
    /// Connection or protocol failure below HTTP (DNS, refused connection, TLS, reset).
    #[error("transport error calling Plaid {endpoint}")]
    Transport {
        endpoint: Endpoint,
        #[source]
        source: reqwest::Error,
    },
    /// A response arrived but its body was not what the spec promises. `message` says what
    /// was wrong and where, with quoted values removed (bodies may hold tokens).
    #[error("could not decode Plaid {endpoint} response (HTTP {status}): {message}")]
    Decode { endpoint: Endpoint, status: u16, message: String },
    /// The request was not sent because a local limit refused it (the webhook [`KeyCache`]
    /// limits how often unknown key ids may trigger a fetch).
    ///
    /// [`KeyCache`]: crate::webhook::KeyCache
    #[error("not calling Plaid {endpoint}: local rate limit reached")]
    Throttled { endpoint: Endpoint },
    /// The client was configured wrongly (bad base URL, invalid header value, TLS setup).
    #[error("invalid Plaid client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The Plaid error object, if Plaid answered with one.
    pub fn plaid_error(&self) -> Option<&PlaidError> {
        match self {
            Error::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Shortcut for `plaid_error().map(|e| e.error_code == code)`.
    pub fn has_code(&self, code: &str) -> bool {
        self.plaid_error().is_some_and(|e| e.error_code == code)
    }

    /// The Plaid `request_id` of the failed call, when known.
    pub fn request_id(&self) -> Option<&str> {
        self.plaid_error().and_then(|e| e.request_id.as_deref())
    }

    /// Whether Plaid refused the call for a rate limit: HTTP 429, whatever the body (even one that
    /// is not a Plaid error object, which arrives as [`Error::Decode`]), or `error_type`
    /// RATE_LIMIT_EXCEEDED, whatever the status. That type carries every rate-limit code: the
    /// per-endpoint ones (TRANSACTIONS_SYNC_LIMIT, BALANCE_LIMIT, ACCOUNTS_BALANCE_GET_LIMIT,
    /// ACCOUNTS_LIMIT, ITEM_GET_LIMIT, TRANSACTIONS_REFRESH_LIMIT), the bank's
    /// INSTITUTION_RATE_LIMIT and the generic RATE_LIMIT.
    ///
    /// How long to wait is the caller's choice: Plaid sends no `Retry-After` (nor any other
    /// limit header) and advises exponential backoff; its limits are counted per minute.
    /// [`Error::Throttled`] is this client's own limit, not Plaid's, and is not a rate limit here.
    pub fn is_rate_limited(&self) -> bool {
        match self {
            Error::Api { status, error } => *status == 429 || error.error_type == ErrorType::RateLimitExceeded,
            Error::Decode { status, .. } => *status == 429,
            _ => false,
        }
    }

    /// Whether a later identical call may succeed: transient Plaid errors, timeouts, and
    /// transport failures. (Whether the client retries by itself also depends on the endpoint;
    /// see [`crate::retry::should_retry`].)
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { status, error } => {
                !crate::retry::is_permanent_error_type(&error.error_type)
                    && (*status == 429 || *status >= 500 || error.is_retryable())
            }
            Error::Timeout { .. } | Error::Transport { .. } => true,
            Error::Decode { status, .. } => *status == 429 || *status >= 500,
            Error::Throttled { .. } => true,
            Error::Config(_) => false,
        }
    }
}

/// Turns a serde_json error into a message that keeps the category, the position and the
/// field names, but drops every double-quoted value (a value could be a token).
pub(crate) fn sanitize_json_error(err: &serde_json::Error) -> String {
    let text = err.to_string();
    let mut out = String::with_capacity(text.len());
    let mut in_quotes = false;
    for ch in text.chars() {
        if ch == '"' {
            if in_quotes {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            in_quotes = !in_quotes;
        } else if !in_quotes {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(error_type: &str, code: &str, display: Option<&str>) -> PlaidError {
        PlaidError {
            error_type: ErrorType::from(error_type),
            error_code: code.into(),
            error_message: "developer text".into(),
            display_message: display.map(Into::into),
            ..PlaidError::default()
        }
    }

    #[test]
    fn user_message_prefers_display_message() {
        let e = err("ITEM_ERROR", "ITEM_LOGIN_REQUIRED", Some("Please sign in again."));
        assert_eq!(e.user_message(), "Please sign in again.");
    }

    #[test]
    fn user_message_is_actionable_for_common_codes() {
        assert!(err("ITEM_ERROR", "ITEM_LOGIN_REQUIRED", None).user_message().contains("Reconnect"));
        assert!(err("INSTITUTION_ERROR", "INSTITUTION_DOWN", None).user_message().contains("try again later"));
        assert!(err("INSTITUTION_ERROR", "INSTITUTION_NOT_RESPONDING", None).user_message().contains("unavailable"));
        assert!(err("RATE_LIMIT_EXCEEDED", "BALANCE_LIMIT", None).user_message().contains("try again later"));
        assert!(err("INVALID_INPUT", "INVALID_API_KEYS", None).user_message().contains("PLAID_CLIENT_ID"));
        assert!(err("INVALID_INPUT", "INVALID_PUBLIC_TOKEN", None).user_message().contains("link the bank again"));
        // Blank display messages do not count.
        assert!(err("ITEM_ERROR", "ITEM_LOGIN_REQUIRED", Some("  ")).user_message().contains("Reconnect"));
    }

    #[test]
    fn requires_user_action_for_login_and_oauth_consent() {
        assert!(err("ITEM_ERROR", "ITEM_LOGIN_REQUIRED", None).requires_user_action());
        assert!(!err("API_ERROR", "INTERNAL_SERVER_ERROR", None).requires_user_action());
        assert!(!err("INSTITUTION_ERROR", "INSTITUTION_DOWN", None).requires_user_action());
        let mut oauth = err("ITEM_ERROR", "SOMETHING_NEW", None);
        oauth.error_code_reason = Some("OAUTH_CONSENT_EXPIRED".into());
        assert!(oauth.requires_user_action());
    }

    #[test]
    fn retryable_classification_on_the_error_object() {
        assert!(err("RATE_LIMIT_EXCEEDED", "TRANSACTIONS_SYNC_LIMIT", None).is_retryable());
        assert!(err("API_ERROR", "INTERNAL_SERVER_ERROR", None).is_retryable());
        assert!(err("INSTITUTION_ERROR", "INSTITUTION_NOT_RESPONDING", None).is_retryable());
        assert!(!err("ITEM_ERROR", "ITEM_LOGIN_REQUIRED", None).is_retryable());
        assert!(!err("INVALID_REQUEST", "MISSING_FIELDS", None).is_retryable());
    }

    #[test]
    fn rate_limits_are_http_429_or_the_rate_limit_error_type() {
        let api =
            |status, error_type: &str, code: &str| Error::Api { status, error: Box::new(err(error_type, code, None)) };
        let decode = |status| Error::Decode { endpoint: Endpoint::TransactionsSync, status, message: "m".into() };
        // Plaid's documented rate-limit codes, each as Plaid sends it (HTTP 429, RATE_LIMIT_EXCEEDED).
        for code in [
            "TRANSACTIONS_SYNC_LIMIT",
            "BALANCE_LIMIT",
            "ACCOUNTS_BALANCE_GET_LIMIT",
            "ACCOUNTS_LIMIT",
            "ITEM_GET_LIMIT",
            "TRANSACTIONS_REFRESH_LIMIT",
            "INSTITUTION_RATE_LIMIT",
            "RATE_LIMIT",
        ] {
            assert!(api(429, "RATE_LIMIT_EXCEEDED", code).is_rate_limited(), "{code}");
        }
        // The error type alone, or the status alone, is enough.
        assert!(api(400, "RATE_LIMIT_EXCEEDED", "TRANSACTIONS_SYNC_LIMIT").is_rate_limited());
        assert!(api(429, "BRAND_NEW_TYPE", "SOMETHING_NEW").is_rate_limited());
        // A 429 whose body is not a Plaid error object (a proxy's page, no error_code).
        assert!(decode(429).is_rate_limited());
        // Not rate limits: other Plaid errors (transient or not), other undecodable answers, and
        // failures where Plaid did not answer, including this client's own throttle.
        assert!(!api(500, "API_ERROR", "INTERNAL_SERVER_ERROR").is_rate_limited());
        assert!(!api(400, "INSTITUTION_ERROR", "INSTITUTION_NOT_RESPONDING").is_rate_limited());
        assert!(!api(400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED").is_rate_limited());
        assert!(!decode(502).is_rate_limited());
        assert!(!decode(200).is_rate_limited());
        assert!(!Error::Timeout { endpoint: Endpoint::TransactionsSync }.is_rate_limited());
        assert!(!Error::Throttled { endpoint: Endpoint::WebhookVerificationKeyGet }.is_rate_limited());
        assert!(!Error::Config("bad".into()).is_rate_limited());
    }

    #[test]
    fn sanitized_json_errors_drop_quoted_values() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            n: u32,
        }
        let e = serde_json::from_str::<T>(r#"{"n":"access-sandbox-secret"}"#).unwrap_err();
        let msg = sanitize_json_error(&e);
        assert!(!msg.contains("access-sandbox-secret"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
        let e = serde_json::from_str::<T>("{}").unwrap_err();
        assert!(sanitize_json_error(&e).contains("missing field `n`"));
    }

    #[test]
    fn plaid_error_decodes_tolerantly() {
        let e: PlaidError = serde_json::from_str(
            r#"{"error_type":"BRAND_NEW_TYPE","error_code":"X","error_message":"m","display_message":null,"request_id":"r1","causes":[],"extra":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(e.error_type, ErrorType::Other("BRAND_NEW_TYPE".into()));
        assert_eq!(e.request_id.as_deref(), Some("r1"));
        assert_eq!(e.display_message, None);
    }
}
