//! One sync run of one Item: the page loop, staging, restart, commit and bookkeeping.

use std::time::{Duration, Instant};

use chrono::Utc;
use plaid::{AccessToken, TransactionsSyncRequest, TransactionsSyncResponse, codes};

use super::{Inner, SyncError, SyncSummary, SyncTrigger};
use crate::domain::{BalanceSource, Item, ItemHealth, ItemStatus, PlaidItemId, SyncPage, SyncPhase, SyncRunOutcome};
use crate::health::health_from_error;
use crate::normalize;
use crate::store::InitialWrite;

/// Counts of the pages staged so far in the current attempt.
#[derive(Default)]
struct Tally {
    added: u64,
    modified: u64,
    removed: u64,
    pages: u64,
    /// Where the time went (fetching and staging overlap), for the log.
    fetch: Duration,
    stage: Duration,
    commit: Duration,
}

/// Runs `f`, adding its duration to `total`.
async fn timed<T>(total: &mut Duration, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = f.await;
    *total += started.elapsed();
    out
}

pub(super) async fn run(inner: &Inner, item: &Item, trigger: SyncTrigger) -> Result<SyncSummary, SyncError> {
    // Re-read the Item: the caller's copy may predate a sync that committed since (its cursor would be stale).
    let item = inner.store.get_item(&item.user_id, &item.item_id).await?;
    let run = inner.store.start_sync_run(&item.id, trigger.as_str()).await?;
    let mut restarts = 0u32;
    let result = attempt_all(inner, &item, &run.id, &mut restarts).await;

    match result {
        Ok((tally, phase)) => {
            let not_ready = phase == SyncPhase::NotReady;
            if !not_ready && matches!(item.status, ItemStatus::LoginRequired | ItemStatus::Error) {
                inner.store.update_item_status(&item.id, &ItemHealth::good()).await?;
            }
            inner
                .store
                .finish_sync_run(
                    &run.id,
                    &SyncRunOutcome {
                        succeeded: true,
                        added: as_i64(tally.added),
                        modified: as_i64(tally.modified),
                        removed: as_i64(tally.removed),
                        pages: as_i64(tally.pages),
                        restarts: i64::from(restarts),
                        error_code: None,
                        error_message: None,
                    },
                )
                .await?;
            if let Err(e) = inner.store.record_sync_phase(&item.id, phase).await {
                tracing::warn!(item_id = %item.item_id, error = %e, "could not record the Item's data phase");
            }
            tracing::info!(
                item_id = %item.item_id, run_id = %run.id, phase = phase.as_str(), added = tally.added, modified = tally.modified,
                removed = tally.removed, pages = tally.pages, restarts, not_ready,
                fetch_ms = tally.fetch.as_millis() as u64, stage_ms = tally.stage.as_millis() as u64,
                commit_ms = tally.commit.as_millis() as u64, "sync finished"
            );
            Ok(SyncSummary {
                run_id: run.id,
                item_id: item.item_id.clone(),
                added: tally.added,
                modified: tally.modified,
                removed: tally.removed,
                pages: tally.pages,
                restarts: u64::from(restarts),
                not_ready,
                phase,
                coalesced: false,
            })
        }
        Err(error) => {
            if let Some(health) = error.plaid_error().and_then(health_from_error) {
                if let Err(e) = inner.store.update_item_status(&item.id, &health).await {
                    tracing::warn!(item_id = %item.item_id, error = %e, "could not record the Item's health");
                }
            }
            let (error_code, error_message) = error.for_run();
            let outcome = SyncRunOutcome {
                succeeded: false,
                restarts: i64::from(restarts),
                error_code,
                error_message: Some(error_message),
                ..SyncRunOutcome::default()
            };
            if let Err(e) = inner.store.finish_sync_run(&run.id, &outcome).await {
                tracing::warn!(run_id = %run.id, error = %e, "could not record the failed sync run");
            }
            tracing::warn!(item_id = %item.item_id, run_id = %run.id, error = %error, "sync failed");
            Err(error)
        }
    }
}

/// Runs attempts until one commits, is not ready, or fails. Returns the committed tally and Plaid's data phase.
async fn attempt_all(
    inner: &Inner,
    item: &Item,
    run_id: &str,
    restarts: &mut u32,
) -> Result<(Tally, SyncPhase), SyncError> {
    let token = AccessToken::from(inner.vault.decrypt(&item.access_token, item.item_id.as_str())?);
    let start_cursor = item.cursor.clone().unwrap_or_default();
    // Rate-limit pauses of the whole run, across restarts.
    let mut rate_limit_waited = Duration::ZERO;
    loop {
        match attempt(inner, item, run_id, &token, &start_cursor, &mut rate_limit_waited).await {
            Err(SyncError::Plaid(e)) if e.has_code(codes::TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION) => {
                // (The attempt already gave up its pages.)
                *restarts += 1;
                if *restarts > inner.options.max_restarts {
                    return Err(SyncError::TooManyRestarts(*restarts - 1));
                }
                tracing::info!(item_id = %item.item_id, restarts = *restarts, "bank data changed during pagination; restarting");
            }
            other => return other,
        }
    }
}

/// Changes per write of an initial sync (see [`Sink::batch_changes`]); bounds memory to about that many
/// normalized transactions (~2 KB each) on top of the pipeline's pages.
const INITIAL_SYNC_BATCH: usize = 5_000;
/// Changes an initial sync writes in one database transaction at most, across consecutive batches (see
/// [`crate::store::InitialWrite`]); bounds how long other writers wait for the one SQLite writer.
const INITIAL_SYNC_COMMIT: u64 = 20_000;

/// Where an attempt's pages go until its commit.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// The Item's first sync: straight into `transactions`, hidden until the commit (see
    /// [`crate::store::Store::claim_initial_sync`]); the history is written once.
    Initial,
    /// Into the staging table, moved into `transactions` by the commit; keeps the stored rows consistent.
    Staged,
}

impl Sink {
    async fn choose(inner: &Inner, item: &Item, run_id: &str) -> Result<Self, SyncError> {
        let initial = item.cursor.is_none() && inner.store.claim_initial_sync(item, run_id).await?;
        Ok(if initial { Sink::Initial } else { Sink::Staged })
    }

    /// Changes gathered before a write. Each write of the initial sync is a transaction of the main database, whose
    /// commit appends every page it changed to the WAL; transaction ids arrive in random order, so even a small
    /// write changes most pages of the primary-key index. Written a page (500) at a time, a 100,000-transaction
    /// history took 3.5–4.5 s to write; in batches of 5,000, 1.7 s (larger batches overflow the writer's page cache
    /// and got slower again). Staging writes to a temporary table with no WAL, page by page.
    fn batch_changes(self) -> usize {
        match self {
            Sink::Initial => INITIAL_SYNC_BATCH,
            Sink::Staged => 1,
        }
    }

    /// Writes a batch. An initial sync writes it into `open` (or a new database transaction), and leaves that open
    /// for the next batch until it is full (the stager commits it before it would wait for a page, and after the
    /// last page); a full one commits here.
    async fn write(
        self,
        inner: &Inner,
        item: &Item,
        run_id: &str,
        pages: &[SyncPage],
        open: &mut Option<InitialWrite>,
    ) -> Result<(), SyncError> {
        match self {
            Sink::Initial => {
                let mut write = match open.take() {
                    Some(write) => write,
                    None => inner.store.begin_initial_write(item, run_id).await?,
                };
                write.write(item, pages).await?;
                if write.changes() < INITIAL_SYNC_COMMIT {
                    *open = Some(write);
                } else {
                    inner.store.finish_initial_write(write).await?;
                }
            }
            Sink::Staged => {
                for page in pages {
                    inner.store.stage_sync_page(run_id, page).await?;
                }
            }
        }
        Ok(())
    }

    async fn commit(self, inner: &Inner, item: &Item, run_id: &str, next_cursor: &str) -> Result<(), SyncError> {
        match self {
            Sink::Initial => inner.store.commit_initial_sync(item, run_id, next_cursor).await?,
            Sink::Staged => inner.store.commit_sync(item, run_id, next_cursor).await.map(drop)?,
        }
        Ok(())
    }

    /// Drops what the attempt wrote (a restart, not ready yet, or a failure).
    async fn discard(self, inner: &Inner, item: &Item, run_id: &str) -> Result<(), SyncError> {
        match self {
            Sink::Initial => inner.store.release_initial_sync(item, run_id).await?,
            Sink::Staged => inner.store.discard_sync(run_id).await?,
        }
        Ok(())
    }
}

/// Pages fetched ahead of the ones being written (plus a batch's worth, see `attempt`). Fetching (network, JSON
/// decoding, normalizing) and writing (SQLite on its own thread) then run side by side instead of in lockstep, each
/// at its own pace; memory stays bounded by these pages plus the batch being written.
const PIPELINE_DEPTH: usize = 2;

/// One fetched page, normalized, on its way to the stager.
struct Fetched {
    page: SyncPage,
    added: u64,
    modified: u64,
    removed: u64,
    accounts: Vec<plaid::AccountBase>,
    next_cursor: String,
    has_more: bool,
    /// Plaid's `transactions_update_status` (the last page's is the run's).
    status: plaid::TransactionsUpdateStatus,
}

/// A page being normalized off the async threads.
type Normalizing = tokio::task::JoinHandle<Fetched>;

impl Fetched {
    fn normalized(item_id: &PlaidItemId, response: TransactionsSyncResponse) -> Self {
        let TransactionsSyncResponse {
            added,
            modified,
            removed,
            accounts,
            next_cursor,
            has_more,
            transactions_update_status,
            ..
        } = response;
        Fetched {
            added: added.len() as u64,
            modified: modified.len() as u64,
            removed: removed.len() as u64,
            page: SyncPage {
                added: normalize_all(item_id, &added),
                modified: normalize_all(item_id, &modified),
                removed: removed.into_iter().map(|r| r.transaction_id.into()).collect(),
            },
            accounts,
            next_cursor,
            has_more,
            status: transactions_update_status,
        }
    }
}

/// One pass from `start_cursor` to `has_more = false`, then the commit. A fetcher task walks the cursor chain and
/// hands normalized pages over a bounded channel to the stager. It is a task of its own so that decoding and
/// normalizing (CPU work) run on another thread than the one driving the stager: the database, the network and
/// the decoding all overlap.
async fn attempt(
    inner: &Inner,
    item: &Item,
    run_id: &str,
    token: &AccessToken,
    start_cursor: &str,
    rate_limit_waited: &mut Duration,
) -> Result<(Tally, SyncPhase), SyncError> {
    let sink = Sink::choose(inner, item, run_id).await?;
    // While the stager writes a batch of several pages, the fetcher keeps going until the next batch is ready.
    let batch_pages = sink.batch_changes().div_ceil(inner.options.page_size as usize);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Normalizing, SyncError>>(PIPELINE_DEPTH + batch_pages);
    let fetcher = Fetcher {
        plaid: inner.plaid.clone(),
        options: inner.options.clone(),
        item_id: item.item_id.clone(),
        token: token.clone(),
        waited: *rate_limit_waited,
        budget: inner.budget.get().cloned(),
    };
    let item_id = item.item_id.clone();
    let cursor = start_cursor.to_owned();
    // Calls are attributed to the Item in the audit trail through a task-local, which a new task must set again.
    let fetcher = tokio::spawn(async move { crate::audit::with_item(&item_id, fetcher.run(cursor, tx)).await });
    let mut fetcher = AbortOnDrop(fetcher);

    let stager = async {
        let mut tally = Tally::default();
        let mut buffer: Vec<SyncPage> = Vec::new();
        let mut buffered_changes = 0;
        // An initial sync's database transaction, left open between batches while the fetcher keeps up.
        let mut open: Option<InitialWrite> = None;
        loop {
            let fetched = match rx.try_recv() {
                Ok(fetched) => fetched,
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => {
                    // Never wait for the fetcher while holding the store's one writer: the fetcher may need it (the
                    // rate budget's reservations), and other writers should not wait for Plaid either.
                    finish_open_write(inner, &mut open, &mut tally.stage).await?;
                    match rx.recv().await {
                        Some(fetched) => fetched,
                        None => break,
                    }
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => break,
            };
            let fetched = fetched?
                .await
                .map_err(|e| SyncError::Other(format!("normalizing a page of transactions failed: {e}")))?;
            if fetched.next_cursor.is_empty() {
                // Not ready yet (Plaid is still pulling the history). Whatever was staged is not a complete view.
                // (An open transaction rolls back first: the discard needs the writer it holds.)
                drop(open.take());
                if tally.pages > 0 || sink == Sink::Initial {
                    sink.discard(inner, item, run_id).await?;
                }
                return Ok((Tally::default(), SyncPhase::NotReady));
            }
            tally.pages += 1;
            tally.added += fetched.added;
            tally.modified += fetched.modified;
            tally.removed += fetched.removed;
            let page = fetched.page;
            let changes = page.added.len() + page.modified.len() + page.removed.len();
            if changes > 0 {
                buffered_changes += changes;
                buffer.push(page);
            }
            if buffered_changes > 0 && (buffered_changes >= sink.batch_changes() || !fetched.has_more) {
                let write = sink.write(inner, item, run_id, &buffer, &mut open);
                timed(&mut tally.stage, write).await?;
                buffer.clear();
                buffered_changes = 0;
            }
            if !fetched.has_more {
                finish_open_write(inner, &mut open, &mut tally.stage).await?;
                timed(&mut tally.commit, sink.commit(inner, item, run_id, &fetched.next_cursor)).await?;
                refresh_cached_balances(inner, item, &fetched.accounts).await;
                return Ok((tally, SyncPhase::of(&fetched.status, false)));
            }
        }
        Err(SyncError::Other("the page fetcher stopped before the last page".into()))
    };
    let result = stager.await;
    drop(rx);
    if result.is_err() {
        // The fetcher has sent its last page (or failed); on a failure of ours it may still be pausing for a rate
        // limit, so it is stopped rather than awaited.
        fetcher.0.abort();
        // Whatever this attempt wrote is not a complete view (a restart retries from the start cursor).
        if let Err(e) = sink.discard(inner, item, run_id).await {
            tracing::warn!(item_id = %item.item_id, run_id, error = %e, "could not discard a failed attempt's pages");
        }
    }
    let stats = (&mut fetcher.0).await.ok();
    if let Some((_, waited)) = stats {
        *rate_limit_waited = waited;
    }
    result.map(|(mut tally, phase)| {
        tally.fetch = stats.map(|(fetch, _)| fetch).unwrap_or_default();
        (tally, phase)
    })
}

/// Commits an initial sync's database transaction left open between batches, if any.
async fn finish_open_write(
    inner: &Inner,
    open: &mut Option<InitialWrite>,
    stage: &mut Duration,
) -> Result<(), SyncError> {
    if let Some(write) = open.take() {
        timed(stage, inner.store.finish_initial_write(write)).await?;
    }
    Ok(())
}

/// Aborts the task when dropped (the sync run ending any other way than through `attempt`'s end).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Walks the cursor chain of one attempt, sending each page, normalized, to the stager.
struct Fetcher {
    plaid: plaid::PlaidClient,
    options: super::SyncOptions,
    item_id: PlaidItemId,
    token: AccessToken,
    /// Rate-limit pauses of the run so far.
    waited: Duration,
    budget: Option<crate::budget::Budget>,
}

impl Fetcher {
    /// Returns the time spent fetching (calls and decoding), and the run's rate-limit pauses so far.
    async fn run(
        mut self,
        mut cursor: String,
        tx: tokio::sync::mpsc::Sender<Result<Normalizing, SyncError>>,
    ) -> (Duration, Duration) {
        let mut busy = Duration::ZERO;
        // Pausing only pays off once there is progress to keep: a limit on the first page fails the run at once, so
        // a queued sync goes back to the job queue's per-Item backoff instead of occupying a worker.
        let mut mid_pagination = false;
        loop {
            let response = self.fetch_patiently(&cursor, mid_pagination).await;
            mid_pagination = true;
            // Normalizing (CPU work, mostly re-encoding each raw object) runs on the blocking pool while this task
            // already asks for the next page; the stager awaits the pages in order.
            let (fetched, next) = match response {
                Ok((response, took)) => {
                    busy += took;
                    let next =
                        (response.has_more && !response.next_cursor.is_empty()).then(|| response.next_cursor.clone());
                    let item_id = self.item_id.clone();
                    (Ok(tokio::task::spawn_blocking(move || Fetched::normalized(&item_id, response))), next)
                }
                Err(e) => (Err(e), None),
            };
            // A closed channel means the stager gave up (its error is the run's outcome).
            if tx.send(fetched).await.is_err() {
                return (busy, self.waited);
            }
            match next {
                Some(next) => cursor = next,
                None => return (busy, self.waited),
            }
        }
    }

    /// Fetches the page at `cursor`. In the middle of pagination (`patient`), pauses and asks again for the same
    /// cursor while Plaid's rate limit refuses it and the run's pause budget lasts. Returns the page and the time
    /// its successful call took.
    async fn fetch_patiently(
        &mut self,
        cursor: &str,
        patient: bool,
    ) -> Result<(TransactionsSyncResponse, Duration), SyncError> {
        loop {
            if let Some(budget) = &self.budget {
                budget.acquire(plaid::Endpoint::TransactionsSync, &self.item_id).await;
            }
            let started = Instant::now();
            let request = TransactionsSyncRequest::new(self.token.clone()).cursor(cursor).count(self.options.page_size);
            let result = self.plaid.transactions_sync(&request).await;
            if let (Err(e), Some(budget)) = (&result, &self.budget) {
                // Plaid refused despite the budget (another client of these keys?): everyone waits a window.
                budget.note_rate_limited(plaid::Endpoint::TransactionsSync, Some(&self.item_id), e).await;
            }
            match result {
                Ok(response) => return Ok((response, started.elapsed())),
                Err(e) if patient && e.is_rate_limited() && self.waited < self.options.rate_limit_budget => {
                    let pause = self.options.rate_limit_pause.min(self.options.rate_limit_budget - self.waited);
                    tracing::info!(
                        item_id = %self.item_id, pause_ms = pause.as_millis() as u64,
                        waited_ms = self.waited.as_millis() as u64,
                        "Plaid rate limit during sync; pausing, then resuming from the same cursor"
                    );
                    tokio::time::sleep(pause).await;
                    self.waited += pause;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A transaction Plaid sent without the ids everything hangs on cannot be stored; skipping it (loudly) keeps one
/// bad record from blocking the Item's sync forever. Its raw form is in the log's context only by id.
fn normalize_all(item_id: &PlaidItemId, transactions: &[plaid::Transaction]) -> Vec<crate::domain::NewTransaction> {
    transactions
        .iter()
        .filter_map(|t| match normalize::transaction(t) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::error!(%item_id, transaction_id = %t.transaction_id, error = %e, "skipping a transaction");
                None
            }
        })
        .collect()
}

/// The accounts of the last page carry Plaid's cached balances; new accounts are added too. A failure here does not
/// undo the committed sync.
async fn refresh_cached_balances(inner: &Inner, item: &Item, accounts: &[plaid::AccountBase]) {
    if accounts.is_empty() {
        return;
    }
    let now = Utc::now();
    let accounts: Vec<_> = accounts.iter().map(|a| normalize::account(a, BalanceSource::Cached, now)).collect();
    if let Err(e) = inner.store.upsert_accounts(item, &accounts, false).await {
        tracing::warn!(item_id = %item.item_id, error = %e, "could not refresh cached balances after sync");
    }
}

fn as_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
