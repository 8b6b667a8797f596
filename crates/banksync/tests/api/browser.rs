//! The web page works in a real browser: headless Chromium runs tests/api/page_flow.py against a test server
//! (login, Link through the simulator's drop-in Link, accounts, transactions, a note, live balances, logout), and
//! follows server-sent events: a sync, a balance refresh and a lost login caused outside the page (the simulator's
//! control API, the JSON API with a bearer token) appear on it without a reload or a click.
//! Needs scripts/test-deps.sh (the Python venv with Playwright) and Debian's Chromium: skips loudly without them,
//! fails when `CI` is set.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::helpers::{PASSWORD, spawn_app};

const CHROMIUM: &str = "/usr/bin/chromium";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_logs_in_links_a_bank_and_follows_changes_made_elsewhere_through_events() {
    if !prerequisites() {
        return;
    }
    let app = spawn_app().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/page_flow.py");
    let screenshot = std::env::temp_dir().join("banksync-page.png");
    let child = tokio::process::Command::new(repo_root().join(".venv/bin/python"))
        .arg(&script)
        .args(["--url", &app.address, "--sim-url", &app.sim_url, "--username", &app.user.username])
        .args(["--password", PASSWORD])
        // The environment, not the command line, where other processes could read it.
        .env("BANKSYNC_TOKEN", &app.user.token)
        .arg("--screenshot")
        .arg(&screenshot)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python starts");
    let output = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .expect("page_flow.py finishes within 3 minutes")
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("---- page_flow.py ----\n{text}----");
    assert!(output.status.success(), "page_flow.py failed:\n{text}");

    // What the browser did is in the database, as the API reports it.
    let items = app.get_items().await.expect(200);
    assert_eq!(items["items"].as_array().unwrap().len(), 1, "{items}");
    let noted = app.get_transactions("q=").await.expect(200);
    assert!(noted["transactions"].as_array().unwrap().iter().any(|t| t["user_note"] == "from the browser"));
    app.assert_no_access_token_in_responses();
}
