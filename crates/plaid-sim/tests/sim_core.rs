//! The core Plaid flow against the simulator over loopback: token → exchange → accounts →
//! balance → full sync, with ground-truth convergence, pagination, mutation restarts and
//! pending→posted.

mod common;

use common::{Outcome, Store, start, start_default};
use plaid_sim::SimConfig;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn link_token_exchange_accounts_balance_and_item() {
    let sim = start_default().await;
    let link = sim
        .ok(
            "/link/token/create",
            json!({"client_name": "banksync", "language": "en", "country_codes": ["US"],
                   "user": {"client_user_id": "u1"}, "products": ["transactions"],
                   "transactions": {"days_requested": 730}}),
        )
        .await;
    assert!(link["link_token"].as_str().expect("token").starts_with("link-sandbox-"));
    assert!(link["expiration"].as_str().expect("expiration").ends_with('Z'));

    let (token, item_id) = sim.item().await;
    assert!(token.starts_with("access-sandbox-"));
    assert_eq!(item_id.len(), 37);

    let accounts = sim.ok("/accounts/get", json!({"access_token": token})).await;
    let list = accounts["accounts"].as_array().expect("accounts");
    assert_eq!(list.len(), 3);
    let kinds: Vec<&str> = list.iter().map(|a| a["subtype"].as_str().expect("subtype")).collect();
    assert_eq!(kinds, ["checking", "savings", "credit card"]);
    for a in list {
        for key in ["available", "current", "limit", "iso_currency_code", "unofficial_currency_code"] {
            assert!(a["balances"].get(key).is_some(), "balances.{key} missing");
        }
    }
    assert_eq!(accounts["item"]["item_id"], item_id);
    for key in ["webhook", "error", "available_products", "billed_products", "consent_expiration_time", "update_type"] {
        assert!(accounts["item"].get(key).is_some(), "item.{key} missing");
    }

    let credit = list[2]["account_id"].as_str().expect("id");
    let balance =
        sim.ok("/accounts/balance/get", json!({"access_token": token, "options": {"account_ids": [credit]}})).await;
    assert_eq!(balance["accounts"].as_array().expect("accounts").len(), 1);
    let b = &balance["accounts"][0]["balances"];
    // Credit: available = limit − owed − pending.
    let num = |v: &Value| v.to_string().parse::<f64>().expect("number");
    assert!(num(&b["available"]) <= num(&b["limit"]) - num(&b["current"]) + 1e-9);

    let got = sim.ok("/item/get", json!({"access_token": token})).await;
    assert_eq!(got["item"]["item_id"], item_id);
    assert!(got["item"]["error"].is_null());
    assert!(got["item"]["created_at"].is_string());
    assert!(got["status"]["transactions"]["last_successful_update"].is_string());

    sim.ok("/item/remove", json!({"access_token": token})).await;
    let (status, err) = sim.plaid("/item/get", json!({"access_token": token})).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_ACCESS_TOKEN")));
}

#[tokio::test]
async fn same_seed_same_world() {
    let mut worlds = Vec::new();
    for _ in 0..2 {
        let sim = start_default().await;
        let (token, item_id) = sim.item().await;
        let accounts = sim.ok("/accounts/get", json!({"access_token": token})).await;
        let ids: Vec<Value> =
            accounts["accounts"].as_array().expect("accounts").iter().map(|a| a["account_id"].clone()).collect();
        worlds.push((item_id.clone(), ids, sim.ground_truth(&item_id).await));
    }
    assert_eq!(worlds[0], worlds[1]);
    let other = start(SimConfig { seed: 7, ..SimConfig::default() }).await;
    let (_, other_item) = other.item().await;
    assert_ne!(other_item, worlds[0].0);
}

#[tokio::test]
async fn full_sync_converges_to_ground_truth_with_any_page_size() {
    let sim = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (token, item_id) = sim.item().await;
    let truth = sim.ground_truth(&item_id).await;
    assert!(truth.len() > 1000, "24 months of history, got {}", truth.len());
    for count in [500u64, 137, 1000 / 3] {
        let mut store = Store::default();
        let Outcome::Done { pages } = store.sync(&sim, &token, count).await else {
            panic!("no mutation expected");
        };
        assert_eq!(pages, truth.len().div_ceil(count as usize));
        assert_eq!(store.values(), truth);
    }
    // The default count is 100 and the page never exceeds it.
    let first = sim.ok("/transactions/sync", json!({"access_token": token})).await;
    assert_eq!(first["added"].as_array().expect("added").len(), 100);
    assert_eq!(first["has_more"], true);
    assert_eq!(first["transactions_update_status"], "HISTORICAL_UPDATE_COMPLETE");
    let t = &first["added"][0];
    for key in [
        "location",
        "payment_meta",
        "transaction_code",
        "authorized_date",
        "authorized_datetime",
        "datetime",
        "payment_channel",
        "pending_transaction_id",
        "account_owner",
        "name",
    ] {
        assert!(t.get(key).is_some(), "transaction.{key} missing");
    }
    assert!(
        t["personal_finance_category_icon_url"]
            .as_str()
            .expect("icon")
            .starts_with("https://plaid-category-icons.plaid.com/PFC_")
    );
}

#[tokio::test]
async fn advance_posts_pending_and_sync_converges_again() {
    let sim = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (token, item_id) = sim.item().await;
    let mut store = Store::default();
    assert!(matches!(store.sync(&sim, &token, 500).await, Outcome::Done { .. }));
    let (status, report) = sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 5})).await;
    assert_eq!(status, 200, "{report}");
    assert!(report["posted"].as_u64().expect("posted") > 0, "{report}");
    assert!(report["added"].as_u64().expect("added") > 0);

    // One incremental sync: every removed pending id is named by a posted added transaction.
    let page = sim.ok("/transactions/sync", json!({"access_token": token, "cursor": store.cursor, "count": 500})).await;
    assert_eq!(page["has_more"], false);
    let removed: Vec<&str> = page["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .map(|r| r["transaction_id"].as_str().expect("id"))
        .collect();
    let posted: Vec<&str> =
        page["added"].as_array().expect("added").iter().filter_map(|t| t["pending_transaction_id"].as_str()).collect();
    // Pendings the client already holds are removed in the same update; a pending created and
    // posted within the window never reaches the client at all (net effect).
    let known: Vec<&&str> = posted.iter().filter(|p| store.txns.contains_key(**p)).collect();
    assert!(!known.is_empty());
    for p in known {
        assert!(removed.contains(p), "posted names {p} which was not removed");
        assert!(store.txns[*p]["pending"].as_bool().expect("pending"), "{p} was not pending");
    }
    for p in posted.iter().filter(|p| !store.txns.contains_key(**p)) {
        assert!(!removed.contains(p), "{p} removed but never delivered");
    }
    let mut replay = Store { txns: store.txns.clone(), cursor: store.cursor.clone() };
    assert!(matches!(replay.sync(&sim, &token, 7).await, Outcome::Done { .. }));
    assert_eq!(replay.values(), sim.ground_truth(&item_id).await);
}

#[tokio::test]
async fn mutation_during_pagination_then_restart_converges() {
    let sim = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (token, item_id) = sim.item().await;
    let (_, first) = sim.sync_page(&token, "", 50).await;
    assert_eq!(first["has_more"], true);
    sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 2})).await;
    let (status, err) = sim.sync_page(&token, first["next_cursor"].as_str().expect("cursor"), 50).await;
    assert_eq!(status, 400);
    assert_eq!(err["error_type"], "TRANSACTIONS_ERROR");
    assert_eq!(err["error_code"], "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION");
    assert!(err["request_id"].is_string());
    // Restart from the start cursor (empty): converges.
    let mut store = Store::default();
    assert!(matches!(store.sync(&sim, &token, 500).await, Outcome::Done { .. }));
    assert_eq!(store.values(), sim.ground_truth(&item_id).await);
    // A final cursor stays valid across mutations.
    sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 1})).await;
    assert!(matches!(store.sync(&sim, &token, 500).await, Outcome::Done { .. }));
    assert_eq!(store.values(), sim.ground_truth(&item_id).await);
}

#[tokio::test]
async fn not_ready_until_product_ready_delay_passes() {
    let sim = start(SimConfig { product_ready_delay: Duration::from_secs(60), ..SimConfig::default() }).await;
    let (token, _) = sim.item().await;
    let page = sim.ok("/transactions/sync", json!({"access_token": token})).await;
    assert_eq!(page["transactions_update_status"], "NOT_READY");
    assert_eq!(page["next_cursor"], "");
    assert_eq!(page["has_more"], false);
    assert_eq!(page["added"], json!([]));
    let (status, err) = sim.plaid("/transactions/refresh", json!({"access_token": token})).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("PRODUCT_NOT_READY")));
    sim.post("/sim/clock/advance", json!({"seconds": 61})).await;
    let page = sim.ok("/transactions/sync", json!({"access_token": token})).await;
    assert_eq!(page["transactions_update_status"], "HISTORICAL_UPDATE_COMPLETE");
    assert!(!page["added"].as_array().expect("added").is_empty());
    sim.ok("/transactions/refresh", json!({"access_token": token})).await;
}

#[tokio::test]
async fn bulk_item_is_cheap_and_pages_fast() {
    let sim = start_default().await;
    let started = std::time::Instant::now();
    let (token, item_id) =
        sim.item_with("ins_109508", json!({"override_username": "user_bulk_1000000", "override_password": "x"})).await;
    let created = started.elapsed();
    let (_, items) = sim.get("/sim/items").await;
    let entry =
        items.as_array().expect("items").iter().find(|i| i["item_id"] == item_id.as_str()).expect("listed").clone();
    assert_eq!(entry["transactions_count"], 1_000_000);
    let started = std::time::Instant::now();
    let page = sim.ok("/transactions/sync", json!({"access_token": token, "count": 500})).await;
    let paged = started.elapsed();
    assert_eq!(page["added"].as_array().expect("added").len(), 500);
    assert_eq!(page["has_more"], true);
    let next =
        sim.ok("/transactions/sync", json!({"access_token": token, "count": 500, "cursor": page["next_cursor"]})).await;
    assert_eq!(next["added"].as_array().expect("added").len(), 500);
    // A sanity report, not a timed assertion.
    eprintln!("bulk item created in {created:?}, first page of 500 in {paged:?}");
}

#[tokio::test]
async fn per_account_streams_hold_only_that_account() {
    let sim = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (token, item_id) = sim.item_with("ins_109511", json!({"transactions": {"days_requested": 120}})).await;
    let accounts = sim.ok("/accounts/get", json!({"access_token": token})).await;
    let list = accounts["accounts"].as_array().expect("accounts").clone();
    assert_eq!(list.len(), 4, "Tartan Bank adds a crypto account");
    let crypto = &list[3];
    assert_eq!(crypto["balances"]["unofficial_currency_code"], "BTC");
    assert!(crypto["balances"]["iso_currency_code"].is_null());
    let truth = sim.ground_truth(&item_id).await;
    for account in &list {
        let id = account["account_id"].as_str().expect("id");
        let mut cursor = String::new();
        let mut got = Vec::new();
        loop {
            let page = sim
                .ok(
                    "/transactions/sync",
                    json!({"access_token": token, "cursor": cursor, "count": 250, "options": {"account_id": id}}),
                )
                .await;
            got.extend(page["added"].as_array().expect("added").iter().cloned());
            for a in page["accounts"].as_array().expect("accounts") {
                assert_eq!(a["account_id"], id);
            }
            cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
            if page["has_more"] == false {
                break;
            }
        }
        got.sort_by(|a, b| a["transaction_id"].as_str().cmp(&b["transaction_id"].as_str()));
        let want: Vec<Value> = truth.iter().filter(|t| t["account_id"] == id).cloned().collect();
        assert_eq!(got, want);
        if account == crypto {
            assert!(got.iter().all(|t| t["unofficial_currency_code"] == "BTC" && t["iso_currency_code"].is_null()));
        }
    }
    // A cursor from one stream is refused by another.
    let page = sim.ok("/transactions/sync", json!({"access_token": token, "count": 1})).await;
    let (status, err) = sim
        .plaid("/transactions/sync", json!({"access_token": token, "cursor": page["next_cursor"], "options": {"account_id": list[0]["account_id"]}}))
        .await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_FIELD")));
}

#[tokio::test]
async fn dynamic_user_moves_on_each_refresh() {
    let sim = start_default().await;
    let (token, item_id) = sim
        .item_with("ins_109508", json!({"override_username": "user_transactions_dynamic", "override_password": "any"}))
        .await;
    let mut store = Store::default();
    assert!(matches!(store.sync(&sim, &token, 500).await, Outcome::Done { .. }));
    let before = store.cursor.clone();
    sim.ok("/transactions/refresh", json!({"access_token": token})).await;
    // The bank answers after `refresh_delay` (1 s on the simulator's clock).
    let page = sim.ok("/transactions/sync", json!({"access_token": token, "cursor": before, "count": 500})).await;
    assert!(page["added"].as_array().expect("added").is_empty(), "nothing before the bank answers");
    sim.post("/sim/clock/advance", json!({"seconds": 1})).await;
    let page = sim.ok("/transactions/sync", json!({"access_token": token, "cursor": before, "count": 500})).await;
    assert!(!page["added"].as_array().expect("added").is_empty(), "a refresh brings a new day");
    assert!(matches!(store.sync(&sim, &token, 500).await, Outcome::Done { .. }));
    assert_eq!(store.values(), sim.ground_truth(&item_id).await);

    // Accounts: an empty account_ids list means every account.
    let all = sim.ok("/accounts/get", json!({"access_token": token, "options": {"account_ids": []}})).await;
    assert_eq!(all["accounts"].as_array().map(Vec::len), Some(3));
}

/// A relink: a second Item for the same login at the same institution is the same person (accounts, history,
/// `persistent_account_id`) under new ids; another login or another institution is someone else.
#[tokio::test]
async fn linking_the_same_login_again_gives_the_same_persona_with_new_ids() {
    let sim = start_default().await;
    let options = json!({"transactions": {"days_requested": 90}});
    let (old_token, old_item) = sim.item_with("ins_109508", options.clone()).await;
    let (new_token, new_item) = sim.item_with("ins_109508", options.clone()).await;
    assert_ne!(old_item, new_item);

    let accounts = |token: String| {
        let sim = &sim;
        async move {
            let got = sim.ok("/accounts/get", json!({"access_token": token})).await;
            got["accounts"].as_array().expect("accounts").clone()
        }
    };
    let (old_accounts, new_accounts) = (accounts(old_token.clone()).await, accounts(new_token).await);
    assert_eq!(old_accounts.len(), new_accounts.len());
    let mut new_account_of = std::collections::HashMap::new();
    for (o, n) in old_accounts.iter().zip(&new_accounts) {
        for key in ["type", "subtype", "mask", "name", "official_name", "persistent_account_id"] {
            assert_eq!(o[key], n[key], "{key}");
        }
        assert_eq!(o["persistent_account_id"].as_str().expect("persistent id").len(), 56);
        assert_ne!(o["account_id"], n["account_id"]);
        new_account_of.insert(o["account_id"].clone(), n["account_id"].clone());
    }
    let balance = sim.ok("/accounts/balance/get", json!({"access_token": old_token})).await;
    assert_eq!(balance["accounts"][0]["persistent_account_id"], old_accounts[0]["persistent_account_id"]);

    // Same history, in the same order (the ground truth is sorted by date), with every id new.
    let (old, new) = (sim.ground_truth(&old_item).await, sim.ground_truth(&new_item).await);
    let content = |t: &Value, account: &Value| {
        json!([t["date"], t["amount"], t["name"], t["merchant_name"], t["pending"], account])
    };
    let mut old_content: Vec<String> =
        old.iter().map(|t| content(t, &new_account_of[&t["account_id"]]).to_string()).collect();
    let mut new_content: Vec<String> = new.iter().map(|t| content(t, &t["account_id"]).to_string()).collect();
    old_content.sort();
    new_content.sort();
    assert!(!old_content.is_empty());
    assert_eq!(old_content, new_content);
    let old_ids: std::collections::HashSet<_> = old.iter().map(|t| t["transaction_id"].clone()).collect();
    assert!(new.iter().all(|t| !old_ids.contains(&t["transaction_id"])), "transaction ids are per Item");

    // A longer history holds the shorter one's days unchanged.
    let (_, long_item) = sim.item_with("ins_109508", json!({"transactions": {"days_requested": 200}})).await;
    let long = sim.ground_truth(&long_item).await;
    let first = old.iter().map(|t| t["date"].as_str().expect("date").to_owned()).min().expect("a date");
    let overlap = long.iter().filter(|t| t["date"].as_str().expect("date") >= first.as_str()).count();
    assert_eq!(overlap, old.len());

    // Another institution or another login is another persona.
    let (other_token, _) = sim.item_with("ins_109509", options.clone()).await;
    let other = accounts(other_token).await;
    assert_ne!(other[0]["persistent_account_id"], old_accounts[0]["persistent_account_id"]);
}
