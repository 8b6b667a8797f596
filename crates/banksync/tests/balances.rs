//! Live balance refresh jobs against the simulator: concurrency, slow and failing banks, long-poll, eviction.

mod support;

use std::time::{Duration, Instant};

use banksync::balances::{BalanceError, BalanceOptions, BalanceRefresher, ItemRefreshState, RefreshState};
use banksync::domain::{BalanceSource, ItemStatus, PlaidItemId};
use banksync::sync::SyncOptions;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_bank_delays_nobody_and_a_failing_one_keeps_its_cached_balances() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let fast = env.new_item("ins_109508", "user_good").await;
    let other = env.new_item("ins_109509", "user_good").await;
    let down = env.new_item("ins_132361", "user_good").await;
    let down_before = env.accounts(&down.item_id).await;
    assert!(!down_before.is_empty());

    // The next balance call (whichever Item it is for) takes 3 s.
    env.fault(json!({"endpoint": "/accounts/balance/get", "latency_ms": 3000, "count": 1})).await;
    let refresher = env.refresher(BalanceOptions::default());
    let started = Instant::now();
    let job_id = refresher.start(&env.user.id, None).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(500), "start returns at once");

    let early = refresher.status(&env.user.id, &job_id, Duration::from_millis(1500)).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_millis(2500), "the long-poll answered at its deadline");
    assert_eq!(early.state, RefreshState::Running);
    assert_eq!(early.items.len(), 3);
    let pending = early.items.iter().filter(|i| i.state == ItemRefreshState::Pending).count();
    assert_eq!(pending, 1, "only the slow bank is still pending: {early:?}");
    assert!(early.items.iter().any(|i| i.state == ItemRefreshState::Ok), "{early:?}");

    let done = refresher.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(done.state, RefreshState::Done);
    assert!(done.finished_at.is_some());
    let outcome = |id: &PlaidItemId| done.items.iter().find(|i| i.item_id == *id).unwrap().clone();
    for id in [&fast.item_id, &other.item_id] {
        let o = outcome(id);
        assert_eq!(o.state, ItemRefreshState::Ok, "{o:?}");
        assert!(o.accounts_updated > 0);
        let accounts = env.accounts(id).await;
        assert!(accounts.iter().all(|a| a.balance_source == BalanceSource::Live), "{accounts:?}");
    }
    let failed = outcome(&down.item_id);
    assert_eq!(failed.state, ItemRefreshState::Error);
    let error = failed.error.unwrap();
    assert_eq!(error.code, "institution_down");
    assert_eq!(
        error.message,
        "This financial institution is not currently responding to requests. We apologize for the inconvenience."
    );
    let down_after = env.accounts(&down.item_id).await;
    for (before, after) in down_before.iter().zip(&down_after) {
        assert_eq!(after.balances, before.balances, "cached balances kept");
        assert_eq!(after.balance_source, BalanceSource::Cached);
        assert_eq!(after.balance_as_of, before.balance_as_of);
    }
    // An institution outage is not a problem of the user's connection.
    assert_eq!(env.item(&down.item_id).await.status, ItemStatus::Good);

    // Every balance call is audited per Item.
    env.eventually("balance audit rows", Duration::from_secs(5), || async {
        env.store
            .list_plaid_calls(Some(&down.item_id), 10)
            .await
            .unwrap()
            .iter()
            .any(|c| c.endpoint == "/accounts/balance/get" && c.error_code.as_deref() == Some("INSTITUTION_DOWN"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bank_past_the_timeout_reports_timeout_and_keeps_cached_balances() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    let before = env.accounts(&item.item_id).await;
    env.fault(json!({"endpoint": "/accounts/balance/get", "hang": true, "count": 1})).await;
    let timeouts = plaid::Timeouts { balance: Duration::from_millis(700), ..plaid::Timeouts::default() };
    let refresher = BalanceRefresher::new(
        env.store.clone(),
        env.plaid.with_timeouts(timeouts),
        env.vault.clone(),
        BalanceOptions::default(),
    );
    let job_id = refresher.start(&env.user.id, Some(&item.item_id)).await.unwrap();
    let job = refresher.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(job.state, RefreshState::Done);
    let o = &job.items[0];
    assert_eq!(o.state, ItemRefreshState::Error);
    assert_eq!(o.error.as_ref().unwrap().code, "timeout");
    let after = env.accounts(&item.item_id).await;
    assert_eq!(
        after.iter().map(|a| &a.balances).collect::<Vec<_>>(),
        before.iter().map(|a| &a.balances).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_required_is_reported_and_recorded_as_item_health() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    env.sim_post(&format!("/sim/items/{}/reset_login", item.item_id), json!({})).await;
    let refresher = env.refresher(BalanceOptions::default());
    let job_id = refresher.start(&env.user.id, Some(&item.item_id)).await.unwrap();
    let job = refresher.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap().unwrap();
    let error = job.items[0].error.clone().unwrap();
    assert_eq!(error.code, "item_login_required");
    assert!(!error.message.is_empty());
    assert_eq!(env.item(&item.item_id).await.status, ItemStatus::LoginRequired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_scoped_joined_while_running_and_evicted_after_finishing() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    let mallory = env.store.create_user("mallory", "$argon2id$x").await.unwrap();
    let refresher =
        env.refresher(BalanceOptions { max_concurrency: 2, keep_finished_jobs: Duration::ZERO, ..Default::default() });

    assert!(matches!(refresher.start(&env.user.id, Some(&"no-such-item".into())).await, Err(BalanceError::NotFound)));
    assert!(matches!(refresher.start(&mallory.id, Some(&item.item_id)).await, Err(BalanceError::NotFound)));
    // A user without Items gets a job that is already done.
    let empty = refresher.start(&mallory.id, None).await.unwrap();
    assert!(
        refresher
            .status(&mallory.id, &empty, Duration::ZERO)
            .await
            .unwrap()
            .is_none_or(|j| j.state == RefreshState::Done)
    );

    env.fault(json!({"endpoint": "/accounts/balance/get", "latency_ms": 500, "count": 1})).await;
    let job_id = refresher.start(&env.user.id, None).await.unwrap();
    assert_eq!(refresher.start(&env.user.id, None).await.unwrap(), job_id, "a running refresh is joined");
    assert!(refresher.status(&mallory.id, &job_id, Duration::ZERO).await.unwrap().is_none(), "another user's job");
    assert!(refresher.status(&env.user.id, &"no-such-job".into(), Duration::ZERO).await.unwrap().is_none());
    let running = refresher.status(&env.user.id, &job_id, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(running.state, RefreshState::Running);
    let done = refresher.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(done.state, RefreshState::Done);
    // Kept for zero seconds: gone at the next look.
    assert!(refresher.status(&env.user.id, &job_id, Duration::ZERO).await.unwrap().is_none());
}

/// A job's record outlives the refresher (and the store connection) that ran it: a restarted process answers for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_is_readable_after_a_restart_by_its_owner_only() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let good = env.new_item("ins_109508", "user_good").await;
    let down = env.new_item("ins_132361", "user_good").await;
    let mallory = env.store.create_user("mallory", "$argon2id$x").await.unwrap();
    let first = env.refresher(BalanceOptions::default());
    let job_id = first.start(&env.user.id, None).await.unwrap();
    let done = first.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(done.state, RefreshState::Done);
    drop(first);

    // A new process: a new store connection to the same database and a new refresher.
    let url = format!("sqlite://{}", env.db_dir().unwrap().join("banksync.db").display());
    let store = banksync::store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let restarted = BalanceRefresher::new(store, env.plaid.clone(), env.vault.clone(), BalanceOptions::default());
    let t = Instant::now();
    let again = restarted.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "a finished job is answered at once");
    assert_eq!(again.job_id, job_id);
    assert_eq!(again.state, RefreshState::Done);
    assert_eq!(again.started_at, done.started_at);
    assert_eq!(again.finished_at, done.finished_at);
    assert_eq!(again.items.len(), 2);
    let outcome = |id: &PlaidItemId| again.items.iter().find(|i| i.item_id == *id).unwrap().clone();
    assert_eq!(outcome(&good.item_id).state, ItemRefreshState::Ok);
    assert!(outcome(&good.item_id).accounts_updated > 0);
    let failed = outcome(&down.item_id);
    assert_eq!(failed.state, ItemRefreshState::Error);
    let error = failed.error.unwrap();
    assert_eq!(error.code, "institution_down");
    assert_eq!(
        error.message,
        "This financial institution is not currently responding to requests. We apologize for the inconvenience."
    );
    assert!(restarted.status(&mallory.id, &job_id, Duration::ZERO).await.unwrap().is_none(), "another user's job");
    assert!(restarted.status(&env.user.id, &"no-such-job".into(), Duration::ZERO).await.unwrap().is_none());

    // The record is an ordinary finished job that no worker runs.
    let record = env.store.get_job(&job_id).await.unwrap();
    assert_eq!(record.kind, banksync::balances::KIND_BALANCE_REFRESH);
    assert_eq!((record.state, record.attempts, record.max_attempts), (banksync::domain::JobState::Done, 1, 1));
    assert!(env.store.claim_job("w", Duration::from_secs(60)).await.unwrap().is_none());
}

/// A refresher in its own runtime, killed like a crashed process while its bank hangs: meanwhile another refresher
/// on the same database sees the job running (its lease renewed) and joins it; afterwards it reads as finished, the
/// unfinished Item interrupted, and a new refresh starts afresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_process_died_reads_as_interrupted() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    let mallory = env.store.create_user("mallory", "$argon2id$x").await.unwrap();
    env.fault(json!({"endpoint": "/accounts/balance/get", "hang": true, "count": 1})).await;

    let url = format!("sqlite://{}", env.db_dir().unwrap().join("banksync.db").display());
    let (plaid, vault, user_id, item_id) =
        (support::client(&env.sim), env.vault.clone(), env.user.id.clone(), item.item_id.clone());
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let process = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async {
            let store = banksync::store::connect(&url).await.unwrap();
            let options = BalanceOptions { lease: Duration::from_secs(2), ..BalanceOptions::default() };
            let refresher = BalanceRefresher::new(store, plaid, vault, options);
            started_tx.send(refresher.start(&user_id, Some(&item_id)).await.unwrap()).unwrap();
        });
        let _ = kill_rx.recv();
        runtime.shutdown_background();
    });
    let job_id = tokio::task::spawn_blocking(move || started_rx.recv().unwrap()).await.unwrap();

    let options = BalanceOptions { poll_interval: Duration::from_millis(100), ..BalanceOptions::default() };
    let survivor = env.refresher(options);
    // Past the 2 s lease: still running, because the live process renews it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let running = survivor.status(&env.user.id, &job_id, Duration::from_millis(300)).await.unwrap().unwrap();
    assert_eq!(running.state, RefreshState::Running, "{running:?}");
    assert_eq!(running.items[0].state, ItemRefreshState::Pending);
    assert_eq!(survivor.start(&env.user.id, Some(&item.item_id)).await.unwrap(), job_id, "joined across processes");
    assert!(survivor.status(&mallory.id, &job_id, Duration::ZERO).await.unwrap().is_none(), "another user's job");
    assert!(env.store.claim_job("w", Duration::from_secs(60)).await.unwrap().is_none(), "no worker runs it");

    // The process dies; a long-poll elsewhere answers once its lease has run out.
    drop(kill_tx);
    process.join().unwrap();
    let t = Instant::now();
    let job = survivor.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(4), "answered {:?} after the crash", t.elapsed());
    assert_eq!(job.state, RefreshState::Done, "{job:?}");
    assert!(job.finished_at.is_some());
    let outcome = &job.items[0];
    assert_eq!(outcome.state, ItemRefreshState::Error);
    let error = outcome.error.as_ref().unwrap();
    assert_eq!(error.code, "interrupted");
    assert!(error.message.contains("try again"), "{error:?}");
    assert!(outcome.finished_at.is_some());

    // The job workers' reclaimer marks it failed: it still reads the same.
    assert_eq!(env.store.reclaim_expired_jobs().await.unwrap(), 1);
    let reclaimed = survivor.status(&env.user.id, &job_id, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(
        (reclaimed.state, reclaimed.items[0].error.as_ref().unwrap().code.as_str()),
        (RefreshState::Done, "interrupted")
    );
    // A new refresh is not joined to the dead one, and runs.
    let fresh = survivor.start(&env.user.id, Some(&item.item_id)).await.unwrap();
    assert_ne!(fresh, job_id);
    let done = survivor.status(&env.user.id, &fresh, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!((done.state, done.items[0].state), (RefreshState::Done, ItemRefreshState::Ok), "{done:?}");
}
