//! Secrets stay secret: a whole flow (link, sync, balances, a signed webhook, password login, token creation from the
//! session, a master-key rotation) runs with every log line of the process captured at TRACE level (the harness's
//! `start_log_capture_at`; the whole suite can do the same with `TEST_LOG_FILTER=trace`), then the logs, every
//! response body and header the flow saw, and every file in the data directory (the database with its WAL and SHM;
//! the key files are where keys belong and are skipped) are searched for: the Plaid access token and public token,
//! the Plaid secret, the password, every API token, the session id, and the master keys (raw bytes and base64, old
//! and new). Each may appear only where it is delivered on purpose: the session id in the login's `Set-Cookie`, a new
//! API token in its creation's body. Access tokens are in the database only as ciphertext.
//!
//! Its own test binary: the process has one log subscriber, and this one must be at TRACE from the start.

#[path = "common/app.rs"]
mod app;
#[path = "common/eventually.rs"]
mod eventually;

use std::time::Duration;

use banksync::config::Config;
use banksync::domain::PlaidItemId;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use reqwest::header::HeaderMap;
use secrecy::ExposeSecret as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use app::{PASSWORD, TestApp};

/// One response the flow saw: where it came from, its headers and body.
struct Seen {
    what: String,
    headers: HeaderMap,
    body: String,
}

async fn record(seen: &mut Vec<Seen>, what: &str, response: reqwest::Response) -> (u16, Value, HeaderMap) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.text().await.unwrap();
    seen.push(Seen { what: what.to_owned(), headers: headers.clone(), body: body.clone() });
    (status, serde_json::from_str(&body).unwrap_or(Value::Null), headers)
}

fn master_key_forms(path: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let key = banksync::vault::MasterKey::load_file(path).unwrap();
    let encoded = key.to_base64().expose_secret().to_owned();
    let raw = base64::engine::general_purpose::STANDARD.decode(&encoded).unwrap();
    assert_eq!(raw.len(), 32);
    let url_safe = URL_SAFE_NO_PAD.encode(&raw);
    vec![
        (format!("master key {} (base64)", key.id()), encoded.into_bytes()),
        (format!("master key {} (base64url)", key.id()), url_safe.into_bytes()),
        (format!("master key {} (raw)", key.id()), raw.clone()),
        (format!("master key {} (hex)", key.id()), hex::encode(&raw).into_bytes()),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() >= 8 && haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_secret_reaches_a_trace_log_a_response_or_a_database_file() {
    app::start_log_capture_at("trace");
    let app = TestApp::builder().webhooks().spawn().await;
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    let bearer = app.user.token.clone();

    // Link: link token → Link → public token → exchange.
    let (status, link, _) = record(
        &mut seen,
        "link token",
        http.post(app.url("/api/link/token")).bearer_auth(&bearer).json(&json!({})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let (public_token, _) = app.complete_link(link["link_token"].as_str().unwrap(), 0).await;
    let (status, item, _) = record(
        &mut seen,
        "exchange",
        http.post(app.url("/api/link/exchange"))
            .bearer_auth(&bearer)
            .json(&json!({"public_token": public_token}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{item}");
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    eventually::eventually("the first sync", Duration::from_secs(60), || async {
        app.get_item(&item_id).await.body["last_successful_sync_at"].is_string()
    })
    .await;

    // Sync now, transactions, balances.
    let (status, _, _) = record(
        &mut seen,
        "sync",
        http.post(app.url(&format!("/api/items/{item_id}/sync")))
            .bearer_auth(&bearer)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(status == 200 || status == 202, "sync: {status}");
    let (_, _, _) = record(
        &mut seen,
        "transactions",
        http.get(app.url("/api/transactions?limit=50")).bearer_auth(&bearer).send().await.unwrap(),
    )
    .await;
    let (status, job, _) = record(
        &mut seen,
        "balances",
        http.post(app.url("/api/balances/refresh")).bearer_auth(&bearer).json(&json!({})).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 202);
    let job_path = format!("/api/balances/refresh/{}?wait=30", job["job_id"].as_str().unwrap());
    record(&mut seen, "balance job", http.get(app.url(&job_path)).bearer_auth(&bearer).send().await.unwrap()).await;

    // A webhook signed with a key Plaid (the key proxy) serves.
    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let point = signing.verifying_key().to_encoded_point(false);
    app.serve_webhook_key(
        "secrets-test-key",
        json!({"alg": "ES256", "crv": "P-256", "kid": "secrets-test-key", "kty": "EC", "use": "sig",
               "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
               "created_at": chrono::Utc::now().timestamp() - 60, "expired_at": null}),
    );
    let body = serde_json::to_vec(&json!({"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE",
        "item_id": item_id, "initial_update_complete": true, "historical_update_complete": true,
        "environment": "sandbox"}))
    .unwrap();
    let header = json!({"alg": "ES256", "kid": "secrets-test-key", "typ": "JWT"});
    let claims =
        json!({"iat": chrono::Utc::now().timestamp(), "request_body_sha256": hex::encode(Sha256::digest(&body))});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature: Signature = signing.sign(input.as_bytes());
    let jwt = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
    let (status, ack, _) = record(
        &mut seen,
        "webhook",
        http.post(app.url("/webhooks/plaid"))
            .header("content-type", "application/json")
            .header("plaid-verification", &jwt)
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "the signed webhook is accepted: {ack}");

    // Password login, then an API token made from the session.
    let (status, session, headers) = record(
        &mut seen,
        "login",
        http.post(app.url("/api/session"))
            .json(&json!({"username": app.user.username, "password": PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let cookie = headers["set-cookie"].to_str().unwrap().to_owned();
    let session_id = cookie.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();
    let csrf = session["csrf_token"].as_str().unwrap().to_owned();
    let (status, created, _) = record(
        &mut seen,
        "token create",
        http.post(app.url("/api/tokens"))
            .header("cookie", format!("banksync_session={session_id}"))
            .header("x-csrf-token", &csrf)
            .json(&json!({"name": "script"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let new_token = created["token"].as_str().unwrap().to_owned();
    record(&mut seen, "whoami", http.get(app.url("/api/session")).bearer_auth(&new_token).send().await.unwrap()).await;

    // Key rotation, as `banksync key rotate` runs it.
    let key_file = app.data_dir.path().join(banksync::vault::KEY_FILE_NAME);
    let mut secrets: Vec<(String, Vec<u8>)> = master_key_forms(&key_file);
    let config = Config::resolve(app.settings()).unwrap();
    banksync::keys::rotate(&app.store, &config, &mut |_| Ok(())).await.expect("the key rotates");
    secrets.extend(master_key_forms(&key_file));
    // The server reads the Item again under the new key: one more sync.
    record(
        &mut seen,
        "sync after rotation",
        http.post(app.url(&format!("/api/items/{item_id}/sync")))
            .bearer_auth(&bearer)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;

    // The access token, as the vault opens it (after the rotation: sealed under the new key).
    let stored = app.store.get_item_by_plaid_id(&PlaidItemId::from(item_id.clone())).await.unwrap().unwrap();
    let vault = banksync::keys::load_keyring(&config, false).unwrap().vault();
    let access_token = vault.decrypt(&stored.access_token, &item_id).unwrap().expose_secret().to_owned();
    assert!(access_token.starts_with("access-"), "the test found the real access token");
    let plaid_secret = app.settings().plaid_secret.unwrap();
    secrets.extend([
        ("access token".to_owned(), access_token.into_bytes()),
        ("public token".to_owned(), public_token.into_bytes()),
        ("Plaid secret".to_owned(), plaid_secret.into_bytes()),
        ("password".to_owned(), PASSWORD.as_bytes().to_vec()),
        ("seeded API token".to_owned(), bearer.into_bytes()),
        ("created API token".to_owned(), new_token.clone().into_bytes()),
        ("session id".to_owned(), session_id.clone().into_bytes()),
        ("webhook JWT".to_owned(), jwt.clone().into_bytes()),
    ]);

    // Let the audit writer and the last jobs finish writing, then read everything.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = app::captured_logs();
    assert!(logs.contains("TRACE"), "the capture runs at trace level");
    let bodies = app.bodies.lock().unwrap().join("\n");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(app.data_dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_file() && !name.starts_with("master.key") {
            files.push((name, std::fs::read(&path).unwrap()));
        }
    }
    assert!(files.iter().any(|(n, _)| n == "banksync.db"), "the database file was scanned");

    let mut checks = 0;
    for (what, secret) in &secrets {
        // The webhook's JWT is public (Plaid sends it in the clear); it is listed only to catch logging of headers.
        assert!(!contains(logs.as_bytes(), secret), "the trace log contains the {what}");
        assert!(!contains(bodies.as_bytes(), secret), "a response body contains the {what}");
        for s in &seen {
            let delivered = (what == "session id" && s.what == "login")
                || (what == "created API token" && s.what == "token create");
            if !delivered {
                assert!(!contains(s.body.as_bytes(), secret), "the {} response's body contains the {what}", s.what);
                for (name, value) in &s.headers {
                    assert!(
                        !contains(value.as_bytes(), secret),
                        "the {} response's {name} header contains the {what}",
                        s.what
                    );
                }
            }
        }
        if what != "webhook JWT" {
            for (name, bytes) in &files {
                assert!(!contains(bytes, secret), "{name} contains the {what} in the clear");
                checks += 1;
            }
        }
    }
    println!(
        "secret scan: {} secrets × (trace log of {} bytes, {} responses, {} data files): {checks} file checks",
        secrets.len(),
        logs.len(),
        seen.len(),
        files.len()
    );
}
