//! Link → exchange → sync, convergence with the simulator's ground truth, restarts and pending→posted.

use std::collections::BTreeMap;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::app::client::urlencode;
use crate::helpers::{TestApp, captured_logs, spawn_app};

/// transaction_id → (amount, pending, date, name, account_id): what must match exactly.
type Snapshot = BTreeMap<String, (Decimal, bool, String, String, String)>;

/// The API sends money as decimal strings (a JSON number would be read as a binary float by clients); the
/// simulator, like Plaid, as exact JSON numbers. Each side is held to its own form.
#[derive(Clone, Copy)]
enum Money {
    Text,
    Number,
}

fn amount(v: &Value, money: Money) -> Decimal {
    let text = match (money, v) {
        (Money::Text, Value::String(s)) => s.clone(),
        (Money::Number, Value::Number(n)) => n.to_string(),
        _ => panic!("money in the wrong form here: {v}"),
    };
    Decimal::from_str(&text).unwrap_or_else(|_| panic!("not a decimal: {text}"))
}

fn snapshot(transactions: &[Value], money: Money) -> Snapshot {
    transactions
        .iter()
        .map(|t| {
            (
                t["transaction_id"].as_str().unwrap().to_owned(),
                (
                    amount(&t["amount"], money),
                    t["pending"].as_bool().unwrap(),
                    t["date"].as_str().unwrap().to_owned(),
                    t["name"].as_str().unwrap().to_owned(),
                    t["account_id"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

async fn ground_truth(app: &TestApp, item_id: &str) -> Snapshot {
    let truth = app.sim_get(&format!("/sim/items/{item_id}/transactions")).await;
    snapshot(truth["transactions"].as_array().unwrap(), Money::Number)
}

#[track_caller]
fn assert_same(ours: &Snapshot, truth: &Snapshot) {
    let missing: Vec<_> = truth.keys().filter(|k| !ours.contains_key(*k)).take(5).collect();
    let extra: Vec<_> = ours.keys().filter(|k| !truth.contains_key(*k)).take(5).collect();
    assert!(missing.is_empty() && extra.is_empty(), "missing {missing:?}, extra {extra:?}");
    for (id, expected) in truth {
        assert_eq!(&ours[id], expected, "transaction {id} differs");
    }
}

/// Waits until the first (background) sync after the exchange has succeeded.
pub async fn wait_for_first_sync(app: &TestApp, item_id: &str) {
    app.eventually("the first sync", || async {
        let item = app.get_item(item_id).await.expect(200);
        item["last_successful_sync_at"].is_string()
    })
    .await;
}

#[tokio::test]
async fn link_exchange_first_sync_advance_and_manual_sync_converge_exactly_to_the_simulator() {
    let app = spawn_app().await;

    // Link a bank: 201 with the Item, its accounts, good health, and no access token.
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    assert_eq!(item["health"]["status"], "good");
    assert!(!item["accounts"].as_array().unwrap().is_empty(), "{item}");
    assert!(item["institution_name"].is_string());

    // The first sync runs by itself and converges.
    wait_for_first_sync(&app, &item_id).await;
    let truth = ground_truth(&app, &item_id).await;
    assert!(truth.len() > 10, "the simulated bank should have history");
    assert_same(&snapshot(&app.all_transactions(&item_id).await, Money::Text), &truth);

    // The bank moves on; a manual sync (no webhook) catches up exactly.
    let moved = app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 7})).await;
    let summary = app.post_fresh_sync(&item_id).await.expect(200);
    assert_eq!(summary["item_id"], item_id.as_str());
    assert_eq!(summary["not_ready"], false);
    let changed = ["added", "modified", "removed"].iter().map(|k| summary[k].as_u64().unwrap()).sum::<u64>();
    assert!(changed > 0, "advance {moved} should change something; summary {summary}");
    assert!(summary["pages"].as_u64().unwrap() >= 1);
    assert_same(&snapshot(&app.all_transactions(&item_id).await, Money::Text), &ground_truth(&app, &item_id).await);

    // A second sync with nothing new changes nothing.
    let again = app.post_fresh_sync(&item_id).await.expect(200);
    assert_eq!(
        (again["added"].as_u64(), again["modified"].as_u64(), again["removed"].as_u64()),
        (Some(0), Some(0), Some(0))
    );

    // The Item shows its sync history; accounts carry balances as exact decimal strings.
    let detail = app.get_item(&item_id).await.expect(200);
    let runs = detail["recent_sync_runs"].as_array().unwrap();
    assert!(runs.len() >= 3 && runs.iter().all(|r| r["status"] == "succeeded"), "{detail}");
    let accounts = app.get_accounts().await.expect(200);
    let first = &accounts["accounts"][0];
    assert!(first["balances"]["current"].is_string(), "{first}");
    assert!(matches!(first["balances"]["source"].as_str(), Some("live" | "cached")));
    assert!(first["balances"]["as_of"].is_string());

    // Filters: pending, amount range, text search, and paging with small pages give consistent answers.
    let pending = app.get_transactions(&format!("item_id={item_id}&pending=true&limit=500")).await.expect(200);
    assert!(pending["transactions"].as_array().unwrap().iter().all(|t| t["pending"] == true));
    let range = app.get_transactions("min_amount=10&max_amount=20&limit=500").await.expect(200);
    for t in range["transactions"].as_array().unwrap() {
        let a = amount(&t["amount"], Money::Text);
        assert!(a >= Decimal::from(10) && a <= Decimal::from(20), "{t}");
    }
    let page1 = app.get_transactions("limit=3").await.expect(200);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = app.get_transactions(&format!("limit=3&cursor={}", urlencode(cursor))).await.expect(200);
    let ids = |p: &Value| {
        p["transactions"].as_array().unwrap().iter().map(|t| t["transaction_id"].clone()).collect::<Vec<_>>()
    };
    assert!(ids(&page1).iter().all(|id| !ids(&page2).contains(id)), "pages overlap");
    let name = page1["transactions"][0]["name"].as_str().unwrap().to_owned();
    let q: String = name.chars().take(6).collect::<String>().to_lowercase();
    let found = app.get_transactions(&format!("q={}", urlencode(&q))).await.expect(200);
    assert!(!found["transactions"].as_array().unwrap().is_empty(), "search {q:?} found nothing");

    // The access token never left the server: not in any response, not in the log.
    app.assert_no_access_token_in_responses();
    let logs = captured_logs();
    assert!(!logs.contains("access-sandbox"), "the log contains an access token");
}

#[tokio::test]
async fn a_mutation_during_pagination_restarts_the_sync_from_its_cursor_and_still_converges() {
    let app = spawn_app().await;
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;
    app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 20})).await;

    app.sim_post(
        "/sim/faults",
        json!({"endpoint": "/transactions/sync", "error": "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION", "count": 1}),
    )
    .await;
    let summary = app.post_fresh_sync(&item_id).await.expect(200);
    assert_eq!(summary["restarts"], 1, "{summary}");
    assert_same(&snapshot(&app.all_transactions(&item_id).await, Money::Text), &ground_truth(&app, &item_id).await);
}

#[tokio::test]
async fn a_pending_transaction_that_posts_replaces_its_pending_row_and_keeps_the_users_note() {
    let app = spawn_app().await;
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;

    let pending = app.get_transactions(&format!("item_id={item_id}&pending=true&limit=500")).await.expect(200);
    let pending = pending["transactions"].as_array().unwrap();
    assert!(!pending.is_empty(), "the simulated bank should have pending transactions");
    let pending_ids: Vec<String> = pending.iter().map(|t| t["transaction_id"].as_str().unwrap().to_owned()).collect();
    for id in &pending_ids {
        let edited =
            app.patch_transaction(id, json!({"note": format!("note for {id}"), "category": "Fun"})).await.expect(200);
        assert_eq!(edited["user_note"], format!("note for {id}"));
    }

    // Let the bank post them, then sync by hand.
    let mut posted = Vec::new();
    for _ in 0..10 {
        app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 2})).await;
        app.post_fresh_sync(&item_id).await.expect(200);
        let all = app.all_transactions(&item_id).await;
        posted = all
            .into_iter()
            .filter(|t| t["pending_transaction_id"].as_str().is_some_and(|p| pending_ids.iter().any(|id| id == p)))
            .collect();
        if !posted.is_empty() {
            break;
        }
    }
    assert!(!posted.is_empty(), "no pending transaction posted within 20 days");
    let all = app.all_transactions(&item_id).await;
    for t in &posted {
        let old = t["pending_transaction_id"].as_str().unwrap();
        assert_eq!(t["pending"], false);
        assert_eq!(t["user_note"], format!("note for {old}"), "the note must follow the posted transaction: {t}");
        assert_eq!(t["user_category"], "Fun");
        assert!(all.iter().all(|x| x["transaction_id"] != old), "the pending row {old} must be gone");
    }
    assert_same(&snapshot(&all, Money::Text), &ground_truth(&app, &item_id).await);

    // PATCH with null clears a field and leaves the other.
    let id = posted[0]["transaction_id"].as_str().unwrap();
    let cleared = app.patch_transaction(id, json!({"note": null})).await.expect(200);
    assert!(cleared["user_note"].is_null());
    assert_eq!(cleared["user_category"], "Fun");
}

#[tokio::test]
async fn linking_the_same_bank_twice_is_refused_unless_asked_for() {
    let app = spawn_app().await;
    app.link_bank(0).await;
    let second = app.public_token(0).await;
    app.post_exchange(&second).await.expect_error(409, "institution_already_linked");
    assert_eq!(app.get_items().await.expect(200)["items"].as_array().unwrap().len(), 1);

    let third = app.public_token(0).await;
    let reply = app.post("/api/link/exchange", json!({"public_token": third, "allow_duplicate": true})).await;
    reply.expect(201);
    assert_eq!(app.get_items().await.expect(200)["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn deleting_an_item_removes_it_at_plaid_and_locally() {
    let app = spawn_app().await;
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;

    app.delete_item(&item_id).await.expect(204);
    app.get_item(&item_id).await.expect_error(404, "not_found");
    assert!(
        app.get_transactions(&format!("item_id={item_id}")).await.expect(200)["transactions"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(app.get_accounts().await.expect(200)["accounts"].as_array().unwrap().is_empty());
    let sim_items = app.sim_get("/sim/items").await;
    let still_there = sim_items.as_array().is_some_and(|a| a.iter().any(|i| i["item_id"] == item_id.as_str()));
    assert!(!still_there, "the Item must be removed at Plaid: {sim_items}");
}
