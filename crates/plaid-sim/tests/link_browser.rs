//! The simulator's drop-in Link works in a real browser, embedded in a page from another origin
//! (as banksync's page will be): headless Chromium drives tests/browser/link_flow.py through
//! connect (wrong password shown inline, then success with Plaid's metadata), update mode repairing
//! ITEM_LOGIN_REQUIRED, closing (onExit), an unknown and an expired link token (onExit with Plaid's
//! error), an OAuth bank's round trip (to the bank's page and back to the page's redirect_uri, where Link resumes
//! with receivedRedirectUri) and an OAuth bank without a redirect_uri (Plaid's error), all under a strict
//! Content-Security-Policy; the public tokens it hands out are then used at the simulator's API like a backend would.
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
    let pages = serve_page(&api.base).await;
    let page = pages.link_page();
    let dir = temp_dir("link-browser");

    // 1. Connect, close and a refused token, in one browser session.
    let connect_token = api.link_token(json!({"products": ["transactions"]})).await;
    let close_token = api.link_token(json!({"products": ["transactions"]})).await;
    // OAuth: a token with the page's redirect_uri goes to the bank and back; one without shows Plaid's error.
    let oauth_token = api.link_token(json!({"products": ["transactions"], "redirect_uri": pages.redirect_uri()})).await;
    let no_redirect_token = api.link_token(json!({"products": ["transactions"]})).await;
    let runs = [
        format!("connect:{connect_token}"),
        format!("close:{close_token}"),
        "invalid:link-sandbox-00000000-0000-0000-0000-000000000000".to_owned(),
        format!("oauth:{oauth_token}"),
        format!("oauth_no_redirect:{no_redirect_token}"),
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

    // The OAuth round trip's public token is an Item at the OAuth bank.
    let oauth = api.ok("/item/public_token/exchange", json!({"public_token": results["oauth"]["public_token"]})).await;
    let oauth_item = api.ok("/item/get", json!({"access_token": text(&oauth["access_token"])})).await;
    assert_eq!(oauth_item["item"]["institution_id"], "ins_127287", "{oauth_item}");
    assert_eq!(results["oauth"]["metadata"]["institution"]["institution_id"], "ins_127287");

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

/// The stand-in page server: its base URL (`http://127.0.0.1:PORT`).
struct PageServer {
    base: String,
}

impl PageServer {
    fn link_page(&self) -> String {
        format!("{}/link.html", self.base)
    }

    /// Where the OAuth bank sends the browser back (the page itself, as banksync's `/oauth-return` is).
    fn redirect_uri(&self) -> String {
        format!("{}/oauth-return", self.base)
    }
}

/// Serves the embedding page from its own loopback port: a different origin than the simulator. Like banksync's
/// page it runs under a strict Content-Security-Policy (no inline script or style anywhere, the simulator's origin
/// allowed for Link), so the drop-in Link is proven to comply; its script and style sheet are files.
async fn serve_page(sim_url: &str) -> PageServer {
    let html = PAGE.replace("{SIM}", sim_url);
    let csp = format!(
        "default-src 'none'; script-src 'self' {sim_url}; style-src 'self' {sim_url}; img-src 'self' data:; \
         connect-src 'self' {sim_url}; frame-src {sim_url}; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'"
    );
    let page = move || {
        let (html, csp) = (html.clone(), csp.clone());
        async move { ([(axum::http::header::CONTENT_SECURITY_POLICY, csp)], Html(html)) }
    };
    let file = |body: &'static str, content_type: &'static str| {
        axum::routing::get(move || async move { ([(axum::http::header::CONTENT_TYPE, content_type)], body) })
    };
    let app = axum::Router::new()
        .route("/link.html", axum::routing::get(page.clone()))
        .route("/oauth-return", axum::routing::get(page))
        .route("/page.js", file(PAGE_JS, "text/javascript"))
        .route("/page.css", file(PAGE_CSS, "text/css"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the page server");
    let base = format!("http://{}", listener.local_addr().expect("a local address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    PageServer { base }
}

/// A stand-in for banksync's page: loads Link from the simulator and records every callback.
const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>banksync: connect a bank</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/page.css">
</head>
<body>
  <header>banksync</header>
  <main>
    <h1>Your accounts</h1>
    <p>No bank connected yet. Balances and transactions appear here once you link an account.</p>
    <button id="connect" type="button">Connect a bank</button>
  </main>
  <script src="{SIM}/link/v2/stable/link-initialize.js"></script>
  <script src="/page.js"></script>
</body>
</html>
"#;

const PAGE_CSS: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0; background: #f3f4f6; color: #111827; }
header { background: #0f766e; color: #fff; padding: 16px 32px; font-size: 20px; font-weight: 600; }
main { padding: 32px; max-width: 720px; }
button#connect { padding: 12px 20px; font-size: 16px; border-radius: 8px; border: 0; background: #0f766e; color: #fff; }
"#;

/// `?token=` starts Link (and saves the token, as banksync's page does before opening Link); at `/oauth-return`
/// the saved token resumes Link with `receivedRedirectUri` and opens it at once. CSP violations are recorded.
const PAGE_JS: &str = r#"
window.__results = { loaded: false, success: null, exit: null, events: [], csp_violations: [] };
document.addEventListener("securitypolicyviolation", (e) => {
  window.__results.csp_violations.push(e.violatedDirective + " " + e.blockedURI);
});
const returning = window.location.pathname === "/oauth-return";
const token = returning ? sessionStorage.getItem("banksync.link_token")
  : new URLSearchParams(window.location.search).get("token");
if (!returning) sessionStorage.setItem("banksync.link_token", token);
const config = {
  token,
  onLoad: () => { window.__results.loaded = true; if (returning) handler.open(); },
  onSuccess: (public_token, metadata) => { window.__results.success = { public_token, metadata }; },
  onExit: (error, metadata) => { window.__results.exit = { error, metadata }; },
  onEvent: (name, metadata) => { window.__results.events.push({ name, metadata }); },
};
if (returning) config.receivedRedirectUri = window.location.href;
const handler = Plaid.create(config);
window.__handler = handler;
document.getElementById("connect").addEventListener("click", () => handler.open());
"#;
