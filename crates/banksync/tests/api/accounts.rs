//! Accounts and sessions: first-run setup (`/api/setup`), the owner's `/api/users`, the caller's `/api/sessions`
//! with the idle timeout, and `POST /api/account/password`.

use banksync::config::{Config, Settings};
use banksync::startup::Application;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, captured_logs, seed_user, spawn_app};

const NEW_PASSWORD: &str = "a brand new passphrase";

/// A second banksync with an empty database (no user: setup is open), on `app`'s simulator. Returns its URL and
/// the data directory to keep alive.
async fn fresh_server(app: &TestApp) -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::resolve(Settings { data_dir: Some(dir.path().to_owned()), ..app.settings() }).unwrap();
    let server = Application::build(config).await.unwrap();
    let url = server.url();
    tokio::spawn(server.run_until_stopped());
    (url, dir)
}

/// A client that keeps cookies, like a browser.
fn browser(user_agent: &str) -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).user_agent(user_agent).build().unwrap()
}

async fn send(app: &TestApp, request: reqwest::RequestBuilder) -> crate::app::client::Reply {
    app.reply(request.send().await.unwrap()).await
}

/// Logs `client` in as `username`; returns the CSRF token.
async fn log_in(app: &TestApp, client: &reqwest::Client, username: &str, password: &str) -> String {
    let body = json!({"username": username, "password": password});
    let login = send(app, client.post(app.url("/api/session")).json(&body)).await.expect(200);
    login["csrf_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn first_run_setup_from_this_machine_creates_exactly_one_owner_and_logs_them_in() {
    let app = spawn_app().await;
    let (url, _dir) = fresh_server(&app).await;
    let client = browser("setup-test");

    let status = send(&app, client.get(format!("{url}/api/setup"))).await.expect(200);
    assert_eq!(status, json!({"needed": true, "code_required": false}));
    // Behind a reverse proxy every peer is loopback: a proxy header means "not this machine".
    for header in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let proxied = client.get(format!("{url}/api/setup")).header(header, "203.0.113.7");
        assert_eq!(send(&app, proxied).await.expect(200)["code_required"], true, "{header}");
    }
    let proxied = client
        .post(format!("{url}/api/setup"))
        .header("x-forwarded-for", "203.0.113.7")
        .json(&json!({"username": "olive", "password": NEW_PASSWORD}));
    send(&app, proxied).await.expect_error(403, "setup_code_required");

    // The password rules, with clear 400s.
    let setup = |body: Value| client.post(format!("{url}/api/setup")).json(&body);
    send(&app, setup(json!({"username": "olive", "password": "too short"})))
        .await
        .expect_error(400, "invalid_password");
    send(&app, setup(json!({"username": "olivetree01", "password": "OliveTree01"})))
        .await
        .expect_error(400, "invalid_password");
    send(&app, setup(json!({"username": "has space", "password": NEW_PASSWORD})))
        .await
        .expect_error(400, "invalid_username");

    // Two setups at once: exactly one wins.
    let (a, b) = tokio::join!(
        setup(json!({"username": "olive", "password": NEW_PASSWORD})).send(),
        reqwest::Client::new()
            .post(format!("{url}/api/setup"))
            .json(&json!({"username": "oscar", "password": NEW_PASSWORD}))
            .send(),
    );
    let (a, b) = (app.reply(a.unwrap()).await, app.reply(b.unwrap()).await);
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 409], "{} / {}", a.body, b.body);
    let (winner, loser) = if a.status == 201 { (a, b) } else { (b, a) };
    assert_eq!(loser.body["error"]["code"], "already_set_up");
    let cookie = winner.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert_eq!(winner.body["user"]["is_owner"], true);
    assert!(winner.body["csrf_token"].as_str().is_some_and(|t| t.len() > 20));

    let status = send(&app, client.get(format!("{url}/api/setup"))).await.expect(200);
    assert_eq!(status["needed"], false);
    send(&app, setup(json!({"username": "late", "password": NEW_PASSWORD}))).await.expect_error(409, "already_set_up");

    // The owner (whoever won) is logged in with the cookie the winning client got.
    if winner.body["user"]["username"] == "olive" {
        let me = send(&app, client.get(format!("{url}/api/session"))).await.expect(200);
        assert_eq!((me["user"]["username"].as_str(), me["user"]["is_owner"].as_bool()), (Some("olive"), Some(true)));
    }
}

/// The code this app printed, from its one log line.
fn setup_code_of(url: &str) -> String {
    let logs = captured_logs();
    let port = url.rsplit(':').next().unwrap();
    let line = logs
        .lines()
        // The newest: an earlier server in this process may have had the same port.
        .rfind(|l| l.contains("setup code: ") && l.contains(&format!("127.0.0.1:{port}")))
        .unwrap_or_else(|| panic!("no setup code line for {url}"));
    let start = line.find("setup code: ").unwrap() + "setup code: ".len();
    line[start..start + 14].to_owned()
}

#[tokio::test]
async fn remote_setup_needs_the_logged_setup_code_which_stops_working_after_ten_wrong_tries() {
    let app = spawn_app().await;
    let remote = |url: &str, code: &str| {
        reqwest::Client::new()
            .post(format!("{url}/api/setup"))
            .header("x-forwarded-for", "203.0.113.7")
            .json(&json!({"username": "olive", "password": NEW_PASSWORD, "setup_code": code}))
    };

    let (url, _dir) = fresh_server(&app).await;
    let code = setup_code_of(&url);
    assert_eq!(code.len(), 14, "XXXX-XXXX-XXXX: {code}");
    send(&app, remote(&url, "AAAA-AAAA-AAAA")).await.expect_error(403, "setup_code_invalid");
    // Case and dashes do not matter.
    let created = send(&app, remote(&url, &code.to_lowercase().replace('-', ""))).await.expect(201);
    assert_eq!(created["user"]["is_owner"], true);
    send(&app, remote(&url, &code)).await.expect_error(409, "already_set_up");

    let (url, _dir2) = fresh_server(&app).await;
    let code = setup_code_of(&url);
    for _ in 0..10 {
        send(&app, remote(&url, "AAAA-AAAA-AAAA")).await.expect_error(403, "setup_code_invalid");
    }
    send(&app, remote(&url, &code)).await.expect_error(403, "setup_code_exhausted");
    // From this machine setup still works (no code needed).
    let local = reqwest::Client::new()
        .post(format!("{url}/api/setup"))
        .json(&json!({"username": "olive", "password": NEW_PASSWORD}));
    send(&app, local).await.expect(201);
}

#[tokio::test]
async fn the_owner_manages_users_and_others_get_owner_only() {
    let app = spawn_app().await;
    let bob = seed_user(&app.store, "bob").await;
    let as_bob =
        async |method: Method, path: &str, body: Option<Value>| app.call_as(&bob.token, method, path, body).await;

    // The first user (alice, made before bob) is the owner; whoami says so.
    assert_eq!(app.get("/api/session").await.expect(200)["user"]["is_owner"], true);
    assert_eq!(as_bob(Method::GET, "/api/session", None).await.expect(200)["user"]["is_owner"], false);

    let list = app.get("/api/users").await.expect(200);
    let users = list["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "{list}");
    let mut keys: Vec<&str> = users[0].as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "id", "is_owner", "username"]);
    let bob_id = users.iter().find(|u| u["username"] == "bob").unwrap()["id"].as_str().unwrap().to_owned();
    let alice_id = users.iter().find(|u| u["username"] == "alice").unwrap()["id"].as_str().unwrap().to_owned();

    as_bob(Method::GET, "/api/users", None).await.expect_error(403, "owner_only");
    let carol = json!({"username": "carol", "password": NEW_PASSWORD});
    as_bob(Method::POST, "/api/users", Some(carol.clone())).await.expect_error(403, "owner_only");
    as_bob(Method::DELETE, &format!("/api/users/{alice_id}"), None).await.expect_error(403, "owner_only");

    app.post("/api/users", json!({"username": "carol", "password": "short"}))
        .await
        .expect_error(400, "invalid_password");
    app.post("/api/users", json!({"username": "carolcarol", "password": "CarolCarol"}))
        .await
        .expect_error(400, "invalid_password");
    app.post("/api/users", json!({"username": "bob", "password": NEW_PASSWORD}))
        .await
        .expect_error(409, "username_taken");
    let created = app.post("/api/users", carol).await.expect(201);
    assert_eq!((created["username"].as_str(), created["is_owner"].as_bool()), (Some("carol"), Some(false)));
    let carol_client = browser("carol");
    log_in(&app, &carol_client, "carol", NEW_PASSWORD).await;

    app.delete(&format!("/api/users/{alice_id}")).await.expect_error(409, "cannot_delete_self");
    app.delete("/api/users/00000000-0000-0000-0000-000000000000").await.expect_error(404, "not_found");

    // A user with a linked bank is refused until they remove it (it must be removed at Plaid).
    let item = app.link_bank_as(&bob.token, 0).await;
    let item_id = item["item_id"].as_str().unwrap();
    app.delete(&format!("/api/users/{bob_id}")).await.expect_error(409, "user_has_items");
    as_bob(Method::GET, "/api/items", None).await.expect(200);
    as_bob(Method::DELETE, &format!("/api/items/{item_id}"), None).await.expect(204);
    app.delete(&format!("/api/users/{bob_id}")).await.expect(204);
    as_bob(Method::GET, "/api/session", None).await.expect_error(401, "unauthorized");
    assert_eq!(app.count("SELECT COUNT(*) FROM api_tokens WHERE user_id = ?", &[Some(&bob_id)]).await, 0);
    let list = app.get("/api/users").await.expect(200);
    let names: Vec<&str> = list["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "carol"]);
}

#[tokio::test]
async fn sessions_are_listed_signed_out_one_by_one_or_all_others() {
    let app = spawn_app().await;
    let (a, b, c) = (browser("Browser A"), browser(&"B".repeat(300)), browser("Browser C"));
    let csrf_a = log_in(&app, &a, "alice", PASSWORD).await;
    log_in(&app, &b, "alice", PASSWORD).await;

    let list = send(&app, a.get(app.url("/api/sessions"))).await.expect(200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{list}");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "{list}");
    assert_eq!(current[0]["user_agent"], "Browser A");
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    assert_eq!(other["user_agent"].as_str().unwrap().chars().count(), 200, "user agents are cut to 200");
    for field in ["id", "created_at", "last_seen_at", "idle_expires_at", "expires_at"] {
        assert!(other[field].is_string(), "{field}: {other}");
    }
    let b_id = other["id"].as_str().unwrap().to_owned();
    // The public id is not the cookie's secret.
    let b_cookie_hint = send(&app, b.get(app.url("/api/session"))).await.expect(200);
    assert_ne!(b_cookie_hint["csrf_token"].as_str().unwrap(), b_id);

    // Writes need the CSRF token; another user's or an unknown id is a 404.
    send(&app, a.delete(app.url(&format!("/api/sessions/{b_id}")))).await.expect_error(403, "csrf_token_invalid");
    let bob = seed_user(&app.store, "bob").await;
    app.call_as(&bob.token, Method::DELETE, &format!("/api/sessions/{b_id}"), None)
        .await
        .expect_error(404, "not_found");
    let unknown = a.delete(app.url("/api/sessions/nope")).header("x-csrf-token", &csrf_a);
    send(&app, unknown).await.expect_error(404, "not_found");

    let delete_b = a.delete(app.url(&format!("/api/sessions/{b_id}"))).header("x-csrf-token", &csrf_a);
    assert_eq!(send(&app, delete_b).await.status, 204);
    send(&app, b.get(app.url("/api/session"))).await.expect_error(401, "unauthorized");

    log_in(&app, &b, "alice", PASSWORD).await;
    log_in(&app, &c, "alice", PASSWORD).await;
    let others = a.post(app.url("/api/sessions/sign-out-others")).header("x-csrf-token", &csrf_a);
    assert_eq!(send(&app, others).await.expect(200), json!({"signed_out": 2}));
    send(&app, b.get(app.url("/api/session"))).await.expect_error(401, "unauthorized");
    send(&app, c.get(app.url("/api/session"))).await.expect_error(401, "unauthorized");
    send(&app, a.get(app.url("/api/session"))).await.expect(200);
    assert_eq!(send(&app, a.get(app.url("/api/sessions"))).await.expect(200)["sessions"].as_array().unwrap().len(), 1);
}

/// `(last_seen_at, idle_expires_at)` of alice's only session, straight from the database.
async fn stored_times(app: &TestApp) -> (String, String) {
    let crate::app::Db::Sqlite(pool) = &app.db else { panic!("SQLite app") };
    sqlx::query_as("SELECT last_seen_at, idle_expires_at FROM sessions").fetch_one(pool).await.unwrap()
}

async fn set_times(app: &TestApp, last_seen_at: &str, idle_expires_at: &str) {
    let crate::app::Db::Sqlite(pool) = &app.db else { panic!("SQLite app") };
    sqlx::query("UPDATE sessions SET last_seen_at = ?, idle_expires_at = ?")
        .bind(last_seen_at)
        .bind(idle_expires_at)
        .execute(pool)
        .await
        .unwrap();
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

#[tokio::test]
async fn an_idle_session_ends_and_use_moves_its_idle_expiry_at_most_once_a_minute() {
    let app = TestApp::builder().capture_logs().settings(|s| s.session_idle_timeout = Some("30m".into())).spawn().await;
    let client = browser("idle");
    log_in(&app, &client, "alice", PASSWORD).await;
    let (seen, idle) = stored_times(&app).await;

    // Requests within the minute write nothing.
    for _ in 0..5 {
        send(&app, client.get(app.url("/api/items"))).await.expect(200);
    }
    assert_eq!(stored_times(&app).await, (seen.clone(), idle.clone()), "no write within a minute of the last one");

    // Last seen two minutes ago: the next request moves last_seen and the idle expiry (30 min on).
    let now = chrono::Utc::now();
    set_times(&app, &ts(now - chrono::Duration::minutes(2)), &ts(now + chrono::Duration::minutes(28))).await;
    send(&app, client.get(app.url("/api/items"))).await.expect(200);
    let (seen, idle) = stored_times(&app).await;
    let seen = chrono::DateTime::parse_from_rfc3339(&seen).unwrap();
    let idle = chrono::DateTime::parse_from_rfc3339(&idle).unwrap();
    assert!(seen.with_timezone(&chrono::Utc) >= now - chrono::Duration::seconds(1), "refreshed: {seen}");
    assert_eq!(idle - seen, chrono::Duration::minutes(30));

    // Past the idle expiry the session is over, though its 7-day lifetime is not.
    set_times(&app, &ts(now - chrono::Duration::minutes(31)), &ts(now - chrono::Duration::minutes(1))).await;
    send(&app, client.get(app.url("/api/items"))).await.expect_error(401, "unauthorized");
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_keeps_this_one_and_the_tokens() {
    let app = spawn_app().await;
    let (a, b) = (browser("A"), browser("B"));
    let csrf_a = log_in(&app, &a, "alice", PASSWORD).await;
    log_in(&app, &b, "alice", PASSWORD).await;
    let a_id = send(&app, a.get(app.url("/api/sessions"))).await.expect(200)["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A token made from session A says so.
    let made = a.post(app.url("/api/tokens")).header("x-csrf-token", &csrf_a).json(&json!({"name": "from the page"}));
    let made = send(&app, made).await.expect(201);
    assert_eq!(made["created_via"], "session");
    assert_eq!(made["created_by_session"], a_id.as_str());
    let web_token = made["token"].as_str().unwrap().to_owned();

    let change = |current: &str, new: &str| {
        a.post(app.url("/api/account/password"))
            .header("x-csrf-token", &csrf_a)
            .json(&json!({"current_password": current, "new_password": new}))
    };
    send(&app, change("not my password", NEW_PASSWORD)).await.expect_error(403, "current_password_wrong");
    send(&app, change(PASSWORD, "short")).await.expect_error(400, "invalid_password");
    send(&app, change(PASSWORD, PASSWORD)).await.expect_error(400, "invalid_password");
    let no_csrf = a
        .post(app.url("/api/account/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}));
    send(&app, no_csrf).await.expect_error(403, "csrf_token_invalid");

    assert_eq!(send(&app, change(PASSWORD, NEW_PASSWORD)).await.status, 204);
    send(&app, a.get(app.url("/api/session"))).await.expect(200);
    send(&app, b.get(app.url("/api/session"))).await.expect_error(401, "unauthorized");
    // Tokens are separate credentials: they keep working and are listed with their origin.
    app.call_as(&web_token, Method::GET, "/api/items", None).await.expect(200);
    app.get("/api/items").await.expect(200);
    let fresh = reqwest::Client::new();
    let old = fresh.post(app.url("/api/session")).json(&json!({"username": "alice", "password": PASSWORD}));
    send(&app, old).await.expect_error(401, "invalid_credentials");
    log_in(&app, &b, "alice", NEW_PASSWORD).await;

    // Once session A ends, its token says its session is gone (and still works until revoked).
    let out = a.delete(app.url("/api/session")).header("x-csrf-token", &csrf_a);
    assert_eq!(send(&app, out).await.status, 204);
    let list = app.get("/api/tokens").await.expect(200);
    let web = list["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "from the page").unwrap().clone();
    assert_eq!(
        (web["created_by_session"].as_str(), web["created_by_session_active"].as_bool()),
        (Some(a_id.as_str()), Some(false))
    );
    let cli = list["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "test").unwrap().clone();
    assert_eq!((cli["created_via"].as_str(), cli["created_by_session"].is_null()), (Some("cli"), true));
    app.call_as(&web_token, Method::GET, "/api/items", None).await.expect(200);
}
