//! Live balances, asynchronously: `/accounts/balance/get` asks the bank in real time and can take 30 s or more, so a
//! refresh is a background job. `start` returns a job id at once; `status` long-polls it.
//!
//! - Calls go out as fast as Plaid's rate limits allow: each one is reserved in the shared rate budget
//!   ([`crate::budget`], counted across every instance sharing the database) and waits there for room, never
//!   failing on a full window. Every Item has its own task, so a slow bank (1–3 s, sometimes 30 s+) holds back
//!   nobody; [`BalanceOptions::max_concurrency`] only caps calls in flight, generously. Each call runs under the
//!   client's balance timeout.
//! - Plaid may still answer 429 (another client of the same keys, skew): the budget is told, the call waits for the
//!   window and goes again. An Item gives up only at its deadline ([`BalanceOptions::item_deadline`]), so a refresh
//!   always ends.
//! - An Item whose accounts all hold a live balance younger than [`BalanceOptions::max_age`] is not asked again:
//!   its outcome is `ok` with `fresh` set, at once (the call is billed, and Plaid limits it per Item).
//! - An Item that fails keeps its last cached balances and reports `{code, message}` (Plaid's display_message or an
//!   actionable sentence); its health is updated when the error says so.
//! - A second refresh for the same scope while one is running joins it (the call is billed per request), in this
//!   process or, through the store, in another one sharing the database: on PostgreSQL the look-up and the
//!   record's creation hold a named lock ([`Store::serialized`]), so two instances starting at once still share one
//!   job; on SQLite the creation is one statement, serialized by the database's single writer.
//! - A refresh runs in the process that started it, but its record lives in the durable `jobs` table (kind
//!   [`KIND_BALANCE_REFRESH`]): created `running` with its only attempt used (so no job worker ever claims it),
//!   leased to this process and renewed every third of [`BalanceOptions::lease`] while it runs, its `result` the
//!   [`BalanceJob`] JSON rewritten as each Item finishes, completed with the last one. So a job id survives a
//!   restart and any instance can answer for it. A job whose process died (lease run out, or failed by the job
//!   workers' reclaimer) reads as finished, its unfinished Items as `interrupted` errors.
//! - Waiting on a job running here uses its `tokio::sync::watch` channel; on one running elsewhere, the record is
//!   re-read every [`BalanceOptions::poll_interval`]. Finished jobs are readable for `keep_finished_jobs`; their
//!   records are deleted an hour after that.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use plaid::{AccessToken, AccountsBalanceGetRequest};
use serde::{Deserialize, Serialize};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;

use crate::budget::{Budget, RateLimits};
use crate::domain::{BalanceSource, Item, ItemHealth, ItemStatus, JobId, NewJob, PlaidItemId, UserId};
use crate::health::health_from_error;
use crate::jobs::LeaseKeeper;
use crate::normalize;
use crate::store::{Store, StoreError};
use crate::vault::Vault;

/// `jobs.kind` of a live balance refresh (`user_id` = its owner, `item_id` = the one Item refreshed, if only one).
pub const KIND_BALANCE_REFRESH: &str = "balance_refresh";

/// Error code of an Item whose refresh was cut short because the process running it stopped.
pub const INTERRUPTED: &str = "interrupted";

/// How often finished job records are looked for and deleted (per process).
const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// Finished job records are deleted this long after they stop being readable.
const PRUNE_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(1);

#[derive(Debug, Clone)]
pub struct BalanceOptions {
    /// `/accounts/balance/get` calls in flight at once, over all jobs: a cap, not the pace (the rate budget sets
    /// that), so high enough that slow banks never hold back fast ones.
    pub max_concurrency: usize,
    /// How long one Item may wait for Plaid's rate limit (and retry after a 429) before it gives up with
    /// `rate_limited`. A call started before it still runs to the client's balance timeout.
    pub item_deadline: Duration,
    /// A live balance younger than this is returned as is, without a Plaid call (`Duration::ZERO`: always call).
    pub max_age: Duration,
    /// How long a finished job stays readable.
    pub keep_finished_jobs: Duration,
    /// How long a running job's record stays valid without being renewed; this process renews it every third of
    /// that. A job whose process died reads as interrupted once it runs out.
    pub lease: Duration,
    /// How often a long-poll re-reads the record of a job running in another process.
    pub poll_interval: Duration,
}

impl Default for BalanceOptions {
    fn default() -> Self {
        Self {
            max_concurrency: 256,
            item_deadline: Duration::from_secs(300),
            max_age: Duration::from_secs(60),
            keep_finished_jobs: Duration::from_secs(3600),
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(250),
        }
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

/// The state of a refresh as its owner sees it (`state` in [`BalanceJob`]'s JSON: `running`, `done`). Not the
/// state of its record in the job queue ([`crate::store::JobState`]): a record still `running` whose lease ran out,
/// or `failed` by the reclaimer, reads as a `done` refresh with interrupted Items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshState {
    Running,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemRefreshState {
    Pending,
    Ok,
    Error,
}

/// An error safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserFacingError {
    /// Lower-case Plaid error code (e.g. `institution_down`), or `timeout` / `plaid_unavailable` / `internal` /
    /// `interrupted`.
    pub code: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemBalanceOutcome {
    /// Plaid's item_id.
    pub item_id: PlaidItemId,
    pub institution_name: Option<String>,
    pub state: ItemRefreshState,
    pub accounts_updated: u64,
    /// Every account already had a live balance younger than the refresher's max age: Plaid was not called.
    #[serde(default)]
    pub fresh: bool,
    pub error: Option<UserFacingError>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BalanceJob {
    pub job_id: JobId,
    pub state: RefreshState,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub items: Vec<ItemBalanceOutcome>,
}

#[derive(Clone)]
pub struct BalanceRefresher {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    plaid: plaid::PlaidClient,
    vault: Arc<Vault>,
    options: BalanceOptions,
    permits: Arc<Semaphore>,
    /// The lease owner this process's job records are held by.
    worker_id: String,
    /// Jobs running in this process (and finished ones whose completion could not be recorded).
    jobs: Mutex<HashMap<JobId, JobEntry>>,
    /// One start at a time in this process, so a refresh started twice at once is joined, not run twice.
    starting: tokio::sync::Mutex<()>,
    /// When finished records were last deleted.
    pruned_at: Mutex<Option<std::time::Instant>>,
    /// Live events for the browser (set once at startup).
    events: std::sync::OnceLock<crate::events::EventHub>,
    /// Plaid's rate budget (set once at startup; Plaid's sandbox limits on this store otherwise).
    budget: std::sync::OnceLock<Budget>,
}

struct JobEntry {
    user_id: UserId,
    /// `None` = all the user's Items.
    scope: Option<PlaidItemId>,
    job: watch::Sender<BalanceJob>,
    /// Serializes the writes of the job's record (so a newer state is never overwritten by an older one); true once
    /// its completion is recorded.
    persisted: Arc<tokio::sync::Mutex<bool>>,
    /// The job finished but its completion could not be recorded: this entry answers for it until it is evicted.
    unrecorded: bool,
    /// Renews the record's lease while the job runs; released before its completion is recorded.
    lease: Option<LeaseKeeper>,
}

impl BalanceRefresher {
    pub fn new(store: Arc<Store>, plaid: plaid::PlaidClient, vault: Arc<Vault>, options: BalanceOptions) -> Self {
        let permits = Arc::new(Semaphore::new(options.max_concurrency.max(1)));
        let worker_id = format!("balances-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
        Self {
            inner: Arc::new(Inner {
                store,
                plaid,
                vault,
                options,
                permits,
                worker_id,
                jobs: Mutex::new(HashMap::new()),
                starting: tokio::sync::Mutex::new(()),
                pruned_at: Mutex::new(None),
                events: Default::default(),
                budget: Default::default(),
            }),
        }
    }

    /// Publishes `balances_updated` (and health changes) for every refreshed Item from now on.
    pub fn set_events(&self, events: crate::events::EventHub) {
        let _ = self.inner.events.set(events);
    }

    /// Reserves every balance call in `budget` (the one the whole process shares). Call it before the first
    /// refresh; without it the refresher keeps to Plaid's sandbox limits on its own.
    pub fn set_budget(&self, budget: Budget) {
        let _ = self.inner.budget.set(budget);
    }

    /// Starts refreshing all the user's Items (or one, by Plaid item_id) in the background; returns at once.
    /// Unknown/foreign item → Err(NotFound). Items run concurrently (bounded); one slow bank delays nobody.
    pub async fn start(&self, user_id: &UserId, item_id: Option<&PlaidItemId>) -> Result<JobId, BalanceError> {
        self.evict_finished();
        let items = match item_id {
            Some(id) => vec![self.inner.store.get_item(user_id, id).await?],
            None => self.inner.store.list_items(user_id).await?,
        };
        let order: Vec<PlaidItemId> = items.iter().map(|i| i.item_id.clone()).collect();
        let scope = item_id.cloned();
        let fresh = self.fresh_items(user_id, &scope).await?;
        let starting = self.inner.starting.lock().await;
        // The call is billed per request: a refresh of the same scope that is still running is joined.
        if let Some(id) = self.local_running(user_id, &scope) {
            return Ok(id);
        }
        self.inner.prune_finished().await;
        let job_id = JobId::new(uuid::Uuid::new_v4().to_string());
        let now = Utc::now();
        // Items whose live balances are young enough are done already; the others are asked.
        let (done_already, items): (Vec<Item>, Vec<Item>) = items.into_iter().partition(|i| fresh.contains(&i.item_id));
        let mut outcomes: HashMap<PlaidItemId, ItemBalanceOutcome> = HashMap::new();
        for (item, fresh) in done_already.iter().map(|i| (i, true)).chain(items.iter().map(|i| (i, false))) {
            let outcome = ItemBalanceOutcome {
                item_id: item.item_id.clone(),
                institution_name: item.institution_name.clone(),
                state: if fresh { ItemRefreshState::Ok } else { ItemRefreshState::Pending },
                accounts_updated: 0,
                fresh,
                error: None,
                finished_at: fresh.then_some(now),
            };
            outcomes.insert(item.item_id.clone(), outcome);
        }
        let job = BalanceJob {
            job_id: job_id.clone(),
            state: if items.is_empty() { RefreshState::Done } else { RefreshState::Running },
            started_at: now,
            finished_at: items.is_empty().then_some(now),
            // In the order the Items were listed.
            items: order.iter().filter_map(|id| outcomes.remove(id)).collect(),
        };
        let record = NewJob {
            kind: KIND_BALANCE_REFRESH.to_owned(),
            // Another process running the same refresh for this user is joined too.
            coalesce_key: Some(format!("{user_id}/{}", scope.as_ref().map_or("*", PlaidItemId::as_str))),
            user_id: Some(user_id.clone()),
            item_id: scope.clone(),
            payload: serde_json::json!({ "item_id": scope }).to_string(),
            run_after: now,
            max_attempts: 1,
        };
        let store = &self.inner.store;
        let worker = &self.inner.worker_id;
        let lock = format!("{KIND_BALANCE_REFRESH}:{}", record.coalesce_key.as_deref().unwrap_or_default());
        let created = store
            .serialized(
                &lock,
                store.create_running_job(&job_id, &record, worker, self.inner.options.lease, &to_json(&job)),
            )
            .await?;
        if created.coalesced {
            return Ok(created.job_id);
        }
        if items.is_empty() {
            store.complete_job(&job_id, worker, Some(&to_json(&job))).await?;
            return Ok(job_id);
        }
        let (tx, _) = watch::channel(job);
        let entry = JobEntry {
            user_id: user_id.clone(),
            scope,
            job: tx.clone(),
            persisted: Arc::default(),
            unrecorded: false,
            lease: Some(LeaseKeeper::start(store.clone(), &job_id, worker, self.inner.options.lease)),
        };
        self.inner.jobs.lock().insert(job_id.clone(), entry);
        drop(starting);

        for item in items {
            let inner = self.inner.clone();
            let job_id = job_id.clone();
            tokio::spawn(async move {
                let item_id = item.item_id.clone();
                let outcome = crate::audit::with_item(&item_id, refresh_item(&inner, &item)).await;
                let ok = outcome.is_ok();
                inner.record(&job_id, &item_id, outcome);
                inner.persist(&job_id).await;
                if let Some(events) = inner.events.get() {
                    crate::events::publish_balance_outcome(events, &inner.store, &item, &job_id, ok).await;
                }
            });
        }
        Ok(job_id)
    }

    /// The job's state, waiting up to `wait` for it to finish. `Ok(None)` = unknown job, another user's, or
    /// finished longer than `keep_finished_jobs` ago. Works for jobs started by any process sharing the database.
    pub async fn status(
        &self,
        user_id: &UserId,
        job_id: &JobId,
        wait: Duration,
    ) -> Result<Option<BalanceJob>, BalanceError> {
        self.evict_finished();
        let local = {
            let jobs = self.inner.jobs.lock();
            jobs.get(job_id).map(|e| {
                (e.user_id == *user_id && !self.expired(e.job.borrow().finished_at, Utc::now()))
                    .then(|| e.job.subscribe())
            })
        };
        match local {
            Some(None) => return Ok(None),
            Some(Some(mut rx)) => {
                if !wait.is_zero() {
                    // Either it finishes in time or we answer with the current state; a closed channel (the job
                    // finished and was recorded) still holds the final state.
                    let _ = tokio::time::timeout(wait, rx.wait_for(|j| j.state == RefreshState::Done)).await;
                }
                let job = rx.borrow().clone();
                return Ok(Some(job));
            }
            None => {}
        }

        // Not running here: the record, re-read until it is finished or the wait is over.
        let deadline = tokio::time::Instant::now() + wait;
        let Some(mut job) = self.read(user_id, job_id, true).await? else { return Ok(None) };
        while job.state != RefreshState::Done {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                break;
            }
            tokio::time::sleep(self.inner.options.poll_interval.min(deadline - now)).await;
            match self.read(user_id, job_id, false).await {
                Ok(Some(newer)) => job = newer,
                // Deleted meanwhile: the last state seen is the answer.
                Ok(None) => break,
                Err(e) => tracing::warn!(%job_id, error = %e, "cannot re-read a balance refresh job; retrying"),
            }
        }
        Ok(Some(job))
    }

    /// The user's Items in `scope` whose every account holds a live balance younger than the max age.
    async fn fresh_items(
        &self,
        user_id: &UserId,
        scope: &Option<PlaidItemId>,
    ) -> Result<std::collections::HashSet<PlaidItemId>, BalanceError> {
        let max_age = self.inner.options.max_age;
        let since = chrono::Duration::from_std(max_age).ok().and_then(|age| Utc::now().checked_sub_signed(age));
        let Some(since) = since.filter(|_| !max_age.is_zero()) else { return Ok(Default::default()) };
        let filter = crate::domain::AccountFilter { item_id: scope.clone(), include_removed: false };
        let mut by_item: HashMap<PlaidItemId, bool> = HashMap::new();
        for account in self.inner.store.list_accounts(user_id, &filter).await? {
            let young =
                account.balance_source == BalanceSource::Live && account.balance_as_of.is_some_and(|at| at >= since);
            *by_item.entry(account.item_id).or_insert(true) &= young;
        }
        Ok(by_item.into_iter().filter_map(|(item, fresh)| fresh.then_some(item)).collect())
    }

    /// The job of this user and scope running in this process, if any.
    fn local_running(&self, user_id: &UserId, scope: &Option<PlaidItemId>) -> Option<JobId> {
        let jobs = self.inner.jobs.lock();
        jobs.iter()
            .find(|(_, e)| e.user_id == *user_id && e.scope == *scope && e.job.borrow().state == RefreshState::Running)
            .map(|(id, _)| id.clone())
    }

    /// The job's record as the user sees it. `evict`: a job finished longer than `keep_finished_jobs` ago is gone.
    async fn read(&self, user_id: &UserId, job_id: &JobId, evict: bool) -> Result<Option<BalanceJob>, BalanceError> {
        let record = match self.inner.store.get_job(job_id).await {
            Ok(record) => record,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(BalanceError::Store(e)),
        };
        if record.kind != KIND_BALANCE_REFRESH || record.user_id.as_ref() != Some(user_id) {
            return Ok(None);
        }
        let now = Utc::now();
        let Some(job) = job_from_record(&record, now) else {
            tracing::error!(%job_id, "a balance refresh job's record cannot be read");
            return Ok(None);
        };
        if evict && self.expired(job.finished_at, now) {
            return Ok(None);
        }
        Ok(Some(job))
    }

    /// A job finished at `finished_at` is no longer readable.
    fn expired(&self, finished_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        let keep = chrono::Duration::from_std(self.inner.options.keep_finished_jobs).unwrap_or(chrono::Duration::MAX);
        finished_at.is_some_and(|at| now.signed_duration_since(at) >= keep)
    }

    /// Forgets finished jobs whose completion could not be recorded once they expire. (A recorded completion
    /// removes its entry; until then the entry answers for the job, whose record may still say running.)
    fn evict_finished(&self) {
        let now = Utc::now();
        self.inner.jobs.lock().retain(|_, e| !(e.unrecorded && self.expired(e.job.borrow().finished_at, now)));
    }
}

/// The user's view of a job record: its stored progress, except that a job whose process stopped before it
/// finished (lease run out, or failed by the reclaimer) is finished, its unfinished Items interrupted.
fn job_from_record(record: &crate::domain::Job, now: DateTime<Utc>) -> Option<BalanceJob> {
    use crate::domain::JobState as Stored;
    let mut job: BalanceJob = serde_json::from_str(record.result.as_deref()?).ok()?;
    job.job_id.clone_from(&record.id);
    let interrupted_at = match record.state {
        Stored::Done => None,
        Stored::Running => match record.lease_expires_at {
            Some(at) if at >= now => None,
            at => Some(at.unwrap_or(record.updated_at)),
        },
        Stored::Queued | Stored::Failed => Some(record.lease_expires_at.unwrap_or(record.updated_at)),
    };
    if let Some(at) = interrupted_at {
        let at = at.min(now);
        for item in job.items.iter_mut().filter(|i| i.state == ItemRefreshState::Pending) {
            item.state = ItemRefreshState::Error;
            item.finished_at = Some(at);
            item.error = Some(UserFacingError {
                code: INTERRUPTED.into(),
                message: "The refresh was interrupted before your bank answered. The last known balance is shown; \
                          try again."
                    .into(),
            });
        }
        job.state = RefreshState::Done;
        job.finished_at = job.finished_at.or(Some(at));
    }
    Some(job)
}

fn to_json(job: &BalanceJob) -> String {
    serde_json::to_string(job).expect("a balance job serializes")
}

impl Inner {
    fn budget(&self) -> &Budget {
        self.budget.get_or_init(|| Budget::new(self.store.clone(), RateLimits::sandbox()))
    }

    /// Stores one Item's outcome in the job; the last one finishes the job.
    fn record(&self, job_id: &JobId, item_id: &PlaidItemId, outcome: Result<u64, UserFacingError>) {
        let jobs = self.jobs.lock();
        let Some(entry) = jobs.get(job_id) else { return };
        let now = Utc::now();
        entry.job.send_modify(|job| {
            for o in job.items.iter_mut().filter(|o| o.item_id == *item_id) {
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
                job.state = RefreshState::Done;
                job.finished_at = Some(now);
            }
        });
    }

    /// Writes the job's current state to its record: progress, or the completion once every Item finished (then
    /// the record alone answers for the job). Writes are serialized and each writes the latest state.
    async fn persist(&self, job_id: &JobId) {
        let Some((job, persisted)) = self.jobs.lock().get(job_id).map(|e| (e.job.clone(), e.persisted.clone())) else {
            return;
        };
        let mut completed = persisted.lock().await;
        if *completed {
            return;
        }
        let snapshot = job.borrow().clone();
        let json = to_json(&snapshot);
        let done = snapshot.state == RefreshState::Done;
        let written = if done {
            self.release_lease(job_id).await;
            self.store.complete_job(job_id, &self.worker_id, Some(&json)).await
        } else {
            self.store.update_running_job_result(job_id, &self.worker_id, &json).await
        };
        match written {
            Ok(()) if done => {
                *completed = true;
                self.jobs.lock().remove(job_id);
                return;
            }
            Ok(()) => return,
            Err(StoreError::NotFound) => {
                tracing::warn!(%job_id, "a balance refresh job's record is no longer held (its lease ran out)");
            }
            Err(e) => tracing::warn!(%job_id, error = %e, "cannot record a balance refresh job's progress"),
        }
        if done {
            if let Some(entry) = self.jobs.lock().get_mut(job_id) {
                entry.unrecorded = true;
            }
        }
    }

    /// Stops renewing the job record's lease: the job finished, nothing is left to hold.
    async fn release_lease(&self, job_id: &JobId) {
        let lease = self.jobs.lock().get_mut(job_id).and_then(|e| e.lease.take());
        if let Some(lease) = lease {
            lease.release().await;
        }
    }

    /// Deletes finished job records long unreadable, at most every [`PRUNE_EVERY`]; best effort.
    async fn prune_finished(&self) {
        {
            let mut at = self.pruned_at.lock();
            if at.is_some_and(|t| t.elapsed() < PRUNE_EVERY) {
                return;
            }
            *at = Some(std::time::Instant::now());
        }
        let keep = chrono::Duration::from_std(self.options.keep_finished_jobs).unwrap_or(chrono::Duration::MAX);
        let Some(before) = keep.checked_add(&PRUNE_AFTER).and_then(|age| Utc::now().checked_sub_signed(age)) else {
            return;
        };
        match self.store.delete_finished_jobs(KIND_BALANCE_REFRESH, before).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "old balance refresh jobs deleted"),
            Err(e) => tracing::warn!(error = %e, "cannot delete old balance refresh jobs"),
        }
    }
}

/// Refreshes one Item; returns how many accounts got live balances.
async fn refresh_item(inner: &Inner, item: &Item) -> Result<u64, UserFacingError> {
    const ENDPOINT: plaid::Endpoint = plaid::Endpoint::AccountsBalanceGet;
    let deadline = Instant::now() + inner.options.item_deadline;
    let token = inner.vault.decrypt(&item.access_token, item.item_id.as_str()).map_err(|e| {
        tracing::error!(item_id = %item.item_id, error = %e, "cannot decrypt the access token");
        internal("This bank connection's stored credentials cannot be read. Link the bank again.")
    })?;
    let request = AccountsBalanceGetRequest::new(AccessToken::from(token));
    let response = loop {
        // The slot is taken before the budget's reservation, so the call goes out the moment it is reserved (a
        // reservation counts from when it is made).
        let _permit = inner.permits.acquire().await.map_err(|_| internal("the refresher is shutting down"))?;
        if let Err(over) = inner.budget().acquire_before(ENDPOINT, &item.item_id, deadline).await {
            tracing::warn!(item_id = %item.item_id, next_room = %over.until, "no room in Plaid's rate limit in time");
            return Err(rate_limited());
        }
        let limit = inner.plaid.timeouts().balance;
        let result = match tokio::time::timeout(limit, inner.plaid.accounts_balance_get(&request)).await {
            Ok(result) => result,
            Err(_) => Err(plaid::Error::Timeout { endpoint: ENDPOINT }),
        };
        match result {
            // Plaid's limit was reached anyway: everyone waits for the window, then this Item asks again.
            Err(e) if e.is_rate_limited() => inner.budget().note_rate_limited(ENDPOINT, Some(&item.item_id), &e).await,
            other => break other,
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

/// The Item waited for Plaid's rate limit until its deadline.
fn rate_limited() -> UserFacingError {
    UserFacingError {
        code: "rate_limited".into(),
        message: "Plaid's limit on live balance requests left no room for this bank in time. The last known balance \
                  is shown; try again in a minute."
            .into(),
    }
}

fn internal(message: &str) -> UserFacingError {
    UserFacingError { code: "internal".into(), message: message.into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_states_serialize_as_the_api_documents_them() {
        assert_eq!(serde_json::to_string(&RefreshState::Running).unwrap(), r#""running""#);
        assert_eq!(serde_json::to_string(&RefreshState::Done).unwrap(), r#""done""#);
    }
}
