//! `POST /api/link/exchange` with `replaces_item_id`: linking a bank again can replace the old connection, and the
//! sync job merges the old Item into the new one once the new one's history is complete (the merge's rules are
//! tested in tests/relink.rs).

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn linking_a_bank_again_names_the_old_item_and_can_replace_it() {
    let app = spawn_app().await;
    let old = app.link_bank(0).await;
    let old_id = old["item_id"].as_str().unwrap();
    assert!(old["replaces_item_id"].is_null() && old["relink_report"].is_null());
    app.eventually("the old Item's first sync", || async { !app.all_transactions(old_id).await.is_empty() }).await;
    let noted = app.all_transactions(old_id).await[0].clone();
    let tid = noted["transaction_id"].as_str().unwrap();
    app.patch_transaction(tid, json!({"note": "kept across the relink"})).await.expect(200);

    let again = app.public_token(0).await;
    let refused = app.post_exchange(&again).await.expect_error(409, "institution_already_linked");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(message.contains(old_id) && message.contains("replaces_item_id"), "{message}");

    let exchange = |token: String, extra: serde_json::Value| {
        let mut body = json!({"public_token": token});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let token = app.public_token(0).await;
    let both = exchange(token, json!({"replaces_item_id": old_id, "allow_duplicate": true}));
    app.post("/api/link/exchange", both).await.expect_error(400, "invalid_body");
    let token = app.public_token(0).await;
    let unknown = exchange(token, json!({"replaces_item_id": "no-such-item"}));
    app.post("/api/link/exchange", unknown).await.expect_error(404, "not_found");
    let other = app.link_bank(1).await;
    let token = app.public_token(0).await;
    let wrong_bank = exchange(token, json!({"replaces_item_id": other["item_id"]}));
    app.post("/api/link/exchange", wrong_bank).await.expect_error(400, "invalid_replaces_item_id");

    let token = app.public_token(0).await;
    let new = app.post("/api/link/exchange", exchange(token, json!({"replaces_item_id": old_id}))).await.expect(201);
    assert_eq!(new["replaces_item_id"], old_id);
    let new_id = new["item_id"].as_str().unwrap();

    // The new Item syncs by itself; once its history is complete the old Item is merged into it and removed.
    app.eventually("the merge", || async { app.get_item(old_id).await.status.as_u16() == 404 }).await;
    let shown = app.get_item(new_id).await.expect(200);
    assert_eq!(shown["replaces_item_id"], old_id);
    let report = &shown["relink_report"];
    assert!(report.is_object(), "{shown}");
    let ours = app.all_transactions(new_id).await;
    let carried: Vec<_> = ours.iter().filter(|t| t["user_note"] == "kept across the relink").collect();
    assert_eq!(carried.len(), 1, "the note moved to the matching new transaction; report {report}");
    assert_eq!((&carried[0]["date"], &carried[0]["amount"]), (&noted["date"], &noted["amount"]));
    assert_ne!(carried[0]["transaction_id"], noted["transaction_id"], "Plaid gave the new Item new ids");
    // No duplicates: every transaction id once, and as many as the old Item had in the overlap or more.
    let mut ids: Vec<_> = ours.iter().map(|t| t["transaction_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), ours.len());
    let token = app.public_token(0).await;
    let again = exchange(token, json!({"replaces_item_id": old_id}));
    app.post("/api/link/exchange", again).await.expect_error(404, "not_found");
}

#[tokio::test]
async fn a_second_replacement_waits_for_the_first_to_merge() {
    // Plaid has not got the new Item's data yet: its merge cannot run, so it stays pending.
    let app = crate::helpers::TestApp::builder()
        .sim(|sim| sim.product_ready_delay = std::time::Duration::from_secs(3600))
        .spawn()
        .await;
    let old_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    let replace = |token: String| json!({"public_token": token, "replaces_item_id": old_id});
    app.post("/api/link/exchange", replace(app.public_token(0).await)).await.expect(201);
    let twice = app.post("/api/link/exchange", replace(app.public_token(0).await)).await;
    twice.expect_error(409, "replacement_pending");
    assert_eq!(app.get_item(&old_id).await.status.as_u16(), 200, "the old Item stays until the merge");
}
