//! Fresh data with no webhook reaching the server (a self-hoster behind NAT: the harness's simulator delivers none):
//! every sync goes through the job queue, a not-ready Item is looked at again by follow-ups until Plaid has its data
//! (also across a restart), "sync now" waits for its job, and the cooldown only counts syncs that brought something.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// Waits until no job is running (a follow-up is queued for later).
async fn idle(app: &TestApp) {
    wait_long("no job running", 10, || async {
        app.count("SELECT count(*) FROM jobs WHERE state = 'running'", &[]).await == 0
    })
    .await;
}

/// The Item's data phase as the API shows it.
async fn phase(app: &TestApp, item_id: &str) -> String {
    app.get_item(item_id).await.expect(200)["sync"]["phase"].as_str().unwrap_or_default().to_owned()
}

/// `/transactions/refresh` calls the simulator received (needs `record_exchanges`).
async fn refreshes(app: &TestApp) -> usize {
    let all = app.sim_get("/sim/exchanges").await;
    all.as_array().unwrap().iter().filter(|e| e["path"] == "/transactions/refresh").count()
}

/// Runs of the Item's sync history with this trigger (from `GET /api/items/{id}`; the last 10).
async fn runs(app: &TestApp, item_id: &str, trigger: &str) -> Vec<Value> {
    let item = app.get_item(item_id).await.expect(200);
    item["recent_sync_runs"].as_array().unwrap().iter().filter(|r| r["triggered_by"] == trigger).cloned().collect()
}

async fn converged(app: &TestApp, item_id: &str) -> bool {
    let truth = app.sim_get(&format!("/sim/items/{item_id}/transactions")).await;
    let ours = app.all_transactions(item_id).await;
    truth["transactions"].as_array().is_some_and(|t| !t.is_empty() && t.len() == ours.len())
}

async fn wait_long<F, Fut>(what: &str, secs: u64, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    crate::eventually::eventually(what, Duration::from_secs(secs), check).await;
}

#[tokio::test]
async fn without_webhooks_a_new_items_data_appears_once_plaid_has_it() {
    // Plaid needs a few seconds for a new Item's transactions: the first sync finds nothing.
    let app = TestApp::builder().sim(|sim| sim.product_ready_delay = Duration::from_secs(3)).spawn().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();

    wait_long("the link's sync finds Plaid not ready", 10, || async {
        runs(&app, &item_id, "link").await.iter().any(|r| r["status"] == "succeeded")
    })
    .await;
    let item = app.get_item(&item_id).await.expect(200);
    if item["sync"]["phase"] == "not_ready" {
        assert!(item["sync"]["waiting_since"].is_string(), "{item}");
    }

    // Follow-ups (2 s, 5 s, …) bring the data in seconds, with no webhook, no manual sync and no schedule.
    wait_long("the data arrives by itself", 20, || converged(&app, &item_id)).await;
    let item = app.get_item(&item_id).await.expect(200);
    assert_eq!(item["sync"]["phase"], "historical_update_complete", "{item}");
    assert!(item["sync"]["waiting_since"].is_null(), "the wait is over: {item}");
    assert!(!runs(&app, &item_id, "follow_up").await.is_empty(), "a follow-up brought the data: {item}");
    assert!(runs(&app, &item_id, "manual").await.is_empty());
    assert!(runs(&app, &item_id, "schedule").await.is_empty());
    // The institution's last update is shown beside banksync's own last sync.
    wait_long("the institution's last update is known", 10, || async {
        app.get_item(&item_id).await.expect(200)["sync"]["institution_last_update"].is_string()
    })
    .await;

    // Once complete, no more follow-ups are queued.
    let queued = app
        .count("SELECT count(*) FROM jobs WHERE kind = 'sync' AND state = 'queued' AND item_id = $1", &[Some(&item_id)])
        .await;
    assert_eq!(queued, 0, "nothing left to look for");
}

#[tokio::test]
async fn the_wait_for_plaids_data_survives_restarts_in_both_phases() {
    let mut app = TestApp::builder()
        .sim(|sim| {
            sim.product_ready_delay = Duration::from_secs(5);
            sim.historical_ready_delay = Some(Duration::from_secs(12));
        })
        .spawn()
        .await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_long("the link's sync finds Plaid not ready", 10, || async { phase(&app, &item_id).await == "not_ready" })
        .await;

    // The process that was waiting goes away; the follow-up it queued is in the database. (Between jobs: a job cut
    // off mid-run is taken over only when its lease runs out, a minute later, which tests/lifecycle covers.)
    idle(&app).await;
    app.restart().await;
    wait_long("the last 30 days arrive after the restart", 40, || async {
        phase(&app, &item_id).await == "initial_update_complete"
    })
    .await;
    // And again while the history is still coming.
    idle(&app).await;
    app.restart().await;
    wait_long("the history arrives after the second restart", 60, || async {
        phase(&app, &item_id).await == "historical_update_complete"
    })
    .await;
    assert!(converged(&app, &item_id).await);
}

#[tokio::test]
async fn a_sync_that_finds_plaid_not_ready_does_not_start_the_cooldown() {
    let app = TestApp::builder()
        .sim(|sim| sim.product_ready_delay = Duration::from_secs(3600))
        .settings(|s| s.sync_cooldown = Some("10m".into()))
        .spawn()
        .await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();

    let first = app.post_sync(&item_id).await.expect(200);
    assert_eq!(first["not_ready"], true, "{first}");
    assert_eq!(first["phase"], "not_ready");
    // Nothing came, so the user may ask again at once (the old rule made them wait 10 minutes).
    let again = app.post_sync(&item_id).await.expect(200);
    assert_eq!(again["not_ready"], true, "{again}");
    assert!(app.get_item(&item_id).await.expect(200)["sync"]["manual_sync_available_at"].is_null());
}

#[tokio::test]
async fn sync_now_and_repair_share_one_cooldown_that_every_request_obeys() {
    let app = TestApp::builder().settings(|s| s.sync_cooldown = Some("10m".into())).spawn().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_long("the first sync", 10, || converged(&app, &item_id)).await;

    let summary = app.post_sync(&item_id).await.expect(200);
    assert_eq!(summary["phase"], "historical_update_complete", "{summary}");
    app.post_sync(&item_id).await.expect_error(429, "sync_cooldown");
    let item = app.get_item(&item_id).await.expect(200);
    assert!(item["sync"]["manual_sync_available_at"].is_string(), "{item}");

    // Repairs in a loop: each marks the Item good, none starts another sync inside the cooldown.
    let manual_before = runs(&app, &item_id, "manual").await.len();
    for _ in 0..5 {
        app.post_repaired(&item_id).await.expect(200);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(runs(&app, &item_id, "repair").await.is_empty(), "no repair sync inside the cooldown");
    assert_eq!(runs(&app, &item_id, "manual").await.len(), manual_before);
}

#[tokio::test]
async fn sync_now_answers_202_with_a_job_to_poll_when_the_sync_takes_longer() {
    let app = spawn_app().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_long("the first sync", 10, || converged(&app, &item_id)).await;

    // Plaid is slow: the refresh request and the two /item/get calls around it take "sync now" past its 30 s wait
    // (each stays inside the client's 15 s timeout).
    app.sim_post("/sim/faults", json!({"endpoint": "/transactions/refresh", "latency_ms": 13_000, "count": 1})).await;
    app.sim_post("/sim/faults", json!({"endpoint": "/item/get", "latency_ms": 10_000, "count": 2})).await;
    let accepted = app.post_sync(&item_id).await.expect(202);
    let job_id = accepted["job_id"].as_str().unwrap().to_owned();
    assert!(matches!(accepted["state"].as_str(), Some("queued" | "running")), "{accepted}");

    // The job is the caller's to poll, and ends with the sync's summary.
    let mut job = Value::Null;
    for _ in 0..4 {
        job = app.get(&format!("/api/jobs/{job_id}?wait=30")).await.expect(200);
        if job["state"] == "done" {
            break;
        }
    }
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["kind"], "sync");
    assert_eq!(job["item_id"], item_id.as_str());
    assert_eq!(job["result"]["outcome"], "synced", "{job}");
    assert_eq!(job["result"]["summary"]["item_id"], item_id.as_str());

    // Bad waits and other users' jobs.
    app.get(&format!("/api/jobs/{job_id}?wait=soon")).await.expect_error(400, "invalid_query");
    app.get("/api/jobs/no-such-job").await.expect_error(404, "not_found");
    let bob = seed_user(&app.store, "bob").await;
    let reply = app.call_as(&bob.token, reqwest::Method::GET, &format!("/api/jobs/{job_id}"), None).await;
    reply.expect_error(404, "not_found");
}

#[tokio::test]
async fn without_webhooks_both_phases_of_plaids_data_arrive_by_themselves() {
    // The last 30 days after 1 s, the full history after 6 s.
    let app = TestApp::builder()
        .sim(|sim| {
            sim.product_ready_delay = Duration::from_secs(1);
            sim.historical_ready_delay = Some(Duration::from_secs(6));
        })
        .spawn()
        .await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();

    wait_long("the last 30 days arrive", 15, || async {
        app.get_item(&item_id).await.expect(200)["sync"]["phase"] == "initial_update_complete"
    })
    .await;
    let recent = app.all_transactions(&item_id).await.len();
    assert!(recent > 0, "the first phase brings recent transactions");
    let item = app.get_item(&item_id).await.expect(200);
    assert!(item["sync"]["waiting_since"].is_string(), "still waiting for the history: {item}");

    wait_long("the full history arrives", 30, || async {
        app.get_item(&item_id).await.expect(200)["sync"]["phase"] == "historical_update_complete"
    })
    .await;
    let full = app.sim_get(&format!("/sim/items/{item_id}/transactions")).await;
    let ours = app.all_transactions(&item_id).await;
    assert_eq!(ours.len(), full["transactions"].as_array().unwrap().len(), "exactly Plaid's history, no duplicates");
    assert!(ours.len() > recent, "the second phase brought the older history");
    assert!(runs(&app, &item_id, "webhook").await.is_empty() && runs(&app, &item_id, "manual").await.is_empty());
}

#[tokio::test]
async fn sync_now_asks_the_bank_and_falls_back_when_the_refresh_add_on_is_missing() {
    let app = TestApp::builder().sim(|sim| sim.record_exchanges = true).spawn().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_long("the first sync", 10, || converged(&app, &item_id)).await;

    // New activity at the bank that Plaid has not pulled: a plain sync would not see it, "sync now" does.
    app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 2, "pulled": false})).await;
    let summary = app.post_sync(&item_id).await.expect(200);
    let changed = ["added", "modified", "removed"].iter().map(|k| summary[k].as_u64().unwrap()).sum::<u64>();
    assert!(changed > 0, "the refresh brought the bank's news: {summary}");
    assert!(converged(&app, &item_id).await);
    assert_eq!(refreshes(&app).await, 1);

    // Without the add-on, Plaid refuses the refresh: the sync still runs, and banksync stops asking.
    app.sim_post("/sim/client", json!({"transactions_refresh_enabled": false})).await;
    app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 1})).await;
    let summary = app.post_sync(&item_id).await.expect(200);
    assert!(summary["added"].as_u64().unwrap() + summary["modified"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(refreshes(&app).await, 2, "asked once more, refused");
    app.post_sync(&item_id).await.expect(200);
    assert_eq!(refreshes(&app).await, 2, "not asked again once Plaid said the add-on is missing");
    assert_eq!(
        app.count("SELECT count(*) FROM service_facts WHERE key = 'transactions_refresh_unsupported'", &[]).await,
        1
    );
}
