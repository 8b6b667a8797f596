//! `POST /api/link/exchange` with `replaces_item_id`: linking a bank again can replace the old connection (the merge
//! itself is tested in tests/relink.rs).

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn linking_a_bank_again_names_the_old_item_and_can_replace_it() {
    let app = spawn_app().await;
    let old = app.link_bank(0).await;
    let old_id = old["item_id"].as_str().unwrap();
    assert!(old["replaces_item_id"].is_null() && old["relink_report"].is_null());

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
    let token = app.public_token(0).await;
    let twice = exchange(token, json!({"replaces_item_id": old_id}));
    app.post("/api/link/exchange", twice).await.expect_error(409, "replacement_pending");
    let shown = app.get_item(new["item_id"].as_str().unwrap()).await.expect(200);
    assert_eq!(shown["replaces_item_id"], old_id);
    assert!(shown.get("relink_report").is_some(), "null until the merge ran: {shown}");
}
