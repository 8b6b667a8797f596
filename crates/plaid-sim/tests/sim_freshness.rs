//! How data reaches a client without it asking: a new Item's two phases (the last 30 days, then
//! the full history from the same cursor), SYNC_UPDATES_AVAILABLE per phase, bank activity that
//! only `/transactions/refresh` pulls (after the bank answers), the refresh add-on, and the
//! offline logo and icon assets.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::NaiveDate;
use common::{Outcome, Sim, Store, start};
use plaid_sim::SimConfig;
use serde_json::{Value, json};

/// Webhooks are only logged (`/sim/webhooks`), never posted.
const HOOK: &str = "http://127.0.0.1:9/hook";

fn config() -> SimConfig {
    SimConfig { rate_limits: false, deliver_webhooks: false, ..SimConfig::default() }
}

fn date(t: &Value) -> NaiveDate {
    NaiveDate::parse_from_str(t["date"].as_str().expect("date"), "%Y-%m-%d").expect("a date")
}

/// The SYNC_UPDATES_AVAILABLE bodies logged for an Item, oldest first.
async fn sync_webhooks(sim: &Sim, item_id: &str) -> Vec<Value> {
    let (_, attempts) = sim.get("/sim/webhooks").await;
    attempts
        .as_array()
        .expect("attempts")
        .iter()
        .filter(|a| a["item_id"] == item_id && a["webhook_code"] == "SYNC_UPDATES_AVAILABLE")
        .map(|a| a["body"].clone())
        .collect()
}

/// Waits (no timing assertion: a generous deadline) until `n` SYNC_UPDATES_AVAILABLE were logged.
async fn wait_for_sync_webhooks(sim: &Sim, item_id: &str, n: usize) -> Vec<Value> {
    for _ in 0..200 {
        let got = sync_webhooks(sim, item_id).await;
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {n} SYNC_UPDATES_AVAILABLE for {item_id}: {:?}", sync_webhooks(sim, item_id).await);
}

fn flags(body: &Value) -> (bool, bool) {
    (
        body["initial_update_complete"].as_bool().expect("initial flag"),
        body["historical_update_complete"].as_bool().expect("historical flag"),
    )
}

async fn item_status(sim: &Sim, token: &str) -> Value {
    sim.ok("/item/get", json!({"access_token": token})).await["status"]["transactions"].clone()
}

async fn full_truth(sim: &Sim, item_id: &str) -> Vec<Value> {
    let (status, v) = sim.get(&format!("/sim/items/{item_id}/transactions?view=full")).await;
    assert_eq!(status, 200);
    v["transactions"].as_array().expect("transactions").clone()
}

#[tokio::test]
async fn the_first_phase_holds_30_days_and_the_history_completes_from_the_same_cursor() {
    let sim = start(SimConfig { historical_ready_delay: Some(Duration::from_secs(3600)), ..config() }).await;
    let (token, item_id) = sim.item_with("ins_109508", json!({"webhook": HOOK})).await;

    let first = sim.ok("/transactions/sync", json!({"access_token": token, "count": 1})).await;
    assert_eq!(first["transactions_update_status"], "INITIAL_UPDATE_COMPLETE");
    let mut store = Store::default();
    assert!(matches!(store.sync(&sim, &token, 100).await, Outcome::Done { .. }));
    let phase_one = store.values();
    let newest = phase_one.iter().map(date).max().expect("transactions");
    let oldest = phase_one.iter().map(date).min().expect("transactions");
    assert_eq!((newest - oldest).num_days(), 29, "the last 30 days: {oldest}..{newest}");
    assert_eq!(phase_one, sim.ground_truth(&item_id).await, "ground truth is what a complete sync reaches now");
    let full = full_truth(&sim, &item_id).await;
    assert!(full.len() > phase_one.len() && full.iter().map(date).min() < Some(oldest));
    assert_eq!(item_status(&sim, &token).await["transactions_update_status"], "INITIAL_UPDATE_COMPLETE");
    let (_, items) = sim.get("/sim/items").await;
    assert_eq!(items[0]["transactions_count"], phase_one.len());
    assert_eq!(items[0]["transactions_count_full"], full.len());
    assert!(sync_webhooks(&sim, &item_id).await.is_empty(), "the client already has phase one");

    // The full history is ready: one webhook with both flags, and the older transactions come
    // as `added` from the client's cursor, none of them already known.
    sim.post("/sim/clock/advance", json!({"seconds": 3600})).await;
    let hooks = wait_for_sync_webhooks(&sim, &item_id, 1).await;
    assert_eq!(hooks.iter().map(flags).collect::<Vec<_>>(), [(true, true)]);
    let known: BTreeSet<String> = store.txns.keys().cloned().collect();
    let mut cursor = store.cursor.clone();
    let mut added = Vec::new();
    loop {
        let page = sim.ok("/transactions/sync", json!({"access_token": token, "cursor": cursor, "count": 250})).await;
        assert_eq!(page["transactions_update_status"], "HISTORICAL_UPDATE_COMPLETE");
        assert_eq!(page["modified"], json!([]));
        assert_eq!(page["removed"], json!([]));
        added.extend(page["added"].as_array().expect("added").iter().cloned());
        cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
        if page["has_more"] == false {
            break;
        }
    }
    let ids: BTreeSet<String> = added.iter().map(|t| t["transaction_id"].as_str().expect("id").to_owned()).collect();
    assert_eq!(ids.len(), added.len(), "no duplicates within the delta");
    assert!(ids.is_disjoint(&known), "no transaction of phase one again");
    assert!(added.iter().all(|t| date(t) < oldest));
    for t in added {
        store.txns.insert(t["transaction_id"].as_str().expect("id").to_owned(), t);
    }
    assert_eq!(store.values(), sim.ground_truth(&item_id).await);
    assert_eq!(store.values(), full);
    assert_eq!(item_status(&sim, &token).await["transactions_update_status"], "HISTORICAL_UPDATE_COMPLETE");
}

#[tokio::test]
async fn each_phase_is_announced_with_its_flags_once_sync_was_called() {
    let sim = start(SimConfig {
        product_ready_delay: Duration::from_secs(3600),
        historical_ready_delay: Some(Duration::from_secs(7200)),
        ..config()
    })
    .await;
    let (token, item_id) = sim.item_with("ins_109508", json!({"webhook": HOOK})).await;
    let (quiet_token, quiet_id) = sim.item_with("ins_109508", json!({"webhook": HOOK})).await;
    let page = sim.ok("/transactions/sync", json!({"access_token": token})).await;
    assert_eq!(page["transactions_update_status"], "NOT_READY");
    assert_eq!(sim.ground_truth(&item_id).await, Vec::<Value>::new(), "a complete sync reaches nothing yet");
    assert_eq!(item_status(&sim, &token).await["transactions_update_status"], "NOT_READY");

    sim.post("/sim/clock/advance", json!({"seconds": 3600})).await;
    let hooks = wait_for_sync_webhooks(&sim, &item_id, 1).await;
    assert_eq!(flags(&hooks[0]), (true, false));
    let page = sim.ok("/transactions/sync", json!({"access_token": token, "count": 500})).await;
    assert_eq!(page["transactions_update_status"], "INITIAL_UPDATE_COMPLETE");

    // The control route makes the full history ready now; the webhook goes out with the change.
    let (status, ready) = sim.post(&format!("/sim/items/{item_id}/ready"), json!({"phase": "historical"})).await;
    assert_eq!((status, ready["transactions_update_status"].as_str()), (200, Some("HISTORICAL_UPDATE_COMPLETE")));
    let hooks = sync_webhooks(&sim, &item_id).await;
    assert_eq!(hooks.iter().map(flags).collect::<Vec<_>>(), [(true, false), (true, true)]);

    // An Item nobody synced gets no webhook, whatever its phase.
    sim.post(&format!("/sim/items/{quiet_id}/ready"), json!({"phase": "historical"})).await;
    assert!(sync_webhooks(&sim, &quiet_id).await.is_empty());
    let page = sim.ok("/transactions/sync", json!({"access_token": quiet_token, "count": 1})).await;
    assert_eq!(page["transactions_update_status"], "HISTORICAL_UPDATE_COMPLETE");

    let (status, err) = sim.post(&format!("/sim/items/{item_id}/ready"), json!({"phase": "later"})).await;
    assert_eq!(status, 400, "{err}");
    let (status, _) = sim.post("/sim/items/nope/ready", json!({"phase": "initial"})).await;
    assert_eq!(status, 404);
    let (status, _) = sim.get(&format!("/sim/items/{item_id}/transactions?view=everything")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn refresh_pulls_bank_activity_once_the_bank_answers() {
    let sim = start(SimConfig { refresh_delay: Duration::from_secs(600), ..config() }).await;
    let (token, item_id) = sim.item_with("ins_109508", json!({"webhook": HOOK})).await;
    let mut store = Store::default();
    assert!(matches!(store.sync(&sim, &token, 500).await, Outcome::Done { .. }));
    let before = sim.ground_truth(&item_id).await;
    let updated_before = item_status(&sim, &token).await["last_successful_update"].clone();

    // Activity at the bank: invisible to sync until Plaid pulls.
    let (status, moved) = sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 2, "pulled": false})).await;
    assert_eq!((status, moved), (200, json!({"pulled": false, "unpulled_days": 2})));
    let page = sim.ok("/transactions/sync", json!({"access_token": token, "cursor": store.cursor})).await;
    assert_eq!((page["added"].clone(), page["has_more"].clone()), (json!([]), json!(false)));
    assert_eq!(sim.ground_truth(&item_id).await, before);

    // Asked, the bank answers `refresh_delay` later (the simulator's clock).
    sim.ok("/transactions/refresh", json!({"access_token": token})).await;
    assert!(matches!(store.sync(&sim, &token, 500).await, Outcome::Done { .. }));
    assert_eq!(store.values(), before, "nothing before the bank answers");
    assert_eq!(item_status(&sim, &token).await["last_successful_update"], updated_before);
    assert!(sync_webhooks(&sim, &item_id).await.is_empty());

    sim.post("/sim/clock/advance", json!({"seconds": 600})).await;
    let updated_after = item_status(&sim, &token).await["last_successful_update"].clone();
    assert!(updated_after.as_str() > updated_before.as_str(), "{updated_before} -> {updated_after}");
    let hooks = wait_for_sync_webhooks(&sim, &item_id, 1).await;
    assert_eq!(flags(&hooks[0]), (true, true));
    assert!(matches!(store.sync(&sim, &token, 500).await, Outcome::Done { .. }));
    let after = sim.ground_truth(&item_id).await;
    assert_ne!(after, before);
    assert_eq!(store.values(), after);
    let (_, items) = sim.get("/sim/items").await;
    assert_eq!(items[0]["unpulled_days"], 0);

    let (status, err) = sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 1, "pulled": "no"})).await;
    assert_eq!(status, 400, "{err}");
}

#[tokio::test]
async fn refresh_keeps_plaids_rate_limit() {
    let sim = start(SimConfig { rate_limits: true, ..config() }).await;
    let (token, _) = sim.item().await;
    sim.ok("/transactions/refresh", json!({"access_token": token})).await;
    sim.ok("/transactions/refresh", json!({"access_token": token})).await;
    let (status, err) = sim.plaid("/transactions/refresh", json!({"access_token": token})).await;
    assert_eq!((status, err["error_code"].as_str()), (429, Some("TRANSACTIONS_REFRESH_LIMIT")));
}

#[tokio::test]
async fn a_client_without_the_refresh_add_on_gets_invalid_product() {
    let sim = start(SimConfig { transactions_refresh_enabled: false, ..config() }).await;
    let (token, _) = sim.item().await;
    let (status, err) = sim.plaid("/transactions/refresh", json!({"access_token": token})).await;
    assert_eq!(
        (status, err["error_type"].as_str(), err["error_code"].as_str()),
        (400, Some("INVALID_INPUT"), Some("INVALID_PRODUCT"))
    );
    assert_eq!(
        err["error_message"],
        "client is not authorized to access the following products: [\"transactions_refresh\"]"
    );
    assert_eq!(sim.get("/sim/client").await.1, json!({"transactions_refresh_enabled": false}));

    let (status, _) = sim.post("/sim/client", json!({"transactions_refresh_enabled": true})).await;
    assert_eq!(status, 200);
    sim.ok("/transactions/refresh", json!({"access_token": token})).await;
    sim.post("/sim/client", json!({"transactions_refresh_enabled": false})).await;
    let (status, _) = sim.plaid("/transactions/refresh", json!({"access_token": token})).await;
    assert_eq!(status, 400);

    let (status, _) = sim.post("/sim/client", json!({"transactions_refresh_enabled": "yes"})).await;
    assert_eq!(status, 400);
    let (status, _) = sim.post("/sim/client", json!({"balance_enabled": true})).await;
    assert_eq!(status, 400);
}

/// Every logo and icon URL of a sync page.
fn asset_urls(page: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut logos, mut icons) = (BTreeSet::new(), BTreeSet::new());
    for t in page["added"].as_array().expect("added") {
        logos.extend(t["logo_url"].as_str().map(str::to_owned));
        for c in t["counterparties"].as_array().expect("counterparties") {
            logos.extend(c["logo_url"].as_str().map(str::to_owned));
        }
        icons.insert(t["personal_finance_category_icon_url"].as_str().expect("icon").to_owned());
    }
    (logos, icons)
}

#[tokio::test]
async fn logos_and_icons_point_at_the_offline_assets_which_the_router_serves_under_a_prefix() {
    // An app that nests the assets router under a prefix, as banksync does in demo mode.
    let app = axum::Router::new().nest("/sim-assets", plaid_sim::assets::router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}/sim-assets", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sim = start(SimConfig { asset_base_url: Some(base.clone()), ..config() }).await;
    let (token, _) = sim.item().await;
    let page = sim.ok("/transactions/sync", json!({"access_token": token, "count": 500})).await;
    let (logos, icons) = asset_urls(&page);
    assert!(logos.len() > 5 && icons.len() > 5, "{logos:?} {icons:?}");
    assert!(logos.iter().all(|u| u.starts_with(&format!("{base}/logos/")) && u.ends_with(".png")), "{logos:?}");
    assert!(icons.iter().all(|u| u.starts_with(&format!("{base}/categories/")) && u.ends_with(".svg")), "{icons:?}");

    let http = reqwest::Client::new();
    // Logos are PNG, as Plaid's are (an app may refuse SVG logos: they can carry script); category icons SVG.
    for (url, kind) in logos.iter().map(|u| (u, "image/png")).chain(icons.iter().map(|u| (u, "image/svg+xml"))) {
        let res = http.get(url).send().await.expect("request");
        assert_eq!(res.status(), 200, "{url}");
        let header = |name: &str| res.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header("content-type").as_deref(), Some(kind), "{url}");
        assert!(header("cache-control").is_some_and(|c| c.starts_with("public, max-age=")), "{url}");
        let body = res.bytes().await.expect("body");
        if kind == "image/png" {
            assert!(body.starts_with(b"\x89PNG\r\n\x1a\n") && body.ends_with(b"IEND\xae\x42\x60\x82"), "{url}");
        } else {
            assert!(
                body.starts_with(b"<svg xmlns=\"http://www.w3.org/2000/svg\"") && body.ends_with(b"</svg>"),
                "{url}"
            );
        }
    }
    for missing in ["logos/nobody_1.png", "logos/starbucks_956.svg", "categories/NOPE.svg", "other/x.svg"] {
        let res = http.get(format!("{base}/{missing}")).send().await.expect("request");
        assert_eq!(res.status(), 404, "{missing}");
    }

    // Without a base, Plaid's own URLs.
    let plaid = start(config()).await;
    let (token, _) = plaid.item().await;
    let page = plaid.ok("/transactions/sync", json!({"access_token": token, "count": 500})).await;
    let (logos, icons) = asset_urls(&page);
    assert!(logos.iter().all(|u| u.starts_with("https://plaid-merchant-logos.plaid.com/")), "{logos:?}");
    assert!(icons.iter().all(|u| u.starts_with("https://plaid-category-icons.plaid.com/")), "{icons:?}");
}
