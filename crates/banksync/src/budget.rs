//! The Plaid rate budget: calls go out as fast as Plaid's limits allow, and wait for room instead of failing.
//!
//! Plaid limits each endpoint per client (our keys) and per Item, in sliding one-minute windows (plaid-api.md §4;
//! sandbox and production differ). A caller asks [`Budget::acquire`] before each limited call: it returns once the
//! call fits both windows, having reserved it. Reservations live in the database ([`Store::reserve_call`]), so every
//! banksync instance sharing it counts against one budget; the check-and-reserve is atomic there. Waiting never
//! holds a database transaction and never polls: the store says when the window reopens, and the caller sleeps
//! until then.
//!
//! - Within one process, callers waiting for the *client* window queue behind one gate per endpoint (FIFO), so
//!   when a slot frees up one of them asks for it, not all of them at once. A caller waiting for its *Item's*
//!   window (or an Item block) sleeps on its own and holds nobody up.
//! - A reservation counts from the moment it is made, slightly before Plaid sees the call, so each window is
//!   stretched by a little slack ([`RateLimits::slack`]): a call sent the instant our window reopens does not reach
//!   Plaid while Plaid's window still holds the call it replaces.
//! - Plaid may answer 429 anyway (another client of the same keys, clock skew between instances):
//!   [`Budget::note_rate_limited`] blocks the endpoint, for the Item or, when the error says the client's limit was
//!   hit, for every Item, for a whole window. Everyone then waits instead of failing.
//! - Endpoints without a configured limit pass at once. A database error lets the call go (logged): Plaid still
//!   enforces its limit and the caller still handles a 429.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use plaid::Endpoint;
use tokio::time::Instant;

use crate::domain::PlaidItemId;
use crate::store::{CallLimit, Reservation, Store};

/// Plaid's windows.
pub const PLAID_WINDOW: Duration = Duration::from_secs(60);
/// How much longer than Plaid's window a reservation counts (see the module header).
pub const DEFAULT_SLACK: Duration = Duration::from_secs(1);

/// Per Item, per client, per minute (plaid-api.md §4, Sandbox columns; the simulator enforces these).
const SANDBOX: &[(Endpoint, u32, u32)] = &[
    (Endpoint::TransactionsSync, 50, 1_000),
    (Endpoint::AccountsBalanceGet, 25, 100),
    (Endpoint::AccountsGet, 100, 5_000),
    (Endpoint::ItemGet, 40, 5_000),
    (Endpoint::ItemRemove, 100, 500),
    (Endpoint::TransactionsRefresh, 2, 100),
];
/// Per Item, per client, per minute (plaid-api.md §4, Production columns).
const PRODUCTION: &[(Endpoint, u32, u32)] = &[
    (Endpoint::TransactionsSync, 50, 2_500),
    (Endpoint::AccountsBalanceGet, 5, 1_200),
    (Endpoint::AccountsGet, 15, 15_000),
    (Endpoint::ItemGet, 15, 5_000),
    (Endpoint::ItemRemove, 30, 2_000),
    (Endpoint::TransactionsRefresh, 2, 100),
];

/// Plaid error codes that mean the *client's* limit was reached (the others name an Item's, or both alike).
const CLIENT_WIDE_CODES: &[&str] = &["ACCOUNTS_BALANCE_GET_LIMIT", "RATE_LIMIT"];

/// The limits the budget enforces: per endpoint, calls per Item and per client within one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimits {
    limits: HashMap<Endpoint, (u32, u32)>,
    window: Duration,
    slack: Duration,
}

impl RateLimits {
    /// Plaid's Sandbox limits (the simulator's).
    pub fn sandbox() -> Self {
        Self::from_table(SANDBOX)
    }

    /// Plaid's Production limits.
    pub fn production() -> Self {
        Self::from_table(PRODUCTION)
    }

    fn from_table(table: &[(Endpoint, u32, u32)]) -> Self {
        let limits = table.iter().map(|&(e, item, client)| (e, (item, client))).collect();
        Self { limits, window: PLAID_WINDOW, slack: DEFAULT_SLACK }
    }

    /// Sets one endpoint's limits (each at least 1).
    pub fn with_limit(mut self, endpoint: Endpoint, per_item: u32, per_client: u32) -> Self {
        self.limits.insert(endpoint, (per_item.max(1), per_client.max(1)));
        self
    }

    /// Another window length and slack (tests use short windows; Plaid's is [`PLAID_WINDOW`]).
    pub fn with_window(self, window: Duration, slack: Duration) -> Self {
        Self { window, slack, ..self }
    }

    /// The endpoint's limits as the store applies them (the window stretched by the slack); `None` = unlimited.
    pub fn limit(&self, endpoint: Endpoint) -> Option<CallLimit> {
        self.limits.get(&endpoint).map(|&(per_item, per_client)| CallLimit {
            per_item,
            per_client,
            window: self.window + self.slack,
        })
    }

    pub fn window(&self) -> Duration {
        self.window
    }

    pub fn slack(&self) -> Duration {
        self.slack
    }
}

/// The call does not fit before the caller's deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("Plaid's rate limit leaves no room for this call before its deadline (next room at {until})")]
pub struct OverBudget {
    pub until: DateTime<Utc>,
}

/// Shared handle (cheap to clone) on the rate budget of one set of Plaid keys.
#[derive(Clone)]
pub struct Budget {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    limits: RateLimits,
    /// Per endpoint: the queue of this process's callers waiting for the client window.
    gates: Mutex<HashMap<Endpoint, Arc<tokio::sync::Mutex<()>>>>,
    /// When old reservations were last deleted by this process.
    pruned_at: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").field("limits", &self.inner.limits).finish_non_exhaustive()
    }
}

/// Database errors in a row after which a call is let through unbudgeted.
const STORE_ATTEMPTS: u32 = 3;

impl Budget {
    pub fn new(store: Arc<Store>, limits: RateLimits) -> Self {
        Self { inner: Arc::new(Inner { store, limits, gates: Mutex::default(), pruned_at: Mutex::new(None) }) }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.inner.limits
    }

    /// Waits (as long as it takes) until a call of `endpoint` for `item_id` fits the budget, and reserves it.
    pub async fn acquire(&self, endpoint: Endpoint, item_id: &PlaidItemId) {
        // Without a deadline the only way out is a reservation (or a store failure, which lets the call go).
        let _ = self.reserve(endpoint, item_id, None).await;
    }

    /// Like [`Budget::acquire`], but gives up (reserving nothing) as soon as it is clear the call cannot fit before
    /// `deadline`.
    pub async fn acquire_before(
        &self,
        endpoint: Endpoint,
        item_id: &PlaidItemId,
        deadline: Instant,
    ) -> Result<(), OverBudget> {
        self.reserve(endpoint, item_id, Some(deadline)).await
    }

    async fn reserve(
        &self,
        endpoint: Endpoint,
        item_id: &PlaidItemId,
        deadline: Option<Instant>,
    ) -> Result<(), OverBudget> {
        let Some(limit) = self.inner.limits.limit(endpoint) else { return Ok(()) };
        let gate = self.gate(endpoint);
        let mut failures = 0;
        loop {
            let queued = gate.clone().lock_owned();
            let guard = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline, queued).await {
                    Ok(guard) => guard,
                    Err(_) => return Err(OverBudget { until: Utc::now() }),
                },
                None => queued.await,
            };
            self.prune_now_and_then().await;
            let now = Utc::now();
            match self.inner.store.reserve_call(endpoint.path(), item_id.as_str(), limit, now).await {
                Ok(Reservation::Reserved) => return Ok(()),
                Ok(Reservation::Wait { until, client_wide }) => {
                    let wait = (until - now).to_std().unwrap_or_default();
                    if deadline.is_some_and(|d| Instant::now() + wait > d) {
                        return Err(OverBudget { until });
                    }
                    tracing::debug!(
                        endpoint = endpoint.path(), %item_id, wait_ms = wait.as_millis() as u64, client_wide,
                        "waiting for Plaid's rate limit window"
                    );
                    // The whole client waits: this process's other callers queue behind us meanwhile. Only this
                    // Item waits: nobody else should.
                    let guard = client_wide.then_some(guard);
                    tokio::time::sleep(wait).await;
                    drop(guard);
                }
                Err(e) => {
                    failures += 1;
                    if failures >= STORE_ATTEMPTS {
                        tracing::warn!(
                            endpoint = endpoint.path(), error = %e,
                            "cannot reserve a Plaid call in the rate budget; making it unbudgeted"
                        );
                        return Ok(());
                    }
                    drop(guard);
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(failures))).await;
                }
            }
        }
    }

    /// Plaid answered `error` (a rate limit) to a call of `endpoint` for `item_id` although the budget had room:
    /// no call of the endpoint goes out for a window, for that Item or, when the error names the client's limit
    /// (or no Item is given), for every Item, in every process. Errors that are not rate limits are ignored.
    pub async fn note_rate_limited(&self, endpoint: Endpoint, item_id: Option<&PlaidItemId>, error: &plaid::Error) {
        if !error.is_rate_limited() {
            return;
        }
        let scope = match item_id {
            Some(item) if !error.plaid_error().is_some_and(|e| CLIENT_WIDE_CODES.contains(&e.error_code.as_str())) => {
                Some(item.as_str())
            }
            _ => None,
        };
        let window = self.inner.limits.window + self.inner.limits.slack;
        let until = Utc::now() + chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        tracing::info!(
            endpoint = endpoint.path(), item_id = scope.unwrap_or("*"), until = %until,
            "Plaid rate limit reached despite the budget; pausing these calls for a window"
        );
        if let Err(e) = self.inner.store.block_calls(endpoint.path(), scope, until).await {
            tracing::warn!(endpoint = endpoint.path(), error = %e, "cannot record a Plaid rate limit block");
        }
    }

    fn gate(&self, endpoint: Endpoint) -> Arc<tokio::sync::Mutex<()>> {
        self.inner.gates.lock().entry(endpoint).or_default().clone()
    }

    /// Deletes reservations and blocks older than two windows, at most once a window (per process).
    async fn prune_now_and_then(&self) {
        let window = self.inner.limits.window + self.inner.limits.slack;
        {
            let mut at = self.inner.pruned_at.lock();
            if at.is_some_and(|t| t.elapsed() < window) {
                return;
            }
            *at = Some(Instant::now());
        }
        let Some(before) = chrono::Duration::from_std(window * 2).ok().and_then(|d| Utc::now().checked_sub_signed(d))
        else {
            return;
        };
        if let Err(e) = self.inner.store.prune_call_budget(before).await {
            tracing::warn!(error = %e, "cannot delete old Plaid rate budget reservations");
        }
    }
}

/// Parses one endpoint limit override, `ENDPOINT=PER_ITEM/PER_CLIENT` (e.g. `/accounts/balance/get=5/1200`).
pub fn parse_limit(entry: &str) -> Result<(Endpoint, u32, u32), String> {
    let (path, numbers) =
        entry.split_once('=').ok_or_else(|| format!("{entry:?} is not ENDPOINT=PER_ITEM/PER_CLIENT"))?;
    let path = path.trim();
    let endpoint = Endpoint::ALL
        .into_iter()
        .find(|e| e.path() == path)
        .ok_or_else(|| format!("{path:?} is not a Plaid endpoint banksync calls (e.g. /accounts/balance/get)"))?;
    let (item, client) =
        numbers.split_once('/').ok_or_else(|| format!("{entry:?} is not ENDPOINT=PER_ITEM/PER_CLIENT"))?;
    let count = |raw: &str| {
        raw.trim().parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            format!("{:?} in {entry:?} is not a whole number of calls per minute, at least 1", raw.trim())
        })
    };
    Ok((endpoint, count(item)?, count(client)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_follow_plaids_table_and_the_window_carries_the_slack() {
        let sandbox = RateLimits::sandbox();
        let balance = sandbox.limit(Endpoint::AccountsBalanceGet).unwrap();
        assert_eq!((balance.per_item, balance.per_client), (25, 100));
        assert_eq!(balance.window, PLAID_WINDOW + DEFAULT_SLACK);
        let production = RateLimits::production();
        let balance = production.limit(Endpoint::AccountsBalanceGet).unwrap();
        assert_eq!((balance.per_item, balance.per_client), (5, 1_200));
        for limits in [&sandbox, &production] {
            for endpoint in [
                Endpoint::AccountsBalanceGet,
                Endpoint::TransactionsSync,
                Endpoint::TransactionsRefresh,
                Endpoint::ItemGet,
            ] {
                assert!(limits.limit(endpoint).is_some(), "{endpoint:?}");
            }
            assert!(limits.limit(Endpoint::LinkTokenCreate).is_none(), "not limited");
        }
        let custom =
            sandbox.with_limit(Endpoint::ItemGet, 0, 7).with_window(Duration::from_secs(2), Duration::from_millis(100));
        let item_get = custom.limit(Endpoint::ItemGet).unwrap();
        assert_eq!((item_get.per_item, item_get.per_client), (1, 7), "a limit is at least 1");
        assert_eq!(item_get.window, Duration::from_millis(2_100));
    }

    #[test]
    fn limit_overrides_parse_and_bad_ones_say_why() {
        assert_eq!(parse_limit(" /accounts/balance/get = 5/1200 "), Ok((Endpoint::AccountsBalanceGet, 5, 1_200)));
        assert_eq!(parse_limit("/transactions/sync=50/2500"), Ok((Endpoint::TransactionsSync, 50, 2_500)));
        for (bad, says) in [
            ("/accounts/balance/get", "ENDPOINT=PER_ITEM/PER_CLIENT"),
            ("/accounts/balance/get=5", "ENDPOINT=PER_ITEM/PER_CLIENT"),
            ("/balance=5/10", "not a Plaid endpoint"),
            ("/accounts/balance/get=0/10", "at least 1"),
            ("/accounts/balance/get=5/lots", "whole number"),
        ] {
            let err = parse_limit(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
