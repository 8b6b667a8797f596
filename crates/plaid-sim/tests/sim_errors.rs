//! Plaid's request validation and error bodies, rate limits and injected faults.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{start, start_default};
use plaid_sim::SimConfig;
use serde_json::{Value, json};

fn assert_error(status: u16, body: &Value, want_status: u16, error_type: &str, error_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error_type"], error_type, "{body}");
    assert_eq!(body["error_code"], error_code, "{body}");
    assert!(body["error_message"].is_string(), "{body}");
    assert!(body.get("display_message").is_some(), "{body}");
    assert!(body["request_id"].is_string(), "{body}");
}

#[tokio::test]
async fn malformed_requests_and_bad_keys() {
    let sim = start_default().await;
    let (token, _) = sim.item().await;
    let mut request_ids = HashSet::new();

    // Body must be a JSON object.
    for raw in ["not json", "[1,2]", ""] {
        let res = sim
            .http
            .post(sim.url("/item/get"))
            .header("PLAID-CLIENT-ID", "banksync-sim-client")
            .header("PLAID-SECRET", "banksync-sim-secret")
            .header("Content-Type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let body: Value = res.json().await.expect("json");
        assert_error(status, &body, 400, "INVALID_REQUEST", "INVALID_BODY");
        request_ids.insert(body["request_id"].as_str().expect("id").to_owned());
    }

    // Missing / wrong keys: INVALID_API_KEYS; keys in the body work too.
    let res = sim.http.post(sim.url("/item/get")).json(&json!({"access_token": token})).send().await.expect("request");
    let status = res.status().as_u16();
    assert_error(status, &res.json().await.expect("json"), 400, "INVALID_INPUT", "INVALID_API_KEYS");
    let res = sim
        .http
        .post(sim.url("/item/get"))
        .json(&json!({"access_token": token, "client_id": "banksync-sim-client", "secret": "wrong"}))
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    assert_error(status, &res.json().await.expect("json"), 400, "INVALID_INPUT", "INVALID_API_KEYS");
    let res = sim
        .http
        .post(sim.url("/item/get"))
        .json(&json!({"access_token": token, "client_id": "banksync-sim-client", "secret": "banksync-sim-secret"}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 200);

    let cases = [
        ("/transactions/sync", json!({}), "INVALID_REQUEST", "MISSING_FIELDS"),
        ("/transactions/sync", json!({"access_token": token, "count": 0}), "INVALID_REQUEST", "INVALID_FIELD"),
        ("/transactions/sync", json!({"access_token": token, "count": 501}), "INVALID_REQUEST", "INVALID_FIELD"),
        ("/transactions/sync", json!({"access_token": token, "count": "5"}), "INVALID_REQUEST", "INVALID_FIELD"),
        ("/transactions/sync", json!({"access_token": token, "cursor": "garbage"}), "INVALID_REQUEST", "INVALID_FIELD"),
        ("/transactions/sync", json!({"access_token": token, "bogus": 1}), "INVALID_REQUEST", "UNKNOWN_FIELDS"),
        (
            "/transactions/sync",
            json!({"access_token": "access-sandbox-00000000-0000-4000-8000-000000000000"}),
            "INVALID_INPUT",
            "INVALID_ACCESS_TOKEN",
        ),
        ("/accounts/get", json!({"access_token": "nonsense"}), "INVALID_INPUT", "INVALID_ACCESS_TOKEN"),
        (
            "/accounts/balance/get",
            json!({"access_token": token, "options": {"account_ids": ["nope"]}}),
            "INVALID_INPUT",
            "INVALID_ACCOUNT_ID",
        ),
        (
            "/link/token/create",
            json!({"client_name": "x", "language": "en", "country_codes": ["US"]}),
            "INVALID_REQUEST",
            "MISSING_FIELDS",
        ),
        (
            "/link/token/create",
            json!({"client_name": "x", "language": "en", "country_codes": ["US"], "user": {"client_user_id": ""}}),
            "INVALID_REQUEST",
            "INVALID_FIELD",
        ),
        (
            "/link/token/create",
            json!({"client_name": "x", "language": "en", "country_codes": ["US"], "user": {"client_user_id": "u"}, "products": ["balance"]}),
            "INVALID_REQUEST",
            "INVALID_FIELD",
        ),
        (
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_nope", "initial_products": ["transactions"]}),
            "INVALID_REQUEST",
            "INVALID_FIELD",
        ),
        ("/sandbox/public_token/create", json!({"institution_id": "ins_109508"}), "INVALID_REQUEST", "MISSING_FIELDS"),
        (
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109508", "initial_products": ["transactions"], "options": {"override_username": "user_bad"}}),
            "ITEM_ERROR",
            "INVALID_CREDENTIALS",
        ),
        (
            "/sandbox/item/fire_webhook",
            json!({"access_token": token, "webhook_code": "SYNC_UPDATES_AVAILABLE"}),
            "SANDBOX_ERROR",
            "SANDBOX_WEBHOOK_INVALID",
        ),
        (
            "/sandbox/item/fire_webhook",
            json!({"access_token": token, "webhook_code": "NOPE"}),
            "INVALID_REQUEST",
            "INVALID_FIELD",
        ),
        (
            "/webhook_verification_key/get",
            json!({"key_id": "unknown"}),
            "INVALID_INPUT",
            "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
        ),
        (
            "/item/public_token/exchange",
            json!({"public_token": "public-sandbox-unknown"}),
            "INVALID_INPUT",
            "INVALID_PUBLIC_TOKEN",
        ),
    ];
    for (path, body, ty, code) in cases {
        let (status, err) = sim.plaid(path, body.clone()).await;
        assert_error(status, &err, 400, ty, code);
        assert!(request_ids.insert(err["request_id"].as_str().expect("id").to_owned()), "request_id reused");
    }
    let (_, missing) = sim.plaid("/transactions/sync", json!({})).await;
    assert!(missing["error_message"].as_str().expect("message").contains("access_token"));
}

#[tokio::test]
async fn public_tokens_are_single_use_and_expire() {
    let sim = start_default().await;
    let create = || {
        sim.ok(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109509", "initial_products": ["transactions"]}),
        )
    };
    let token = create().await["public_token"].clone();
    sim.ok("/item/public_token/exchange", json!({"public_token": token})).await;
    let (status, err) = sim.plaid("/item/public_token/exchange", json!({"public_token": token})).await;
    assert_error(status, &err, 400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN");

    let token = create().await["public_token"].clone();
    let (status, _) = sim.post("/sim/clock/advance", json!({"seconds": 29 * 60})).await;
    assert_eq!(status, 200);
    let fresh = create().await["public_token"].clone();
    sim.post("/sim/clock/advance", json!({"seconds": 2 * 60})).await;
    let (status, err) = sim.plaid("/item/public_token/exchange", json!({"public_token": token})).await;
    assert_error(status, &err, 400, "INVALID_INPUT", "INVALID_PUBLIC_TOKEN");
    assert!(err["error_message"].as_str().expect("message").contains("expire"));
    sim.ok("/item/public_token/exchange", json!({"public_token": fresh})).await;
}

#[tokio::test]
async fn login_required_after_reset_until_repaired() {
    let sim = start_default().await;
    let (token, item_id) = sim.item().await;
    let reset = sim.ok("/sandbox/item/reset_login", json!({"access_token": token})).await;
    assert_eq!(reset["reset_login"], true);
    for path in ["/accounts/get", "/accounts/balance/get", "/transactions/sync", "/transactions/refresh"] {
        let (status, err) = sim.plaid(path, json!({"access_token": token})).await;
        assert_error(status, &err, 400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED");
    }
    let item = sim.ok("/item/get", json!({"access_token": token})).await;
    assert_eq!(item["item"]["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
    let (_, items) = sim.get("/sim/items").await;
    assert_eq!(items[0]["login_required"], true);

    // Update-mode Link repairs the Item; the access token stays the same.
    let link = sim
        .ok(
            "/link/token/create",
            json!({"client_name": "x", "language": "en", "country_codes": ["US"],
            "user": {"client_user_id": "u"}, "access_token": token}),
        )
        .await;
    let (status, session) = sim.post("/link/session/start", json!({"link_token": link["link_token"]})).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["mode"], "update");
    assert_eq!(session["institution"]["institution_id"], "ins_109508");
    let (status, done) = sim
        .post(
            "/link/session/submit",
            json!({"link_token": link["link_token"], "link_session_id": session["link_session_id"],
            "institution_id": "ins_109508", "username": "user_good", "password": "pass_good"}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let item = sim.ok("/item/get", json!({"access_token": token})).await;
    assert!(item["item"]["error"].is_null());
    assert_eq!(item["item"]["item_id"], item_id);
    sim.ok("/accounts/get", json!({"access_token": token})).await;
}

#[tokio::test]
async fn unhealthy_institution_fails_balance_calls() {
    let sim = start_default().await;
    let (token, _) = sim.item_with("ins_132361", json!({})).await;
    sim.ok("/accounts/get", json!({"access_token": token})).await;
    let (status, err) = sim.plaid("/accounts/balance/get", json!({"access_token": token})).await;
    assert_error(status, &err, 400, "INSTITUTION_ERROR", "INSTITUTION_DOWN");
}

#[tokio::test]
async fn rate_limits_answer_429_with_plaids_codes() {
    let sim = start_default().await;
    let (token, _) = sim.item().await;
    for _ in 0..2 {
        sim.ok("/transactions/refresh", json!({"access_token": token})).await;
    }
    let (status, err) = sim.plaid("/transactions/refresh", json!({"access_token": token})).await;
    assert_error(status, &err, 429, "RATE_LIMIT_EXCEEDED", "TRANSACTIONS_REFRESH_LIMIT");

    // Balance: 25/min per Item, 100/min per client.
    for _ in 0..25 {
        sim.ok("/accounts/balance/get", json!({"access_token": token})).await;
    }
    let (status, err) = sim.plaid("/accounts/balance/get", json!({"access_token": token})).await;
    assert_error(status, &err, 429, "RATE_LIMIT_EXCEEDED", "BALANCE_LIMIT");
    let mut others = Vec::new();
    for _ in 0..4 {
        others.push(sim.item().await.0);
    }
    let mut last = (200, Value::Null);
    'outer: for t in &others {
        for _ in 0..25 {
            last = sim.plaid("/accounts/balance/get", json!({"access_token": t})).await;
            if last.0 != 200 {
                break 'outer;
            }
        }
    }
    assert_error(last.0, &last.1, 429, "RATE_LIMIT_EXCEEDED", "ACCOUNTS_BALANCE_GET_LIMIT");

    // Disabled limits never refuse.
    let relaxed = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (token, _) = relaxed.item().await;
    for _ in 0..5 {
        relaxed.ok("/transactions/refresh", json!({"access_token": token})).await;
    }
}

#[tokio::test]
async fn faults_inject_errors_latency_and_hangs() {
    let sim = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (token, _) = sim.item().await;

    let (status, fault) =
        sim.post("/sim/faults", json!({"endpoint": "/accounts/get", "error": "API_ERROR", "count": 2})).await;
    assert_eq!(status, 200, "{fault}");
    assert!(fault["fault_id"].is_string());
    for _ in 0..2 {
        let (status, err) = sim.plaid("/accounts/get", json!({"access_token": token})).await;
        assert_error(status, &err, 500, "API_ERROR", "INTERNAL_SERVER_ERROR");
    }
    sim.ok("/accounts/get", json!({"access_token": token})).await;

    let kinds = [
        ("/item/get", "RATE_LIMIT_EXCEEDED", 429, "RATE_LIMIT_EXCEEDED", "ITEM_GET_LIMIT"),
        ("/accounts/balance/get", "INSTITUTION_NOT_RESPONDING", 400, "INSTITUTION_ERROR", "INSTITUTION_NOT_RESPONDING"),
        (
            "/transactions/sync",
            "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
            400,
            "TRANSACTIONS_ERROR",
            "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
        ),
    ];
    for (endpoint, kind, status, ty, code) in kinds {
        sim.post("/sim/faults", json!({"endpoint": endpoint, "error": kind, "count": 1})).await;
        let (got, err) = sim.plaid(endpoint, json!({"access_token": token})).await;
        assert_error(got, &err, status, ty, code);
        sim.ok(endpoint, json!({"access_token": token})).await;
    }
    let (_, list) = sim.get("/sim/faults").await;
    assert_eq!(list.as_array().expect("faults").len(), 4);
    assert!(list.as_array().expect("faults").iter().all(|f| f["fired"].as_u64() >= Some(1)));

    // A rate of 0 never fires; bad specs are refused.
    let (status, zero) =
        sim.post("/sim/faults", json!({"endpoint": "/item/get", "error": "API_ERROR", "rate": 0.0})).await;
    assert!((200..300).contains(&status), "a rate of 0 is a valid fault: {status} {zero}");
    sim.ok("/item/get", json!({"access_token": token})).await;
    let (_, list) = sim.get("/sim/faults").await;
    let zero_fault = list
        .as_array()
        .expect("faults")
        .iter()
        .find(|f| f["fault_id"] == zero["fault_id"])
        .expect("the rate-0 fault is listed");
    assert_eq!(zero_fault["fired"], 0, "{zero_fault}");
    let (status, err) = sim.post("/sim/faults", json!({"endpoint": "/item/get", "error": "NOPE"})).await;
    assert_eq!(status, 400);
    assert!(err["error"].is_string());

    // Latency.
    sim.post("/sim/faults", json!({"endpoint": "/item/get", "latency_ms": 300, "count": 1})).await;
    let started = Instant::now();
    sim.ok("/item/get", json!({"access_token": token})).await;
    assert!(started.elapsed() >= Duration::from_millis(300));

    // A hung balance call does not stall anything else: while it hangs at the simulator (its fault fired), another
    // call is answered, and the hung one still is not.
    let (_, hang) = sim.post("/sim/faults", json!({"endpoint": "/accounts/balance/get", "hang": true})).await;
    let hung = tokio::spawn(
        sim.http
            .post(sim.url("/accounts/balance/get"))
            .header("PLAID-CLIENT-ID", "banksync-sim-client")
            .header("PLAID-SECRET", "banksync-sim-secret")
            .json(&json!({"access_token": token}))
            .send(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = sim.get("/sim/faults").await;
        let fired = list
            .as_array()
            .expect("faults")
            .iter()
            .find(|f| f["fault_id"] == hang["fault_id"])
            .expect("listed")["fired"]
            .as_u64();
        if fired >= Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "the hung call never reached the simulator");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sim.ok("/accounts/get", json!({"access_token": token})).await;
    assert!(!hung.is_finished(), "the hung call answered");
    hung.abort();

    let (status, _) =
        sim.http.delete(sim.url("/sim/faults")).send().await.map(|r| (r.status().as_u16(), ())).expect("delete");
    assert_eq!(status, 200);
    sim.ok("/accounts/balance/get", json!({"access_token": token})).await;
}

/// `every: 2` fires on exactly every other matching request (a pagination's every other page), and `item_id`
/// confines a fault to one Item; `seen`/`fired` count what matched and what fired.
#[tokio::test]
async fn faults_fire_on_every_nth_request_and_only_for_their_item() {
    let sim = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (token, item_id) = sim.item().await;
    let (other_token, _) = sim.item_with("ins_109509", json!({"transactions": {"days_requested": 730}})).await;

    let spec = json!({"endpoint": "/item/get", "error": "API_ERROR", "every": 2, "item_id": item_id});
    let (status, fault) = sim.post("/sim/faults", spec).await;
    assert_eq!(status, 200, "{fault}");
    let mut pattern = Vec::new();
    for _ in 0..6 {
        let (status, _) = sim.plaid("/item/get", json!({"access_token": token})).await;
        pattern.push(status);
        // The other Item never matches, and does not advance the fault's count.
        sim.ok("/item/get", json!({"access_token": other_token})).await;
    }
    assert_eq!(pattern, [200, 500, 200, 500, 200, 500]);
    let (_, list) = sim.get("/sim/faults").await;
    assert_eq!((list[0]["seen"].as_u64(), list[0]["fired"].as_u64()), (Some(6), Some(3)), "{list}");

    let (status, err) =
        sim.post("/sim/faults", json!({"endpoint": "/item/get", "error": "API_ERROR", "every": 0})).await;
    assert_eq!(status, 400, "{err}");
}

#[tokio::test]
async fn slow_balances_do_not_block_other_requests() {
    let latency = Duration::from_secs(4);
    let sim = start(SimConfig { balance_latency: latency..=latency, ..SimConfig::default() }).await;
    let (token, _) = sim.item().await;
    let started = Instant::now();
    let slow_done = std::sync::atomic::AtomicBool::new(false);
    let slow = async {
        sim.ok("/accounts/balance/get", json!({"access_token": token})).await;
        slow_done.store(true, std::sync::atomic::Ordering::SeqCst);
    };
    let fast = async {
        sim.ok("/transactions/sync", json!({"access_token": token, "count": 10})).await;
        sim.ok("/accounts/get", json!({"access_token": token})).await;
        slow_done.load(std::sync::atomic::Ordering::SeqCst)
    };
    let (_, slow_ended_first) = tokio::join!(slow, fast);
    assert!(started.elapsed() >= latency);
    // The order, not a clock: the other calls were answered while the balance call was still at the bank.
    assert!(!slow_ended_first, "other calls waited for the balance call");
}

#[tokio::test]
async fn exchanges_are_recorded_with_the_secret_redacted() {
    let sim = start(SimConfig { record_exchanges: true, ..SimConfig::default() }).await;
    let (token, item_id) = sim.item().await;
    let res = sim
        .http
        .post(sim.url("/item/get"))
        .json(&json!({"access_token": token, "client_id": "banksync-sim-client", "secret": "banksync-sim-secret"}))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status().as_u16(), 200);
    sim.plaid("/accounts/get", json!({})).await;
    sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 1})).await;
    sim.post("/link/session/start", json!({"link_token": "link-sandbox-nope"})).await;

    let (status, log) = sim.get("/sim/exchanges").await;
    assert_eq!(status, 200);
    let log = log.as_array().expect("exchanges");
    let paths: Vec<&str> = log.iter().map(|e| e["path"].as_str().expect("path")).collect();
    assert_eq!(paths, ["/sandbox/public_token/create", "/item/public_token/exchange", "/item/get", "/accounts/get"]);
    let get = &log[2];
    assert_eq!(get["method"], "POST");
    assert_eq!(get["status"], 200);
    assert_eq!(get["request"]["secret"], "[REDACTED]");
    assert_eq!(get["response"]["item"]["item_id"], item_id.as_str());
    assert!(!log.iter().any(|e| e.to_string().contains("banksync-sim-secret")));
    assert_eq!(log[3]["status"], 400);
    assert_eq!(log[3]["response"]["error_code"], "MISSING_FIELDS");

    sim.http.delete(sim.url("/sim/exchanges")).send().await.expect("delete");
    assert_eq!(sim.get("/sim/exchanges").await.1.as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn control_endpoints_answer_json_errors() {
    let sim = start_default().await;
    let (status, err) = sim.post("/sim/items/nope/advance", json!({"days": 1})).await;
    assert_eq!(status, 404);
    assert!(err["error"].as_str().expect("message").contains("nope"));
    let (_, item_id) = sim.item().await;
    for body in [json!({}), json!({"days": 0}), json!({"days": "3"})] {
        let (status, err) = sim.post(&format!("/sim/items/{item_id}/advance"), body).await;
        assert_eq!(status, 400);
        assert!(err["error"].is_string());
    }
    let (status, err) = sim.post("/sim/clock/advance", json!({"seconds": -5})).await;
    assert_eq!(status, 400, "{err}");
    let (status, items) = sim.get("/sim/items").await;
    assert_eq!(status, 200);
    let entry = &items[0];
    assert_eq!(entry["item_id"], item_id.as_str());
    assert_eq!(entry["institution_id"], "ins_109508");
    assert!(entry["webhook"].is_null());
    assert_eq!(entry["login_required"], false);
    assert_eq!(entry["transactions_count"].as_u64().map(|n| n as usize), Some(sim.ground_truth(&item_id).await.len()));
}
