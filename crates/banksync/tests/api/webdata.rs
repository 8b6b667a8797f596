//! The web app's data APIs (issue 10): `/api/overview` (+ `/seen`), `/api/items/{id}/history`, merchant logos
//! through `/api/logos/{id}` (a local stand-in logo host, allowed through the test-only `Config` allowance), and
//! OAuth banks: link tokens carry `redirect_uri`, and the simulator's OAuth bank goes there and back.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use banksync::domain::{BalanceSource, Balances, NewAccount};
use reqwest::Method;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::helpers::*;

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap_or_else(|| panic!("a decimal string, got {v}"))).unwrap()
}

/// Waits for the first sync after linking, then syncs once more (so `last_successful_sync_at` is set).
async fn linked_and_synced(app: &TestApp, institution_index: usize) -> String {
    let item = app.link_bank(institution_index).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    app.post_fresh_sync(&item_id).await.expect(200);
    item_id
}

#[tokio::test]
async fn overview_sums_balances_per_currency_with_liabilities_subtracted_and_counts_changes_since_the_last_visit() {
    let app = spawn_app().await;
    let empty = app.get("/api/overview").await.expect(200);
    assert_eq!(
        empty,
        json!({"net_worth": [], "by_type": [], "needs_attention": [], "since": null,
            "changes": {"new_transactions": 0, "items_synced": 0}})
    );

    let item_id = linked_and_synced(&app, 0).await;
    // A hand-made loan account at the same Item (the simulator's banks have depository and credit accounts only).
    let user = app.store.find_user_by_username("alice").await.unwrap().unwrap();
    let item = app.store.get_item(&user.id, &item_id.as_str().into()).await.unwrap();
    let loan = NewAccount {
        account_id: "loan-account-1".into(),
        persistent_account_id: None,
        name: "Mortgage".into(),
        official_name: None,
        mask: Some("9999".into()),
        account_type: "loan".into(),
        subtype: Some("mortgage".into()),
        balances: Balances {
            available: None,
            current: Some(Decimal::from_str("150000.05").unwrap()),
            limit: None,
            currency: Some("USD".into()),
            currency_is_official: true,
        },
        balance_as_of: Some(chrono::Utc::now()),
        balance_source: BalanceSource::Cached,
    };
    app.store.upsert_accounts(&item, &[loan], false).await.unwrap();

    // Expected from the accounts the API lists.
    let accounts = app.get_accounts().await.expect(200);
    let (mut assets, mut liabilities) = (Decimal::ZERO, Decimal::ZERO);
    let mut types = std::collections::BTreeMap::<String, (Decimal, u64)>::new();
    for a in accounts["accounts"].as_array().unwrap() {
        if a["balances"]["currency"] != "USD" {
            continue;
        }
        let current = dec(&a["balances"]["current"]);
        let kind = a["type"].as_str().unwrap().to_owned();
        if kind == "credit" || kind == "loan" {
            liabilities += current;
        } else {
            assets += current;
        }
        let entry = types.entry(kind).or_default();
        entry.0 += current;
        entry.1 += 1;
    }
    assert!(types.contains_key("credit") && types.contains_key("depository"), "the simulator's types: {types:?}");

    let overview = app.get("/api/overview").await.expect(200);
    let usd = overview["net_worth"].as_array().unwrap().iter().find(|w| w["currency"] == "USD").unwrap().clone();
    assert_eq!(dec(&usd["assets"]), assets);
    assert_eq!(dec(&usd["liabilities"]), liabilities);
    assert_eq!(dec(&usd["net"]), assets - liabilities);
    assert!(dec(&usd["liabilities"]) >= Decimal::from(150_000), "the loan is a liability: {usd}");
    for (kind, (total, count)) in &types {
        let row = overview["by_type"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["currency"] == "USD" && t["type"] == kind.as_str())
            .unwrap_or_else(|| panic!("a {kind} row in {}", overview["by_type"]));
        assert_eq!(dec(&row["total"]), *total, "{kind}");
        assert_eq!(row["accounts"], *count, "{kind}");
    }
    // Before the first visit everything counts as new.
    assert!(overview["since"].is_null());
    let stored = app.all_transactions(&item_id).await.len() as i64;
    assert_eq!(overview["changes"], json!({"new_transactions": stored, "items_synced": 1}));
    assert_eq!(overview["needs_attention"], json!([]));

    // A visit: from now on only what changes after it counts.
    app.post("/api/overview/seen", json!({})).await.expect(204);
    let after_visit = app.get("/api/overview").await.expect(200);
    let since = chrono::DateTime::parse_from_rfc3339(after_visit["since"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now() - since.to_utc()).num_seconds() < 60);
    assert_eq!(after_visit["changes"], json!({"new_transactions": 0, "items_synced": 0}));

    // New transactions at the bank, then a sync: counted.
    app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 3})).await;
    let summary = app.post_fresh_sync(&item_id).await.expect(200);
    let later = app.get("/api/overview").await.expect(200);
    assert_eq!(later["changes"]["items_synced"], 1, "{later}");
    let added = summary["added"].as_i64().unwrap();
    assert!(added > 0, "the advance brought transactions: {summary}");
    assert_eq!(later["changes"]["new_transactions"], added, "{later} after {summary}");
    assert_eq!(later["since"], after_visit["since"], "only POST /seen moves it");

    // Another user sees none of it.
    let bob = seed_user(&app.store, "bob").await;
    let theirs = app.call_as(&bob.token, Method::GET, "/api/overview", None).await.expect(200);
    assert_eq!(theirs["net_worth"], json!([]));
    assert_eq!(theirs["changes"], json!({"new_transactions": 0, "items_synced": 0}));
}

#[tokio::test]
async fn a_bank_needing_a_login_is_listed_with_the_reconnect_fix() {
    let app = spawn_app().await;
    let item_id = linked_and_synced(&app, 0).await;
    app.sim_post(&format!("/sim/items/{item_id}/reset_login"), json!({})).await;
    let (status, _) = app.post_sync(&item_id).await.into_parts();
    assert_eq!(status, 409, "the sync meets ITEM_LOGIN_REQUIRED");
    let overview = app.get("/api/overview").await.expect(200);
    let attention = overview["needs_attention"].as_array().unwrap();
    assert_eq!(attention.len(), 1, "{overview}");
    assert_eq!(attention[0]["item_id"], item_id.as_str());
    assert_eq!(attention[0]["health"], "login_required");
    assert_eq!(attention[0]["fix"], "reconnect");
    assert_eq!(attention[0]["institution_name"], "First Platypus Bank");
    assert!(attention[0]["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn item_history_lists_runs_and_plaid_calls_newest_first_for_the_owner_only() {
    let app = spawn_app().await;
    let item_id = linked_and_synced(&app, 0).await;
    app.sim_post(&format!("/sim/items/{item_id}/reset_login"), json!({})).await;
    app.post_sync(&item_id).await.expect(409);

    let history = app.get(&format!("/api/items/{item_id}/history")).await.expect(200);
    let runs = history["runs"].as_array().unwrap();
    assert!(runs.len() >= 3, "link sync, manual sync, failed sync: {history}");
    let keys: std::collections::BTreeSet<&str> = runs[0].as_object().unwrap().keys().map(String::as_str).collect();
    let want = [
        "id",
        "trigger",
        "started_at",
        "finished_at",
        "outcome",
        "added",
        "modified",
        "removed",
        "error_code",
        "error_message",
    ];
    assert_eq!(keys, want.into_iter().collect());
    assert_eq!(runs[0]["outcome"], "failed", "newest first: {history}");
    assert_eq!(runs[0]["error_code"], "ITEM_LOGIN_REQUIRED");
    assert_eq!(runs[0]["trigger"], "manual");
    let started: Vec<&str> = runs.iter().map(|r| r["started_at"].as_str().unwrap()).collect();
    assert!(started.windows(2).all(|w| w[0] >= w[1]), "newest first: {started:?}");

    let calls = history["calls"].as_array().unwrap();
    let failed = calls.iter().find(|c| c["error_code"] == "ITEM_LOGIN_REQUIRED").expect("the failed call");
    assert_eq!(failed["endpoint"], "/transactions/sync");
    assert_eq!(failed["status"], 400);
    assert!(failed["request_id"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(failed["error_message"].as_str().is_some_and(|m| m.contains("sign in")), "{failed}");
    let ok = calls.iter().find(|c| c["error_code"].is_null()).expect("a successful call");
    assert!(ok["error_message"].is_null() && ok["duration_ms"].is_i64());
    let at: Vec<&str> = calls.iter().map(|c| c["at"].as_str().unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] >= w[1]), "newest first: {at:?}");

    let one = app.get(&format!("/api/items/{item_id}/history?limit=1")).await.expect(200);
    assert_eq!((one["runs"].as_array().unwrap().len(), one["calls"].as_array().unwrap().len()), (1, 1));
    assert_eq!(one["runs"][0], runs[0]);
    for bad in ["limit=0", "limit=201", "limit=x", "cursor=1"] {
        app.get(&format!("/api/items/{item_id}/history?{bad}")).await.expect_error(400, "invalid_query");
    }
    app.get("/api/items/no-such-item/history").await.expect_error(404, "not_found");
    let bob = seed_user(&app.store, "bob").await;
    app.call_as(&bob.token, Method::GET, &format!("/api/items/{item_id}/history"), None)
        .await
        .expect_error(404, "not_found");
    app.assert_no_access_token_in_responses();
}

#[tokio::test]
async fn a_transactions_raw_plaid_object_is_served_to_its_owner_only_and_kept_out_of_the_lists() {
    let app = spawn_app().await;
    let item_id = linked_and_synced(&app, 0).await;
    let page = app.get("/api/transactions?limit=20").await.expect(200);
    let list = page["transactions"].as_array().unwrap();
    assert!(list.iter().all(|t| t.get("raw").is_none()), "the list stays lean: no raw objects");
    let t = &list[0];
    let id = t["transaction_id"].as_str().unwrap();
    assert!(app.get(&format!("/api/transactions/{id}")).await.expect(200).get("raw").is_none());

    let raw = app.get(&format!("/api/transactions/{id}/raw")).await.expect(200);
    // Plaid's own object, as the simulator (Plaid) holds it: every field, including ones banksync does not model.
    let truth = app.sim_get(&format!("/sim/items/{item_id}/transactions")).await;
    let plaid = truth["transactions"].as_array().unwrap().iter().find(|p| p["transaction_id"] == id).expect("in Plaid");
    assert_eq!(raw["transaction_id"], id);
    assert_eq!(raw["personal_finance_category"]["primary"], t["category"]);
    for field in ["amount", "date", "name", "iso_currency_code", "personal_finance_category_icon_url"] {
        assert_eq!(raw[field], plaid[field], "{field}");
    }

    app.get("/api/transactions/no-such-transaction/raw").await.expect_error(404, "not_found");
    let bob = seed_user(&app.store, "bob").await;
    app.call_as(&bob.token, Method::GET, &format!("/api/transactions/{id}/raw"), None)
        .await
        .expect_error(404, "not_found");
    app.assert_no_access_token_in_responses();
}

// --- merchant logos ---------------------------------------------------------------------------------------------

/// A stand-in logo host: what it answers is switched by the test; it counts the requests it gets.
struct LogoHost {
    base: String,
    mode: Arc<parking_lot::Mutex<&'static str>>,
    hits: Arc<AtomicUsize>,
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89 a tiny logo";

async fn logo_host() -> LogoHost {
    let mode = Arc::new(parking_lot::Mutex::new("png"));
    let hits = Arc::new(AtomicUsize::new(0));
    let (m, h) = (mode.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/assets/logos/{file}",
        axum::routing::get(move || {
            let (mode, hits) = (m.clone(), h.clone());
            async move {
                use axum::http::{StatusCode, header};
                hits.fetch_add(1, Ordering::SeqCst);
                let current = *mode.lock();
                let (status, content_type, body): (StatusCode, &str, Vec<u8>) = match current {
                    "png" => (StatusCode::OK, "image/png", PNG.to_vec()),
                    "svg" => (StatusCode::OK, "image/svg+xml", b"<svg><script>alert(1)</script></svg>".to_vec()),
                    "lying" => (StatusCode::OK, "image/png", b"<svg><script>alert(1)</script></svg>".to_vec()),
                    "huge" => (StatusCode::OK, "image/png", [PNG, &vec![0u8; 300 * 1024]].concat()),
                    _ => (StatusCode::INTERNAL_SERVER_ERROR, "text/plain", b"down".to_vec()),
                };
                (status, [(header::CONTENT_TYPE, content_type)], body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    LogoHost { base, mode, hits }
}

/// An app whose simulated merchants' logos live on `host` (and, with `allow`, may be fetched from it over http).
async fn app_with_logo_host(host: &LogoHost, allow: bool, logos: Option<&'static str>) -> TestApp {
    let assets = format!("{}/assets", host.base);
    let prefix = format!("{assets}/");
    TestApp::builder()
        .capture_logs()
        .sim(move |c| c.asset_base_url = Some(assets))
        .settings(move |s| s.merchant_logos = logos.map(str::to_owned))
        .config(move |c| {
            if allow {
                c.logo_http_origins.push(prefix);
            }
        })
        .spawn()
        .await
}

/// The distinct logo paths of the item's transactions, each with its `logo_url`.
async fn logo_paths(app: &TestApp, item_id: &str) -> Vec<(String, String)> {
    let mut seen = std::collections::BTreeMap::new();
    for t in app.all_transactions(item_id).await {
        if let (Some(url), Some(path)) = (t["logo_url"].as_str(), t["logo_path"].as_str()) {
            seen.insert(url.to_owned(), path.to_owned());
        }
    }
    seen.into_iter().collect()
}

async fn get_logo(app: &TestApp, token: &str, path: &str, etag: Option<&str>) -> reqwest::Response {
    let mut request = app.http.get(app.url(path)).bearer_auth(token);
    if let Some(etag) = etag {
        request = request.header("If-None-Match", etag);
    }
    request.send().await.unwrap()
}

async fn expect_unavailable(app: &TestApp, path: &str) {
    let reply = app.get(path).await;
    reply.expect_error(404, "logo_unavailable");
}

#[tokio::test]
async fn merchant_logos_come_through_banksync_only_for_the_callers_own_transactions_and_only_as_safe_images() {
    let host = logo_host().await;
    let app = app_with_logo_host(&host, true, None).await;
    let config = app.get("/api/config").await.expect(200);
    assert_eq!(config["merchant_logos"], "proxy");
    let item_id = linked_and_synced(&app, 0).await;
    let logos = logo_paths(&app, &item_id).await;
    assert!(logos.len() >= 5, "the world has several merchants with logos: {logos:?}");
    for (url, path) in &logos {
        assert!(url.starts_with(&host.base), "{url}");
        assert_eq!(*path, banksync::logos::logo_path(url));
        assert!(!path.contains("127.0.0.1"), "the path never names the host: {path}");
    }
    assert_eq!(host.hits.load(Ordering::SeqCst), 0, "nothing is fetched before the page asks");

    // An image: fetched once, then served from the cache with caching headers; a repeat with the ETag is a 304.
    let (_, first) = &logos[0];
    let response = get_logo(&app, &app.user.token, first, None).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(cache.starts_with("private") && cache.contains("max-age="), "{cache}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(response.bytes().await.unwrap().as_ref(), PNG);
    assert_eq!(host.hits.load(Ordering::SeqCst), 1);
    let again = get_logo(&app, &app.user.token, first, None).await;
    assert_eq!((again.status().as_u16(), again.bytes().await.unwrap().as_ref()), (200, PNG));
    let revalidated = get_logo(&app, &app.user.token, first, Some(&etag)).await;
    assert_eq!(revalidated.status(), 304);
    assert_eq!(host.hits.load(Ordering::SeqCst), 1, "served from the cache");

    // Another user cannot use the id (nor learn that someone pays that merchant); made-up ids are unknown.
    let bob = seed_user(&app.store, "bob").await;
    let theirs = app.call_as(&bob.token, Method::GET, first, None).await;
    theirs.expect_error(404, "not_found");
    app.get(&format!("/api/logos/{}", banksync::logos::logo_id("https://evil.example/x.png")))
        .await
        .expect_error(404, "not_found");
    app.get("/api/logos/not-an-id").await.expect_error(404, "not_found");
    let unauthenticated = app.http.get(app.url(first)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);

    // Refused, and each failure remembered (the host is not asked again): SVG (scriptable), an SVG declared as
    // PNG, a logo over the size cap, a server error.
    for (i, mode) in ["svg", "lying", "huge", "error"].into_iter().enumerate() {
        *host.mode.lock() = mode;
        let (_, path) = &logos[i + 1];
        let before = host.hits.load(Ordering::SeqCst);
        expect_unavailable(&app, path).await;
        assert_eq!(host.hits.load(Ordering::SeqCst), before + 1, "{mode}: fetched once");
        *host.mode.lock() = "png";
        expect_unavailable(&app, path).await;
        assert_eq!(host.hits.load(Ordering::SeqCst), before + 1, "{mode}: the failure is remembered");
    }
}

#[tokio::test]
async fn logos_are_fetched_over_https_only_unless_code_allows_an_origin_and_can_be_turned_off() {
    let host = logo_host().await;
    // No allowance: the stand-in host's http URLs are never fetched.
    let app = app_with_logo_host(&host, false, None).await;
    let item_id = linked_and_synced(&app, 0).await;
    let logos = logo_paths(&app, &item_id).await;
    assert!(!logos.is_empty());
    expect_unavailable(&app, &logos[0].1).await;
    assert_eq!(host.hits.load(Ordering::SeqCst), 0, "plain http is refused before any request");

    // Off: no logo_path, the route answers nothing, and the page is told.
    let off = app_with_logo_host(&host, true, Some("off")).await;
    assert_eq!(off.get("/api/config").await.expect(200)["merchant_logos"], "off");
    let item_id = linked_and_synced(&off, 0).await;
    let transactions = off.all_transactions(&item_id).await;
    assert!(transactions.iter().any(|t| t["logo_url"].is_string()));
    assert!(transactions.iter().all(|t| t["logo_path"].is_null()), "no logo_path when off");
    let path = banksync::logos::logo_path(transactions.iter().find_map(|t| t["logo_url"].as_str()).unwrap());
    off.get(&path).await.expect_error(404, "not_found");
    assert_eq!(host.hits.load(Ordering::SeqCst), 0);
}

// --- OAuth banks --------------------------------------------------------------------------------------------------

/// The simulator's OAuth bank, end to end over HTTP as the browser would go: Link picks it, the bank's page
/// approves and redirects to banksync's `/oauth-return`, Link resumes with `receivedRedirectUri`, and the public
/// token links an Item at the OAuth bank.
#[tokio::test]
async fn link_tokens_carry_the_redirect_uri_and_the_oauth_bank_goes_there_and_back() {
    let app = spawn_app().await;
    let token = app.post_link_token(None).await.expect(200);
    let link_token = token["link_token"].as_str().unwrap();
    let session = app.sim_post("/link/session/start", json!({"link_token": link_token})).await;
    let oauth_bank = session["institutions"].as_array().unwrap().iter().find(|i| i["oauth"] == true).unwrap();
    assert_eq!(oauth_bank["institution_id"], "ins_127287");
    let session_id = session["link_session_id"].clone();
    let begun = app
        .sim_post(
            "/link/session/oauth",
            json!({"link_token": link_token, "link_session_id": session_id, "institution_id": "ins_127287"}),
        )
        .await;
    let authorize = format!("{}{}", app.sim_url, begun["authorize_path"].as_str().unwrap());
    let bank_page = app.http.get(&authorize).send().await.unwrap();
    assert_eq!(bank_page.status(), 200);
    let csp = bank_page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = bank_page.text().await.unwrap();
    assert!(html.contains("Platypus OAuth Bank") && html.contains("Approve"));
    assert!(!html.contains("<script") && !html.contains("style="), "no inline script or style: {html}");
    let state_id = url::Url::parse(&authorize).unwrap().query_pairs().next().unwrap().1.into_owned();
    let approved = app
        .http
        .post(format!("{}/sim/oauth/authorize", app.sim_url))
        .form(&[("oauth_state_id", state_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), 303);
    let back = approved.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(back, format!("{}/oauth-return?oauth_state_id={state_id}", app.address), "banksync's redirect_uri");

    // banksync serves the page there.
    let page = app.http.get(&back).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));

    // Link resumes in the same session; a mismatched redirect URI or a foreign state is refused.
    let wrong = app
        .http
        .post(format!("{}/link/session/start", app.sim_url))
        .json(&json!({"link_token": link_token,
            "received_redirect_uri": format!("https://elsewhere.example/oauth-return?oauth_state_id={state_id}")}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 400);
    let resumed =
        app.sim_post("/link/session/start", json!({"link_token": link_token, "received_redirect_uri": back})).await;
    assert_eq!(resumed["link_session_id"], session_id);
    assert_eq!(resumed["oauth"]["institution"]["institution_id"], "ins_127287");
    let done = app
        .sim_post(
            "/link/session/oauth/complete",
            json!({"link_token": link_token, "link_session_id": session_id, "oauth_state_id": state_id}),
        )
        .await;
    let item = app.post_exchange(done["public_token"].as_str().unwrap()).await.expect(201);
    assert_eq!(item["institution_name"], "Platypus OAuth Bank");
    assert_eq!(item["institution_id"], "ins_127287");
}

#[tokio::test]
async fn without_a_redirect_uri_the_oauth_bank_reports_plaids_error() {
    let app = TestApp::builder().settings(|s| s.oauth_redirect_uri = Some("off".into())).spawn().await;
    let token = app.post_link_token(None).await.expect(200);
    let link_token = token["link_token"].as_str().unwrap();
    let session = app.sim_post("/link/session/start", json!({"link_token": link_token})).await;
    let refused = app
        .http
        .post(format!("{}/link/session/oauth", app.sim_url))
        .json(&json!({"link_token": link_token, "link_session_id": session["link_session_id"],
            "institution_id": "ins_127287"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error_code"], "INVALID_FIELD");
    assert!(body["error_message"].as_str().unwrap().contains("redirect_uri"), "{body}");
    assert!(body["display_message"].is_string());
}

#[tokio::test]
async fn a_redirect_uri_plaid_would_refuse_stops_the_start_with_the_setting_named() {
    let settings = banksync::config::Settings {
        oauth_redirect_uri: Some("http://bank.example.org/oauth-return".into()),
        ..Default::default()
    };
    let err = banksync::config::Config::resolve(settings).unwrap_err();
    assert_eq!(err.setting, "BANKSYNC_OAUTH_REDIRECT_URI");
    assert!(err.to_string().contains("https"), "{err}");
}
