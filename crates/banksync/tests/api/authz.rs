//! Every route is scoped to the caller: another user's ids answer 404, never 403.

use serde_json::json;

use crate::helpers::{seed_user, spawn_app};
use crate::sync::wait_for_first_sync;

#[tokio::test]
async fn another_users_items_transactions_and_jobs_are_404_and_invisible() {
    let app = spawn_app().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;
    let txn = app.get_transactions("limit=1").await.expect(200)["transactions"][0]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let job = app.post_balances_refresh(None).await.expect(202)["job_id"].as_str().unwrap().to_owned();

    let bob = seed_user(&app.store, "bob").await;
    let as_bob = async |method: &str, path: String, body: Option<serde_json::Value>| {
        app.call_as(&bob.token, method.parse().unwrap(), &path, body).await
    };
    for (method, path, body) in [
        ("GET", format!("/api/items/{item_id}"), None),
        ("DELETE", format!("/api/items/{item_id}"), None),
        ("POST", format!("/api/items/{item_id}/sync"), Some(json!({}))),
        ("POST", format!("/api/items/{item_id}/repaired"), Some(json!({}))),
        ("POST", "/api/link/token".to_owned(), Some(json!({"item_id": item_id}))),
        ("POST", "/api/balances/refresh".to_owned(), Some(json!({"item_id": item_id}))),
        ("GET", format!("/api/balances/refresh/{job}"), None),
        ("GET", format!("/api/transactions/{txn}"), None),
        ("PATCH", format!("/api/transactions/{txn}"), Some(json!({"note": "mine now"}))),
    ] {
        let reply = as_bob(method, path.clone(), body).await;
        assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], "not_found");
    }
    // Bob's lists are empty, even when filtering by Alice's ids.
    let items = as_bob("GET", "/api/items".into(), None).await.expect(200);
    assert!(items["items"].as_array().unwrap().is_empty());
    let accounts = as_bob("GET", "/api/accounts".into(), None).await.expect(200);
    assert!(accounts["accounts"].as_array().unwrap().is_empty());
    let txns = as_bob("GET", format!("/api/transactions?item_id={item_id}"), None).await.expect(200);
    assert!(txns["transactions"].as_array().unwrap().is_empty());

    // And Alice's data is untouched.
    app.get_item(&item_id).await.expect(200);
    let mine = app.get(&format!("/api/transactions/{txn}")).await.expect(200);
    assert!(mine["user_note"].is_null());
}
