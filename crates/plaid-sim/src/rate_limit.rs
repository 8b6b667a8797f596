//! Plaid's sandbox rate limits (plaid-api.md §4): sliding one-minute windows per Item and per
//! client, answered with HTTP 429 RATE_LIMIT_EXCEEDED and the endpoint's error code.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::api::errors::ApiError;

struct Limit {
    endpoint: &'static str,
    per_item: usize,
    per_client: usize,
    item_code: &'static str,
    client_code: &'static str,
}

const LIMITS: &[Limit] = &[
    Limit {
        endpoint: "/transactions/sync",
        per_item: 50,
        per_client: 1_000,
        item_code: "TRANSACTIONS_SYNC_LIMIT",
        client_code: "TRANSACTIONS_SYNC_LIMIT",
    },
    Limit {
        endpoint: "/accounts/balance/get",
        per_item: 25,
        per_client: 100,
        item_code: "BALANCE_LIMIT",
        client_code: "ACCOUNTS_BALANCE_GET_LIMIT",
    },
    Limit {
        endpoint: "/accounts/get",
        per_item: 100,
        per_client: 5_000,
        item_code: "ACCOUNTS_LIMIT",
        client_code: "ACCOUNTS_LIMIT",
    },
    Limit {
        endpoint: "/item/get",
        per_item: 40,
        per_client: 5_000,
        item_code: "ITEM_GET_LIMIT",
        client_code: "ITEM_GET_LIMIT",
    },
    Limit {
        endpoint: "/transactions/refresh",
        per_item: 2,
        per_client: 100,
        item_code: "TRANSACTIONS_REFRESH_LIMIT",
        client_code: "TRANSACTIONS_REFRESH_LIMIT",
    },
];

const WINDOW: Duration = Duration::from_secs(60);

/// The per-Item error code Plaid uses for `endpoint`, if it is rate limited.
pub fn code_for(endpoint: &str) -> Option<&'static str> {
    LIMITS.iter().find(|l| l.endpoint == endpoint).map(|l| l.item_code)
}

pub struct RateLimiter {
    enabled: bool,
    windows: Mutex<HashMap<(&'static str, String), VecDeque<Instant>>>,
}

impl RateLimiter {
    pub fn new(enabled: bool) -> Self {
        Self { enabled, windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one call to `endpoint` for `item_id`, or refuses it when a window is full.
    pub fn check(&self, endpoint: &str, item_id: &str) -> Result<(), ApiError> {
        let Some(limit) = LIMITS.iter().find(|l| l.endpoint == endpoint) else {
            return Ok(());
        };
        if !self.enabled {
            return Ok(());
        }
        let now = Instant::now();
        let mut windows = self.windows.lock();
        let mut full = |scope: String, max: usize| {
            let w = windows.entry((limit.endpoint, scope)).or_default();
            while w.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                w.pop_front();
            }
            w.len() >= max
        };
        if full(format!("item:{item_id}"), limit.per_item) {
            return Err(ApiError::rate_limit(limit.item_code, true));
        }
        if full("client".to_owned(), limit.per_client) {
            return Err(ApiError::rate_limit(limit.client_code, false));
        }
        for scope in [format!("item:{item_id}"), "client".to_owned()] {
            windows.entry((limit.endpoint, scope)).or_default().push_back(now);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_item_window_fills_then_other_items_still_pass() {
        let rl = RateLimiter::new(true);
        for _ in 0..2 {
            rl.check("/transactions/refresh", "a").expect("within limit");
        }
        let err = rl.check("/transactions/refresh", "a").expect_err("limited");
        assert_eq!(err.error_code, "TRANSACTIONS_REFRESH_LIMIT");
        assert_eq!(err.status.as_u16(), 429);
        rl.check("/transactions/refresh", "b").expect("another item");
        assert!(RateLimiter::new(false).check("/transactions/refresh", "a").is_ok());
    }
}
