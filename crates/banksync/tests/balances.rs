//! Live balance refresh jobs against the simulator: concurrency, slow and failing banks, long-poll, eviction.

mod support;

use std::time::Duration;

use banksync::balances::{BalanceError, BalanceOptions, BalanceRefresher, ItemRefreshState, RefreshState};
use banksync::budget::{Budget, RateLimits};
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

    // The next balance call (whichever Item it is for) takes 6 s.
    env.fault(json!({"endpoint": "/accounts/balance/get", "latency_ms": 6000, "count": 1})).await;
    let refresher = env.refresher(BalanceOptions::default());
    let job_id = refresher.start(&env.user.id, None).await.unwrap();

    // `start` returned, and this long-poll answered at its 1.5 s deadline, while the slow bank was still answering:
    // the job reads running with that bank pending (had either waited for the banks, it would read done).
    let early = refresher.status(&env.user.id, &job_id, Duration::from_millis(1500)).await.unwrap().unwrap();
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
    // A user without Items gets a job that is already done, and recorded as such (this refresher keeps finished
    // jobs for no time, so its record is read through one that keeps them).
    let empty = refresher.start(&mallory.id, None).await.unwrap();
    let record = env.store.get_job(&empty).await.expect("the empty job is recorded");
    assert_eq!((record.state, record.lease_owner.as_deref()), (banksync::domain::JobState::Done, None), "{record:?}");
    let keeping = env.refresher(BalanceOptions::default());
    let job = keeping.status(&mallory.id, &empty, Duration::ZERO).await.unwrap().expect("the empty job reads");
    assert_eq!((job.state, job.items.len()), (RefreshState::Done, 0), "{job:?}");
    assert!(job.finished_at.is_some());
    assert!(refresher.status(&mallory.id, &empty, Duration::ZERO).await.unwrap().is_none(), "kept for zero seconds");

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
    // Without waiting: the record alone says it finished.
    let again = restarted.status(&env.user.id, &job_id, Duration::ZERO).await.unwrap().unwrap();
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
    // Past the end of the lease the job was created with: still running, because the live process renews it (a
    // record nobody renews reads as interrupted from then on).
    let first_expiry = env.store.get_job(&job_id).await.unwrap().lease_expires_at.expect("a leased job");
    env.eventually("the first lease runs out", Duration::from_secs(10), || async { chrono::Utc::now() > first_expiry })
        .await;
    let now = chrono::Utc::now();
    let renewed = env.store.get_job(&job_id).await.unwrap().lease_expires_at.expect("a leased job");
    assert!(renewed > now, "the lease ended at {renewed}, now is {now}: not renewed");
    let running = survivor.status(&env.user.id, &job_id, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!(running.state, RefreshState::Running, "{running:?}");
    assert_eq!(running.items[0].state, ItemRefreshState::Pending);
    assert_eq!(survivor.start(&env.user.id, Some(&item.item_id)).await.unwrap(), job_id, "joined across processes");
    assert!(survivor.status(&mallory.id, &job_id, Duration::ZERO).await.unwrap().is_none(), "another user's job");
    assert!(env.store.claim_job("w", Duration::from_secs(60)).await.unwrap().is_none(), "no worker runs it");

    // The process dies; a long-poll elsewhere answers once its lease has run out: a ten-minute long-poll ends well
    // within a minute (it is the lease's end that answers it, not the poll's deadline).
    drop(kill_tx);
    process.join().unwrap();
    let long_poll = survivor.status(&env.user.id, &job_id, Duration::from_secs(600));
    let job = tokio::time::timeout(Duration::from_secs(60), long_poll)
        .await
        .expect("the long-poll answered when the dead process's lease ran out, not at its deadline")
        .unwrap()
        .unwrap();
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

/// Plaid's rate budget with a short window, so that waiting for it takes a test a second, not a minute.
fn short_window_budget(env: &support::Env, per_item: u32, per_client: u32) -> Budget {
    let limits = RateLimits::sandbox()
        .with_limit(plaid::Endpoint::AccountsBalanceGet, per_item, per_client)
        .with_window(Duration::from_secs(1), Duration::ZERO);
    Budget::new(env.store.clone(), limits)
}

/// Plaid answers 429 although the budget had room (another client of the same keys): the Item waits for the
/// window and asks again instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_bank_waits_for_the_window_then_succeeds() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    // More 429s in a row than the client's own retries absorb.
    env.fault(json!({"endpoint": "/accounts/balance/get", "error": "RATE_LIMIT_EXCEEDED", "count": 4})).await;
    let refresher = env.refresher(BalanceOptions::default());
    refresher.set_budget(short_window_budget(&env, 25, 100));

    let job_id = refresher.start(&env.user.id, Some(&item.item_id)).await.unwrap();
    let job = refresher.status(&env.user.id, &job_id, Duration::from_secs(20)).await.unwrap().unwrap();
    assert_eq!(job.state, RefreshState::Done);
    let outcome = &job.items[0];
    assert_eq!(outcome.state, ItemRefreshState::Ok, "{outcome:?}");
    assert!(outcome.accounts_updated > 0 && !outcome.fresh, "{outcome:?}");
    let faults = env.sim_get("/sim/faults").await;
    assert_eq!(faults[0]["fired"], 4, "Plaid refused four times, then answered: {faults}");
    assert!(env.accounts(&item.item_id).await.iter().all(|a| a.balance_source == BalanceSource::Live));
}

/// More Items than the client's window holds: the rest wait for room and succeed; none fails with a rate limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_past_the_client_limit_wait_for_the_window_instead_of_failing() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let mut items = Vec::new();
    for _ in 0..5 {
        items.push(env.new_item("ins_109508", "user_good").await);
    }
    // With Plaid's one-minute window and a short deadline, the budget lets two calls through and no more. (The
    // deadline only has to end before the window does; 2 s leaves a loaded machine room to reserve the first two.)
    let impatient = env.refresher(BalanceOptions { item_deadline: Duration::from_secs(2), ..Default::default() });
    impatient.set_budget(Budget::new(
        env.store.clone(),
        RateLimits::sandbox().with_limit(plaid::Endpoint::AccountsBalanceGet, 25, 2),
    ));
    let job_id = impatient.start(&env.user.id, None).await.unwrap();
    let job = impatient.status(&env.user.id, &job_id, Duration::from_secs(20)).await.unwrap().unwrap();
    assert_eq!(job.state, RefreshState::Done);
    let ok = job.items.iter().filter(|i| i.state == ItemRefreshState::Ok).count();
    let limited = job.items.iter().filter(|i| i.error.as_ref().is_some_and(|e| e.code == "rate_limited")).count();
    assert_eq!((ok, limited), (2, 3), "{job:?}");

    // Patient (the default deadline), with a one-second window: every Item waits its turn and succeeds.
    let refresher = env.refresher(BalanceOptions { max_age: Duration::ZERO, ..Default::default() });
    refresher.set_budget(short_window_budget(&env, 25, 2));
    let job_id = refresher.start(&env.user.id, None).await.unwrap();
    let job = refresher.status(&env.user.id, &job_id, Duration::from_secs(20)).await.unwrap().unwrap();
    assert_eq!(job.state, RefreshState::Done);
    assert_eq!(job.items.len(), items.len());
    for outcome in &job.items {
        assert_eq!(outcome.state, ItemRefreshState::Ok, "{job:?}");
        assert!(outcome.accounts_updated > 0, "{outcome:?}");
    }
    // Plaid refused nothing: every balance call in the audit trail succeeded.
    for item in &items {
        env.eventually("the balance calls in the audit trail", Duration::from_secs(5), || async {
            let calls = env.store.list_plaid_calls(Some(&item.item_id), 50).await.unwrap();
            let balance: Vec<_> = calls.iter().filter(|c| c.endpoint == "/accounts/balance/get").collect();
            !balance.is_empty() && balance.iter().all(|c| c.outcome == "ok")
        })
        .await;
    }
}

/// A live balance younger than the max age is returned as is: no Plaid call, no reservation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_young_live_balance_is_not_asked_for_again() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let item = env.new_item("ins_109508", "user_good").await;
    let other = env.new_item("ins_109509", "user_good").await;
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let reserved = || env.store.count_reserved_calls("/accounts/balance/get", Some(item.item_id.as_str()), since);
    let refresher = env.refresher(BalanceOptions::default());
    let first = refresher.start(&env.user.id, Some(&item.item_id)).await.unwrap();
    let first = refresher.status(&env.user.id, &first, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!((first.items[0].state, first.items[0].fresh), (ItemRefreshState::Ok, false), "{first:?}");
    assert_eq!(reserved().await.unwrap(), 1);
    let balances = env.accounts(&item.item_id).await;

    // All Items: the one refreshed a moment ago is fresh, the other is asked.
    let second = refresher.start(&env.user.id, None).await.unwrap();
    let second = refresher.status(&env.user.id, &second, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!(second.state, RefreshState::Done);
    let outcome = |id: &PlaidItemId| second.items.iter().find(|i| i.item_id == *id).unwrap().clone();
    let skipped = outcome(&item.item_id);
    assert_eq!((skipped.state, skipped.fresh, skipped.accounts_updated), (ItemRefreshState::Ok, true, 0));
    assert!(skipped.finished_at.is_some());
    let asked = outcome(&other.item_id);
    assert_eq!((asked.state, asked.fresh), (ItemRefreshState::Ok, false), "{asked:?}");
    assert!(asked.accounts_updated > 0);
    assert_eq!(reserved().await.unwrap(), 1, "no second call for the fresh Item");
    assert_eq!(
        env.accounts(&item.item_id).await.iter().map(|a| a.balance_as_of).collect::<Vec<_>>(),
        balances.iter().map(|a| a.balance_as_of).collect::<Vec<_>>()
    );

    // Only fresh Items: the job is done at once. A max age of zero always asks.
    let third = refresher.start(&env.user.id, Some(&item.item_id)).await.unwrap();
    let third = refresher.status(&env.user.id, &third, Duration::ZERO).await.unwrap().unwrap();
    assert_eq!((third.state, third.items[0].fresh), (RefreshState::Done, true));
    let always = env.refresher(BalanceOptions { max_age: Duration::ZERO, ..Default::default() });
    let fourth = always.start(&env.user.id, Some(&item.item_id)).await.unwrap();
    let fourth = always.status(&env.user.id, &fourth, Duration::from_secs(10)).await.unwrap().unwrap();
    assert_eq!((fourth.items[0].state, fourth.items[0].fresh), (ItemRefreshState::Ok, false), "{fourth:?}");
    assert_eq!(reserved().await.unwrap(), 2);
}

/// Two instances on one PostgreSQL database asked for the same refresh at the same moment run one job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_starting_the_same_refresh_at_once_share_one_job() {
    let Some(env) = support::postgres(support::sim_config(), SyncOptions::default()).await else { return };
    let item = env.new_item("ins_109508", "user_good").await;
    let other_store = env.another_postgres_store().await;
    let options = BalanceOptions { max_age: Duration::ZERO, ..Default::default() };
    let a = env.refresher(options.clone());
    let b = BalanceRefresher::new(other_store.clone(), env.plaid.clone(), env.vault.clone(), options);
    for round in 0..5 {
        // Each bank answers slowly, so a job is still running when the other instance looks.
        env.fault(json!({"endpoint": "/accounts/balance/get", "latency_ms": 300, "count": 1})).await;
        let scope = (round % 2 == 0).then_some(&item.item_id);
        let (from_a, from_b) = tokio::join!(a.start(&env.user.id, scope), b.start(&env.user.id, scope));
        let (from_a, from_b) = (from_a.unwrap(), from_b.unwrap());
        assert_eq!(from_a, from_b, "round {round}: one job for both instances");
        let done = b.status(&env.user.id, &from_a, Duration::from_secs(10)).await.unwrap().unwrap();
        assert_eq!(done.state, RefreshState::Done, "{done:?}");
        assert!(done.items.iter().all(|i| i.state == ItemRefreshState::Ok), "{done:?}");
    }
    other_store.close().await;
    env.finish().await;
}
