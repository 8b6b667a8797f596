//! Every Plaid endpoint the simulator serves answers as Plaid's OpenAPI spec says, on success and on
//! error. The test drives each endpoint over raw HTTP (successes; missing fields, invalid fields, bad
//! keys, invalid tokens; real and injected rate limits, mutation during pagination, faults; sync pages
//! after the bank moves; a not-ready Item), collects the recorded exchanges (`record_exchanges`) and
//! runs tests/python/validate_exchanges.py on them: responses against the spec's 200 / PlaidError
//! schemas, the requests we sent against the request schemas. Needs scripts/test-deps.sh and the spec
//! vendored at <repo>/vendor/plaid-openapi/ (skips loudly without them, fails in CI).

mod support;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use parking_lot::Mutex;
use plaid_sim::SimConfig;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use support::{Api, Auth, INSTITUTION, Item, Need, prerequisites, run_python, spec_path, start_sim, temp_dir, text};

/// The contract's Plaid endpoint list: each must show up with a 2xx and with an error.
const ENDPOINTS: &[&str] = &[
    "/link/token/create",
    "/item/public_token/exchange",
    "/item/get",
    "/item/remove",
    "/item/webhook/update",
    "/accounts/get",
    "/accounts/balance/get",
    "/transactions/sync",
    "/transactions/refresh",
    "/webhook_verification_key/get",
    "/sandbox/public_token/create",
    "/sandbox/item/fire_webhook",
    "/sandbox/item/reset_login",
];

const UNKNOWN_ACCESS_TOKEN: &str = "access-sandbox-00000000-0000-0000-0000-000000000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_as_the_openapi_spec_says() {
    if !prerequisites("conformance", &[Need::Python, Need::Spec]) {
        return;
    }
    let started = Instant::now();
    let hooks = WebhookReceiver::start().await;

    let (sim, api) = start_sim(SimConfig { record_exchanges: true, ..SimConfig::default() }).await;
    let (kid, webhook_bodies) = exercise_everything(&api, &hooks).await;
    probe_declared_fields(&api).await;
    let mut exchanges = recorded(&api).await;

    // A second world whose Items are not ready (sync answers empty with NOT_READY) until a
    // control route makes their first 30 days ready; the refresh add-on is switched off there.
    let (slow_sim, slow) = start_sim(SimConfig {
        record_exchanges: true,
        product_ready_delay: Duration::from_secs(3600),
        historical_ready_delay: Some(Duration::from_secs(7200)),
        ..SimConfig::default()
    })
    .await;
    not_ready_item(&slow).await;
    exchanges.extend(recorded(&slow).await);
    eprintln!(
        "drove {} exchanges and {} webhooks in {:.1?} (webhook key {kid})",
        exchanges.len(),
        webhook_bodies.len(),
        started.elapsed()
    );

    assert_covers_every_endpoint(&exchanges);

    let dir = temp_dir("conformance");
    let file = dir.join("exchanges.json");
    std::fs::write(&file, serde_json::to_vec(&exchanges).expect("exchanges serialize")).expect("writing exchanges");
    let hooks_file = dir.join("webhooks.json");
    std::fs::write(&hooks_file, serde_json::to_vec(&webhook_bodies).expect("webhooks serialize"))
        .expect("writing webhooks");
    let run = run_python(
        &support::tests_dir().join("python/validate_exchanges.py"),
        &[
            "--spec",
            &spec_path().to_string_lossy(),
            "--exchanges",
            &file.to_string_lossy(),
            "--require-paths",
            &ENDPOINTS.join(","),
            "--webhooks",
            &hooks_file.to_string_lossy(),
        ],
        &[],
        Duration::from_secs(300),
    )
    .await;
    assert!(
        run.success,
        "responses or requests violate the spec (exchanges kept in {}):\n{}",
        file.display(),
        run.output
    );
    let _ = std::fs::remove_dir_all(&dir);
    sim.shutdown().await;
    slow_sim.shutdown().await;
}

/// Every request field the spec declares is known to the sim, and an undeclared one is UNKNOWN_FIELDS.
async fn probe_declared_fields(api: &Api) {
    let spec = spec_path().to_string_lossy().into_owned();
    let mut args = vec!["--spec", spec.as_str()];
    args.extend(ENDPOINTS);
    let run = run_python(
        &support::tests_dir().join("python/probe_fields.py"),
        &args,
        &[("PLAID_SIM_URL", &api.base), ("PLAID_CLIENT_ID", &api.client_id), ("PLAID_SECRET", api.secret())],
        Duration::from_secs(300),
    )
    .await;
    assert!(run.success, "request fields the spec declares are refused:\n{}", run.output);
}

/// Drives every endpoint through successes and errors; returns the webhook key id it verified.
async fn exercise_everything(api: &Api, hooks: &WebhookReceiver) -> (String, Vec<Value>) {
    let item = api.new_item(json!({})).await;
    let (kid, webhook_bodies) = webhooks(api, hooks).await;
    link_tokens(api, &item).await;
    public_tokens(api).await;
    items(api).await;
    accounts(api, &item).await;
    sync(api).await;
    refresh(api).await;
    optional_fields(api, &item).await;
    malformed_requests(api, &item, &kid).await;
    faults(api, &item).await;
    (kid, webhook_bodies)
}

async fn link_tokens(api: &Api, item: &Item) {
    let create = api.link_token(json!({"products": ["transactions"], "webhook": "https://example.com/hook"})).await;
    assert!(create.starts_with("link-"), "{create}");
    api.link_token(json!({"access_token": item.access_token})).await;
    // Plaid accepts the credentials in the body as well as in headers.
    let (status, body) = api
        .call_with(
            "/link/token/create",
            json!({"client_name": "banksync", "language": "en", "country_codes": ["US"],
                   "user": {"client_user_id": "user-2"}, "products": ["transactions"]}),
            Auth::Body,
        )
        .await;
    assert_eq!(status, 200, "credentials in the body: {body}");
    api.refused(
        "/link/token/create",
        json!({"client_name": "banksync", "language": "en", "country_codes": [], "user": {"client_user_id": "u"}}),
    )
    .await;
    api.refused(
        "/link/token/create",
        json!({"client_name": "banksync", "language": "en", "country_codes": ["US"],
               "user": {"client_user_id": "u"}, "products": ["not_a_product"]}),
    )
    .await;
    api.err(
        "/link/token/create",
        json!({"client_name": "banksync", "language": "en", "country_codes": ["US"],
               "user": {"client_user_id": "u"}, "access_token": UNKNOWN_ACCESS_TOKEN}),
        "INVALID_ACCESS_TOKEN",
    )
    .await;
}

async fn public_tokens(api: &Api) {
    let created = api
        .ok(
            "/sandbox/public_token/create",
            json!({"institution_id": INSTITUTION, "initial_products": ["transactions"]}),
        )
        .await;
    let public_token = text(&created["public_token"]);
    api.ok("/item/public_token/exchange", json!({"public_token": public_token})).await;
    // Single use, and unknown tokens are refused the same way.
    api.err("/item/public_token/exchange", json!({"public_token": public_token}), "INVALID_PUBLIC_TOKEN").await;
    api.err("/item/public_token/exchange", json!({"public_token": "public-sandbox-nope"}), "INVALID_PUBLIC_TOKEN")
        .await;
    // Public tokens expire after 30 minutes.
    let stale = api
        .ok(
            "/sandbox/public_token/create",
            json!({"institution_id": INSTITUTION, "initial_products": ["transactions"]}),
        )
        .await;
    api.sim_post("/sim/clock/advance", json!({"seconds": 31 * 60})).await;
    api.err("/item/public_token/exchange", json!({"public_token": stale["public_token"]}), "INVALID_PUBLIC_TOKEN")
        .await;

    api.refused(
        "/sandbox/public_token/create",
        json!({"institution_id": "ins_does_not_exist", "initial_products": ["transactions"]}),
    )
    .await;
    api.refused(
        "/sandbox/public_token/create",
        json!({"institution_id": INSTITUTION, "initial_products": "transactions"}),
    )
    .await;
    api.refused(
        "/sandbox/public_token/create",
        json!({"institution_id": INSTITUTION, "initial_products": ["transactions"], "options": null}),
    )
    .await;
}

async fn items(api: &Api) {
    let item = api.new_item(json!({})).await;
    let got = api.ok("/item/get", json!({"access_token": item.access_token})).await;
    assert_eq!(got["item"]["item_id"], item.item_id.as_str());
    api.err("/item/get", json!({"access_token": UNKNOWN_ACCESS_TOKEN}), "INVALID_ACCESS_TOKEN").await;

    api.ok("/item/webhook/update", json!({"access_token": item.access_token, "webhook": "https://example.com/new"}))
        .await;
    api.ok("/item/webhook/update", json!({"access_token": item.access_token, "webhook": null})).await;
    api.err(
        "/item/webhook/update",
        json!({"access_token": UNKNOWN_ACCESS_TOKEN, "webhook": "https://example.com/x"}),
        "INVALID_ACCESS_TOKEN",
    )
    .await;

    let reset = api.ok("/sandbox/item/reset_login", json!({"access_token": item.access_token})).await;
    assert_eq!(reset["reset_login"], true);
    // The Item's error shows in /item/get (a PlaidError nested in the Item) and as HTTP errors elsewhere.
    let got = api.ok("/item/get", json!({"access_token": item.access_token})).await;
    assert_eq!(got["item"]["error"]["error_code"], "ITEM_LOGIN_REQUIRED", "{got}");
    api.err("/accounts/get", json!({"access_token": item.access_token}), "ITEM_LOGIN_REQUIRED").await;
    api.err("/transactions/sync", json!({"access_token": item.access_token}), "ITEM_LOGIN_REQUIRED").await;
    api.err("/sandbox/item/reset_login", json!({"access_token": UNKNOWN_ACCESS_TOKEN}), "INVALID_ACCESS_TOKEN").await;

    api.ok("/item/remove", json!({"access_token": item.access_token, "reason_code": "OTHER", "reason_note": "test"}))
        .await;
    let (status, body) = api.call("/item/remove", json!({"access_token": item.access_token})).await;
    assert!(status >= 400, "a removed Item's token must be refused: {status} {body}");
    api.err("/item/get", json!({"access_token": item.access_token}), body["error_code"].as_str().unwrap_or("?")).await;
}

async fn accounts(api: &Api, item: &Item) {
    let got = api.ok("/accounts/get", json!({"access_token": item.access_token})).await;
    let accounts = got["accounts"].as_array().expect("accounts array");
    assert!(accounts.len() >= 3, "several accounts per Item: {got}");
    let first = text(&accounts[0]["account_id"]);
    let one =
        api.ok("/accounts/get", json!({"access_token": item.access_token, "options": {"account_ids": [first]}})).await;
    assert_eq!(one["accounts"].as_array().map(Vec::len), Some(1), "options.account_ids filters: {one}");
    api.err("/accounts/get", json!({"access_token": UNKNOWN_ACCESS_TOKEN}), "INVALID_ACCESS_TOKEN").await;
    api.err_type(
        "/accounts/get",
        json!({"access_token": item.access_token, "options": {"account_ids": ["no-such-account"]}}),
        "INVALID_INPUT",
    )
    .await;

    api.ok("/accounts/balance/get", json!({"access_token": item.access_token})).await;
    api.ok(
        "/accounts/balance/get",
        json!({"access_token": item.access_token,
               "options": {"account_ids": [first], "min_last_updated_datetime": "2020-01-01T00:00:00Z"}}),
    )
    .await;
    api.err("/accounts/balance/get", json!({"access_token": UNKNOWN_ACCESS_TOKEN}), "INVALID_ACCESS_TOKEN").await;
    api.err_type(
        "/accounts/balance/get",
        json!({"access_token": item.access_token, "options": {"account_ids": ["no-such-account"]}}),
        "INVALID_INPUT",
    )
    .await;
}

/// Spec-valid optional request fields that Plaid accepts are accepted (and answered per the spec).
async fn optional_fields(api: &Api, item: &Item) {
    api.link_token(json!({
        "products": ["transactions"],
        "transactions": {"days_requested": 730},
        "redirect_uri": "https://banksync.example/oauth",
        "webhook": "https://banksync.example/hook",
        "account_filters": {"depository": {"account_subtypes": ["checking", "savings"]}},
        "update": {"account_selection_enabled": false},
    }))
    .await;
    let hosted = api
        .call("/link/token/create", {
            let mut body = valid_body("/link/token/create", item, "");
            body["hosted_link"] = json!({});
            body
        })
        .await;
    eprintln!("link/token/create with hosted_link: HTTP {} {}", hosted.0, hosted.1);

    api.ok(
        "/sandbox/public_token/create",
        json!({"institution_id": INSTITUTION, "initial_products": ["transactions"],
               "options": {"webhook": "https://banksync.example/hook",
                           "override_username": "user_good", "override_password": "pass_good",
                           "transactions": {"start_date": "2025-01-01", "end_date": "2025-12-31"}}}),
    )
    .await;

    let accounts = api.ok("/accounts/get", json!({"access_token": item.access_token})).await;
    let account_id = text(&accounts["accounts"][0]["account_id"]);
    let page = api
        .ok(
            "/transactions/sync",
            json!({"access_token": item.access_token, "count": 50,
                   "options": {"account_id": account_id, "include_original_description": false,
                               "personal_finance_category_version": "v2", "days_requested": 30}}),
        )
        .await;
    let foreign = page["added"].as_array().into_iter().flatten().filter(|t| t["account_id"] != account_id.as_str());
    assert_eq!(foreign.count(), 0, "options.account_id limits the stream to that account");
}

/// Pages until has_more is false; returns the final cursor and the number of updates seen.
async fn sync_to_end(api: &Api, item: &Item, cursor: Option<String>, count: u32) -> (String, usize) {
    let mut cursor = cursor;
    let mut updates = 0;
    for _ in 0..200 {
        let mut body = json!({"access_token": item.access_token, "count": count});
        if let Some(c) = &cursor {
            body["cursor"] = json!(c);
        }
        let page = api.ok("/transactions/sync", body).await;
        updates +=
            ["added", "modified", "removed"].iter().map(|k| page[k].as_array().map_or(0, Vec::len)).sum::<usize>();
        cursor = Some(text(&page["next_cursor"]));
        if page["has_more"] == false {
            return (cursor.unwrap_or_default(), updates);
        }
    }
    panic!("sync did not finish within 200 pages");
}

async fn sync(api: &Api) {
    let item = api.new_item(json!({"override_username": "user_bulk_1100", "override_password": "x"})).await;
    // The first page with options, then the rest in pages of 500.
    let first = api
        .ok(
            "/transactions/sync",
            json!({"access_token": item.access_token, "count": 1,
                   "options": {"include_original_description": true}}),
        )
        .await;
    assert_eq!(first["added"].as_array().map(Vec::len), Some(1), "count 1: {first}");
    assert_eq!(first["has_more"], true);
    let (cursor, updates) = sync_to_end(api, &item, Some(text(&first["next_cursor"])), 500).await;
    assert_eq!(updates + 1, 1100, "user_bulk_1100 holds 1100 transactions");

    // The bank moves: pending ones post (removed + added), some are modified or removed.
    let moved = api.sim_post(&format!("/sim/items/{}/advance", item.item_id), json!({"days": 10})).await;
    eprintln!("advance 10 days: {moved}");
    let (cursor, updates) = sync_to_end(api, &item, Some(cursor), 500).await;
    assert!(updates > 0, "an advance produces updates");

    // The Item changes mid-pagination: the next page fails, the restart from the cursor works.
    let page = api.ok("/transactions/sync", json!({"access_token": item.access_token, "count": 1})).await;
    assert_eq!(page["has_more"], true);
    let moved = api.sim_post(&format!("/sim/items/{}/advance", item.item_id), json!({"days": 3})).await;
    let changes: u64 = ["added", "modified", "removed"].iter().filter_map(|k| moved[k].as_u64()).sum();
    assert!(changes > 0, "3 days at the bank should change something: {moved}");
    api.err(
        "/transactions/sync",
        json!({"access_token": item.access_token, "cursor": page["next_cursor"], "count": 1}),
        "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION",
    )
    .await;
    sync_to_end(api, &item, Some(cursor), 500).await;

    api.err("/transactions/sync", json!({"access_token": UNKNOWN_ACCESS_TOKEN}), "INVALID_ACCESS_TOKEN").await;
    api.refused("/transactions/sync", json!({"access_token": item.access_token, "count": 501})).await;
    api.refused("/transactions/sync", json!({"access_token": item.access_token, "count": 0})).await;
    api.refused("/transactions/sync", json!({"access_token": item.access_token, "cursor": "definitely not a cursor"}))
        .await;
}

async fn refresh(api: &Api) {
    let item = api.new_item(json!({})).await;
    // Sandbox allows 2 refreshes per Item per minute: the third is rate-limited (HTTP 429).
    api.ok("/transactions/refresh", json!({"access_token": item.access_token})).await;
    api.ok("/transactions/refresh", json!({"access_token": item.access_token})).await;
    let (status, body) = api.call("/transactions/refresh", json!({"access_token": item.access_token})).await;
    assert_eq!((status, body["error_type"].as_str()), (429, Some("RATE_LIMIT_EXCEEDED")), "{body}");
    api.err("/transactions/refresh", json!({"access_token": UNKNOWN_ACCESS_TOKEN}), "INVALID_ACCESS_TOKEN").await;
}

/// Webhooks reach our receiver signed as Plaid signs them: the JWT's `kid` resolves through
/// /webhook_verification_key/get, the ES256 signature verifies and `request_body_sha256` matches the
/// delivered bytes. Fires the codes banksync cares about, plus the ones the sim's own events cause
/// (advance: SYNC_UPDATES_AVAILABLE, reset_login: ITEM ERROR, webhook update: WEBHOOK_UPDATE_ACKNOWLEDGED).
/// Returns the key id and the delivered bodies, for validation against the spec's webhook schemas.
async fn webhooks(api: &Api, hooks: &WebhookReceiver) -> (String, Vec<Value>) {
    let item = api.new_item(json!({"webhook": hooks.url()})).await;
    // SYNC_UPDATES_AVAILABLE only fires for Items that called /transactions/sync once.
    api.ok("/transactions/sync", json!({"access_token": item.access_token, "count": 500})).await;
    api.sim_post(&format!("/sim/items/{}/advance", item.item_id), json!({"days": 2})).await;
    api.ok(
        "/item/webhook/update",
        json!({"access_token": item.access_token, "webhook": format!("{}?v=2", hooks.url())}),
    )
    .await;
    api.ok("/sandbox/item/reset_login", json!({"access_token": item.access_token})).await;
    let required = [
        ("TRANSACTIONS", "SYNC_UPDATES_AVAILABLE"),
        ("ITEM", "NEW_ACCOUNTS_AVAILABLE"),
        ("ITEM", "PENDING_DISCONNECT"),
        ("ITEM", "LOGIN_REPAIRED"),
        ("ITEM", "USER_PERMISSION_REVOKED"),
    ];
    for (webhook_type, code) in required {
        let fired = api
            .ok(
                "/sandbox/item/fire_webhook",
                json!({"access_token": item.access_token, "webhook_type": webhook_type, "webhook_code": code}),
            )
            .await;
        assert_eq!(fired["webhook_fired"], true, "{webhook_type}/{code}: {fired}");
    }
    // Codes Plaid's sandbox also fires: whatever the sim answers is validated, and a delivery too.
    for (webhook_type, code) in [("TRANSACTIONS", "DEFAULT_UPDATE"), ("ITEM", "USER_ACCOUNT_REVOKED")] {
        api.call(
            "/sandbox/item/fire_webhook",
            json!({"access_token": item.access_token, "webhook_type": webhook_type, "webhook_code": code}),
        )
        .await;
    }

    let mut expected: BTreeSet<&str> = required.iter().map(|(_, code)| *code).collect();
    expected.extend(["ERROR", "WEBHOOK_UPDATE_ACKNOWLEDGED"]);
    let deliveries = hooks.wait_for_codes(&expected, Duration::from_secs(20)).await;

    let mut keys = std::collections::BTreeMap::new();
    for (jwt, body) in &deliveries {
        let kid =
            jwt_part(jwt, 0)["kid"].as_str().unwrap_or_else(|| panic!("JWT header without kid: {jwt}")).to_owned();
        if !keys.contains_key(&kid) {
            let key = api.ok("/webhook_verification_key/get", json!({"key_id": kid})).await;
            keys.insert(kid.clone(), key["key"].clone());
        }
        verify_signature(jwt, body, &keys[&kid]);
    }
    let kid = keys.keys().next().cloned().expect("at least one delivery");

    api.err(
        "/webhook_verification_key/get",
        json!({"key_id": "00000000-0000-0000-0000-000000000000"}),
        "INVALID_WEBHOOK_VERIFICATION_KEY_ID",
    )
    .await;
    api.err(
        "/sandbox/item/fire_webhook",
        json!({"access_token": UNKNOWN_ACCESS_TOKEN, "webhook_code": "SYNC_UPDATES_AVAILABLE"}),
        "INVALID_ACCESS_TOKEN",
    )
    .await;
    api.refused(
        "/sandbox/item/fire_webhook",
        json!({"access_token": item.access_token, "webhook_code": "NOT_A_WEBHOOK_CODE"}),
    )
    .await;
    let bodies = deliveries
        .iter()
        .map(|(_, body)| serde_json::from_slice(body).unwrap_or_else(|e| panic!("webhook body is not JSON: {e}")))
        .collect();
    (kid, bodies)
}

/// Decodes part `index` (0 = header, 1 = payload) of a JWT.
fn jwt_part(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).unwrap_or_else(|| panic!("not a JWT: {jwt}"));
    let bytes =
        URL_SAFE_NO_PAD.decode(part).unwrap_or_else(|e| panic!("JWT part {index} is not base64url ({e}): {jwt}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("JWT part {index} is not JSON ({e}): {jwt}"))
}

/// Plaid's webhook verification: ES256 over `header.payload` with the JWK, body hash in the payload.
fn verify_signature(jwt: &str, body: &[u8], key: &Value) {
    let header = jwt_part(jwt, 0);
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("ES256"), Some("JWT")), "{header}");
    let coordinate = |name: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(text(&key[name])).unwrap_or_else(|e| panic!("key.{name}: {e}"));
        assert_eq!(bytes.len(), 32, "key.{name} is a P-256 coordinate");
        bytes
    };
    // An uncompressed SEC1 point: 0x04 || x || y.
    let sec1 = [vec![4u8], coordinate("x"), coordinate("y")].concat();
    let verifying_key = VerifyingKey::from_sec1_bytes(&sec1).expect("the JWK is a P-256 point");
    let (signed, signature) = jwt.rsplit_once('.').expect("a JWT has three parts");
    let signature = URL_SAFE_NO_PAD.decode(signature).expect("the signature is base64url");
    let signature = Signature::from_slice(&signature).expect("a 64-byte ES256 signature");
    assert!(verifying_key.verify(signed.as_bytes(), &signature).is_ok(), "webhook signature must verify: {jwt}");
    let payload = jwt_part(jwt, 1);
    assert_eq!(payload["request_body_sha256"], hex::encode(Sha256::digest(body)), "body hash in {payload}");
    let age = unix_now() - payload["iat"].as_i64().unwrap_or_default();
    assert!((0..=300).contains(&age), "iat is fresh (age {age}s): {payload}");
}

fn unix_now() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970");
    i64::try_from(now.as_secs()).expect("seconds fit in i64")
}

/// For every endpoint: an empty body is MISSING_FIELDS, a wrong secret is INVALID_API_KEYS, and so is
/// a request without credentials.
async fn malformed_requests(api: &Api, item: &Item, kid: &str) {
    for path in ENDPOINTS {
        let body = valid_body(path, item, kid);
        api.err(path, json!({}), "MISSING_FIELDS").await;
        api.err_with(path, body.clone(), Auth::WrongSecret, "INVALID_API_KEYS").await;
        let (status, refused) = api.call_with(path, body, Auth::None).await;
        assert_eq!(status, 400, "{path} without credentials: {refused}");
        let code = refused["error_code"].as_str().unwrap_or_default();
        assert!(["INVALID_API_KEYS", "MISSING_FIELDS"].contains(&code), "{path} without credentials: {refused}");
    }
    let (status, body) = api.call_raw("/item/get", "{not json").await;
    assert_eq!((status, body["error_code"].as_str()), (400, Some("INVALID_BODY")), "{body}");
}

fn valid_body(path: &str, item: &Item, kid: &str) -> Value {
    match path {
        "/link/token/create" => json!({"client_name": "banksync", "language": "en", "country_codes": ["US"],
                                       "user": {"client_user_id": "u"}, "products": ["transactions"]}),
        "/item/public_token/exchange" => json!({"public_token": "public-sandbox-nope"}),
        "/webhook_verification_key/get" => json!({"key_id": kid}),
        "/sandbox/public_token/create" => json!({"institution_id": INSTITUTION, "initial_products": ["transactions"]}),
        "/sandbox/item/fire_webhook" => json!({"access_token": item.access_token,
                                               "webhook_code": "SYNC_UPDATES_AVAILABLE"}),
        _ => json!({"access_token": item.access_token}),
    }
}

/// Injected faults come back as Plaid errors with the right class and status.
async fn faults(api: &Api, item: &Item) {
    let token = json!({"access_token": item.access_token});
    let cases = [
        ("/accounts/get", "RATE_LIMIT_EXCEEDED", 429, "RATE_LIMIT_EXCEEDED"),
        ("/item/get", "API_ERROR", 500, "API_ERROR"),
        ("/accounts/balance/get", "INSTITUTION_NOT_RESPONDING", 400, "INSTITUTION_ERROR"),
        ("/transactions/sync", "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION", 400, "TRANSACTIONS_ERROR"),
    ];
    for (path, error, status, error_type) in cases {
        api.sim_post("/sim/faults", json!({"endpoint": path, "error": error, "rate": 1.0, "count": 1})).await;
        let (got, body) = api.call(path, token.clone()).await;
        assert_eq!((got, body["error_type"].as_str()), (status, Some(error_type)), "fault {error} on {path}: {body}");
        // count 1: the next call is healthy again.
        api.ok(path, token.clone()).await;
    }
    api.sim_delete("/sim/faults").await;
}

async fn not_ready_item(api: &Api) {
    let item = api.new_item(json!({})).await;
    let page = api.ok("/transactions/sync", json!({"access_token": item.access_token})).await;
    assert_eq!(page["next_cursor"], "", "a not-ready Item syncs with an empty cursor: {page}");
    assert_eq!(page["transactions_update_status"], "NOT_READY", "{page}");
    api.ok("/accounts/get", json!({"access_token": item.access_token})).await;

    // The first phase: the last 30 days, reported as such by sync and (an extra field) /item/get.
    api.sim_post(&format!("/sim/items/{}/ready", item.item_id), json!({"phase": "initial"})).await;
    let page = api.ok("/transactions/sync", json!({"access_token": item.access_token, "count": 500})).await;
    assert_eq!(page["transactions_update_status"], "INITIAL_UPDATE_COMPLETE", "{page}");
    let got = api.ok("/item/get", json!({"access_token": item.access_token})).await;
    assert_eq!(got["status"]["transactions"]["transactions_update_status"], "INITIAL_UPDATE_COMPLETE", "{got}");

    // A client without the Transactions Refresh add-on.
    api.sim_post("/sim/client", json!({"transactions_refresh_enabled": false})).await;
    let err = api.err("/transactions/refresh", json!({"access_token": item.access_token}), "INVALID_PRODUCT").await;
    assert_eq!(err["error_type"], "INVALID_INPUT", "{err}");
    api.sim_post("/sim/client", json!({"transactions_refresh_enabled": true})).await;
    api.ok("/transactions/refresh", json!({"access_token": item.access_token})).await;
}

async fn recorded(api: &Api) -> Vec<Value> {
    match api.sim_get("/sim/exchanges").await {
        Value::Array(exchanges) => exchanges,
        other => panic!("GET /sim/exchanges should be an array, got {other}"),
    }
}

fn assert_covers_every_endpoint(exchanges: &[Value]) {
    let all: BTreeSet<&str> = ENDPOINTS.iter().copied().collect();
    let (mut ok, mut failed, mut seen) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for exchange in exchanges {
        let path = exchange["path"].as_str().unwrap_or_else(|| panic!("exchange without a path: {exchange}"));
        let status = exchange["status"].as_u64().unwrap_or_else(|| panic!("exchange without a status: {exchange}"));
        seen.insert(path);
        let bucket = if (200..300).contains(&status) { &mut ok } else { &mut failed };
        bucket.insert(path);
    }
    assert_eq!(seen, all, "recorded exchanges must cover exactly the Plaid endpoints");
    assert_eq!(ok, all, "every endpoint needs a recorded success");
    assert_eq!(failed, all, "every endpoint needs a recorded error");
}

/// A loopback webhook endpoint that keeps each delivery: its Plaid-Verification header and raw body.
struct WebhookReceiver {
    url: String,
    deliveries: Arc<Mutex<Vec<(String, Bytes)>>>,
}

impl WebhookReceiver {
    async fn start() -> Self {
        let deliveries = Arc::new(Mutex::new(Vec::new()));
        let store = deliveries.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let store = store.clone();
                async move {
                    let jwt = headers.get("plaid-verification").and_then(|v| v.to_str().ok()).unwrap_or_default();
                    store.lock().push((jwt.to_owned(), body));
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the webhook receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("a local address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, deliveries }
    }

    fn url(&self) -> String {
        self.url.clone()
    }

    /// Waits until a delivery arrived for every code in `codes`; returns all deliveries so far.
    async fn wait_for_codes(&self, codes: &BTreeSet<&str>, within: Duration) -> Vec<(String, Bytes)> {
        let deadline = Instant::now() + within;
        loop {
            let deliveries = self.deliveries.lock().clone();
            let seen: BTreeSet<String> = deliveries
                .iter()
                .filter_map(|(_, body)| serde_json::from_slice::<Value>(body).ok())
                .filter_map(|body| body["webhook_code"].as_str().map(str::to_owned))
                .collect();
            let missing: Vec<&&str> = codes.iter().filter(|code| !seen.contains(**code)).collect();
            if missing.is_empty() {
                // Let deliveries already on their way land too.
                tokio::time::sleep(Duration::from_millis(300)).await;
                return self.deliveries.lock().clone();
            }
            assert!(Instant::now() < deadline, "no webhook delivered within {within:?} for {missing:?} (got {seen:?})");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
