//! Live balances: 202 at once, long-poll, a slow bank delays nobody, errors keep the cached balance.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::sync::wait_for_first_sync;

#[tokio::test]
async fn a_balance_refresh_answers_202_at_once_and_the_long_poll_returns_the_fast_item_while_a_slow_one_runs() {
    let app = spawn_app().await;
    let fast = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    let slow = app.link_bank(1).await["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &fast).await;
    wait_for_first_sync(&app, &slow).await;

    // The first /accounts/balance/get to arrive takes 6 s (a slow bank); the other answers at once.
    app.sim_post("/sim/faults", json!({"endpoint": "/accounts/balance/get", "latency_ms": 6000, "count": 1})).await;

    let job = app.post_balances_refresh(None).await.expect(202);
    let job_id = job["job_id"].as_str().unwrap().to_owned();
    // Other requests are answered meanwhile.
    app.get_items().await.expect(200);

    // The order, not a clock, shows neither waited for the slow bank: after both answered, the job still runs with
    // that bank pending (had the 202 or the listing waited for it, the job would be done by now).
    let early = app.get_balance_job(&job_id, 2).await.expect(200);
    assert_eq!(early["state"], "running", "{early}");
    let states: Vec<&str> = early["items"].as_array().unwrap().iter().map(|i| i["state"].as_str().unwrap()).collect();
    assert_eq!(states.len(), 2, "{early}");
    assert!(states.contains(&"ok") && states.contains(&"pending"), "one bank answered, one still running: {early}");

    let done = app.get_balance_job(&job_id, 30).await.expect(200);
    assert_eq!(done["state"], "done", "{done}");
    assert!(
        done["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["state"] == "ok" && i["accounts_updated"].as_u64() > Some(0))
    );
    let accounts = app.get_accounts().await.expect(200);
    assert!(accounts["accounts"].as_array().unwrap().iter().all(|a| a["balances"]["source"] == "live"), "{accounts}");
    app.assert_no_access_token_in_responses();
}

#[tokio::test]
async fn a_failing_bank_reports_its_message_and_keeps_the_cached_balance() {
    let app = spawn_app().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;
    let before = app.get_accounts().await.expect(200);

    app.sim_post(&format!("/sim/items/{item_id}/reset_login"), json!({})).await;
    let job = app.post_balances_refresh(Some(&item_id)).await.expect(202);
    let done = app.get_balance_job(job["job_id"].as_str().unwrap(), 30).await.expect(200);
    let outcome = &done["items"][0];
    assert_eq!(outcome["state"], "error", "{done}");
    assert_eq!(outcome["error"]["code"], "item_login_required", "{done}");
    assert!(!outcome["error"]["message"].as_str().unwrap().is_empty());

    let after = app.get_accounts().await.expect(200);
    for (a, b) in before["accounts"].as_array().unwrap().iter().zip(after["accounts"].as_array().unwrap()) {
        assert_eq!(a["balances"]["current"], b["balances"]["current"], "the cached balance must stay");
    }
    assert_eq!(app.get_item(&item_id).await.expect(200)["health"]["status"], "login_required");
}

#[tokio::test]
async fn the_long_poll_wait_is_validated_and_capped() {
    // Idle timeout 4 s: a long-poll waits at most 2 s, so a silent wait never looks like a dead connection.
    let app = crate::helpers::TestApp::builder()
        .capture_logs()
        .settings(|s| s.idle_timeout = Some("4s".into()))
        .spawn()
        .await;
    let job = app.post_balances_refresh(None).await.expect(202);
    let job_id = job["job_id"].as_str().unwrap();
    app.get(&format!("/api/balances/refresh/{job_id}?wait=soon")).await.expect_error(400, "invalid_query");
    app.get(&format!("/api/balances/refresh/{job_id}?wait=-1")).await.expect_error(400, "invalid_query");
    app.get_balance_job("no-such-job", 0).await.expect_error(404, "not_found");

    // A job that is still running (a bank that takes a minute): a huge wait is capped and answers "running".
    // Uncapped, it would wait for the bank and the route's 40 s time budget would answer 503 instead.
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;
    app.sim_post("/sim/faults", json!({"endpoint": "/accounts/balance/get", "latency_ms": 60000, "count": 1})).await;
    let job = app.post_balances_refresh(Some(&item_id)).await.expect(202);
    let running = app.get(&format!("/api/balances/refresh/{}?wait=100000", job["job_id"].as_str().unwrap())).await;
    let running = running.expect(200);
    assert_eq!(running["state"], "running", "{running}");
}
