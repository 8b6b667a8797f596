//! Authentication: bearer tokens, sessions with CSRF, and the 401/403 answers.

use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn health_is_public_and_reports_the_database() {
    let app = spawn_app().await;
    let response = reqwest::get(app.url("/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

#[tokio::test]
async fn every_api_route_without_credentials_is_a_401_in_the_error_format() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    for (method, path) in [
        ("GET", "/api/items"),
        ("GET", "/api/items/some-item"),
        ("DELETE", "/api/items/some-item"),
        ("POST", "/api/items/some-item/sync"),
        ("POST", "/api/items/some-item/repaired"),
        ("GET", "/api/accounts"),
        ("GET", "/api/transactions"),
        ("PATCH", "/api/transactions/some-txn"),
        ("POST", "/api/link/token"),
        ("POST", "/api/link/exchange"),
        ("POST", "/api/balances/refresh"),
        ("GET", "/api/balances/refresh/some-job"),
        ("GET", "/api/session"),
        ("GET", "/api/sessions"),
        ("DELETE", "/api/sessions/some-session"),
        ("POST", "/api/sessions/sign-out-others"),
        ("POST", "/api/account/password"),
        ("GET", "/api/users"),
        ("POST", "/api/users"),
        ("DELETE", "/api/users/some-user"),
    ] {
        let response = client
            .request(method.parse().unwrap(), app.url(path))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let reply = app.reply(response).await;
        assert_eq!(reply.status, 401, "{method} {path}: {}", reply.body);
        assert_eq!(reply.body["error"]["code"], "unauthorized", "{method} {path}");
    }
}

#[tokio::test]
async fn a_wrong_bearer_token_is_a_401_and_does_not_fall_back_to_the_cookie() {
    let app = spawn_app().await;
    let reply = app.call_as("bsk_not-a-real-token", reqwest::Method::GET, "/api/items", None).await;
    assert_eq!(reply.headers.get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer"));
    reply.expect_error(401, "unauthorized");
    let response = app.http.get(app.url("/api/items")).header("authorization", "Basic YTpi").send().await.unwrap();
    app.reply(response).await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn session_login_sets_a_hardened_cookie_and_cookie_writes_need_the_csrf_token() {
    let app = spawn_app().await;
    let browser = reqwest::Client::builder().cookie_store(true).build().unwrap();

    // Arrange: log in.
    let response = browser
        .post(app.url("/api/session"))
        .json(&json!({"username": app.user.username, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
    let login = app.reply(response).await.expect(200);
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain-http public URL must not set Secure: {cookie}");
    assert_eq!(login["user"]["username"], "alice");
    assert_eq!(login["user"]["is_owner"], true, "the first user is the owner");
    let csrf = login["csrf_token"].as_str().unwrap().to_owned();

    // Reads work with the cookie alone.
    let me = app.reply(browser.get(app.url("/api/session")).send().await.unwrap()).await.expect(200);
    assert_eq!(me["csrf_token"], csrf.as_str());
    app.reply(browser.get(app.url("/api/items")).send().await.unwrap()).await.expect(200);

    // Writes without or with a wrong CSRF token are refused before anything happens.
    let no_csrf = browser.post(app.url("/api/link/token")).json(&json!({})).send().await.unwrap();
    app.reply(no_csrf).await.expect_error(403, "csrf_token_invalid");
    let wrong =
        browser.post(app.url("/api/link/token")).header("x-csrf-token", "nope").json(&json!({})).send().await.unwrap();
    app.reply(wrong).await.expect_error(403, "csrf_token_invalid");
    let logout_without = browser.delete(app.url("/api/session")).send().await.unwrap();
    app.reply(logout_without).await.expect_error(403, "csrf_token_invalid");

    // With the token the write goes through.
    let ok =
        browser.post(app.url("/api/link/token")).header("x-csrf-token", &csrf).json(&json!({})).send().await.unwrap();
    app.reply(ok).await.expect(200);

    // Logging out ends the session server-side.
    let out = browser.delete(app.url("/api/session")).header("x-csrf-token", &csrf).send().await.unwrap();
    assert_eq!(out.status(), 204);
    let after =
        browser.get(app.url("/api/items")).header("cookie", cookie.split(';').next().unwrap()).send().await.unwrap();
    app.reply(after).await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn bad_credentials_get_the_same_401_for_unknown_users_and_wrong_passwords() {
    let app = spawn_app().await;
    let wrong_password = app
        .http
        .post(app.url("/api/session"))
        .json(&json!({"username": "alice", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    let a = app.reply(wrong_password).await.expect_error(401, "invalid_credentials");
    let unknown_user = app
        .http
        .post(app.url("/api/session"))
        .json(&json!({"username": "mallory", "password": "not the password"}))
        .send()
        .await
        .unwrap();
    let b = app.reply(unknown_user).await.expect_error(401, "invalid_credentials");
    assert_eq!(a, b, "the answers must not reveal whether the user exists");
}

#[tokio::test]
async fn bearer_writes_need_no_csrf_token() {
    let app = spawn_app().await;
    let link = app.post_link_token(None).await.expect(200);
    assert!(link["link_token"].as_str().unwrap().starts_with("link-"));
    assert!(link["expiration"].is_string());
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_name_for_a_while_whether_or_not_it_exists() {
    let app = spawn_app().await;
    let login = async |username: &str, password: &str| {
        let response = app
            .http
            .post(app.url("/api/session"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        app.reply(response).await
    };
    for name in ["alice", "mallory"] {
        for _ in 0..banksync::auth::throttle::MAX_FAILURES {
            login(name, "guess").await.expect_error(401, "invalid_credentials");
        }
        login(name, "guess").await.expect_error(429, "too_many_login_attempts");
    }
    // Even the right password waits out the lock; bearer tokens are unaffected.
    login("alice", PASSWORD).await.expect_error(429, "too_many_login_attempts");
    app.get_items().await.expect(200);
}

#[tokio::test]
async fn an_https_public_url_makes_the_session_cookie_secure() {
    let app = spawn_app().await;
    let config = banksync::config::Config::resolve(banksync::config::Settings {
        public_url: Some("https://bank.example.org/".into()),
        ..app.settings()
    })
    .unwrap();
    let https_app = banksync::startup::Application::build(config).await.unwrap();
    let url = https_app.url();
    tokio::spawn(https_app.run_until_stopped());

    let response = reqwest::Client::new()
        .post(format!("{url}/api/session"))
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(cookie.contains("; Secure") && cookie.contains("HttpOnly"), "{cookie}");
}
