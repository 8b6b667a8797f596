//! Startup: the master key checks, the embedded simulator, and the error format of axum's own rejections.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use banksync::config::{Config, Settings};
use banksync::startup::Application;
use serde_json::{Value, json};

use crate::app::client::urlencode;
use crate::helpers::{seed_user, spawn_app};

#[tokio::test]
async fn the_key_file_is_private_and_a_wrong_or_malformed_master_key_stops_the_start() {
    let app = spawn_app().await;
    app.link_bank(0).await;

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(app.data_dir.path().join("master.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Another valid key: it cannot open the stored access token, so the start fails and says why.
    let other_key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let config = Config::resolve(Settings { master_key: Some(other_key.into()), ..app.settings() }).unwrap();
    let err = Application::build(config).await.err().expect("a wrong key must stop the start");
    let text = format!("{err:#}");
    assert!(text.contains("master key"), "{text}");
    assert!(!text.contains(other_key), "the key must not be printed: {text}");

    // A malformed key names the setting.
    let config = Config::resolve(Settings { master_key: Some("not-a-key".into()), ..app.settings() }).unwrap();
    let text = format!("{:#}", Application::build(config).await.err().expect("a malformed key must stop the start"));
    assert!(text.contains("BANKSYNC_MASTER_KEY"), "{text}");

    // The key file it was made with still works.
    Application::build(Config::resolve(app.settings()).unwrap()).await.expect("the right key starts");
}

#[tokio::test]
async fn without_plaid_keys_banksync_runs_the_embedded_simulator_and_the_page_loads_its_link_script() {
    // Its own log subscriber for this test's thread (a `#[tokio::test]` runs everything on it), so the start's log
    // line is seen whatever the process-wide capture does: installed or not, by whom, at which level.
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Lines(lines.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    let _only_here = tracing::subscriber::set_default(subscriber);
    let dir = tempfile::tempdir().unwrap();
    let config = Config::resolve(Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.path().to_owned()),
        ..Settings::default()
    })
    .unwrap();
    let app = Application::build(config).await.unwrap();
    let url = app.url();
    let sim_url = app.simulator_url().expect("the embedded simulator runs");
    tokio::spawn(app.run_until_stopped());

    let config: serde_json::Value = reqwest::get(format!("{url}/api/config")).await.unwrap().json().await.unwrap();
    assert_eq!(config["plaid_mode"], "simulator");
    let script = config["link_script_url"].as_str().unwrap();
    assert_eq!(script, format!("{sim_url}/link/v2/stable/link-initialize.js"));
    let js = reqwest::get(script).await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.text().await.unwrap().contains("Plaid"));

    let page = reqwest::get(format!("{url}/")).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(r#"<script type="module" src="/assets/app.js">"#));
    let overview = reqwest::get(format!("{url}/assets/view-overview.js")).await.unwrap();
    assert_eq!(overview.status(), 200);
    assert!(overview.text().await.unwrap().contains("Link a bank"), "the page's overview offers to link a bank");
    let logged = String::from_utf8_lossy(&lines.lock().unwrap()).into_owned();
    assert!(logged.contains("built-in Plaid simulator"), "the start must say it runs the simulator: {logged}");
}

/// A log writer into a shared buffer.
#[derive(Clone)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_demo_bank_linked_to_the_embedded_simulator_still_syncs_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(dir.path().to_owned()),
        sync_cooldown: Some("0s".into()),
        ..Settings::default()
    };
    let app = Application::build(Config::resolve(settings.clone()).unwrap()).await.unwrap();
    let (url, sim_url) = (app.url(), app.simulator_url().expect("the embedded simulator runs"));
    let user = seed_user(&app.store(), "alice").await;
    let running = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let call = |base: String, path: &str, body: Option<Value>| {
        let request = match body {
            Some(body) => http.post(format!("{base}{path}")).json(&body),
            None => http.get(format!("{base}{path}")),
        };
        let request = request.bearer_auth(&user.token);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    // Link a demo bank through the simulator's Link and let the first sync finish.
    let (_, link) = call(url.clone(), "/api/link/token", Some(json!({}))).await;
    let (_, done) = crate::app::sim::link(&http, &sim_url, link["link_token"].as_str().unwrap(), 0).await;
    let (status, item) =
        call(url.clone(), "/api/link/exchange", Some(json!({"public_token": done["public_token"]}))).await;
    assert_eq!(status, 201, "{item}");
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    let synced = |base: String| {
        let call = &call;
        let path = format!("/api/items/{item_id}");
        async move { call(base, &path, None).await.1["last_successful_sync_at"].is_string() }
    };
    crate::eventually::eventually("the first sync", Duration::from_secs(30), || synced(url.clone())).await;

    // Merchant logos come from banksync's own origin (offline, and stable across restarts).
    let (_, page) = call(url.clone(), &format!("/api/transactions?item_id={item_id}&limit=500"), None).await;
    let logo = page["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|t| t["logo_url"].as_str())
        .expect("a transaction with a merchant logo")
        .to_owned();
    assert!(logo.starts_with(&format!("{url}/sim-assets/logos/")), "{logo}");
    let image = http.get(&logo).send().await.unwrap();
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/png");
    // A PNG, which banksync's logo proxy accepts (it refuses SVG), so the demo's page shows merchant logos.
    let logo_path = page["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["logo_url"].as_str() == Some(logo.as_str()))
        .and_then(|t| t["logo_path"].as_str())
        .expect("the transaction's logo through banksync")
        .to_owned();
    let proxied = http.get(format!("{url}{logo_path}")).bearer_auth(&user.token).send().await.unwrap();
    assert_eq!(proxied.status(), 200, "{logo_path}");
    assert_eq!(proxied.headers()["content-type"], "image/png");
    assert!(proxied.bytes().await.unwrap().starts_with(b"\x89PNG\r\n\x1a\n"));

    // Restart: the server (and its simulator) goes away, a new one starts on the same data directory.
    running.abort();
    let _ = running.await;
    assert!(dir.path().join("simulator").join(plaid_sim::persist::JOURNAL_FILE).is_file());
    let app = Application::build(Config::resolve(settings).unwrap()).await.unwrap();
    let (url, sim_url) = (app.url(), app.simulator_url().expect("the embedded simulator runs"));
    tokio::spawn(app.run_until_stopped());

    // The bank still knows the Item: time moves on at the bank, and "sync now" asks the bank (a refresh: Plaid has
    // not pulled these days yet) and picks the news up from the stored cursor.
    let advance = json!({"days": 3, "pulled": false});
    crate::app::sim::post(&http, &sim_url, &format!("/sim/items/{item_id}/advance"), advance).await;
    let mut summary = Value::Null;
    for _ in 0..50 {
        let (status, body) = call(url.clone(), &format!("/api/items/{item_id}/sync"), Some(json!({}))).await;
        assert_eq!(status, 200, "the sync after the restart failed: {body}");
        summary = body;
        if summary["coalesced"] != true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let changed = ["added", "modified", "removed"].iter().map(|k| summary[k].as_u64().unwrap()).sum::<u64>();
    assert!(changed > 0, "three new days should bring changes: {summary}");
    let (_, detail) = call(url.clone(), &format!("/api/items/{item_id}"), None).await;
    assert_eq!(detail["health"]["status"], "good", "{detail}");
    // What banksync holds is exactly the simulated bank's ground truth (no duplicates from the old cursor).
    let truth = crate::app::sim::get(&http, &sim_url, &format!("/sim/items/{item_id}/transactions")).await;
    let mut ours = Vec::new();
    let mut query = format!("/api/transactions?item_id={item_id}&limit=500");
    loop {
        let (status, page) = call(url.clone(), &query, None).await;
        assert_eq!(status, 200, "{page}");
        ours.extend(page["transactions"].as_array().unwrap().iter().map(|t| t["transaction_id"].clone()));
        match page["next_cursor"].as_str() {
            Some(c) => query = format!("/api/transactions?item_id={item_id}&limit=500&cursor={}", urlencode(c)),
            None => break,
        }
    }
    let mut truth: Vec<Value> =
        truth["transactions"].as_array().unwrap().iter().map(|t| t["transaction_id"].clone()).collect();
    let key = |v: &Value| v.as_str().unwrap().to_owned();
    ours.sort_by_key(key);
    truth.sort_by_key(key);
    assert_eq!(ours, truth);
}

#[tokio::test]
async fn axums_own_rejections_come_back_in_the_json_error_format() {
    let app = spawn_app().await;
    let reply = app.get("/api/link/token").await;
    assert_eq!(reply.status, 405, "{}", reply.body);
    assert_eq!(reply.body["error"]["code"], "method_not_allowed");
    let reply = app.call_as(&app.user.token, reqwest::Method::PUT, "/api/items", None).await;
    assert_eq!(reply.body["error"]["code"], "method_not_allowed");
}
