//! Retry policy: which failures are retried, and how long to wait in between.
//!
//! The decision is a pure function ([`should_retry`]) of the endpoint and the kind of failure,
//! so it can be tested as a table. Rules, in order:
//!
//! 1. Never retry errors that only a change of request or a user can fix: `error_type`
//!    INVALID_REQUEST, INVALID_INPUT, INVALID_RESULT, ITEM_ERROR, TRANSACTIONS_ERROR (a sync
//!    mutation error must restart the whole pagination loop, which only the caller can do),
//!    SANDBOX_ERROR, OAUTH_ERROR — whatever the HTTP status says.
//! 2. Retry Plaid's transient errors: HTTP 429 or RATE_LIMIT_EXCEEDED, HTTP 5xx or API_ERROR,
//!    INSTITUTION_NOT_RESPONDING and INSTITUTION_DOWN, on every endpoint. Plaid answered with
//!    an error, so the call did not succeed; Plaid's documentation says to retry these. (For
//!    the exchange, the worst case of a retry after a 5xx is INVALID_PUBLIC_TOKEN, the same
//!    outcome the caller would face without it.)
//! 3. A failure to connect means nothing was sent: retry on every endpoint.
//! 4. A timeout or a connection broken after sending leaves the outcome unknown: retry only
//!    where repeating is harmless ([`Endpoint::retry_when_outcome_unknown`]). This excludes
//!    the single-use public token exchange and the long, billed balance call.
//! 5. Undecodable responses are retried only when the status itself is transient (a 502 page
//!    from a proxy); a 200 we cannot parse will not parse better the second time.

use std::time::Duration;

use rand::Rng;

use crate::endpoint::Endpoint;
use crate::error::{ErrorType, codes};

/// How often and how patiently the client retries transient failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first one. `1` disables retries.
    pub max_attempts: u32,
    /// Backoff before the first retry; doubles for each further one.
    pub base_delay: Duration,
    /// Upper bound for one backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, 500 ms then 1 s (each jittered), capped at 8 s.
    fn default() -> Self {
        RetryPolicy { max_attempts: 3, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(8) }
    }
}

impl RetryPolicy {
    /// A single attempt, no retries.
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..RetryPolicy::default() }
    }

    /// `max_attempts` attempts with the given base delay (capped at 8 s per wait).
    pub fn new(max_attempts: u32, base_delay: Duration) -> Self {
        RetryPolicy { max_attempts: max_attempts.max(1), base_delay, max_delay: Duration::from_secs(8).max(base_delay) }
    }

    /// The wait before retry number `retry` (1 for the first retry).
    ///
    /// "Equal jitter": half of the exponential step is fixed, the other half random, so many
    /// clients hitting the same rate limit spread out while each still waits at least half
    /// the step.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(16);
        let step = self.base_delay.saturating_mul(1u32 << exponent).min(self.max_delay);
        let half = step / 2;
        let jitter_nanos = rand::thread_rng().gen_range(0..=half.as_nanos().min(u64::MAX as u128) as u64);
        half + Duration::from_nanos(jitter_nanos)
    }
}

/// What went wrong in one attempt, reduced to what the retry decision needs.
#[derive(Debug, Clone, Copy)]
pub enum Failure<'a> {
    /// Plaid answered with an error object.
    Api { status: u16, error_type: &'a ErrorType, error_code: &'a str },
    /// The connection could not be established; the request was never sent.
    Connect,
    /// The endpoint's timeout elapsed.
    Timeout,
    /// The connection failed after the request may have been sent.
    Transport,
    /// A response arrived with a body we could not decode.
    Decode { status: u16 },
}

/// Error types that no retry can fix.
pub fn is_permanent_error_type(error_type: &ErrorType) -> bool {
    matches!(
        error_type,
        ErrorType::InvalidRequest
            | ErrorType::InvalidInput
            | ErrorType::InvalidResult
            | ErrorType::ItemError
            | ErrorType::TransactionsError
            | ErrorType::SandboxError
            | ErrorType::OauthError
    )
}

/// Plaid errors that are transient by their type or code alone.
pub fn is_transient_plaid_error(error_type: &ErrorType, error_code: &str) -> bool {
    match error_type {
        ErrorType::RateLimitExceeded | ErrorType::ApiError => true,
        ErrorType::InstitutionError => {
            matches!(error_code, codes::INSTITUTION_NOT_RESPONDING | codes::INSTITUTION_DOWN)
        }
        _ => false,
    }
}

/// Whether the client should try `endpoint` again after `failure` (attempt limits aside).
pub fn should_retry(endpoint: Endpoint, failure: Failure<'_>) -> bool {
    match failure {
        Failure::Api { status, error_type, error_code } => {
            if is_permanent_error_type(error_type) {
                return false;
            }
            status == 429 || status >= 500 || is_transient_plaid_error(error_type, error_code)
        }
        Failure::Connect => true,
        Failure::Timeout | Failure::Transport => endpoint.retry_when_outcome_unknown(),
        Failure::Decode { status } => status == 429 || (500..600).contains(&status),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api<'a>(status: u16, error_type: &'a ErrorType, code: &'static str) -> Failure<'a> {
        Failure::Api { status, error_type, error_code: code }
    }

    #[test]
    fn transient_plaid_errors_are_retried_everywhere() {
        let rate = ErrorType::RateLimitExceeded;
        let api_err = ErrorType::ApiError;
        let inst = ErrorType::InstitutionError;
        for endpoint in Endpoint::ALL {
            assert!(should_retry(endpoint, api(429, &rate, "TRANSACTIONS_SYNC_LIMIT")));
            assert!(should_retry(endpoint, api(500, &api_err, "INTERNAL_SERVER_ERROR")));
            assert!(should_retry(endpoint, api(400, &inst, "INSTITUTION_NOT_RESPONDING")));
            assert!(should_retry(endpoint, api(400, &inst, "INSTITUTION_DOWN")));
            assert!(should_retry(endpoint, Failure::Connect));
            assert!(should_retry(endpoint, Failure::Decode { status: 502 }));
        }
    }

    #[test]
    fn permanent_errors_are_never_retried_even_with_a_5xx_status() {
        for error_type in
            [ErrorType::InvalidRequest, ErrorType::InvalidInput, ErrorType::ItemError, ErrorType::TransactionsError]
        {
            for status in [400, 429, 500, 503] {
                for endpoint in Endpoint::ALL {
                    assert!(
                        !should_retry(endpoint, api(status, &error_type, "ANY")),
                        "{error_type} {status} {endpoint}"
                    );
                }
            }
        }
    }

    #[test]
    fn other_institution_errors_and_decodable_200s_are_not_retried() {
        let inst = ErrorType::InstitutionError;
        assert!(!should_retry(Endpoint::ItemGet, api(400, &inst, "INSTITUTION_NO_LONGER_SUPPORTED")));
        assert!(!should_retry(Endpoint::ItemGet, Failure::Decode { status: 200 }));
        assert!(!should_retry(Endpoint::ItemGet, Failure::Decode { status: 400 }));
    }

    #[test]
    fn unknown_outcomes_are_retried_only_where_repeating_is_harmless() {
        for failure in [Failure::Timeout, Failure::Transport] {
            assert!(should_retry(Endpoint::TransactionsSync, failure));
            assert!(should_retry(Endpoint::AccountsGet, failure));
            assert!(should_retry(Endpoint::ItemGet, failure));
            assert!(!should_retry(Endpoint::ItemPublicTokenExchange, failure));
            assert!(!should_retry(Endpoint::AccountsBalanceGet, failure));
            assert!(!should_retry(Endpoint::ItemRemove, failure));
            assert!(!should_retry(Endpoint::TransactionsRefresh, failure));
            assert!(!should_retry(Endpoint::SandboxItemFireWebhook, failure));
        }
    }

    #[test]
    fn backoff_grows_exponentially_with_bounded_jitter() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
        };
        for _ in 0..200 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let capped = policy.backoff(30);
            assert!(capped >= Duration::from_millis(500) && capped <= Duration::from_millis(1000));
        }
        // The jitter actually varies.
        let samples: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(2)).collect();
        assert!(samples.len() > 1);
    }

    #[test]
    fn none_means_one_attempt() {
        assert_eq!(RetryPolicy::none().max_attempts, 1);
        assert_eq!(RetryPolicy::new(0, Duration::ZERO).max_attempts, 1);
    }
}
