//! Login hardening under concurrency: the bounded password-hashing pool (a login flood cannot run more than N
//! argon2 checks at once: the rest wait in a bounded queue or get 503 `busy`), and the atomic lockout (a burst of
//! wrong passwords for one name gets at most ten checks).

use banksync::config::{Config, Settings};
use banksync::startup::Application;
use serde_json::json;

use crate::helpers::{PASSWORD, spawn_app};

/// Sends every request at once (all built first, then awaited together) and returns the statuses and bodies.
async fn burst(requests: Vec<reqwest::RequestBuilder>) -> Vec<(u16, Option<String>, serde_json::Value)> {
    futures::future::join_all(requests.into_iter().map(|r| async move {
        let response = r.send().await.unwrap();
        let status = response.status().as_u16();
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = response.json().await.unwrap();
        (status, retry_after, body)
    }))
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logins_for_unknown_names_runs_at_most_n_hashes_at_once_and_sheds_the_rest() {
    let app = spawn_app().await;
    // Its own server, to read its pool's gauges: 2 hashes at once, 4 waiting.
    let dir = tempfile::tempdir().unwrap();
    let config = Config::resolve(Settings {
        data_dir: Some(dir.path().to_owned()),
        password_hash_concurrency: Some(2),
        password_hash_queue: Some(4),
        ..app.settings()
    })
    .unwrap();
    let server = Application::build(config).await.unwrap();
    let (url, pool) = (server.url(), server.password_pool());
    tokio::spawn(server.run_until_stopped());

    // 150 distinct unknown names, so the per-name lockout never answers for the pool.
    let client = reqwest::Client::builder().pool_max_idle_per_host(200).build().unwrap();
    let requests = (0..150)
        .map(|i| {
            client
                .post(format!("{url}/api/session"))
                .json(&json!({"username": format!("nobody{i}"), "password": "some guess here"}))
        })
        .collect();
    let replies = burst(requests).await;

    let stats = pool.stats();
    let unauthorized = replies.iter().filter(|(s, ..)| *s == 401).count();
    let busy: Vec<_> = replies.iter().filter(|(s, ..)| *s == 503).collect();
    assert_eq!(
        unauthorized + busy.len(),
        150,
        "only 401 or 503: {:?}",
        replies.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(stats.peak_running <= 2, "never more than N hashes at once: {stats:?}");
    assert!(stats.peak_running >= 1, "{stats:?}");
    assert_eq!(stats.rejected, busy.len() as u64, "every 503 is a refusal the pool counted: {stats:?}");
    assert!(!busy.is_empty(), "150 at once cannot all fit in 2 running + 4 waiting: {stats:?}");
    for (_, retry_after, body) in &busy {
        assert_eq!(body["error"]["code"], "busy");
        assert_eq!(retry_after.as_deref(), Some("1"));
    }
    assert!(stats.completed >= unauthorized as u64, "every 401 had its check run: {stats:?}");
    assert_eq!((stats.running, stats.admitted), (0, 0), "all given back: {stats:?}");
    println!(
        "login flood: 150 requests, {unauthorized} checked (401), {} shed (503), peak {} running",
        busy.len(),
        stats.peak_running
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forty_concurrent_wrong_passwords_for_one_name_get_at_most_ten_checks() {
    let app = spawn_app().await;
    let requests = (0..40)
        .map(|_| {
            app.http.post(app.url("/api/session")).json(&json!({"username": " Alice ", "password": "a wrong guess"}))
        })
        .collect();
    let replies = burst(requests).await;
    let count = |status: u16| replies.iter().filter(|(s, ..)| *s == status).count();
    assert!(count(401) <= 10, "at most ten judged: {} x 401", count(401));
    assert_eq!(count(401) + count(429), 40, "{:?}", replies.iter().map(|r| r.0).collect::<Vec<_>>());
    assert!(count(429) >= 30);
    // The name is locked now, even for the right password (another spelling of the same name).
    let right = app.http.post(app.url("/api/session")).json(&json!({"username": "ALICE", "password": PASSWORD}));
    app.reply(right.send().await.unwrap()).await.expect_error(429, "too_many_login_attempts");
}

#[tokio::test]
async fn a_success_resets_the_count_and_huge_names_are_answered_like_any_other() {
    let app = spawn_app().await;
    let login = async |username: &str, password: &str| {
        let response =
            app.http.post(app.url("/api/session")).json(&json!({"username": username, "password": password}));
        app.reply(response.send().await.unwrap()).await
    };
    for _ in 0..9 {
        login("alice", "a wrong guess").await.expect_error(401, "invalid_credentials");
    }
    login("alice", PASSWORD).await.expect(200);
    for _ in 0..9 {
        login("alice", "a wrong guess").await.expect_error(401, "invalid_credentials");
    }
    login("alice", PASSWORD).await.expect(200);
    // A 60 KB name is keyed by its first 64 bytes: same answer, bounded memory.
    let huge = "x".repeat(60_000);
    login(&huge, "a wrong guess").await.expect_error(401, "invalid_credentials");
}
