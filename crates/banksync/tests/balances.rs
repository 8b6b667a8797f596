//! Live balance refresh jobs against the simulator: concurrency, slow and failing banks, long-poll, eviction.

mod support;

use std::time::{Duration, Instant};

use banksync::balances::{BalanceError, BalanceOptions, BalanceRefresher, ItemRefreshState, JobState};
use banksync::store::{BalanceSource, ItemStatus};
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

    let early = refresher.status(&env.user.id, &job_id, Duration::from_millis(1500)).await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(2500), "the long-poll answered at its deadline");
    assert_eq!(early.state, JobState::Running);
    assert_eq!(early.items.len(), 3);
    let pending = early.items.iter().filter(|i| i.state == ItemRefreshState::Pending).count();
    assert_eq!(pending, 1, "only the slow bank is still pending: {early:?}");
    assert!(early.items.iter().any(|i| i.state == ItemRefreshState::Ok), "{early:?}");

    let done = refresher.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(done.state, JobState::Done);
    assert!(done.finished_at.is_some());
    let outcome = |id: &str| done.items.iter().find(|i| i.item_id == id).unwrap().clone();
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
    let job = refresher.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(job.state, JobState::Done);
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
    let job = refresher.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap();
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
    let refresher = env.refresher(BalanceOptions { max_concurrency: 2, keep_finished_jobs: Duration::ZERO });

    assert!(matches!(refresher.start(&env.user.id, Some("no-such-item")).await, Err(BalanceError::NotFound)));
    assert!(matches!(refresher.start(&mallory.id, Some(&item.item_id)).await, Err(BalanceError::NotFound)));
    // A user without Items gets a job that is already done.
    let empty = refresher.start(&mallory.id, None).await.unwrap();
    assert!(refresher.status(&mallory.id, &empty, Duration::ZERO).await.is_none_or(|j| j.state == JobState::Done));

    env.fault(json!({"endpoint": "/accounts/balance/get", "latency_ms": 500, "count": 1})).await;
    let job_id = refresher.start(&env.user.id, None).await.unwrap();
    assert_eq!(refresher.start(&env.user.id, None).await.unwrap(), job_id, "a running refresh is joined");
    assert!(refresher.status(&mallory.id, &job_id, Duration::ZERO).await.is_none(), "another user's job");
    assert!(refresher.status(&env.user.id, "no-such-job", Duration::ZERO).await.is_none());
    let running = refresher.status(&env.user.id, &job_id, Duration::ZERO).await.unwrap();
    assert_eq!(running.state, JobState::Running);
    let done = refresher.status(&env.user.id, &job_id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(done.state, JobState::Done);
    // Kept for zero seconds: gone at the next look.
    assert!(refresher.status(&env.user.id, &job_id, Duration::ZERO).await.is_none());
}
