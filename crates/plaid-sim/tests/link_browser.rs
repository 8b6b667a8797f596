//! The simulator's drop-in Link works in a real browser, embedded in a page from another origin
//! (as banksync's page will be): headless Chromium drives tests/browser/link_flow.py through
//! connect (wrong password shown inline, then success with Plaid's metadata), update mode repairing
//! ITEM_LOGIN_REQUIRED, closing (onExit), an unknown and an expired link token (onExit with Plaid's
//! error); the public tokens it hands out are then used at the simulator's API like a backend would.
//! Needs scripts/test-deps.sh (skips loudly without it, fails in CI).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use axum::response::Html;
use plaid_sim::SimConfig;
use serde_json::{Value, json};
use support::{Need, prerequisites, run_python, start_sim, temp_dir, tests_dir, text};

/// Screenshots of the modal land here (the first is /tmp/link-modal.png, the open picker).
const SCREENSHOTS: &str = "/tmp";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_in_link_connects_repairs_and_exits_in_chromium() {
    if !prerequisites("link_browser", &[Need::Python, Need::Chromium]) {
        return;
    }
    let (sim, api) = start_sim(SimConfig::default()).await;
    let page = serve_page(&api.base).await;
    let dir = temp_dir("link-browser");

    // 1. Connect, close and a refused token, in one browser session.
    let connect_token = api.link_token(json!({"products": ["transactions"]})).await;
    let close_token = api.link_token(json!({"products": ["transactions"]})).await;
    let runs = [
        format!("connect:{connect_token}"),
        format!("close:{close_token}"),
        "invalid:link-sandbox-00000000-0000-0000-0000-000000000000".to_owned(),
    ];
    let results = browse(&page, &runs, &dir.join("first.json")).await;

    // The backend exchanges the public token Link handed to the page.
    let connected = &results["connect"];
    let exchanged = api.ok("/item/public_token/exchange", json!({"public_token": connected["public_token"]})).await;
    let access_token = text(&exchanged["access_token"]);
    let item_id = text(&exchanged["item_id"]);
    let accounts = api.ok("/accounts/get", json!({"access_token": access_token})).await;
    assert_eq!(
        ids(&accounts["accounts"], "account_id"),
        ids(&connected["metadata"]["accounts"], "id"),
        "onSuccess metadata lists the Item's accounts"
    );
    let item = api.ok("/item/get", json!({"access_token": access_token})).await;
    assert_eq!(item["item"]["institution_id"], connected["metadata"]["institution"]["institution_id"]);

    // 2. A link token outlives its 4 hours: Link exits with INVALID_LINK_TOKEN.
    let expired_token = api.link_token(json!({"products": ["transactions"]})).await;
    api.sim_post("/sim/clock/advance", json!({"seconds": 4 * 3600 + 60})).await;

    // 3. The login breaks; update-mode Link repairs it; the same access token works again.
    api.sim_post(&format!("/sim/items/{item_id}/reset_login"), json!({})).await;
    api.err("/accounts/get", json!({"access_token": access_token}), "ITEM_LOGIN_REQUIRED").await;
    let update_token = api.link_token(json!({"access_token": access_token})).await;
    let runs = [format!("update:{update_token}"), format!("invalid:{expired_token}")];
    let results = browse(&page, &runs, &dir.join("update.json")).await;
    assert!(results["update"]["public_token"].is_string(), "update mode hands out a public token");
    let repaired = api.ok("/accounts/get", json!({"access_token": access_token})).await;
    assert_eq!(ids(&repaired["accounts"], "account_id"), ids(&accounts["accounts"], "account_id"));
    let item = api.ok("/item/get", json!({"access_token": access_token})).await;
    assert!(item["item"]["error"].is_null(), "the Item's error is cleared: {item}");

    let _ = std::fs::remove_dir_all(&dir);
    sim.shutdown().await;
}

/// Runs link_flow.py for the given scenarios; returns its per-scenario results.
async fn browse(page: &str, runs: &[String], out: &Path) -> Value {
    let mut args =
        vec!["--page", page, "--out", out.to_str().expect("a UTF-8 temp path"), "--screenshots", SCREENSHOTS];
    for run in runs {
        args.extend(["--run", run.as_str()]);
    }
    let run = run_python(&tests_dir().join("browser/link_flow.py"), &args, &[], Duration::from_secs(180)).await;
    assert!(run.success, "link_flow.py failed after {:.1?}:\n{}", run.elapsed, run.output);
    let results = std::fs::read(out).unwrap_or_else(|e| panic!("reading {}: {e}", out.display()));
    serde_json::from_slice(&results).expect("link_flow.py writes JSON")
}

fn ids(accounts: &Value, key: &str) -> BTreeSet<String> {
    accounts
        .as_array()
        .unwrap_or_else(|| panic!("expected an array of accounts, got {accounts}"))
        .iter()
        .map(|account| text(&account[key]))
        .collect()
}

/// Serves the embedding page from its own loopback port: a different origin than the simulator.
async fn serve_page(sim_url: &str) -> String {
    let html = PAGE.replace("{SIM}", sim_url);
    let app = axum::Router::new().route(
        "/link.html",
        axum::routing::get(move || {
            let html = html.clone();
            async move { Html(html) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the page server");
    let url = format!("http://{}/link.html", listener.local_addr().expect("a local address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// A stand-in for banksync's page: loads Link from the simulator and records every callback.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>banksync: connect a bank</title>
  <link rel="icon" href="data:,">
  <style>
    body { font-family: system-ui, sans-serif; margin: 0; background: #f3f4f6; color: #111827; }
    header { background: #0f766e; color: #fff; padding: 16px 32px; font-size: 20px; font-weight: 600; }
    main { padding: 32px; max-width: 720px; }
    button#connect { padding: 12px 20px; font-size: 16px; border-radius: 8px; border: 0; background: #0f766e; color: #fff; }
  </style>
</head>
<body>
  <header>banksync</header>
  <main>
    <h1>Your accounts</h1>
    <p>No bank connected yet. Balances and transactions appear here once you link an account.</p>
    <button id="connect" type="button">Connect a bank</button>
  </main>
  <script src="{SIM}/link/v2/stable/link-initialize.js"></script>
  <script>
    window.__results = { loaded: false, success: null, exit: null, events: [] };
    const token = new URLSearchParams(window.location.search).get("token");
    const handler = Plaid.create({
      token,
      onLoad: () => { window.__results.loaded = true; },
      onSuccess: (public_token, metadata) => { window.__results.success = { public_token, metadata }; },
      onExit: (error, metadata) => { window.__results.exit = { error, metadata }; },
      onEvent: (name, metadata) => { window.__results.events.push({ name, metadata }); },
    });
    window.__handler = handler;
    document.getElementById("connect").addEventListener("click", () => handler.open());
  </script>
</body>
</html>
"#;
