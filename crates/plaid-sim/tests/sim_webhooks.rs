//! Webhooks reach a receiver on loopback, signed exactly as Plaid signs them; the Link backend.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Sim, start_default};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type Received = Arc<Mutex<Vec<(String, Bytes)>>>;

/// A webhook receiver: records the `Plaid-Verification` header and the raw body.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    async fn hook(State(r): State<Received>, headers: HeaderMap, body: Bytes) -> &'static str {
        let jwt = headers.get("plaid-verification").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        r.lock().push((jwt, body));
        "ok"
    }
    let app = Router::new().route("/hook", post(hook)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

async fn wait_for(received: &Received, n: usize) -> Vec<(String, Bytes)> {
    for _ in 0..100 {
        if received.lock().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    received.lock().clone()
}

/// Verifies a webhook the way Plaid's docs say; returns the parsed body.
async fn verify(sim: &Sim, jwt: &str, body: &[u8]) -> Value {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "compact JWS");
    let decode =
        |s: &str| -> Value { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).expect("base64url")).expect("json") };
    let header = decode(parts[0]);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    let key = sim.ok("/webhook_verification_key/get", json!({"key_id": header["kid"]})).await["key"].clone();
    assert_eq!(
        (key["kty"].as_str(), key["crv"].as_str(), key["use"].as_str()),
        (Some("EC"), Some("P-256"), Some("sig"))
    );
    assert!(key["expired_at"].is_null());
    let mut point = vec![4u8];
    for c in ["x", "y"] {
        point.extend(URL_SAFE_NO_PAD.decode(key[c].as_str().expect("coordinate")).expect("base64url"));
    }
    let vk = VerifyingKey::from_sec1_bytes(&point).expect("P-256 point");
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).expect("base64url")).expect("r||s");
    vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).expect("signature verifies");
    let payload = decode(parts[1]);
    assert_eq!(payload["request_body_sha256"], hex::encode(Sha256::digest(body)));
    let iat = payload["iat"].as_i64().expect("iat");
    assert!((chrono::Utc::now().timestamp() - iat).abs() < 60);
    // A forged body does not match the signed hash.
    assert_ne!(payload["request_body_sha256"], hex::encode(Sha256::digest(b"{}")));
    serde_json::from_slice(body).expect("json body")
}

#[tokio::test]
async fn webhooks_are_delivered_signed_over_the_exact_bytes() {
    let sim = start_default().await;
    let (url, received) = receiver().await;
    let (token, item_id) = sim.item_with("ins_109508", json!({"webhook": url})).await;

    // No SYNC_UPDATES_AVAILABLE before the first sync (Plaid's rule).
    sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 1})).await;
    sim.ok("/transactions/sync", json!({"access_token": token, "count": 1})).await;
    sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 1})).await;
    sim.ok("/sandbox/item/reset_login", json!({"access_token": token})).await;
    let fired = sim
        .ok("/sandbox/item/fire_webhook", json!({"access_token": token, "webhook_code": "NEW_ACCOUNTS_AVAILABLE"}))
        .await;
    assert_eq!(fired["webhook_fired"], true);
    let got = wait_for(&received, 3).await;
    assert_eq!(got.len(), 3, "exactly three deliveries");

    let mut bodies = Vec::new();
    for (jwt, body) in &got {
        // Plaid sends JSON with 2-space indentation.
        assert!(std::str::from_utf8(body).expect("utf8").contains("\n  \""));
        bodies.push(verify(&sim, jwt, body).await);
    }
    assert_eq!(bodies[0]["webhook_type"], "TRANSACTIONS");
    assert_eq!(bodies[0]["webhook_code"], "SYNC_UPDATES_AVAILABLE");
    assert_eq!(bodies[0]["item_id"], item_id.as_str());
    assert_eq!(bodies[0]["initial_update_complete"], true);
    assert_eq!(bodies[0]["historical_update_complete"], true);
    assert_eq!(bodies[0]["environment"], "sandbox");
    assert_eq!(bodies[1]["webhook_type"], "ITEM");
    assert_eq!(bodies[1]["webhook_code"], "ERROR");
    assert_eq!(bodies[1]["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
    assert_eq!(bodies[1]["error"]["status"], 400);
    assert!(bodies[1]["error"].get("request_id").is_none());
    assert_eq!(bodies[2]["webhook_code"], "NEW_ACCOUNTS_AVAILABLE");

    let (_, log) = sim.get("/sim/webhooks").await;
    let log = log.as_array().expect("attempts");
    assert_eq!(log.len(), 3);
    assert!(log.iter().all(|a| a["status"] == 200 && a["error"].is_null() && a["url"] == url.as_str()));

    // Item status remembers the last webhook.
    let item = sim.ok("/item/get", json!({"access_token": token})).await;
    assert_eq!(item["status"]["last_webhook"]["code_sent"], "NEW_ACCOUNTS_AVAILABLE");
}

#[tokio::test]
async fn webhook_update_acknowledges_to_the_new_url_and_control_fires_anything() {
    let sim = start_default().await;
    let (url, received) = receiver().await;
    let (token, item_id) = sim.item().await;
    let updated = sim.ok("/item/webhook/update", json!({"access_token": token, "webhook": url})).await;
    assert_eq!(updated["item"]["webhook"], url.as_str());
    for (ty, code) in [
        ("ITEM", "PENDING_DISCONNECT"),
        ("ITEM", "USER_PERMISSION_REVOKED"),
        ("ITEM", "LOGIN_REPAIRED"),
        ("ITEM", "PENDING_EXPIRATION"),
    ] {
        let (status, v) = sim
            .post(&format!("/sim/items/{item_id}/fire_webhook"), json!({"webhook_type": ty, "webhook_code": code}))
            .await;
        assert_eq!(status, 200, "{v}");
    }
    let got = wait_for(&received, 5).await;
    let mut bodies = Vec::new();
    for (jwt, body) in &got {
        bodies.push(verify(&sim, jwt, body).await);
    }
    let codes: Vec<&str> = bodies.iter().map(|b| b["webhook_code"].as_str().expect("code")).collect();
    assert_eq!(
        codes,
        [
            "WEBHOOK_UPDATE_ACKNOWLEDGED",
            "PENDING_DISCONNECT",
            "USER_PERMISSION_REVOKED",
            "LOGIN_REPAIRED",
            "PENDING_EXPIRATION"
        ]
    );
    assert_eq!(bodies[0]["new_webhook_url"], url.as_str());
    assert_eq!(bodies[1]["reason"], "INSTITUTION_TOKEN_EXPIRATION");
    assert!(bodies[1]["disconnect_time"].is_string());
    let (status, err) = sim
        .post(&format!("/sim/items/{item_id}/fire_webhook"), json!({"webhook_type": "ITEM", "webhook_code": "NOPE"}))
        .await;
    assert_eq!(status, 400);
    assert!(err["error"].is_string());

    // Key rotation: the old key is reported expired, new webhooks use the new kid.
    let (_, rotated) = sim.post("/sim/keys/rotate", json!({})).await;
    let new_kid = rotated["kid"].as_str().expect("kid");
    let old_kid = URL_SAFE_NO_PAD.decode(got[0].0.split('.').next().expect("header")).expect("b64");
    let old_kid: Value = serde_json::from_slice(&old_kid).expect("json");
    let old = sim.ok("/webhook_verification_key/get", json!({"key_id": old_kid["kid"]})).await;
    assert!(old["key"]["expired_at"].is_i64());
    sim.post(
        &format!("/sim/items/{item_id}/fire_webhook"),
        json!({"webhook_type": "ITEM", "webhook_code": "LOGIN_REPAIRED"}),
    )
    .await;
    let got = wait_for(&received, 6).await;
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(got[5].0.split('.').next().expect("header")).expect("b64"))
            .expect("json");
    assert_eq!(header["kid"], new_kid);
}

#[tokio::test]
async fn failed_deliveries_are_logged_and_retried() {
    let sim = start_default().await;
    // Nothing listens on this port: every attempt fails to connect.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        format!("http://{}/hook", l.local_addr().expect("addr"))
    };
    let (_, item_id) = sim.item_with("ins_109508", json!({"webhook": dead})).await;
    sim.post(
        &format!("/sim/items/{item_id}/fire_webhook"),
        json!({"webhook_type": "ITEM", "webhook_code": "LOGIN_REPAIRED"}),
    )
    .await;
    let mut log = Vec::new();
    for _ in 0..40 {
        log = sim.get("/sim/webhooks").await.1.as_array().expect("log").clone();
        if log.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log.len() >= 2, "retried: {log:?}");
    assert!(log.iter().all(|a| a["status"].is_null() && a["error"].is_string()));
    sim.http.delete(sim.url("/sim/webhooks")).send().await.expect("delete");
    assert_eq!(sim.get("/sim/webhooks").await.1.as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn link_sessions_create_items_like_the_sandbox() {
    let sim = start_default().await;
    let js = sim.http.get(sim.url("/link/v2/stable/link-initialize.js")).send().await.expect("script");
    assert!(js.headers()["content-type"].to_str().expect("ascii").starts_with("application/javascript"));
    let link = sim
        .ok(
            "/link/token/create",
            json!({"client_name": "banksync", "language": "en", "country_codes": ["US"],
            "user": {"client_user_id": "u"}, "products": ["transactions"], "transactions": {"days_requested": 30}}),
        )
        .await;
    let lt = link["link_token"].clone();
    let (status, session) = sim.post("/link/session/start", json!({"link_token": lt})).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["mode"], "create");
    assert_eq!(session["client_name"], "banksync");
    assert!(session["institution"].is_null());
    let ids: Vec<&str> = session["institutions"]
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["institution_id"].as_str().expect("id"))
        .collect();
    assert!(ids.contains(&"ins_109508") && ids.contains(&"ins_132361"));

    let submit = |password: &str| {
        json!({"link_token": lt, "link_session_id": session["link_session_id"], "institution_id": "ins_109510",
               "username": "user_good", "password": password})
    };
    let (status, err) = sim.post("/link/session/submit", submit("wrong")).await;
    assert_eq!(status, 400);
    assert_eq!(err["error_code"], "INVALID_CREDENTIALS");
    assert!(err["display_message"].is_string());
    let (status, done) = sim.post("/link/session/submit", submit("pass_good")).await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["metadata"]["institution"]["institution_id"], "ins_109510");
    assert_eq!(done["metadata"]["link_session_id"], session["link_session_id"]);
    let accounts = done["metadata"]["accounts"].as_array().expect("accounts");
    assert_eq!(accounts.len(), 3);
    assert!(accounts.iter().all(|a| a["id"].is_string() && a["verification_status"].is_null()));
    let exchanged = sim.ok("/item/public_token/exchange", json!({"public_token": done["public_token"]})).await;
    let got = sim.ok("/accounts/get", json!({"access_token": exchanged["access_token"]})).await;
    assert_eq!(got["accounts"][0]["account_id"], accounts[0]["id"]);
    // days_requested = 30: only a month of history.
    let truth = sim.ground_truth(exchanged["item_id"].as_str().expect("id")).await;
    let oldest = truth.iter().filter_map(|t| t["date"].as_str()).min().expect("dates").to_owned();
    let newest = truth.iter().filter_map(|t| t["date"].as_str()).max().expect("dates").to_owned();
    let span = chrono::NaiveDate::parse_from_str(&newest, "%Y-%m-%d").expect("date")
        - chrono::NaiveDate::parse_from_str(&oldest, "%Y-%m-%d").expect("date");
    assert!(span.num_days() < 30, "{oldest}..{newest}");

    // Link tokens expire after 4 hours.
    sim.post("/sim/clock/advance", json!({"seconds": 4 * 3600 + 1})).await;
    let (status, err) = sim.post("/link/session/start", json!({"link_token": lt})).await;
    assert_eq!(status, 400);
    assert_eq!(err["error_code"], "INVALID_LINK_TOKEN");
}

/// Update mode on an OAuth bank goes through the bank's page like the first link (Plaid never asks an OAuth bank's
/// credentials): start names the bank as OAuth, credentials are refused, the bank's approval comes back to
/// redirect_uri, and completing the resumed session repairs the same Item instead of creating one.
#[tokio::test]
async fn update_mode_on_an_oauth_bank_repairs_the_item_through_the_banks_page() {
    let sim = start_default().await;
    let (access_token, item_id) = sim.item_with("ins_127287", json!({})).await;
    sim.ok("/sandbox/item/reset_login", json!({"access_token": access_token})).await;
    let (status, broken) = sim.plaid("/accounts/get", json!({"access_token": access_token})).await;
    assert_eq!((status, broken["error_code"].as_str()), (400, Some("ITEM_LOGIN_REQUIRED")), "{broken}");

    let redirect_uri = "https://banksync.example/oauth-return";
    let link = sim
        .ok(
            "/link/token/create",
            json!({"client_name": "banksync", "language": "en", "country_codes": ["US"],
            "user": {"client_user_id": "u"}, "access_token": access_token, "redirect_uri": redirect_uri}),
        )
        .await;
    let lt = link["link_token"].clone();
    let (status, session) = sim.post("/link/session/start", json!({"link_token": lt})).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["mode"], "update");
    assert_eq!(session["institution"]["institution_id"], "ins_127287");
    assert_eq!(session["institution"]["oauth"], true, "the script must not ask for credentials: {session}");
    let sid = session["link_session_id"].clone();

    let (status, refused) = sim
        .post(
            "/link/session/submit",
            json!({"link_token": lt, "link_session_id": sid, "username": "user_good", "password": "pass_good"}),
        )
        .await;
    assert_eq!((status, refused["error_code"].as_str()), (400, Some("INVALID_FIELD")), "{refused}");
    let (status, other_bank) = sim
        .post("/link/session/oauth", json!({"link_token": lt, "link_session_id": sid, "institution_id": "ins_109508"}))
        .await;
    assert_eq!(status, 400, "{other_bank}");

    let (status, begun) = sim
        .post("/link/session/oauth", json!({"link_token": lt, "link_session_id": sid, "institution_id": "ins_127287"}))
        .await;
    assert_eq!(status, 200, "{begun}");
    let state_id = begun["authorize_path"].as_str().expect("path").split("oauth_state_id=").nth(1).expect("id");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let approved = no_redirects
        .post(sim.url("/sim/oauth/authorize"))
        .form(&[("oauth_state_id", state_id)])
        .send()
        .await
        .expect("approve");
    assert_eq!(approved.status(), 303);
    let back = approved.headers()["location"].to_str().expect("ascii").to_owned();
    assert_eq!(back, format!("{redirect_uri}?oauth_state_id={state_id}"));

    let (status, resumed) =
        sim.post("/link/session/start", json!({"link_token": lt, "received_redirect_uri": back})).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["link_session_id"], sid, "the resumed Link continues the same session");
    let (status, done) = sim
        .post(
            "/link/session/oauth/complete",
            json!({"link_token": lt, "link_session_id": sid, "oauth_state_id": resumed["oauth"]["oauth_state_id"]}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["metadata"]["institution"], json!({"institution_id": "ins_127287", "name": "Platypus OAuth Bank"}));
    // The same Item, working again with its old access token; no second Item was made.
    sim.ok("/accounts/get", json!({"access_token": access_token})).await;
    let exchanged = sim.ok("/item/public_token/exchange", json!({"public_token": done["public_token"]})).await;
    assert_eq!(exchanged["item_id"], item_id.as_str());
    let (status, items) = sim.get("/sim/items").await;
    assert_eq!(status, 200);
    assert_eq!(items.as_array().map(Vec::len), Some(1), "{items}");
}

#[tokio::test]
async fn sync_before_ready_earns_a_webhook_when_data_arrives() {
    let sim =
        common::start(plaid_sim::SimConfig { product_ready_delay: Duration::from_secs(3600), ..Default::default() })
            .await;
    let (url, received) = receiver().await;
    let (token, item_id) = sim.item_with("ins_109508", json!({"webhook": url})).await;
    let page = sim.ok("/transactions/sync", json!({"access_token": token})).await;
    assert_eq!(page["transactions_update_status"], "NOT_READY");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(received.lock().is_empty(), "nothing before the data is ready");
    sim.post("/sim/clock/advance", json!({"seconds": 3601})).await;
    let got = wait_for(&received, 1).await;
    assert_eq!(got.len(), 1);
    let body = verify(&sim, &got[0].0, &got[0].1).await;
    assert_eq!(body["webhook_code"], "SYNC_UPDATES_AVAILABLE");
    assert_eq!(body["item_id"], item_id.as_str());
    let page = sim.ok("/transactions/sync", json!({"access_token": token})).await;
    assert_eq!(page["transactions_update_status"], "HISTORICAL_UPDATE_COMPLETE");
}

#[tokio::test]
async fn control_webhooks_keep_the_item_state_coherent() {
    let sim = start_default().await;
    let (url, _received) = receiver().await;
    let (token, item_id) = sim.item_with("ins_109508", json!({"webhook": url})).await;
    let path = format!("/sim/items/{item_id}/fire_webhook");
    let fire = |code: &'static str| sim.post(&path, json!({"webhook_type": "ITEM", "webhook_code": code}));
    assert_eq!(fire("ERROR").await.0, 200);
    let (status, err) = sim.plaid("/accounts/get", json!({"access_token": token})).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("ITEM_LOGIN_REQUIRED")));
    assert_eq!(fire("LOGIN_REPAIRED").await.0, 200);
    sim.ok("/accounts/get", json!({"access_token": token})).await;
}
