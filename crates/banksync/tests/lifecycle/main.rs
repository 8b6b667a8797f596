//! Item life cycle end to end: the simulator fires real signed webhooks at a running banksync; background workers,
//! the scheduler and the event stream do the rest. No test here calls the manual sync endpoint to get data in.

#[path = "../common/app.rs"]
mod app;
#[path = "../common/eventually.rs"]
mod eventually;
mod harness;
mod jobs;
#[path = "../common/pg.rs"]
mod pg;
mod postgres;

use std::time::Duration;

use app::sim::{SIM_CLIENT_ID, SIM_SECRET};
use futures::StreamExt as _;
use harness::*;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advancing_days_fires_a_webhook_and_data_converges_without_any_manual_sync() {
    let app = spawn_app().await;
    let item_id = app.link_and_sync(0).await;

    for round in 0..2 {
        // Two updates announced within one second are byte-identical signed deliveries (same body, same `iat`),
        // which the receiver cannot tell from a replay; real Plaid updates an Item hours apart.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let runs_before = app.count_runs(&item_id, Some("webhook")).await;
        let moved = app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 3})).await;
        assert!(moved["added"].as_u64().unwrap() > 0, "round {round}: the bank produced nothing: {moved}");
        let truth = app.sim_transactions(&item_id).await;
        let mut ours = Vec::new();
        for _ in 0..200 {
            ours = app.api_transactions(&item_id).await;
            if ours == truth {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if ours != truth {
            let missing: Vec<_> = truth.iter().filter(|t| !ours.contains(t)).take(5).collect();
            let extra: Vec<_> = ours.iter().filter(|t| !truth.contains(t)).take(5).collect();
            let runs = app.get_item(&item_id).await.expect(200)["recent_sync_runs"].clone();
            panic!(
                "round {round}: no convergence: {} ours vs {} truth; missing {missing:?}; extra {extra:?}; runs {runs}; \
                 webhooks {}",
                ours.len(),
                truth.len(),
                app.sim_get("/sim/webhooks").await
            );
        }
        // It came through the webhook: a sync run triggered by it, not by anything else.
        assert!(app.count_runs(&item_id, Some("webhook")).await > runs_before);
        assert_eq!(app.count_runs(&item_id, Some("manual")).await, 0);
    }
    let deliveries = app.sim_get("/sim/webhooks").await;
    let delivered: Vec<&Value> = deliveries
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["webhook_code"] == "SYNC_UPDATES_AVAILABLE" && d["status"] == 200)
        .collect();
    assert!(delivered.len() >= 2, "signed webhooks delivered and accepted: {deliveries}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_login_webhook_marks_login_required_and_update_mode_repairs_it() {
    let app = spawn_app().await;
    let item_id = app.link_and_sync(0).await;
    let mut events = Box::pin(sse_lines(&app, &app.user.token).await);
    assert_eq!(app.item_status(&item_id).await, "good");

    app.sim_post(&format!("/sim/items/{item_id}/reset_login"), json!({})).await;
    eventually("ITEM ERROR webhook → login_required", || async {
        app.item_status(&item_id).await == "login_required"
    })
    .await;
    let event = next_event(&mut events, "item_health_changed").await;
    assert_eq!(event["item_id"], item_id.as_str());
    assert_eq!(event["status"], "login_required");

    // Update mode: a link token for the Item, Link with the right password, then tell banksync.
    let (status, link) = app.post("/api/link/token", json!({"item_id": item_id})).await.into_parts();
    assert_eq!(status, 200, "{link}");
    app.complete_link(link["link_token"].as_str().unwrap(), 0).await;
    let (status, body) = app.post(&format!("/api/items/{item_id}/repaired"), json!({})).await.into_parts();
    assert!(status < 300, "repair: {status} {body}");
    eventually("the repaired Item is good", || async { app.item_status(&item_id).await == "good" }).await;

    // And it keeps syncing from webhooks.
    let before = app.count_runs(&item_id, Some("webhook")).await;
    app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 1})).await;
    eventually("a webhook sync after the repair", || async {
        app.count_runs(&item_id, Some("webhook")).await > before
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_forgery_is_rejected_with_401_and_nothing_recorded_or_enqueued() {
    let app = spawn_app().await;
    let item_id = app.link_and_sync(0).await;
    let key = TestKey::new("lifecycle-key", false);
    let expired = TestKey::new("lifecycle-expired-key", true);
    let stranger = TestKey::new("lifecycle-key", false); // same kid, different private key
    app.add_key(&key);
    app.add_key(&expired);

    let body = sync_updates_body(&item_id);
    let good_claims = claims(&body, 0);
    let mut tampered = body.clone();
    let last = tampered.len() - 2;
    tampered[last] = b' ';
    let forgeries: Vec<(&str, Vec<u8>, Option<String>)> = vec![
        ("missing header", body.clone(), None),
        ("empty header", body.clone(), Some(String::new())),
        ("garbage", body.clone(), Some("not.a.jwt".into())),
        ("bad signature", body.clone(), Some(stranger.sign(&body, 0))),
        (
            "alg none",
            body.clone(),
            Some(unsigned(&json!({"alg": "none", "kid": key.kid, "typ": "JWT"}), &good_claims, b"")),
        ),
        (
            "HS256",
            body.clone(),
            Some(unsigned(&json!({"alg": "HS256", "kid": key.kid, "typ": "JWT"}), &good_claims, &[7u8; 32])),
        ),
        (
            "RS256",
            body.clone(),
            Some(unsigned(&json!({"alg": "RS256", "kid": key.kid, "typ": "JWT"}), &good_claims, &[7u8; 256])),
        ),
        ("unknown kid", body.clone(), Some(TestKey::new("nobody-knows-me", false).sign(&body, 0))),
        ("expired key", body.clone(), Some(expired.sign(&body, 0))),
        ("replayed token older than 5 minutes", body.clone(), Some(key.sign(&body, 5 * 60 + 5))),
        ("issued in the future", body.clone(), Some(key.sign(&body, -600))),
        ("body changed by one byte", tampered.clone(), Some(key.sign(&body, 0))),
    ];
    let before = app.side_effects().await;
    for (what, body, jwt) in &forgeries {
        let (status, response) = app.post_webhook(body, jwt.as_deref()).await;
        assert_eq!(status, 401, "{what}: {response}");
        assert_eq!(response["error"]["code"], "invalid_webhook", "{what}");
    }
    // An oversized body is refused before anything reads it, even with a valid signature for it.
    let mut huge = body.clone();
    huge.extend(std::iter::repeat_n(b' ', 70 * 1024));
    let (status, _) = app.post_webhook(&huge, Some(&key.sign(&huge, 0))).await;
    assert_eq!(status, 413);
    assert_eq!(app.side_effects().await, before, "a forgery left a trace in webhook_events or jobs");

    // The control: the same body, honestly signed, is accepted and enqueued (so the checks above are meaningful).
    let (status, response) = app.post_webhook(&body, Some(&key.sign(&body, 0))).await;
    assert_eq!((status, response["status"].as_str()), (200, Some("enqueued")), "{response}");
    let after = app.side_effects().await;
    assert_eq!(after.0, before.0 + 1);
    assert_eq!(after.1, before.1 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_the_same_webhook_runs_one_sync() {
    let app = spawn_app().await;
    let item_id = app.link_and_sync(0).await;
    let key = TestKey::new("storm-key", false);
    app.add_key(&key);
    eventually("no job left from linking", || async { app.open_jobs().await == 0 }).await;
    let runs_before = app.count_runs(&item_id, None).await;
    let effects_before = app.side_effects().await;

    let body = sync_updates_body(&item_id);
    let jwt = key.sign(&body, 0);
    let replies = futures::future::join_all((0..50).map(|_| app.post_webhook(&body, Some(&jwt)))).await;
    let mut statuses: Vec<&str> = Vec::new();
    for (status, response) in &replies {
        assert_eq!(*status, 200, "{response}");
        statuses.push(response["status"].as_str().unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == "enqueued").count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == "duplicate").count(), 49, "{statuses:?}");

    eventually("the sync ran", || async {
        app.count_runs(&item_id, None).await > runs_before && app.open_jobs().await == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The first repeat still asks for a sync (it may be a second real update in the same second): it joins the
    // queued one, or queues one more when the first has started. Later repeats are replays: one extra sync at most.
    let runs = app.count_runs(&item_id, None).await;
    assert!(
        (runs_before + 1..=runs_before + 2).contains(&runs),
        "{runs} syncs for 50 deliveries (before {runs_before})"
    );
    let effects = app.side_effects().await;
    assert_eq!(effects.0, effects_before.0 + 1, "one delivery recorded");
    assert!((1..=2).contains(&(effects.1 - effects_before.1)), "one job, two at most: {effects:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivery_after_the_sync_ran_still_leaves_a_sync_queued() {
    let app = spawn_app().await;
    let item_id = app.link_and_sync(0).await;
    let key = TestKey::new("dup-key", false);
    app.add_key(&key);
    eventually("no job left from linking", || async { app.open_jobs().await == 0 }).await;

    // Two real updates announced in the same second are byte-identical signed deliveries. The first is synced...
    let body = sync_updates_body(&item_id);
    let jwt = key.sign(&body, 0);
    assert_eq!(app.post_webhook(&body, Some(&jwt)).await.1["status"], "enqueued");
    eventually("the first sync ran", || async { app.open_jobs().await == 0 }).await;
    let runs_before = app.count_runs(&item_id, None).await;
    // ... then the bank moves and the second delivery arrives: dropped as a replay, but its sync is not lost.
    app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 2})).await;
    assert_eq!(app.post_webhook(&body, Some(&jwt)).await.1["status"], "duplicate");
    eventually("the duplicate's sync ran", || async {
        app.count_runs(&item_id, None).await > runs_before && app.open_jobs().await == 0
    })
    .await;
    assert_eq!(app.api_transactions(&item_id).await, app.sim_transactions(&item_id).await, "converged");

    // Further repeats of that delivery are replays: acknowledged and counted, no more syncs.
    let runs_after = app.count_runs(&item_id, None).await;
    for _ in 0..3 {
        assert_eq!(app.post_webhook(&body, Some(&jwt)).await.1["status"], "duplicate");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.open_jobs().await, 0);
    assert_eq!(app.count_runs(&item_id, None).await, runs_after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn item_webhooks_update_health_flags_and_legacy_or_unknown_ones_are_acknowledged() {
    let app = spawn_app().await;
    let item_id = app.link_and_sync(0).await;
    let key = TestKey::new("item-key", false);
    app.add_key(&key);
    let send = |body: Value| {
        let bytes = serde_json::to_vec_pretty(&body).unwrap();
        let jwt = key.sign(&bytes, 0);
        let app = &app;
        async move { app.post_webhook(&bytes, Some(&jwt)).await }
    };
    let item_hook = |code: &str, extra: Value| {
        let mut body =
            json!({"webhook_type": "ITEM", "webhook_code": code, "item_id": item_id, "environment": "sandbox"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };

    // Unknown Item and legacy transaction webhooks: 200, nothing queued.
    let (_, jobs_before) = app.side_effects().await;
    let (status, r) = send(json!({"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE",
        "item_id": "no-such-item", "initial_update_complete": true, "historical_update_complete": true,
        "environment": "sandbox"}))
    .await;
    assert_eq!((status, r["status"].as_str()), (200, Some("unknown_item")));
    for code in ["INITIAL_UPDATE", "HISTORICAL_UPDATE", "DEFAULT_UPDATE", "TRANSACTIONS_REMOVED"] {
        let (status, r) = send(json!({"webhook_type": "TRANSACTIONS", "webhook_code": code, "item_id": item_id,
            "new_transactions": 3, "removed_transactions": [], "environment": "sandbox"}))
        .await;
        assert_eq!((status, r["status"].as_str()), (200, Some("ignored")), "{code}");
    }
    assert_eq!(app.side_effects().await.1, jobs_before, "legacy or unknown-Item webhooks enqueued a job");

    // PENDING_DISCONNECT: status and deadline.
    let (status, _) = send(item_hook(
        "PENDING_DISCONNECT",
        json!({"reason": "INSTITUTION_TOKEN_EXPIRATION", "disconnect_time": "2030-01-08T00:00:00Z"}),
    ))
    .await;
    assert_eq!(status, 200);
    let item = app.get_item(&item_id).await.expect(200);
    assert_eq!(item["health"]["status"], "pending_disconnect", "{item}");
    assert!(item.to_string().contains("2030-01-08"), "the deadline is shown: {item}");

    // NEW_ACCOUNTS_AVAILABLE: flagged; the update-mode link token then enables account selection.
    let (status, _) = send(item_hook("NEW_ACCOUNTS_AVAILABLE", json!({}))).await;
    assert_eq!(status, 200);
    let item = app.get_item(&item_id).await.expect(200);
    assert_eq!(item["new_accounts_available"], true, "{item}");
    let (status, link) = app.post("/api/link/token", json!({"item_id": item_id})).await.into_parts();
    assert_eq!(status, 200, "{link}");
    let exchanges = app.sim_get("/sim/exchanges").await;
    let request = exchanges
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|x| x["path"] == "/link/token/create")
        .expect("a /link/token/create call")["request"]
        .clone();
    assert_eq!(request["update"]["account_selection_enabled"], true, "{request}");

    // LOGIN_REPAIRED: back to good, and a sync is queued.
    let (status, r) = send(item_hook("LOGIN_REPAIRED", json!({}))).await;
    assert_eq!((status, r["status"].as_str()), (200, Some("enqueued")));
    assert_eq!(app.item_status(&item_id).await, "good");

    // WEBHOOK_UPDATE_ACKNOWLEDGED: acknowledged.
    let (status, r) =
        send(item_hook("WEBHOOK_UPDATE_ACKNOWLEDGED", json!({"new_webhook_url": "https://x.example/webhooks/plaid"})))
            .await;
    assert_eq!((status, r["status"].as_str()), (200, Some("ignored")));

    // USER_PERMISSION_REVOKED: revoked; later sync webhooks are not acted on, and nothing revives it.
    let (status, _) = send(item_hook("USER_PERMISSION_REVOKED", json!({"error": null}))).await;
    assert_eq!(status, 200);
    assert_eq!(app.item_status(&item_id).await, "revoked");
    eventually("queued work drained", || async { app.open_jobs().await == 0 }).await;
    let (_, jobs_before) = app.side_effects().await;
    let body = sync_updates_body(&item_id);
    let (status, r) = app.post_webhook(&body, Some(&key.sign(&body, 0))).await;
    assert_eq!((status, r["status"].as_str()), (200, Some("ignored")));
    let (status, _) = send(item_hook("LOGIN_REPAIRED", json!({}))).await;
    assert_eq!(status, 200);
    assert_eq!(app.item_status(&item_id).await, "revoked");
    assert_eq!(app.side_effects().await.1, jobs_before, "a revoked Item got a sync job");
    let (status, body) = app.post(&format!("/api/items/{item_id}/sync"), json!({})).await.into_parts();
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("item_revoked")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_tells_a_user_about_their_own_items_only() {
    let app = spawn_app().await;
    let bob = seed_user(&app.store, "bob").await;
    let alice_item = app.link_and_sync(0).await;
    let bob_item = app.link_and_sync_as(&bob.token, 1).await;

    // Unauthenticated: 401.
    let response = app.http.get(format!("{}/api/events", app.address)).send().await.unwrap();
    assert_eq!(response.status(), 401);

    let mut alice = Box::pin(sse_lines(&app, &app.user.token).await);
    let mut bob_events = Box::pin(sse_lines(&app, &bob.token).await);
    app.sim_post(&format!("/sim/items/{alice_item}/advance"), json!({"days": 2})).await;
    let finished = next_event(&mut alice, "sync_finished").await;
    assert_eq!(finished["item_id"], alice_item.as_str(), "{finished}");
    assert!(finished["summary"]["added"].as_u64().is_some(), "{finished}");
    let (status, job) = app.post("/api/balances/refresh", json!({"item_id": alice_item})).await.into_parts();
    assert_eq!(status, 202, "{job}");
    let balances = next_event(&mut alice, "balances_updated").await;
    assert_eq!(balances["item_id"], alice_item.as_str(), "{balances}");
    assert_eq!(balances["job_id"], job["job_id"], "{balances}");

    // Bob hears nothing about Alice's Item (his own may still be finishing its history meanwhile: the sync that
    // Plaid's HISTORICAL_UPDATE queues can land after his first one, and he hears of that one, rightly)...
    let quiet_until = tokio::time::Instant::now() + Duration::from_millis(800);
    while let Ok(event) = tokio::time::timeout_at(quiet_until, next_event(&mut bob_events, "sync_finished")).await {
        assert_eq!(event["item_id"], bob_item.as_str(), "bob received an event of an Item not his: {event}");
    }
    // ...but does about his own.
    app.sim_post(&format!("/sim/items/{bob_item}/advance"), json!({"days": 2})).await;
    let own = next_event(&mut bob_events, "sync_finished").await;
    assert_eq!(own["item_id"], bob_item.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_sync_has_a_per_item_cooldown() {
    let app = lifecycle_app().settings(|s| s.sync_cooldown = Some("10m".into())).spawn().await;
    let item_id = app.link_and_sync(0).await;
    let (status, body) = app.post(&format!("/api/items/{item_id}/sync"), json!({})).await.into_parts();
    assert_eq!(status, 200, "{body}");
    let (status, body) = app.post(&format!("/api/items/{item_id}/sync"), json!({})).await.into_parts();
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "sync_cooldown");
    let message = body["error"]["message"].as_str().unwrap();
    let seconds: u64 = message.split_whitespace().find_map(|w| w.parse().ok()).expect("seconds in the message");
    assert!((590..=600).contains(&seconds), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_syncs_stale_items_but_not_those_needing_the_user() {
    let app = lifecycle_app().settings(|s| s.sync_interval = Some("2s".into())).spawn().await;
    let fresh = app.link_and_sync(0).await;
    let broken = app.link_and_sync(1).await;
    app.sim_post(&format!("/sim/items/{broken}/reset_login"), json!({})).await;
    eventually("login required", || async { app.item_status(&broken).await == "login_required" }).await;
    let broken_runs = app.count_runs(&broken, Some("schedule")).await;

    eventually("two scheduled syncs of the stale Item", || async {
        app.count_runs(&fresh, Some("schedule")).await >= 2
    })
    .await;
    assert_eq!(app.count_runs(&broken, Some("schedule")).await, broken_runs, "a login_required Item was scheduled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_set_url_command_moves_every_items_webhook() {
    let app = spawn_app().await;
    let first = app.link_and_sync(0).await;
    let second = app.link_and_sync(1).await;
    let new_url = format!("{}/webhooks/plaid?moved=1", app.address);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_banksync"))
        .args(["webhook", "set-url", &new_url])
        .env_clear()
        .env("BANKSYNC_DATA_DIR", app.data_dir.path())
        .env("PLAID_CLIENT_ID", SIM_CLIENT_ID)
        .env("PLAID_SECRET", SIM_SECRET)
        .env("PLAID_BASE_URL", &app.plaid_url)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains(&first) && stdout.contains(&second), "{stdout}");
    assert!(stdout.contains("2 Item(s) updated, 0 failed"), "{stdout}");
    assert!(!stdout.contains("access-"), "an access token was printed: {stdout}");

    let items = app.sim_get("/sim/items").await;
    for item in items.as_array().unwrap() {
        assert_eq!(item["webhook"], new_url.as_str(), "{item}");
    }
    // Plaid confirms at the new URL, and banksync acknowledges it.
    eventually("WEBHOOK_UPDATE_ACKNOWLEDGED delivered to the new URL", || async {
        let deliveries = app.sim_get("/sim/webhooks").await;
        deliveries
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["webhook_code"] == "WEBHOOK_UPDATE_ACKNOWLEDGED" && d["url"] == new_url.as_str() && d["status"] == 200
            })
            .count()
            == 2
    })
    .await;
}

/// The `data:` JSON of the next SSE event named `name` (others are skipped).
async fn next_event(lines: &mut (impl futures::Stream<Item = String> + Unpin), name: &str) -> Value {
    let mut current: Option<String> = None;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next())
            .await
            .unwrap_or_else(|_| panic!("no {name} event within 20 s"))
            .expect("stream open");
        if let Some(event) = line.strip_prefix("event: ").or_else(|| line.strip_prefix("event:")) {
            current = Some(event.trim().to_owned());
        } else if let Some(data) = line.strip_prefix("data: ").or_else(|| line.strip_prefix("data:")) {
            if current.as_deref() == Some(name) {
                return serde_json::from_str(data.trim()).unwrap();
            }
        } else if line.is_empty() {
            current = None;
        }
    }
}

/// `GET /api/events` as `token`, as a stream of lines (after the `ready` comment arrived).
async fn sse_lines(app: &TestApp, token: &str) -> impl futures::Stream<Item = String> + use<> {
    let response = app.http.get(format!("{}/api/events", app.address)).bearer_auth(token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut bytes = response;
    let mut buffer = String::new();
    // Read up to the `ready` comment so the subscription exists before the test triggers anything.
    while !buffer.contains(": ready") && !buffer.contains(":ready") {
        let chunk = bytes.chunk().await.unwrap().expect("stream open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    let start = buffer.find("ready").map(|i| buffer[i..].find('\n').map_or(buffer.len(), |j| i + j + 1)).unwrap();
    let rest = buffer[start..].to_owned();
    futures::stream::unfold((bytes, rest), |(mut bytes, mut buffer)| async move {
        loop {
            if let Some(i) = buffer.find('\n') {
                let line = buffer[..i].trim_end_matches('\r').to_owned();
                buffer.drain(..=i);
                return Some((line, (bytes, buffer)));
            }
            let chunk = bytes.chunk().await.ok()??;
            buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
}
