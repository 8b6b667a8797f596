//! The sync engine against the simulator over loopback, with a real PlaidClient and a fresh store per test.

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use banksync::domain::{ItemStatus, SyncRunStatus, TransactionId, UserFieldsPatch, UserId};
use banksync::store::StoreError;
use banksync::sync::{SyncEngine, SyncError, SyncOptions, SyncTrigger};
use plaid::{CallObserver, CallOutcome, CallRecord, Endpoint};
use serde_json::{Value, json};
use support::Env;

fn small_pages() -> SyncOptions {
    SyncOptions { page_size: 50, ..SyncOptions::default() }
}

/// Initial sync converges, then the bank moves on and a manual sync converges again; runs and audit rows recorded.
async fn initial_then_incremental(env: Env) {
    let item = env.new_item("ins_109508", "user_good").await;
    let first = env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    assert!(!first.not_ready && !first.coalesced);
    assert!(first.pages > 1, "small pages: {first:?}");
    assert!(first.added > 0);
    let n = env.assert_converged(&item.item_id).await;
    assert_eq!(n as u64, first.added, "every added transaction is stored once");

    let after_first = env.item(&item.item_id).await;
    assert!(after_first.cursor.is_some());
    assert!(after_first.last_successful_sync_at.is_some());
    assert_eq!(after_first.status, ItemStatus::Good);

    let report = env.advance(&item.item_id, 7).await;
    assert!(report["added"].as_u64().unwrap() > 0, "{report}");
    let second = env.engine.sync_item(&after_first, SyncTrigger::Manual).await.unwrap();
    assert!(second.added > 0 || second.modified > 0 || second.removed > 0, "{second:?}");
    env.assert_converged(&item.item_id).await;

    // Nothing new: one empty page, still converged, the cursor kept.
    let third = env.engine.sync_item(&item, SyncTrigger::Schedule).await.unwrap();
    assert_eq!((third.added, third.modified, third.removed, third.pages), (0, 0, 0, 1));
    env.assert_converged(&item.item_id).await;

    let runs = env.store.list_sync_runs(&item.id, 10).await.unwrap();
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.status == SyncRunStatus::Succeeded));
    assert_eq!(runs[2].added as u64, first.added);
    assert_eq!(runs[2].triggered_by, "manual");
    assert_eq!(runs[0].triggered_by, "schedule");

    // Every /transactions/sync attempt is in the audit trail, attributed to the Item, with Plaid's request_id.
    let expected = (first.pages + second.pages + third.pages) as usize;
    env.eventually("audit rows", Duration::from_secs(5), || async {
        env.store
            .list_plaid_calls(Some(&item.item_id), 1000)
            .await
            .unwrap()
            .iter()
            .filter(|c| c.endpoint == "/transactions/sync")
            .count()
            >= expected
    })
    .await;
    let calls = env.store.list_plaid_calls(Some(&item.item_id), 1000).await.unwrap();
    let syncs: Vec<_> = calls.iter().filter(|c| c.endpoint == "/transactions/sync").collect();
    assert_eq!(syncs.len(), expected);
    assert!(syncs.iter().all(|c| c.outcome == "ok" && c.request_id.is_some() && c.http_status == Some(200)));

    // The sync response's accounts refreshed the cached balances.
    let accounts = env.accounts(&item.item_id).await;
    assert!(!accounts.is_empty());
    assert!(accounts.iter().all(|a| a.balance_as_of.is_some() && a.balances.current.is_some()));
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_initial_sync_and_advance_converge() {
    initial_then_incremental(support::sqlite(support::sim_config(), small_pages()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_initial_sync_and_advance_converge() {
    if let Some(env) = support::postgres(support::sim_config(), small_pages()).await {
        initial_then_incremental(env).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_mutation_restarts_from_the_start_cursor() {
    let env = support::sqlite(support::sim_config(), small_pages()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    env.fault(json!({"endpoint": "/transactions/sync", "error": "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
        "count": 2}))
        .await;
    let summary = env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    assert_eq!(summary.restarts, 2);
    env.assert_converged(&item.item_id).await;
    let run = &env.store.list_sync_runs(&item.id, 1).await.unwrap()[0];
    assert_eq!((run.status, run.restarts), (SyncRunStatus::Succeeded, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_restarts_fail_without_applying_anything() {
    let options = SyncOptions { page_size: 50, max_restarts: 2, ..SyncOptions::default() };
    let env = support::sqlite(support::sim_config(), options).await;
    let item = env.new_item("ins_109508", "user_good").await;
    env.fault(json!({"endpoint": "/transactions/sync", "error": "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"})).await;
    let err = env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap_err();
    assert!(matches!(err, SyncError::TooManyRestarts(2)), "{err:?}");
    let after = env.item(&item.item_id).await;
    assert_eq!(after.cursor, None, "the cursor is unchanged");
    assert_eq!(after.status, ItemStatus::Good, "a mutation says nothing about the Item's health");
    assert!(env.stored(&item.item_id).await.is_empty());
    let run = &env.store.list_sync_runs(&item.id, 1).await.unwrap()[0];
    assert_eq!(run.status, SyncRunStatus::Failed);
    assert_eq!(run.error_code.as_deref(), Some("TOO_MANY_RESTARTS"));

    // Once the bank settles, the next sync converges.
    env.http.delete(format!("{}/sim/faults", env.sim.url())).send().await.unwrap();
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    env.assert_converged(&item.item_id).await;
}

/// Advances the bank right after the n-th successful sync page arrived, before the engine asks for the next one:
/// a real mutation in the middle of pagination.
struct AdvanceAfterPage {
    n: usize,
    pages: AtomicUsize,
    http: reqwest::Client,
    advance_url: String,
}

impl CallObserver for AdvanceAfterPage {
    fn on_call(&self, call: &CallRecord) {
        if call.endpoint != Endpoint::TransactionsSync || call.outcome != CallOutcome::Ok {
            return;
        }
        if self.pages.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            let request = self.http.post(&self.advance_url).json(&json!({"days": 3}));
            tokio::task::block_in_place(|| {
                let res = tokio::runtime::Handle::current().block_on(request.send()).unwrap();
                assert!(res.status().is_success());
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_mid_pagination_advance_restarts_and_converges() {
    let env = support::sqlite(support::sim_config(), small_pages()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    let observer = Arc::new(AdvanceAfterPage {
        n: 2,
        pages: AtomicUsize::new(0),
        http: reqwest::Client::new(),
        advance_url: format!("{}/sim/items/{}/advance", env.sim.url(), item.item_id),
    });
    let plaid = support::client(&env.sim).with_observer(observer.clone());
    let engine = SyncEngine::new(env.store.clone(), plaid, env.vault.clone(), small_pages());
    let summary = engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    assert_eq!(summary.restarts, 1, "{summary:?}");
    assert!(observer.pages.load(Ordering::SeqCst) > summary.pages as usize, "pages were fetched twice");
    // The data after the advance, not a mix of before and after.
    env.assert_converged(&item.item_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_to_posted_keeps_user_edits_without_duplicates() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    let pending: Vec<TransactionId> =
        env.stored(&item.item_id).await.into_values().filter(|t| t.fields.pending).map(|t| t.transaction_id).collect();
    assert!(!pending.is_empty(), "the world has pending transactions");
    for id in &pending {
        let patch =
            UserFieldsPatch { note: Some(Some(format!("note on {id}"))), category: Some(Some("Treats".into())) };
        env.store.update_transaction_user_fields(&env.user.id, id, &patch).await.unwrap();
    }

    let report = env.advance(&item.item_id, 10).await;
    assert!(report["posted"].as_u64().unwrap() > 0, "{report}");
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    env.assert_converged(&item.item_id).await;

    let stored = env.stored(&item.item_id).await;
    let pending_set: BTreeSet<&TransactionId> = pending.iter().collect();
    let posted: Vec<_> = stored
        .values()
        .filter(|t| t.fields.pending_transaction_id.as_ref().is_some_and(|p| pending_set.contains(p)))
        .collect();
    assert!(!posted.is_empty(), "some edited pending transactions posted");
    for t in &posted {
        let from = t.fields.pending_transaction_id.as_ref().unwrap();
        assert!(!t.fields.pending);
        assert_eq!(t.user_note.as_deref(), Some(format!("note on {from}").as_str()), "{}", t.transaction_id);
        assert_eq!(t.user_category.as_deref(), Some("Treats"));
        assert!(!stored.contains_key(from.as_str()), "the pending row {from} is not shown beside its posted twin");
        assert!(matches!(env.store.get_transaction(&env.user.id, from).await, Err(StoreError::NotFound)));
        let twins = stored.values().filter(|s| s.fields.pending_transaction_id.as_ref() == Some(from)).count();
        assert_eq!(twins, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_syncs_of_one_item_coalesce() {
    let env = support::sqlite(support::sim_config(), small_pages()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    // The first page keeps the bank busy for 3 s: the other two calls start once the first run is seen running (an
    // event, not a guessed delay), and it is still running when they arrive.
    env.fault(json!({"endpoint": "/transactions/sync", "latency_ms": 3000, "count": 1})).await;
    let (a, (b, c)) = tokio::join!(env.engine.sync_item(&item, SyncTrigger::Manual), async {
        env.eventually("the first sync runs", Duration::from_secs(10), || async { env.engine.is_syncing(&item.id) })
            .await;
        tokio::join!(
            env.engine.sync_item(&item, SyncTrigger::Webhook),
            env.engine.sync_item(&item, SyncTrigger::Manual)
        )
    });
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert!(!a.coalesced && b.coalesced && c.coalesced);
    assert_eq!(a.run_id, b.run_id);
    assert_eq!(a.run_id, c.run_id);
    assert_eq!((a.added, a.pages), (b.added, b.pages));
    assert_eq!(env.store.list_sync_runs(&item.id, 10).await.unwrap().len(), 1, "one sync run");
    assert!(!env.engine.is_syncing(&item.id));
    env.assert_converged(&item.item_id).await;

    // Afterwards a new call starts a new run.
    let d = env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    assert!(!d.coalesced);
    assert_ne!(d.run_id, a.run_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_is_not_an_error_and_keeps_the_cursor() {
    let config = plaid_sim::SimConfig { product_ready_delay: Duration::from_secs(3600), ..support::sim_config() };
    let env = support::sqlite(config, SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    let summary = env.engine.sync_item(&item, SyncTrigger::Link).await.unwrap();
    assert!(summary.not_ready);
    assert_eq!((summary.added, summary.pages), (0, 0));
    let after = env.item(&item.item_id).await;
    assert_eq!(after.cursor, None);
    assert_eq!(after.status, ItemStatus::Good);
    assert!(env.stored(&item.item_id).await.is_empty());
    let run = &env.store.list_sync_runs(&item.id, 1).await.unwrap()[0];
    assert_eq!(run.status, SyncRunStatus::Succeeded);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_required_sets_health_and_a_later_success_resets_it() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    env.sim_post(&format!("/sim/items/{}/reset_login", item.item_id), json!({})).await;

    let err = env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap_err();
    assert_eq!(err.plaid_error().map(|e| e.error_code.as_str()), Some("ITEM_LOGIN_REQUIRED"), "{err:?}");
    let broken = env.item(&item.item_id).await;
    assert_eq!(broken.status, ItemStatus::LoginRequired);
    assert_eq!(broken.error_code.as_deref(), Some("ITEM_LOGIN_REQUIRED"));
    assert!(broken.display_message.as_deref().is_some_and(|m| !m.is_empty()));
    let run = &env.store.list_sync_runs(&item.id, 1).await.unwrap()[0];
    assert_eq!((run.status, run.error_code.as_deref()), (SyncRunStatus::Failed, Some("ITEM_LOGIN_REQUIRED")));

    // Transient trouble does not touch the health.
    env.fault(json!({"endpoint": "/transactions/sync", "error": "INSTITUTION_NOT_RESPONDING", "count": 10})).await;
    let quick = SyncEngine::new(
        env.store.clone(),
        env.plaid.with_retry(plaid::RetryPolicy::none()),
        env.vault.clone(),
        SyncOptions::default(),
    );
    quick.sync_item(&item, SyncTrigger::Manual).await.unwrap_err();
    assert_eq!(env.item(&item.item_id).await.status, ItemStatus::LoginRequired);
    env.http.delete(format!("{}/sim/faults", env.sim.url())).send().await.unwrap();

    // The bank accepts the login again (update mode is covered in link_service.rs); the next sync heals the Item.
    let link = env.link_service();
    let token = link.create_link_token(&env.user.id, Some(&item.item_id)).await.unwrap();
    support::repair_through_link(&env, &token.link_token).await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    let healed = env.item(&item.item_id).await;
    assert_eq!(healed.status, ItemStatus::Good);
    assert_eq!(healed.error_code, None);
    assert!(healed.last_successful_sync_at > broken.last_successful_sync_at);
}

/// Counts `/transactions/sync` attempts (successful pages and rate-limited ones), and after the `inject_after`-th
/// page injects a rate-limit fault into the simulator (before the engine asks for the next page).
struct RateLimitWatch {
    inject_after: Option<(usize, Value)>,
    pages: AtomicUsize,
    limited: AtomicUsize,
    http: reqwest::Client,
    faults_url: String,
}

impl CallObserver for RateLimitWatch {
    fn on_call(&self, call: &CallRecord) {
        if call.endpoint != Endpoint::TransactionsSync {
            return;
        }
        match &call.outcome {
            CallOutcome::Ok => {
                let n = self.pages.fetch_add(1, Ordering::SeqCst) + 1;
                if let Some((_, fault)) = self.inject_after.as_ref().filter(|(after, _)| *after == n) {
                    let request = self.http.post(&self.faults_url).json(fault);
                    tokio::task::block_in_place(|| {
                        let res = tokio::runtime::Handle::current().block_on(request.send()).unwrap();
                        assert!(res.status().is_success());
                    });
                }
            }
            CallOutcome::ApiError { error_code, .. } if error_code == "TRANSACTIONS_SYNC_LIMIT" => {
                self.limited.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
    }
}

fn rate_limit_watch(env: &Env, inject_after: Option<(usize, Value)>) -> Arc<RateLimitWatch> {
    Arc::new(RateLimitWatch {
        inject_after,
        pages: AtomicUsize::new(0),
        limited: AtomicUsize::new(0),
        http: reqwest::Client::new(),
        faults_url: format!("{}/sim/faults", env.sim.url()),
    })
}

/// Plaid's per-Item sync limit in the middle of pagination (the client does not retry here): the engine pauses and
/// asks again for the same cursor, keeping what it staged, instead of failing or starting over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_mid_pagination_pauses_and_resumes_from_the_same_cursor() {
    let options = SyncOptions {
        page_size: 50,
        rate_limit_pause: Duration::from_millis(50),
        rate_limit_budget: Duration::from_secs(10),
        ..SyncOptions::default()
    };
    let env = support::sqlite(support::sim_config(), options.clone()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    let fault = json!({"endpoint": "/transactions/sync", "error": "RATE_LIMIT_EXCEEDED", "count": 3});
    let watch = rate_limit_watch(&env, Some((2, fault)));
    let plaid = env.plaid.with_retry(plaid::RetryPolicy::none()).with_observer(watch.clone());
    let engine = SyncEngine::new(env.store.clone(), plaid, env.vault.clone(), options);
    let summary = engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    assert!(summary.pages > 2, "the fault hit mid-pagination: {summary:?}");
    assert_eq!(summary.restarts, 0, "{summary:?}");
    assert_eq!(watch.limited.load(Ordering::SeqCst), 3, "every injected refusal was seen");
    assert_eq!(watch.pages.load(Ordering::SeqCst), summary.pages as usize, "no page was fetched twice");
    env.assert_converged(&item.item_id).await;
    let run = &env.store.list_sync_runs(&item.id, 1).await.unwrap()[0];
    assert_eq!((run.status, run.pages as u64), (SyncRunStatus::Succeeded, summary.pages));

    // A limit that outlasts the budget fails the sync without applying anything; the cursor stays.
    let other = env.new_item("ins_109509", "user_good").await;
    let forever = json!({"endpoint": "/transactions/sync", "error": "RATE_LIMIT_EXCEEDED"});
    let watch = rate_limit_watch(&env, Some((1, forever)));
    let plaid = env.plaid.with_retry(plaid::RetryPolicy::none()).with_observer(watch.clone());
    let short = SyncOptions {
        rate_limit_pause: Duration::from_millis(50),
        rate_limit_budget: Duration::from_millis(200),
        ..small_pages()
    };
    let engine = SyncEngine::new(env.store.clone(), plaid, env.vault.clone(), short);
    let err = engine.sync_item(&other, SyncTrigger::Manual).await.unwrap_err();
    assert_eq!(err.plaid_error().map(|e| e.error_code.as_str()), Some("TRANSACTIONS_SYNC_LIMIT"), "{err:?}");
    assert!(watch.limited.load(Ordering::SeqCst) >= 4, "paused and asked again until the budget ran out");
    assert_eq!(env.item(&other.item_id).await.cursor, None);
    assert!(env.stored(&other.item_id).await.is_empty());
    env.http.delete(format!("{}/sim/faults", env.sim.url())).send().await.unwrap();
}

/// The simulator's real per-Item limit (50 sync calls a minute) against a 30,000-transaction initial sync in pages
/// of 500 (60 pages): the engine waits the window out and finishes; every page is fetched once. Takes about a
/// minute (the limiter's window).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_sync_larger_than_the_rate_limit_waits_and_converges() {
    let options = SyncOptions {
        rate_limit_pause: Duration::from_secs(2),
        rate_limit_budget: Duration::from_secs(120),
        ..SyncOptions::default()
    };
    let config = plaid_sim::SimConfig { deliver_webhooks: false, ..plaid_sim::SimConfig::default() };
    assert!(config.rate_limits);
    let env = support::sqlite(config, options.clone()).await;
    let item = env.new_item("ins_109508", "user_bulk_30000").await;
    let watch = rate_limit_watch(&env, None);
    let engine = SyncEngine::new(env.store.clone(), env.plaid.with_observer(watch.clone()), env.vault.clone(), options);
    let summary = engine.sync_item(&item, SyncTrigger::Link).await.unwrap();
    assert_eq!((summary.added, summary.restarts), (30_000, 0), "{summary:?}");
    assert!(summary.pages > 50, "{summary:?}");
    assert!(watch.limited.load(Ordering::SeqCst) > 0, "the limit was reached");
    assert_eq!(watch.pages.load(Ordering::SeqCst), summary.pages as usize, "no page was fetched twice");
    assert_eq!(env.assert_converged(&item.item_id).await, 30_000);
}

/// The accounts in a sync response carry Plaid's cached balances: they must not overwrite a live balance fetched a
/// moment ago (which is newer than anything cached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_keeps_a_recent_live_balance() {
    let env = support::sqlite(support::sim_config(), small_pages()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    let account = env.accounts(&item.item_id).await.remove(0);
    assert_eq!(account.balance_source, banksync::domain::BalanceSource::Cached);

    let live_at = chrono::Utc::now() - chrono::TimeDelta::seconds(30);
    let live = banksync::domain::Balances {
        current: Some(rust_decimal::Decimal::new(123_456, 2)),
        ..account.balances.clone()
    };
    let update = banksync::domain::BalanceUpdate {
        account_id: account.account_id.clone(),
        balances: live.clone(),
        as_of: live_at,
        source: banksync::domain::BalanceSource::Live,
    };
    assert_eq!(env.store.update_balances(&item.id, &[update]).await.unwrap(), 1);
    let item = env.item(&item.item_id).await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();

    let after = env.accounts(&item.item_id).await;
    let after = after.iter().find(|a| a.account_id == account.account_id).unwrap();
    assert_eq!(after.balance_source, banksync::domain::BalanceSource::Live, "{after:?}");
    assert_eq!(after.balances.current, live.current);
}

/// Counts what a reader sees of the Item after each successful sync page (from inside the engine's run).
struct VisibleDuringSync {
    store: Arc<banksync::store::Store>,
    user_id: UserId,
    pages: AtomicUsize,
    seen: std::sync::Mutex<Vec<usize>>,
}

impl CallObserver for VisibleDuringSync {
    fn on_call(&self, call: &CallRecord) {
        if call.endpoint != Endpoint::TransactionsSync || call.outcome != CallOutcome::Ok {
            return;
        }
        self.pages.fetch_add(1, Ordering::SeqCst);
        let filter = banksync::domain::TransactionFilter { limit: 10, ..Default::default() };
        let visible = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(self.store.list_transactions(&self.user_id, &filter))
        })
        .unwrap();
        self.seen.lock().unwrap().push(visible.items.len());
    }
}

/// An initial sync larger than one write: its rows go into the table before the run commits, yet a reader sees
/// nothing of the Item until the commit, and then all of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_initial_sync_is_invisible_until_it_commits() {
    let options = SyncOptions { page_size: 500, ..SyncOptions::default() };
    let env = support::sqlite(support::sim_config(), options.clone()).await;
    let item = env.new_item("ins_109508", "user_bulk_12000").await;
    let observer = Arc::new(VisibleDuringSync {
        store: env.store.clone(),
        user_id: env.user.id.clone(),
        pages: AtomicUsize::new(0),
        seen: std::sync::Mutex::new(Vec::new()),
    });
    let plaid = support::client(&env.sim).with_observer(observer.clone());
    let engine = SyncEngine::new(env.store.clone(), plaid, env.vault.clone(), options);
    let summary = engine.sync_item(&item, SyncTrigger::Link).await.unwrap();
    assert_eq!((summary.added, summary.pages), (12_000, 24));
    let seen = observer.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 24);
    assert!(seen.iter().all(|&n| n == 0), "a reader saw part of the history: {seen:?}");
    assert_eq!(env.stored(&item.item_id).await.len(), 12_000);
}
