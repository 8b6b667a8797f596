//! The HTTP client: configuration, authentication headers, timeouts, retries and decoding,
//! shared by every endpoint method.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::models::PlaidResponse;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tracing::Instrument;
use url::Url;

use crate::endpoint::Endpoint;
use crate::error::{Error, PlaidError, sanitize_json_error};
use crate::models::*;
use crate::observer::{CallObserver, CallOutcome, CallRecord};
use crate::retry::{Failure, RetryPolicy, should_retry};
use crate::secret::{AccessToken, PublicToken};

/// The API version this crate speaks, sent as `Plaid-Version` on every request.
pub const PLAID_VERSION: &str = "2020-09-14";

const USER_AGENT_VALUE: &str = concat!("plaid-rust/", env!("CARGO_PKG_VERSION"));

/// Where requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Environment {
    /// `https://sandbox.plaid.com`
    Sandbox,
    /// `https://production.plaid.com`
    Production,
    /// Any base URL, e.g. a simulator on loopback. A path prefix is kept
    /// (`http://host/plaid` + `/item/get` → `http://host/plaid/item/get`).
    Custom(Url),
}

impl Environment {
    pub fn base_url(&self) -> Url {
        match self {
            Environment::Sandbox => Url::parse("https://sandbox.plaid.com").expect("static URL"),
            Environment::Production => Url::parse("https://production.plaid.com").expect("static URL"),
            Environment::Custom(url) => url.clone(),
        }
    }
}

impl FromStr for Environment {
    type Err = Error;

    /// `sandbox`, `production` (any case), or an `http(s)://` URL.
    fn from_str(s: &str) -> Result<Self, Error> {
        let trimmed = s.trim();
        match trimmed.to_ascii_lowercase().as_str() {
            "sandbox" => return Ok(Environment::Sandbox),
            "production" => return Ok(Environment::Production),
            _ => {}
        }
        let url = Url::parse(trimmed).map_err(|e| {
            Error::Config(format!("environment must be \"sandbox\", \"production\" or an http(s) URL: {e}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::Config("environment URL must be http(s) with a host".into()));
        }
        Ok(Environment::Custom(url))
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Environment::Sandbox => f.write_str("sandbox"),
            Environment::Production => f.write_str("production"),
            Environment::Custom(url) => write!(f, "{url}"),
        }
    }
}

/// Per-endpoint time limits. Each limit covers a whole attempt: connecting, sending, and
/// reading the full response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connection setup.
    pub connect: Duration,
    /// Every endpoint not listed below.
    pub default: Duration,
    /// `/transactions/sync` (pages of up to 500 transactions).
    pub transactions_sync: Duration,
    /// `/accounts/balance/get`, which asks the bank in real time: p95 ≈ 11 s, "occasionally up
    /// to 30 seconds or more" per Plaid.
    pub balance: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            default: Duration::from_secs(15),
            transactions_sync: Duration::from_secs(30),
            balance: Duration::from_secs(60),
        }
    }
}

impl Timeouts {
    /// The same limit everywhere (handy in tests).
    pub fn uniform(limit: Duration) -> Self {
        Timeouts { connect: limit, default: limit, transactions_sync: limit, balance: limit }
    }

    pub fn for_endpoint(&self, endpoint: Endpoint) -> Duration {
        match endpoint {
            Endpoint::TransactionsSync => self.transactions_sync,
            Endpoint::AccountsBalanceGet => self.balance,
            _ => self.default,
        }
    }
}

/// Everything needed to build a [`PlaidClient`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub environment: Environment,
    pub client_id: String,
    pub secret: SecretString,
    pub timeouts: Timeouts,
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// Default timeouts and retry policy.
    pub fn new(environment: Environment, client_id: impl Into<String>, secret: impl Into<SecretString>) -> Self {
        ClientConfig {
            environment,
            client_id: client_id.into(),
            secret: secret.into(),
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
        }
    }
}

/// A Plaid API client. Cheap to clone (shared connection pool and configuration).
#[derive(Clone)]
pub struct PlaidClient {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    http: reqwest::Client,
    environment: Environment,
    base_url: String,
    client_id: String,
    timeouts: Timeouts,
    retry: RetryPolicy,
    observer: Option<Arc<dyn CallObserver>>,
}

impl fmt::Debug for PlaidClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlaidClient")
            .field("environment", &self.inner.environment)
            .field("client_id", &self.inner.client_id)
            .field("secret", &"<redacted>")
            .field("timeouts", &self.inner.timeouts)
            .field("retry", &self.inner.retry)
            .field("observer", &self.inner.observer.is_some())
            .finish()
    }
}

impl PlaidClient {
    pub fn new(config: ClientConfig) -> Result<PlaidClient, Error> {
        let base = config.environment.base_url();
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(Error::Config("base URL must be http(s) with a host".into()));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("plaid-client-id"),
            HeaderValue::from_str(&config.client_id)
                .map_err(|_| Error::Config("client_id is not a valid header value".into()))?,
        );
        let mut secret = HeaderValue::from_str(config.secret.expose_secret())
            .map_err(|_| Error::Config("secret is not a valid header value".into()))?;
        // Keeps the value out of reqwest's and hyper's Debug output.
        secret.set_sensitive(true);
        headers.insert(HeaderName::from_static("plaid-secret"), secret);
        headers.insert(HeaderName::from_static("plaid-version"), HeaderValue::from_static(PLAID_VERSION));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.timeouts.connect)
            .build()
            .map_err(|e| Error::Config(format!("cannot build HTTP client: {e}")))?;

        let base_url = config.environment.base_url().as_str().trim_end_matches('/').to_owned();
        Ok(PlaidClient {
            inner: Arc::new(Inner {
                http,
                environment: config.environment,
                base_url,
                client_id: config.client_id,
                timeouts: config.timeouts,
                retry: config.retry,
                observer: None,
            }),
        })
    }

    /// A client that reports every attempt to `observer`.
    pub fn with_observer(&self, observer: Arc<dyn CallObserver>) -> PlaidClient {
        self.with_inner(|inner| inner.observer = Some(observer))
    }

    /// A client with other timeouts (same connection pool; `connect` keeps its old value).
    pub fn with_timeouts(&self, timeouts: Timeouts) -> PlaidClient {
        self.with_inner(|inner| inner.timeouts = timeouts)
    }

    /// A client with another retry policy (same connection pool).
    pub fn with_retry(&self, retry: RetryPolicy) -> PlaidClient {
        self.with_inner(|inner| inner.retry = retry)
    }

    fn with_inner(&self, change: impl FnOnce(&mut Inner)) -> PlaidClient {
        let mut inner = (*self.inner).clone();
        change(&mut inner);
        PlaidClient { inner: Arc::new(inner) }
    }

    pub fn environment(&self) -> &Environment {
        &self.inner.environment
    }

    pub fn timeouts(&self) -> &Timeouts {
        &self.inner.timeouts
    }

    // ---- endpoints -------------------------------------------------------------------------

    /// `/link/token/create`: a token for starting Link in the browser.
    pub async fn link_token_create(&self, request: &LinkTokenCreateRequest) -> Result<LinkTokenCreateResponse, Error> {
        self.post(Endpoint::LinkTokenCreate, request).await
    }

    /// `/item/public_token/exchange`. Never retried after a timeout (the public token is
    /// single-use); on [`Error::Timeout`] send the user through Link again.
    pub async fn item_public_token_exchange(
        &self,
        public_token: &PublicToken,
    ) -> Result<ItemPublicTokenExchangeResponse, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            public_token: &'a PublicToken,
        }
        self.post(Endpoint::ItemPublicTokenExchange, &Body { public_token }).await
    }

    /// `/item/get`: the Item, its health (`item.error`) and update status.
    pub async fn item_get(&self, access_token: &AccessToken) -> Result<ItemGetResponse, Error> {
        self.post(Endpoint::ItemGet, &TokenBody { access_token }).await
    }

    /// `/item/remove`: revokes the access token and stops billing.
    pub async fn item_remove(&self, request: &ItemRemoveRequest) -> Result<RequestIdResponse, Error> {
        self.post(Endpoint::ItemRemove, request).await
    }

    /// `/item/webhook/update`. `None` removes the webhook.
    pub async fn item_webhook_update(
        &self,
        access_token: &AccessToken,
        webhook: Option<&str>,
    ) -> Result<ItemWebhookUpdateResponse, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            access_token: &'a AccessToken,
            webhook: Option<&'a str>,
        }
        self.post(Endpoint::ItemWebhookUpdate, &Body { access_token, webhook }).await
    }

    /// `/accounts/get`: accounts with cached balances (free).
    pub async fn accounts_get(&self, request: &AccountsGetRequest) -> Result<AccountsGetResponse, Error> {
        self.post(Endpoint::AccountsGet, request).await
    }

    /// `/accounts/balance/get`: real-time balances (slow, billed). Uses
    /// [`Timeouts::balance`]; a timeout is returned, not retried.
    pub async fn accounts_balance_get(
        &self,
        request: &AccountsBalanceGetRequest,
    ) -> Result<AccountsGetResponse, Error> {
        self.post(Endpoint::AccountsBalanceGet, request).await
    }

    /// `/transactions/sync`: one page. The pagination loop (and its restart on
    /// TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION) belongs to the caller.
    pub async fn transactions_sync(
        &self,
        request: &TransactionsSyncRequest,
    ) -> Result<TransactionsSyncResponse, Error> {
        self.post(Endpoint::TransactionsSync, request).await
    }

    /// `/transactions/refresh`: ask Plaid to check the bank now (billed add-on).
    pub async fn transactions_refresh(&self, access_token: &AccessToken) -> Result<RequestIdResponse, Error> {
        self.post(Endpoint::TransactionsRefresh, &TokenBody { access_token }).await
    }

    /// `/webhook_verification_key/get`: the public key for a webhook JWT's `kid`.
    pub async fn webhook_verification_key_get(&self, key_id: &str) -> Result<WebhookVerificationKeyGetResponse, Error> {
        #[derive(Serialize)]
        struct Body<'a> {
            key_id: &'a str,
        }
        self.post(Endpoint::WebhookVerificationKeyGet, &Body { key_id }).await
    }

    /// `/sandbox/public_token/create`: an Item without Link (Sandbox only).
    pub async fn sandbox_public_token_create(
        &self,
        request: &SandboxPublicTokenCreateRequest,
    ) -> Result<SandboxPublicTokenCreateResponse, Error> {
        self.post(Endpoint::SandboxPublicTokenCreate, request).await
    }

    /// `/sandbox/item/fire_webhook` (Sandbox only).
    pub async fn sandbox_item_fire_webhook(
        &self,
        request: &SandboxItemFireWebhookRequest,
    ) -> Result<SandboxItemFireWebhookResponse, Error> {
        self.post(Endpoint::SandboxItemFireWebhook, request).await
    }

    /// `/sandbox/item/reset_login`: puts the Item into ITEM_LOGIN_REQUIRED (Sandbox only).
    pub async fn sandbox_item_reset_login(
        &self,
        access_token: &AccessToken,
    ) -> Result<SandboxItemResetLoginResponse, Error> {
        self.post(Endpoint::SandboxItemResetLogin, &TokenBody { access_token }).await
    }

    // ---- transport -------------------------------------------------------------------------

    /// POSTs `body` to `endpoint`, retrying per the policy, and decodes the answer.
    async fn post<B, T>(&self, endpoint: Endpoint, body: &B) -> Result<T, Error>
    where
        B: Serialize + ?Sized,
        T: PlaidResponse,
    {
        let body =
            serde_json::to_vec(body).map_err(|e| Error::Config(format!("cannot encode {endpoint} request: {e}")))?;
        let span = tracing::debug_span!("plaid_call", endpoint = endpoint.path());
        async {
            let policy = &self.inner.retry;
            let mut attempt = 1;
            loop {
                let (result, failure_kind) = self.attempt::<T>(endpoint, attempt, &body).await;
                let error = match result {
                    Ok(value) => return Ok(value),
                    Err(error) => error,
                };
                let failure = failure_kind.as_failure(&error);
                if attempt < policy.max_attempts && should_retry(endpoint, failure) {
                    let wait = policy.backoff(attempt);
                    tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, "retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                } else {
                    return Err(error);
                }
            }
        }
        .instrument(span)
        .await
    }

    /// One HTTP exchange, reported to the observer and to tracing.
    async fn attempt<T: PlaidResponse>(
        &self,
        endpoint: Endpoint,
        attempt: u32,
        body: &[u8],
    ) -> (Result<T, Error>, FailureKind) {
        let url = format!("{}{}", self.inner.base_url, endpoint.path());
        let timeout = self.inner.timeouts.for_endpoint(endpoint);
        let started = Instant::now();

        let exchange = async {
            let response = self.inner.http.post(url).timeout(timeout).body(body.to_vec()).send().await?;
            let status = response.status().as_u16();
            let bytes = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        };
        let (result, status, request_id, kind, outcome) = match exchange.await {
            Err(source) => {
                let kind = if source.is_connect() { FailureKind::Connect } else { FailureKind::FromError };
                if source.is_timeout() {
                    (Err(Error::Timeout { endpoint }), None, None, kind, CallOutcome::Timeout)
                } else {
                    (Err(Error::Transport { endpoint, source }), None, None, kind, CallOutcome::Transport)
                }
            }
            Ok((status, bytes)) => {
                let (result, request_id, outcome) = decode::<T>(endpoint, status, &bytes);
                (result, Some(status), request_id, FailureKind::FromError, outcome)
            }
        };
        let latency = started.elapsed();

        tracing::debug!(
            endpoint = endpoint.path(),
            attempt,
            http_status = status,
            request_id = request_id.as_deref(),
            outcome = outcome.label(),
            latency_ms = latency.as_millis() as u64,
            "plaid call"
        );
        if let Some(observer) = &self.inner.observer {
            observer.on_call(&CallRecord { endpoint, attempt, http_status: status, request_id, outcome, latency });
        }
        (result, kind)
    }
}

/// Body of the endpoints that take only an access token.
#[derive(Serialize)]
struct TokenBody<'a> {
    access_token: &'a AccessToken,
}

/// Whether a failed attempt died before the request left (connect) or not.
#[derive(Clone, Copy)]
enum FailureKind {
    Connect,
    FromError,
}

impl FailureKind {
    fn as_failure(self, error: &Error) -> Failure<'_> {
        match (self, error) {
            (FailureKind::Connect, _) => Failure::Connect,
            (_, Error::Api { status, error }) => {
                Failure::Api { status: *status, error_type: &error.error_type, error_code: &error.error_code }
            }
            (_, Error::Timeout { .. }) => Failure::Timeout,
            (_, Error::Transport { .. }) => Failure::Transport,
            (_, Error::Decode { status, .. }) => Failure::Decode { status: *status },
            // Not produced by an attempt; never worth retrying.
            (_, Error::Config(_) | Error::Throttled { .. }) => Failure::Decode { status: 0 },
        }
    }
}

/// Turns a status and body into a value or an error, plus the request_id and outcome for
/// the call record. Nothing from the body reaches an error message except field names and
/// Plaid's own error fields.
fn decode<T: PlaidResponse>(
    endpoint: Endpoint,
    status: u16,
    bytes: &[u8],
) -> (Result<T, Error>, Option<String>, CallOutcome) {
    #[derive(serde::Deserialize)]
    struct RequestIdOnly {
        #[serde(default)]
        request_id: Option<String>,
    }

    if (200..300).contains(&status) {
        match serde_json::from_slice::<T>(bytes) {
            Ok(value) => {
                let request_id = Some(value.request_id()).filter(|id| !id.is_empty()).map(str::to_owned);
                (Ok(value), request_id, CallOutcome::Ok)
            }
            Err(e) => {
                // The body did not fit the model; its request_id may still be readable, for the call record.
                let request_id = serde_json::from_slice::<RequestIdOnly>(bytes).ok().and_then(|r| r.request_id);
                (
                    Err(Error::Decode { endpoint, status, message: sanitize_json_error(&e) }),
                    request_id,
                    CallOutcome::Decode,
                )
            }
        }
    } else {
        match serde_json::from_slice::<PlaidError>(bytes) {
            Ok(error) if !error.error_code.is_empty() => {
                let outcome = CallOutcome::ApiError {
                    error_type: error.error_type.clone(),
                    error_code: error.error_code.clone(),
                };
                let request_id = error.request_id.clone();
                (Err(Error::Api { status, error: Box::new(error) }), request_id, outcome)
            }
            Ok(_) => (
                Err(Error::Decode { endpoint, status, message: "error response without error_code".into() }),
                None,
                CallOutcome::Decode,
            ),
            Err(e) => (
                Err(Error::Decode {
                    endpoint,
                    status,
                    message: format!("error response is not a Plaid error object ({})", sanitize_json_error(&e)),
                }),
                None,
                CallOutcome::Decode,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_parses_names_and_urls() {
        assert_eq!("sandbox".parse::<Environment>().unwrap(), Environment::Sandbox);
        assert_eq!(" Production ".parse::<Environment>().unwrap(), Environment::Production);
        let custom: Environment = "http://127.0.0.1:4000".parse().unwrap();
        assert_eq!(custom.base_url().as_str(), "http://127.0.0.1:4000/");
        assert!("development".parse::<Environment>().is_err());
        assert!("ftp://example.com".parse::<Environment>().is_err());
        assert_eq!(Environment::Sandbox.base_url().as_str(), "https://sandbox.plaid.com/");
        assert_eq!(Environment::Production.base_url().as_str(), "https://production.plaid.com/");
    }

    #[test]
    fn default_timeouts_are_short_except_balance() {
        let t = Timeouts::default();
        assert!(t.for_endpoint(Endpoint::AccountsBalanceGet) >= Duration::from_secs(60));
        assert_eq!(t.for_endpoint(Endpoint::TransactionsSync), Duration::from_secs(30));
        assert_eq!(t.for_endpoint(Endpoint::ItemGet), Duration::from_secs(15));
    }
}
