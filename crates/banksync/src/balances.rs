//! Live balances, asynchronously: `/accounts/balance/get` asks the bank in real time and can take 30 s or more, so a
//! refresh is a background job. `start` returns a job id at once; `status` long-polls it.
//!
//! - Items run concurrently, bounded by a semaphore shared by all jobs (a rate budget for a billed call), each under
//!   its own timeout (the client's balance timeout), so one slow bank delays nobody else.
//! - An Item that fails keeps its last cached balances and reports `{code, message}` (Plaid's display_message or an
//!   actionable sentence); its health is updated when the error says so.
//! - A second refresh for the same scope while one is running joins it (the call is billed per request).
//! - Jobs live in memory: finished ones are kept for `keep_finished_jobs`, then evicted. Waiting uses a
//!   `tokio::sync::watch` channel per job, not polling.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use plaid::{AccessToken, AccountsBalanceGetRequest};
use serde::Serialize;
use tokio::sync::{Semaphore, watch};

use crate::health::health_from_error;
use crate::normalize;
use crate::store::{BalanceSource, Item, ItemHealth, ItemStatus, Store, StoreError};
use crate::vault::Vault;

#[derive(Debug, Clone)]
pub struct BalanceOptions {
    /// `/accounts/balance/get` calls in flight at once, over all jobs.
    pub max_concurrency: usize,
    /// How long a finished job stays readable.
    pub keep_finished_jobs: Duration,
}

impl Default for BalanceOptions {
    fn default() -> Self {
        Self { max_concurrency: 8, keep_finished_jobs: Duration::from_secs(3600) }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    /// Unknown Item, or another user's.
    #[error("not found")]
    NotFound,
    #[error("store: {0}")]
    Store(StoreError),
}

impl From<StoreError> for BalanceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemRefreshState {
    Pending,
    Ok,
    Error,
}

/// An error safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserFacingError {
    /// Lower-case Plaid error code (e.g. `institution_down`), or `timeout` / `plaid_unavailable` / `internal`.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemBalanceOutcome {
    /// Plaid's item_id.
    pub item_id: String,
    pub institution_name: Option<String>,
    pub state: ItemRefreshState,
    pub accounts_updated: u64,
    pub error: Option<UserFacingError>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BalanceJob {
    pub job_id: String,
    pub state: JobState,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub items: Vec<ItemBalanceOutcome>,
}

#[derive(Clone)]
pub struct BalanceRefresher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    plaid: plaid::PlaidClient,
    vault: Arc<Vault>,
    options: BalanceOptions,
    permits: Arc<Semaphore>,
    jobs: Mutex<HashMap<String, JobEntry>>,
    /// Live events for the browser (set once at startup).
    events: std::sync::OnceLock<crate::events::EventHub>,
}

struct JobEntry {
    user_id: String,
    /// `None` = all the user's Items.
    scope: Option<String>,
    job: watch::Sender<BalanceJob>,
}

impl BalanceRefresher {
    pub fn new(store: Arc<dyn Store>, plaid: plaid::PlaidClient, vault: Arc<Vault>, options: BalanceOptions) -> Self {
        let permits = Arc::new(Semaphore::new(options.max_concurrency.max(1)));
        Self {
            inner: Arc::new(Inner {
                store,
                plaid,
                vault,
                options,
                permits,
                jobs: Mutex::new(HashMap::new()),
                events: Default::default(),
            }),
        }
    }

    /// Publishes `balances_updated` (and health changes) for every refreshed Item from now on.
    pub fn set_events(&self, events: crate::events::EventHub) {
        let _ = self.inner.events.set(events);
    }

    /// Starts refreshing all the user's Items (or one, by Plaid item_id) in the background; returns at once.
    /// Unknown/foreign item → Err(NotFound). Items run concurrently (bounded); one slow bank delays nobody.
    pub async fn start(&self, user_id: &str, item_id: Option<&str>) -> Result<String, BalanceError> {
        self.evict_finished();
        let items = match item_id {
            Some(id) => vec![self.inner.store.get_item(user_id, id).await?],
            None => self.inner.store.list_items(user_id).await?,
        };
        let scope = item_id.map(str::to_owned);
        let job_id = {
            let mut jobs = self.inner.jobs.lock();
            // The call is billed per request: a refresh of the same scope that is still running is joined.
            let running = jobs
                .iter()
                .find(|(_, e)| e.user_id == user_id && e.scope == scope && e.job.borrow().state == JobState::Running);
            if let Some((id, _)) = running {
                return Ok(id.clone());
            }
            let job_id = uuid::Uuid::new_v4().to_string();
            let now = Utc::now();
            let job = BalanceJob {
                job_id: job_id.clone(),
                state: if items.is_empty() { JobState::Done } else { JobState::Running },
                started_at: now,
                finished_at: items.is_empty().then_some(now),
                items: items
                    .iter()
                    .map(|i| ItemBalanceOutcome {
                        item_id: i.item_id.clone(),
                        institution_name: i.institution_name.clone(),
                        state: ItemRefreshState::Pending,
                        accounts_updated: 0,
                        error: None,
                        finished_at: None,
                    })
                    .collect(),
            };
            let (tx, _) = watch::channel(job);
            jobs.insert(job_id.clone(), JobEntry { user_id: user_id.to_owned(), scope, job: tx.clone() });
            job_id
        };
        for item in items {
            let inner = self.inner.clone();
            let job_id = job_id.clone();
            tokio::spawn(async move {
                let item_id = item.item_id.clone();
                let outcome = crate::audit::with_item(&item_id, refresh_item(&inner, &item)).await;
                let ok = outcome.is_ok();
                inner.record(&job_id, &item_id, outcome);
                if let Some(events) = inner.events.get() {
                    crate::events::publish_balance_outcome(events, &inner.store, &item, &job_id, ok).await;
                }
            });
        }
        Ok(job_id)
    }

    /// The job's state, waiting up to `wait` for it to finish. None = unknown job or another user's.
    pub async fn status(&self, user_id: &str, job_id: &str, wait: Duration) -> Option<BalanceJob> {
        self.evict_finished();
        let mut rx = {
            let jobs = self.inner.jobs.lock();
            let entry = jobs.get(job_id).filter(|e| e.user_id == user_id)?;
            entry.job.subscribe()
        };
        if !wait.is_zero() {
            // Either it finishes in time or we answer with the current state; a closed channel cannot happen
            // while we hold a receiver of a live entry, and would only mean "answer now" anyway.
            let _ = tokio::time::timeout(wait, rx.wait_for(|j| j.state == JobState::Done)).await;
        }
        let job = rx.borrow().clone();
        Some(job)
    }

    fn evict_finished(&self) {
        let keep = chrono::Duration::from_std(self.inner.options.keep_finished_jobs).unwrap_or(chrono::Duration::MAX);
        let now = Utc::now();
        self.inner.jobs.lock().retain(|_, e| {
            let job = e.job.borrow();
            job.finished_at.is_none_or(|at| now.signed_duration_since(at) < keep)
        });
    }
}

impl Inner {
    /// Stores one Item's outcome in the job; the last one finishes the job.
    fn record(&self, job_id: &str, item_id: &str, outcome: Result<u64, UserFacingError>) {
        let jobs = self.jobs.lock();
        let Some(entry) = jobs.get(job_id) else { return };
        let now = Utc::now();
        entry.job.send_modify(|job| {
            for o in job.items.iter_mut().filter(|o| o.item_id == item_id) {
                o.finished_at = Some(now);
                match &outcome {
                    Ok(n) => {
                        o.state = ItemRefreshState::Ok;
                        o.accounts_updated = *n;
                    }
                    Err(e) => {
                        o.state = ItemRefreshState::Error;
                        o.error = Some(e.clone());
                    }
                }
            }
            if job.items.iter().all(|o| o.state != ItemRefreshState::Pending) {
                job.state = JobState::Done;
                job.finished_at = Some(now);
            }
        });
    }
}

/// Refreshes one Item; returns how many accounts got live balances.
async fn refresh_item(inner: &Inner, item: &Item) -> Result<u64, UserFacingError> {
    // Wait for a slot without holding anything else; the slot covers only the Plaid call.
    let response = {
        let _permit = inner.permits.acquire().await.map_err(|_| internal("the refresher is shutting down"))?;
        let token = inner.vault.decrypt(&item.access_token, &item.item_id).map_err(|e| {
            tracing::error!(item_id = %item.item_id, error = %e, "cannot decrypt the access token");
            internal("This bank connection's stored credentials cannot be read. Link the bank again.")
        })?;
        let request = AccountsBalanceGetRequest::new(AccessToken::from(token));
        let limit = inner.plaid.timeouts().balance;
        match tokio::time::timeout(limit, inner.plaid.accounts_balance_get(&request)).await {
            Ok(result) => result,
            Err(_) => Err(plaid::Error::Timeout { endpoint: plaid::Endpoint::AccountsBalanceGet }),
        }
    };
    match response {
        Ok(response) => {
            let now = Utc::now();
            let updates: Vec<_> =
                response.accounts.iter().map(|a| normalize::balance_update(a, BalanceSource::Live, now)).collect();
            let updated = inner.store.update_balances(&item.id, &updates).await.map_err(|e| {
                tracing::error!(item_id = %item.item_id, error = %e, "cannot store live balances");
                internal("The balances arrived but could not be saved. Please try again.")
            })?;
            // The bank answered, so a login problem recorded earlier is gone.
            if matches!(item.status, ItemStatus::LoginRequired | ItemStatus::Error) {
                if let Err(e) = inner.store.update_item_status(&item.id, &ItemHealth::good()).await {
                    tracing::warn!(item_id = %item.item_id, error = %e, "could not reset the Item's health");
                }
            }
            Ok(updated)
        }
        Err(error) => {
            tracing::warn!(item_id = %item.item_id, error = %error, "live balance refresh failed");
            if let Some(health) = error.plaid_error().and_then(health_from_error) {
                if let Err(e) = inner.store.update_item_status(&item.id, &health).await {
                    tracing::warn!(item_id = %item.item_id, error = %e, "could not record the Item's health");
                }
            }
            Err(user_facing(&error))
        }
    }
}

/// What the user sees for a failed Plaid call.
pub fn user_facing(error: &plaid::Error) -> UserFacingError {
    match error {
        plaid::Error::Api { error, .. } => {
            UserFacingError { code: error.error_code.to_ascii_lowercase(), message: error.user_message() }
        }
        plaid::Error::Timeout { .. } => UserFacingError {
            code: "timeout".into(),
            message: "Your bank did not answer in time. The last known balance is shown; try again later.".into(),
        },
        _ => UserFacingError {
            code: "plaid_unavailable".into(),
            message: "Plaid could not be reached. The last known balance is shown; try again later.".into(),
        },
    }
}

fn internal(message: &str) -> UserFacingError {
    UserFacingError { code: "internal".into(), message: message.into() }
}
