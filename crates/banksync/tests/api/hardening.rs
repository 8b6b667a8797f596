//! Hostile clients and private data: the server's header-read, body-read and idle timeouts and its connection cap
//! (with small timeouts set through the settings), heartbeats that keep long-lived answers inside the idle timeout,
//! the security headers, file modes of the data directory, and no simulator with real Plaid keys.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use banksync::config::{Config, Settings};
use banksync::startup::Application;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::app::TestApp;

/// Generous: these bound how long a test may hang when the server never closes, not how fast it closes.
const GIVE_UP: Duration = Duration::from_secs(30);

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// Reads until the server closes the connection (or resets it); `None` if it is still open after [`GIVE_UP`].
async fn read_until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(GIVE_UP, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn a_connection_that_sends_half_its_headers_is_closed_after_the_header_read_timeout() {
    let app = TestApp::builder().settings(|s| s.header_read_timeout = Some("1s".into())).spawn().await;
    let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: banksync\r\nX-Slow: ").await.unwrap();
    let answer = read_until_closed(&mut stream).await.expect("the server must close a connection whose headers stall");
    assert!(!answer.contains("200 OK"), "no request was ever completed: {answer:?}");

    // An idle keep-alive connection (a complete request answered, then silence) is closed as well.
    let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: banksync\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut stream).await.expect("an idle keep-alive connection must be closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
}

#[tokio::test]
async fn a_post_whose_body_never_arrives_is_answered_408_and_closed_on_every_route() {
    let app = TestApp::builder().settings(|s| s.body_read_timeout = Some("1s".into())).spawn().await;
    for path in ["/webhooks/plaid", "/api/session"] {
        let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: banksync\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = read_until_closed(&mut stream).await.expect("a stalled body must not hold the connection");
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer:?}");
        assert!(answer.contains("request_timeout"), "{path}: {answer:?}");
    }
}

#[tokio::test]
async fn three_hundred_half_open_connections_do_not_stop_health_answering_a_new_client() {
    let app = TestApp::builder()
        .settings(|s| {
            s.header_read_timeout = Some("1s".into());
            s.max_connections = Some(64);
        })
        .spawn()
        .await;
    let mut half_open = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\n").await.unwrap();
        half_open.push(stream);
    }
    // Beyond the cap they wait in the kernel's backlog; the timeouts free slots, so a new client gets through.
    let client = reqwest::Client::builder().timeout(GIVE_UP * 2).build().unwrap();
    let health = client.get(format!("{}/health", app.address)).send().await.expect("/health answers");
    assert_eq!(health.status(), 200);
    // And every half-open connection was closed by the server, none left holding a descriptor.
    for (i, stream) in half_open.iter_mut().enumerate() {
        assert!(read_until_closed(stream).await.is_some(), "half-open connection {i} is still open");
    }
}

#[tokio::test]
async fn the_event_stream_and_long_polls_are_never_cut_by_the_idle_timeout() {
    let app = TestApp::builder().settings(|s| s.idle_timeout = Some("2s".into())).spawn().await;

    // The event stream: open for three idle timeouts with no event, kept alive by heartbeats.
    let mut events = app.http.get(app.url("/api/events")).bearer_auth(&app.user.token).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let mut heartbeats = 0;
    let until = tokio::time::Instant::now() + Duration::from_secs(6);
    while tokio::time::Instant::now() < until {
        match tokio::time::timeout_at(until, events.chunk()).await {
            Err(_) => break,
            Ok(Ok(Some(chunk))) => heartbeats += usize::from(chunk.starts_with(b":")),
            Ok(other) => panic!("the event stream ended within 3 idle timeouts: {other:?}"),
        }
    }
    assert!(heartbeats >= 3, "heartbeats well inside the 2 s idle timeout, got {heartbeats} in 6 s");

    // A long-poll on a job that does not end: answered (still queued) within the idle timeout, not cut.
    let user = app.store.find_user_by_username("alice").await.unwrap().unwrap();
    let job = app
        .store
        .enqueue_job(&banksync::domain::NewJob {
            kind: "never_runs".into(),
            coalesce_key: None,
            user_id: Some(user.id),
            item_id: None,
            payload: "{}".into(),
            run_after: chrono::Utc::now() + chrono::Duration::days(1),
            max_attempts: 1,
        })
        .await
        .unwrap();
    let reply = app.get(&format!("/api/jobs/{}?wait=100000", job.job_id)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["state"], "queued", "the job never ran: {}", reply.body);
}

#[tokio::test]
async fn every_answer_has_a_content_security_policy_and_hsts_only_behind_https() {
    let app = TestApp::builder().spawn().await;
    let page = app.http.get(app.url("/")).send().await.unwrap();
    let plaid_origin = app.plaid_url.trim_end_matches('/').to_owned();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none'; script-src 'self' "), "{csp}");
    assert!(csp.contains(&format!("frame-src {plaid_origin};")), "Link's origin is this Plaid's: {csp}");
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe"), "{csp}");
    assert!(page.headers().get("strict-transport-security").is_none(), "no HSTS over plain http");
    for path in ["/health", "/api/items", "/api/openapi.json", "/no-such-route"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers()["content-security-policy"],
            "default-src 'none'; frame-ancestors 'none'",
            "{path}"
        );
    }

    let https = TestApp::builder().settings(|s| s.public_url = Some("https://money.example.org".into())).spawn().await;
    let response = https.http.get(https.url("/health")).send().await.unwrap();
    assert_eq!(response.headers()["strict-transport-security"], "max-age=31536000; includeSubDomains");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[tokio::test]
async fn the_data_directory_is_0700_and_its_files_0600_after_a_start_and_a_write() {
    // What an older banksync left: a world-readable directory and database.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("banksync.db"), b"").unwrap();
    std::fs::set_permissions(dir.join("banksync.db"), std::fs::Permissions::from_mode(0o644)).unwrap();

    // Demo mode: the embedded simulator's journal lives in the data directory too.
    let config = Config::resolve(Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.clone()),
        ..Settings::default()
    })
    .unwrap();
    let app = Application::build(config).await.unwrap();
    let store = app.store();
    let url = app.url();
    tokio::spawn(app.run_until_stopped());
    crate::helpers::seed_user(&store, "alice").await;
    let linked = reqwest::Client::new()
        .post(format!("{url}/api/link/token"))
        .bearer_auth(crate::helpers::seed_user(&store, "bob").await.token)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(linked.status(), 200);

    assert_eq!(mode(&dir), 0o700);
    for name in ["banksync.db", "banksync.db-wal", "banksync.db-shm", "master.key", "banksync.lock"] {
        assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
    }
    let sim = dir.join("simulator");
    assert_eq!(mode(&sim), 0o700);
    let mut files = 0;
    for entry in std::fs::read_dir(&sim).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files += 1;
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    assert!(files > 0, "the simulator keeps a journal");
}

#[tokio::test]
async fn with_real_plaid_keys_nothing_of_the_simulator_runs_or_answers() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::resolve(Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.path().to_owned()),
        plaid_client_id: Some("client-id".into()),
        plaid_secret: Some("not-a-real-secret".into()),
        plaid_env: Some("production".into()),
        ..Settings::default()
    })
    .unwrap();
    let app = Application::build(config).await.unwrap();
    assert!(app.simulator_url().is_none(), "no embedded simulator with real keys");
    let url = app.url();
    tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    for path in ["/sim-assets/logos/x.svg", "/sim/items", "/sim/clock", "/link/v2/stable/link-initialize.js"] {
        let status = http.get(format!("{url}{path}")).send().await.unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
    let config: serde_json::Value = http.get(format!("{url}/api/config")).send().await.unwrap().json().await.unwrap();
    assert_eq!(config["link_script_url"], "https://cdn.plaid.com/link/v2/stable/link-initialize.js");
    let page = http.get(format!("{url}/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("connect-src 'self' https://cdn.plaid.com https://production.plaid.com;"), "{csp}");
    assert!(!dir.path().join("simulator").exists(), "no simulator state is created");
}
