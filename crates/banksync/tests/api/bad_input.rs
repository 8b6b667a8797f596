//! Every bad input gets a clear JSON error, and nothing is stored half-way.

use serde_json::json;

use crate::helpers::spawn_app;
use crate::sync::wait_for_first_sync;

#[tokio::test]
async fn malformed_json_wrong_types_and_missing_content_type_are_clear_4xx_errors() {
    let app = spawn_app().await;
    app.raw_post("/api/link/exchange", "application/json", "{\"public_token\": ")
        .await
        .expect_error(400, "malformed_json");
    app.raw_post("/api/link/exchange", "application/json", "{\"public_token\": 5}")
        .await
        .expect_error(400, "invalid_body");
    app.raw_post("/api/link/exchange", "application/json", "{}").await.expect_error(400, "invalid_body");
    app.raw_post("/api/link/exchange", "application/json", "{\"public_token\": \"x\", \"extra\": 1}")
        .await
        .expect_error(400, "invalid_body");
    app.raw_post("/api/link/exchange", "text/plain", "{\"public_token\": \"x\"}")
        .await
        .expect_error(415, "unsupported_media_type");
    app.raw_post("/api/link/token", "application/json", "[").await.expect_error(400, "malformed_json");
    app.raw_post("/api/link/token", "application/json", "{\"item_id\": 3}").await.expect_error(400, "invalid_body");
    app.raw_post("/api/session", "application/json", "{\"username\": 1}").await.expect_error(400, "invalid_body");
    app.patch_transaction("t", json!({"note": 12})).await.expect_error(400, "invalid_body");
    app.patch_transaction("t", json!({})).await.expect_error(400, "invalid_body");
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let app = spawn_app().await;
    app.get_item("no-such-item").await.expect_error(404, "not_found");
    app.delete_item("no-such-item").await.expect_error(404, "not_found");
    app.post_sync("no-such-item").await.expect_error(404, "not_found");
    app.post_repaired("no-such-item").await.expect_error(404, "not_found");
    app.post_link_token(Some("no-such-item")).await.expect_error(404, "not_found");
    app.post_balances_refresh(Some("no-such-item")).await.expect_error(404, "not_found");
    app.patch_transaction("no-such-txn", json!({"note": "x"})).await.expect_error(404, "not_found");
    app.get("/api/nothing-here").await.expect_error(404, "not_found");
}

#[tokio::test]
async fn bad_query_parameters_are_named_in_a_400() {
    let app = spawn_app().await;
    for query in [
        "start=31-01-2024",
        "end=tomorrow",
        "start=2024-02-01&end=2024-01-01",
        "pending=yes",
        "min_amount=abc",
        "max_amount=1e9",
        "min_amount=5&max_amount=1",
        "limit=0",
        "limit=501",
        "limit=ten",
        "cursor=not-a-cursor",
        "color=blue",
    ] {
        let reply = app.get_transactions(query).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert!(matches!(reply.body["error"]["code"].as_str(), Some("invalid_query" | "invalid_cursor")), "{query}");
    }
    app.get("/api/accounts?include_removed=perhaps").await.expect_error(400, "invalid_query");
}

#[tokio::test]
async fn an_oversized_body_is_413_in_the_error_format() {
    let app = spawn_app().await;
    let huge = format!("{{\"public_token\": \"{}\"}}", "x".repeat(100 * 1024));
    app.raw_post("/api/link/exchange", "application/json", huge.clone()).await.expect_error(413, "payload_too_large");
    // Routes whose body is optional enforce the same limit.
    app.raw_post("/api/link/token", "application/json", huge).await.expect_error(413, "payload_too_large");
}

#[tokio::test]
async fn expired_and_reused_public_tokens_are_400_with_plaids_code_and_store_nothing() {
    let app = spawn_app().await;

    // Reused: the first exchange works, the second is refused.
    let token = app.public_token(0).await;
    app.post_exchange(&token).await.expect(201);
    let reused = app.post_exchange(&token).await.expect_error(400, "invalid_public_token");
    assert!(!reused["error"]["message"].as_str().unwrap().contains("public-"), "{reused}");

    // Expired: public tokens live 30 minutes.
    let stale = app.public_token(1).await;
    app.sim_post("/sim/clock/advance", json!({"seconds": 31 * 60})).await;
    app.post_exchange(&stale).await.expect_error(400, "invalid_public_token");
    app.post_exchange("public-sandbox-made-up").await.expect_error(400, "invalid_public_token");

    // Only the one good exchange left an Item behind.
    assert_eq!(app.get_items().await.expect(200)["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn server_errors_never_leak_internals() {
    let app = spawn_app().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;

    // Plaid failing: a 5xx that names the problem but carries nothing from Plaid's request or response.
    app.sim_post("/sim/faults", json!({"endpoint": "/transactions/sync", "error": "API_ERROR", "rate": 1.0})).await;
    let upstream = app.post_fresh_sync(&item_id).await;
    assert!(upstream.status.is_server_error(), "{}", upstream.body);
    let text = upstream.body.to_string();
    assert!(!text.contains("access-") && !text.contains("request_id"), "{text}");
    reqwest::Client::new().delete(format!("{}/sim/faults", app.sim_url)).send().await.unwrap();

    // The database failing: a generic 500.
    let db = app.data_dir.path().join("banksync.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    sqlx::query("DROP TABLE sync_runs").execute(&pool).await.unwrap();
    let broken = app.get_item(&item_id).await.expect_error(500, "internal");
    let text = broken.to_string();
    for secret in ["sync_runs", "SQL", "sqlite", "no such table", app.data_dir.path().to_str().unwrap()] {
        assert!(!text.contains(secret), "500 body leaks {secret:?}: {text}");
    }
    app.assert_no_access_token_in_responses();
}

/// Found by schemathesis: a JSON array was read as the PATCH body's fields (`[null, null]` cleared the note).
#[tokio::test]
async fn a_json_array_is_not_a_request_body() {
    let app = spawn_app().await;
    let item = app.link_bank(0).await;
    crate::sync::wait_for_first_sync(&app, item["item_id"].as_str().unwrap()).await;
    let txn = app.get_transactions("limit=1").await.expect(200)["transactions"][0]["transaction_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch_transaction(&txn, serde_json::json!({"note": "kept"})).await.expect(200);
    let path = format!("/api/transactions/{txn}");
    app.call_as(&app.user.token, reqwest::Method::PATCH, &path, Some(serde_json::json!([null, null])))
        .await
        .expect_error(400, "invalid_body");
    app.call_as(&app.user.token, reqwest::Method::POST, "/api/tokens", Some(serde_json::json!(["x"])))
        .await
        .expect_error(400, "invalid_body");
    let sync = format!("/api/items/{}/sync", item["item_id"].as_str().unwrap());
    app.call_as(&app.user.token, reqwest::Method::POST, &sync, Some(serde_json::json!([])))
        .await
        .expect_error(400, "invalid_body");
    assert_eq!(app.get(&path).await.expect(200)["user_note"], "kept");
}
