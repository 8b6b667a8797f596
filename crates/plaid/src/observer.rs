//! A hook that sees every HTTP attempt, for audit trails and metrics.
//!
//! The record holds what an audit table needs (endpoint, attempt, status, request_id,
//! outcome, latency) and nothing from the request or response bodies.

use std::time::Duration;

use crate::endpoint::Endpoint;
use crate::error::ErrorType;

/// Receives one [`CallRecord`] per attempt, retries included. Called inline on the request
/// path, so implementations should be quick (push to a channel rather than write to a DB).
pub trait CallObserver: Send + Sync {
    fn on_call(&self, call: &CallRecord);
}

/// One HTTP attempt against Plaid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    pub endpoint: Endpoint,
    /// 1 for the first attempt, 2 for the first retry, …
    pub attempt: u32,
    /// The HTTP status, if a response arrived.
    pub http_status: Option<u16>,
    /// Plaid's request_id from the body (success or error), if there was one.
    pub request_id: Option<String>,
    pub outcome: CallOutcome,
    /// From sending the request to having the whole body (or failing).
    pub latency: Duration,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    ApiError {
        error_type: ErrorType,
        error_code: String,
    },
    Timeout,
    Transport,
    /// A response arrived whose body could not be decoded.
    Decode,
}

impl CallOutcome {
    /// A short label for metrics: `ok`, `api_error`, `timeout`, `transport`, `decode`.
    pub fn label(&self) -> &'static str {
        match self {
            CallOutcome::Ok => "ok",
            CallOutcome::ApiError { .. } => "api_error",
            CallOutcome::Timeout => "timeout",
            CallOutcome::Transport => "transport",
            CallOutcome::Decode => "decode",
        }
    }
}
