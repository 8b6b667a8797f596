//! A typed client for the Plaid API, version `2020-09-14`, and Plaid webhook verification.
//!
//! # Design
//!
//! * **One `async fn` per endpoint** on [`PlaidClient`], each a thin wrapper over one shared
//!   `post` that adds the auth headers (`PLAID-CLIENT-ID`, `PLAID-SECRET`, `Plaid-Version`),
//!   applies the endpoint's timeout, retries transient failures and decodes the answer. The
//!   client knows nothing about the application using it.
//! * **Tolerant models** ([`models`]): unknown fields are ignored, missing optional fields
//!   default, and enums Plaid may extend keep unknown values as `Other(String)`. Money is
//!   [`rust_decimal::Decimal`] read from the exact JSON text (serde_json `arbitrary_precision`),
//!   never `f64`. Each [`Transaction`] keeps the raw JSON object it was decoded from, so
//!   nothing Plaid sends is lost.
//! * **Errors** ([`Error`]) separate Plaid's answers ([`Error::Api`] with a typed
//!   [`PlaidError`]) from timeouts, transport failures and undecodable bodies. Callers branch
//!   on `error_type` / `error_code`, never on text, and ask [`Error::is_rate_limited`] whether
//!   Plaid's rate limit refused a call. No error message contains a request or response body:
//!   both can hold access tokens.
//! * **Secrets** ([`AccessToken`], [`PublicToken`], the client secret) are
//!   `secrecy::SecretString` newtypes whose `Debug` is redacted and which have no `Display`.
//!   Tracing spans record endpoint, attempt, status, request_id and latency only.
//! * **Timeouts per endpoint** ([`Timeouts`]): 15 s by default, 30 s for
//!   `/transactions/sync`, 60 s for the real-time `/accounts/balance/get`.
//! * **Retries** ([`RetryPolicy`], [`retry::should_retry`]): jittered exponential backoff for
//!   429 / RATE_LIMIT_EXCEEDED, 5xx / API_ERROR and INSTITUTION_NOT_RESPONDING / _DOWN; never
//!   for INVALID_REQUEST, INVALID_INPUT, ITEM_ERROR or TRANSACTIONS_ERROR. After a timeout,
//!   when Plaid may or may not have processed the request, only endpoints where a repeat is
//!   harmless are retried: not the single-use public token exchange, not the long and billed
//!   balance call (see [`Endpoint::retry_when_outcome_unknown`]).
//! * **Observability**: a [`CallObserver`] sees a [`CallRecord`] for every attempt, for an
//!   audit trail of Plaid calls.
//! * **Webhook verification** ([`webhook`]) is a pure function of body bytes, header, key and
//!   clock ([`webhook::verify_with_key`]), wrapped by [`webhook::verify`] which looks the key
//!   up through a [`webhook::KeySource`] such as the caching [`webhook::KeyCache`].

mod client;
mod endpoint;
mod error;
pub mod models;
mod observer;
pub mod retry;
mod secret;
mod string_enum;
pub mod webhook;

pub use client::{ClientConfig, Environment, PLAID_VERSION, PlaidClient, Timeouts};
pub use endpoint::Endpoint;
pub use error::{Error, ErrorType, PlaidError, codes};
pub use models::*;
pub use observer::{CallObserver, CallOutcome, CallRecord};
pub use retry::RetryPolicy;
pub use secrecy::SecretString;
pub use secret::{AccessToken, PublicToken};
