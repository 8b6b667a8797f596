//! Startup: the master key checks, the embedded simulator, and the error format of axum's own rejections.

use banksync::config::{Config, Settings};
use banksync::startup::Application;

use crate::helpers::{captured_logs, spawn_app, start_log_capture};

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
    // Before the start, whose log line is checked below (no `spawn_app` here turns the capture on).
    start_log_capture();
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
    assert!(page.text().await.unwrap().contains("Link a bank"));
    assert!(captured_logs().contains("built-in Plaid simulator"), "the start must say it runs the simulator");
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
