//! API tokens: `GET/POST /api/tokens`, `DELETE /api/tokens/{id}`, and `banksync token list | revoke` run as the
//! real binary. Revocation takes effect on the next request; nothing ever shows a token after its creation.

use std::process::{Command, Stdio};

use banksync::auth::token::hash_secret;
use reqwest::Method;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp, captured_logs, seed_user, spawn_app};

fn banksync(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_banksync"))
        .args(args)
        .env("BANKSYNC_DATA_DIR", data_dir)
        .env_remove("BANKSYNC_DATABASE_URL")
        .env_remove("BANKSYNC_MASTER_KEY")
        .env_remove("BANKSYNC_OLD_MASTER_KEYS")
        .env_remove("PLAID_CLIENT_ID")
        .env_remove("PLAID_SECRET")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("banksync binary runs")
}

/// No token and no token hash anywhere in the bodies the app returned.
fn assert_not_in_bodies(app: &TestApp, secrets: &[&str]) {
    let bodies = app.bodies.lock().unwrap().join("\n");
    for secret in secrets {
        assert!(!bodies.contains(secret), "{secret} leaked in a response");
        assert!(!bodies.contains(&hash_secret(secret)), "the hash of {secret} leaked in a response");
    }
}

#[tokio::test]
async fn list_create_and_revoke_tokens_and_a_revoked_token_stops_working_at_once() {
    let app = spawn_app().await;

    // The seeded token is listed with exactly the public fields.
    let list = app.get("/api/tokens").await.expect(200);
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 1, "{list}");
    let mut keys: Vec<&str> = tokens[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["created_at", "created_by_session", "created_by_session_active", "created_via", "id", "last_used_at", "name"]
    );
    assert_eq!(tokens[0]["name"], "test");
    assert_eq!(tokens[0]["created_via"], "cli", "seeded through the store, as `banksync token create` does");
    assert!(tokens[0]["last_used_at"].is_string(), "the listing request itself used the token: {list}");

    // A new token is shown once, works, and is listed without its value.
    let created = app.post("/api/tokens", json!({"name": "  backup script "})).await.expect(201);
    let token = created["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("bsk_"), "{created}");
    assert_eq!(created["name"], "backup script");
    assert!(created["last_used_at"].is_null());
    assert_eq!(created["created_via"], "token", "made with a bearer token, not from a session");
    assert!(created["created_by_session"].is_null() && created["created_by_session_active"] == false);
    let id = created["id"].as_str().unwrap().to_owned();
    let me = app.call_as(&token, Method::GET, "/api/session", None).await.expect(200);
    assert_eq!(me["user"]["username"], "alice");
    let list = app.get("/api/tokens").await.expect(200);
    let ids: Vec<&str> = list["tokens"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&id.as_str()) && ids.len() == 2, "{list}");
    assert!(!list.to_string().contains(&token));

    // Revoked: 204, then the token is refused on the very next request; a second revoke is a 404.
    app.call_as(&token, Method::DELETE, &format!("/api/tokens/{id}"), None).await.expect(204);
    app.call_as(&token, Method::GET, "/api/session", None).await.expect_error(401, "unauthorized");
    app.delete(&format!("/api/tokens/{id}")).await.expect_error(404, "not_found");
    let list = app.get("/api/tokens").await.expect(200);
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);

    // Bad input.
    app.post("/api/tokens", json!({"name": "   "})).await.expect_error(400, "invalid_name");
    app.post("/api/tokens", json!({"name": "x".repeat(65)})).await.expect_error(400, "invalid_name");
    app.post("/api/tokens", json!({"name": "a\u{7}b"})).await.expect_error(400, "invalid_name");
    app.post("/api/tokens", json!({"name": "ok", "token": "bsk_chosen"})).await.expect_error(400, "invalid_body");
    app.post("/api/tokens", json!({})).await.expect_error(400, "invalid_body");

    // Never in a later response nor in the logs.
    assert!(!captured_logs().contains(&token), "a token reached the logs");
    let bodies = app.bodies.lock().unwrap().clone();
    let after_creation = bodies.iter().filter(|b| b.contains(&token)).count();
    assert_eq!(after_creation, 1, "the token appears only in the creation answer");
    assert_not_in_bodies(&app, &[&app.user.token]);
}

#[tokio::test]
async fn tokens_are_scoped_to_their_owner() {
    let app = spawn_app().await;
    let bob = seed_user(&app.store, "bob").await;
    let bobs = app.call_as(&bob.token, Method::GET, "/api/tokens", None).await.expect(200);
    let bob_token_id = bobs["tokens"][0]["id"].as_str().unwrap().to_owned();

    // Alice neither sees nor revokes Bob's token: the same 404 as an unknown id.
    let alices = app.get("/api/tokens").await.expect(200);
    assert!(!alices.to_string().contains(&bob_token_id), "{alices}");
    let foreign = app.delete(&format!("/api/tokens/{bob_token_id}")).await.expect_error(404, "not_found");
    let unknown = app.delete("/api/tokens/00000000-0000-0000-0000-000000000000").await.expect_error(404, "not_found");
    assert_eq!(foreign, unknown, "a foreign id is indistinguishable from an unknown one");
    app.call_as(&bob.token, Method::GET, "/api/session", None).await.expect(200);

    // A token Bob creates belongs to Bob.
    let created = app.call_as(&bob.token, Method::POST, "/api/tokens", Some(json!({"name": "b2"}))).await.expect(201);
    let me = app.call_as(created["token"].as_str().unwrap(), Method::GET, "/api/session", None).await.expect(200);
    assert_eq!(me["user"]["username"], "bob");
}

#[tokio::test]
async fn token_routes_need_authentication_and_cookie_writes_need_the_csrf_token() {
    let app = spawn_app().await;
    for (method, path) in
        [(Method::GET, "/api/tokens"), (Method::POST, "/api/tokens"), (Method::DELETE, "/api/tokens/some-id")]
    {
        let response = app.http.request(method.clone(), app.url(path)).json(&json!({"name": "x"})).send().await;
        app.reply(response.unwrap()).await.expect_error(401, "unauthorized");
    }

    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login = browser
        .post(app.url("/api/session"))
        .json(&json!({"username": app.user.username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let csrf = app.reply(login).await.expect(200)["csrf_token"].as_str().unwrap().to_owned();
    let no_csrf = browser.post(app.url("/api/tokens")).json(&json!({"name": "web"})).send().await.unwrap();
    app.reply(no_csrf).await.expect_error(403, "csrf_token_invalid");
    let list = app.reply(browser.get(app.url("/api/tokens")).send().await.unwrap()).await.expect(200);
    let id = list["tokens"][0]["id"].as_str().unwrap().to_owned();
    let no_csrf = browser.delete(app.url(&format!("/api/tokens/{id}"))).send().await.unwrap();
    app.reply(no_csrf).await.expect_error(403, "csrf_token_invalid");

    let created = browser
        .post(app.url("/api/tokens"))
        .header("x-csrf-token", &csrf)
        .json(&json!({"name": "web"}))
        .send()
        .await
        .unwrap();
    let created = app.reply(created).await.expect(201);
    let revoke = browser
        .delete(app.url(&format!("/api/tokens/{}", created["id"].as_str().unwrap())))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(revoke.status(), 204);
    app.call_as(created["token"].as_str().unwrap(), Method::GET, "/api/items", None)
        .await
        .expect_error(401, "unauthorized");
}

#[tokio::test]
async fn token_list_and_revoke_on_the_command_line() {
    let app = spawn_app().await;
    let dir = app.data_dir.path();
    seed_user(&app.store, "bob").await;
    let created = app.post("/api/tokens", json!({"name": "second"})).await.expect(201);
    let second_id = created["id"].as_str().unwrap().to_owned();
    let second = created["token"].as_str().unwrap().to_owned();
    app.call_as(&second, Method::GET, "/api/items", None).await.expect(200);

    let listed = banksync(dir, &["token", "list", "alice"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let stdout = String::from_utf8(listed.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&listed.stderr).into_owned();
    let mut lines = stdout.lines();
    assert_eq!(lines.next(), Some("ID\tNAME\tCREATED_AT\tLAST_USED_AT"), "{stdout}");
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split('\t').collect()).collect();
    assert_eq!(rows.len(), 2, "alice's two tokens, not bob's: {stdout}");
    let row = rows.iter().find(|r| r[0] == second_id).expect("the new token is listed");
    assert_eq!(row[1], "second");
    assert!(row[2].ends_with('Z') && row[3].ends_with('Z'), "RFC 3339 UTC, and it was used: {row:?}");
    for secret in [second.as_str(), app.user.token.as_str()] {
        for text in [&stdout, &stderr] {
            assert!(!text.contains(secret) && !text.contains(&hash_secret(secret)), "{text}");
        }
    }

    // Revoking another user's token id fails and changes nothing; revoking one's own takes effect at once.
    let bobs = banksync(dir, &["token", "revoke", "bob", &second_id]);
    assert!(!bobs.status.success());
    assert!(
        String::from_utf8_lossy(&bobs.stderr).contains("no API token"),
        "{}",
        String::from_utf8_lossy(&bobs.stderr)
    );
    app.call_as(&second, Method::GET, "/api/items", None).await.expect(200);
    let revoked = banksync(dir, &["token", "revoke", "alice", &second_id]);
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    app.call_as(&second, Method::GET, "/api/items", None).await.expect_error(401, "unauthorized");
    app.get("/api/items").await.expect(200);
    let again = banksync(dir, &["token", "revoke", "alice", &second_id]);
    assert!(!again.status.success());
    let nobody = banksync(dir, &["token", "list", "nobody"]);
    assert!(!nobody.status.success());
}
