//! The web app end to end in a real browser: headless Chromium (Debian's, driven by Playwright's Python API from the
//! repo venv) runs tests/api/page_flow.py against a fresh server with no user: first-run owner setup, an API token
//! made on the Settings page (the flow's "outside" changes use it), banks linked through the simulator's Link, the
//! overview, transactions (filters, search, deep keyset paging, inline note and category), spending charts and
//! their drill-down, a live balance refresh with one slow bank, reconnecting after `reset_login`, an OAuth bank
//! through `/oauth-return`, changes made elsewhere appearing through `/api/events`, every view at phone width
//! without sideways scroll, axe-core on every view, and no console errors or CSP violations anywhere. Screenshots
//! of every view at desktop and phone width go to `target/e2e-screenshots/` (git-ignored; the path is printed).
//! Needs scripts/test-deps.sh (the Python venv with Playwright) and Debian's Chromium: skips loudly without them,
//! fails when `CI` is set.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use banksync::config::{Config, Settings};
use banksync::startup::Application;

use crate::app::sim;

const CHROMIUM: &str = "/usr/bin/chromium";
const OWNER: &str = "olivia";
const OWNER_PASSWORD: &str = "correct horse battery staple";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn prerequisites() -> bool {
    let python = repo_root().join(".venv/bin/python");
    let stamp = repo_root().join(".venv/.test-deps-installed");
    if python.is_file() && stamp.is_file() && Path::new(CHROMIUM).is_file() {
        return true;
    }
    let message = "page_flow: missing the Python venv or Chromium. Run scripts/test-deps.sh";
    assert!(std::env::var_os("CI").is_none(), "{message} (CI is set, so a missing prerequisite is a failure)");
    let bar = "!".repeat(78);
    let _ = writeln!(std::io::stderr(), "\n{bar}\nSKIPPED: {message}\n{bar}\n");
    false
}

/// The simulator's merchant logos (PNG, generated from its catalogue) served over loopback, as banksync serves them
/// at `/sim-assets` in demo mode: the page shows them through `/api/logos/{id}`, never from this host directly.
async fn logo_host() -> String {
    let app = axum::Router::new().nest("/assets", plaid_sim::assets::router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/assets", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// A server as a first run finds it: no user at all (the shared harness always seeds one), its own simulator.
async fn spawn_fresh_server(data_dir: &Path) -> (String, plaid_sim::RunningSim, tokio::task::JoinHandle<()>) {
    let logos = logo_host().await;
    let mut config = sim::sim_config();
    config.asset_base_url = Some(logos.clone());
    let (client_id, secret) = (config.client_id.clone(), config.secret.clone());
    let running =
        plaid_sim::Simulator::new(config).spawn("127.0.0.1:0".parse().unwrap()).await.expect("simulator starts");
    let settings = Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.to_owned()),
        plaid_client_id: Some(client_id),
        plaid_secret: Some(secret),
        plaid_base_url: Some(running.url()),
        sync_cooldown: Some("0s".into()),
        // Every refresh asks the bank: the flow refreshes twice within a minute and watches each bank answer.
        balance_max_age: Some("0s".into()),
        ..Settings::default()
    };
    let mut config = Config::resolve(settings).expect("valid config");
    config.logo_http_origins.push(format!("{logos}/"));
    let app = Application::build(config).await.expect("application builds");
    let address = app.url();
    let server = tokio::spawn(async move {
        let _ = app.run_until_stopped().await;
    });
    (address, running, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_from_first_run_to_every_view_in_a_real_browser() {
    if !prerequisites() {
        return;
    }
    let data_dir = tempfile::tempdir().unwrap();
    let (address, running_sim, server) = spawn_fresh_server(data_dir.path()).await;
    let screenshots = repo_root().join("target/e2e-screenshots");
    std::fs::create_dir_all(&screenshots).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/page_flow.py");
    let axe = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/vendor/axe-core-4.11.0/axe.min.js");
    let child = tokio::process::Command::new(repo_root().join(".venv/bin/python"))
        .arg(&script)
        .args(["--url", &address, "--sim-url", &running_sim.url(), "--username", OWNER])
        .arg("--axe")
        .arg(&axe)
        .arg("--screenshots")
        .arg(&screenshots)
        // The environment, not the command line, where other processes could read it.
        .env("BANKSYNC_PASSWORD", OWNER_PASSWORD)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let output = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .expect("page_flow.py finishes within 5 minutes")
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("---- page_flow.py ----\n{text}----");
    eprintln!("screenshots: {}", screenshots.display());
    server.abort();
    assert!(output.status.success(), "page_flow.py failed:\n{text}");
    assert!(text.contains("all page checks passed"), "{text}");
}
