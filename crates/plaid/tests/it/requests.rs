//! Request shape: method, path, auth and version headers, and exact JSON bodies.

use chrono::{TimeZone, Utc};
use plaid::{
    AccountsBalanceGetRequest, AccountsGetRequest, CountryCode, ItemRemoveRequest, LinkTokenCreateRequest, Product,
    PublicToken, SandboxItemFireWebhookRequest, SandboxPublicTokenCreateRequest, TransactionsSyncRequest, WebhookCode,
    WebhookType,
};
use serde_json::json as j;
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Mock, MockServer};

use crate::common::*;

/// Mounts a mock for `endpoint_path` that only matches a correctly authenticated POST.
async fn expect_call(server: &MockServer, endpoint_path: &str, response: &str) {
    Mock::given(method("POST"))
        .and(path(endpoint_path))
        .and(header("PLAID-CLIENT-ID", CLIENT_ID))
        .and(header("PLAID-SECRET", SECRET))
        .and(header("Plaid-Version", "2020-09-14"))
        .and(header("Content-Type", "application/json"))
        .and(header_exists("User-Agent"))
        .respond_with(json(response))
        .expect(1)
        .mount(server)
        .await;
}

async fn only_body(server: &MockServer) -> serde_json::Value {
    let mut all = bodies(server).await;
    assert_eq!(all.len(), 1);
    all.remove(0)
}

#[tokio::test]
async fn link_token_create_sends_user_products_webhook_and_days() {
    let server = MockServer::start().await;
    expect_call(
        &server,
        "/link/token/create",
        r#"{"link_token":"link-sandbox-af1a0311-da53-4636-b754-dd15cc058176","expiration":"2020-03-27T12:56:34Z","request_id":"XQVgFigpGHXkb0b"}"#,
    )
    .await;

    let request = LinkTokenCreateRequest::new("My App", "user-42")
        .products([Product::Transactions])
        .webhook("https://example.com/webhooks/plaid")
        .days_requested(730);
    let response = client(&server).link_token_create(&request).await.unwrap();

    assert_eq!(response.link_token, "link-sandbox-af1a0311-da53-4636-b754-dd15cc058176");
    assert_eq!(response.request_id, "XQVgFigpGHXkb0b");
    assert_eq!(
        only_body(&server).await,
        j!({
            "client_name": "My App",
            "language": "en",
            "country_codes": ["US"],
            "user": {"client_user_id": "user-42"},
            "products": ["transactions"],
            "webhook": "https://example.com/webhooks/plaid",
            "transactions": {"days_requested": 730}
        })
    );
}

#[tokio::test]
async fn link_token_update_mode_sends_access_token_and_no_products() {
    let server = MockServer::start().await;
    expect_call(
        &server,
        "/link/token/create",
        r#"{"link_token":"link-sandbox-1","expiration":"2020-03-27T12:56:34Z","request_id":"r"}"#,
    )
    .await;
    let request = LinkTokenCreateRequest::new("My App", "user-42")
        .products([Product::Transactions])
        .country_codes([CountryCode::Us, CountryCode::Ca])
        .update_mode(token());
    client(&server).link_token_create(&request).await.unwrap();
    let body = only_body(&server).await;
    assert_eq!(body["access_token"], ACCESS_TOKEN);
    assert!(body.get("products").is_none());
    assert_eq!(body["country_codes"], j!(["US", "CA"]));
}

#[tokio::test]
async fn public_token_exchange() {
    let server = MockServer::start().await;
    expect_call(
        &server,
        "/item/public_token/exchange",
        r#"{"access_token":"access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6","item_id":"M5eVJqLnv3tbzdngLDp9FL5OlDNxlNhlE55op","request_id":"Aim3b"}"#,
    )
    .await;
    let public_token = PublicToken::new("public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d");
    let response = client(&server).item_public_token_exchange(&public_token).await.unwrap();
    assert_eq!(response.access_token.expose_secret(), ACCESS_TOKEN);
    assert_eq!(response.item_id, "M5eVJqLnv3tbzdngLDp9FL5OlDNxlNhlE55op");
    assert_eq!(only_body(&server).await, j!({"public_token": "public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d"}));
}

#[tokio::test]
async fn access_token_only_endpoints() {
    let server = MockServer::start().await;
    expect_call(
        &server,
        "/item/get",
        r#"{"item":{"item_id":"i1","webhook":null,"error":null,"available_products":[],"billed_products":[],"consent_expiration_time":null,"update_type":"background"},"request_id":"r1"}"#,
    )
    .await;
    expect_call(&server, "/transactions/refresh", r#"{"request_id":"r2"}"#).await;
    expect_call(&server, "/sandbox/item/reset_login", r#"{"reset_login":true,"request_id":"r3"}"#).await;
    let c = client(&server);
    assert_eq!(c.item_get(&token()).await.unwrap().item.item_id, "i1");
    assert_eq!(c.transactions_refresh(&token()).await.unwrap().request_id, "r2");
    assert!(c.sandbox_item_reset_login(&token()).await.unwrap().reset_login);
    for body in bodies(&server).await {
        assert_eq!(body, j!({"access_token": ACCESS_TOKEN}));
    }
}

#[tokio::test]
async fn item_remove_with_and_without_reason() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/item/remove"))
        .respond_with(json(r#"{"request_id":"rm"}"#))
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&server);
    c.item_remove(&ItemRemoveRequest::new(token())).await.unwrap();
    let mut with_reason = ItemRemoveRequest::new(token());
    with_reason.reason_code = Some(plaid::ItemRemoveReason::ConnectionIsNonFunctional);
    c.item_remove(&with_reason).await.unwrap();
    let all = bodies(&server).await;
    assert_eq!(all[0], j!({"access_token": ACCESS_TOKEN}));
    assert_eq!(all[1], j!({"access_token": ACCESS_TOKEN, "reason_code": "CONNECTION_IS_NON_FUNCTIONAL"}));
}

#[tokio::test]
async fn item_webhook_update_sends_null_to_remove() {
    let server = MockServer::start().await;
    let item = r#"{"item":{"item_id":"i1","webhook":"https://new.example/hook","error":null,"available_products":[],"billed_products":[],"consent_expiration_time":null,"update_type":"background"},"request_id":"r"}"#;
    Mock::given(method("POST"))
        .and(path("/item/webhook/update"))
        .respond_with(json(item))
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&server);
    let updated = c.item_webhook_update(&token(), Some("https://new.example/hook")).await.unwrap();
    assert_eq!(updated.item.webhook.as_deref(), Some("https://new.example/hook"));
    c.item_webhook_update(&token(), None).await.unwrap();
    let all = bodies(&server).await;
    assert_eq!(all[0], j!({"access_token": ACCESS_TOKEN, "webhook": "https://new.example/hook"}));
    assert_eq!(all[1], j!({"access_token": ACCESS_TOKEN, "webhook": null}));
}

const ACCOUNTS: &str = r#"{"accounts":[],"item":{"item_id":"i1","webhook":null,"error":null,"available_products":[],"billed_products":[],"consent_expiration_time":null,"update_type":"background"},"request_id":"r"}"#;

#[tokio::test]
async fn accounts_get_and_balance_get_options() {
    let server = MockServer::start().await;
    expect_call(&server, "/accounts/get", ACCOUNTS).await;
    Mock::given(method("POST"))
        .and(path("/accounts/balance/get"))
        .and(header("PLAID-SECRET", SECRET))
        .respond_with(json(ACCOUNTS))
        .expect(2)
        .mount(&server)
        .await;
    let c = client(&server);
    c.accounts_get(&AccountsGetRequest::new(token()).account_ids(["a1"])).await.unwrap();
    c.accounts_balance_get(&AccountsBalanceGetRequest::new(token())).await.unwrap();
    c.accounts_balance_get(
        &AccountsBalanceGetRequest::new(token())
            .account_ids(["a1", "a2"])
            .min_last_updated_datetime(Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 0).unwrap()),
    )
    .await
    .unwrap();
    let all = bodies(&server).await;
    assert_eq!(all[0], j!({"access_token": ACCESS_TOKEN, "options": {"account_ids": ["a1"]}}));
    assert_eq!(all[1], j!({"access_token": ACCESS_TOKEN}));
    assert_eq!(
        all[2],
        j!({"access_token": ACCESS_TOKEN, "options": {
            "account_ids": ["a1", "a2"],
            "min_last_updated_datetime": "2024-05-01T12:30:00Z"
        }})
    );
}

#[tokio::test]
async fn transactions_sync_sends_cursor_and_count_only_when_set() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/transactions/sync"))
        .and(header("Plaid-Version", "2020-09-14"))
        .respond_with(json(
            r#"{"added":[],"modified":[],"removed":[],"accounts":[],"next_cursor":"","has_more":false,"transactions_update_status":"NOT_READY","request_id":"r"}"#,
        ))
        .expect(3)
        .mount(&server)
        .await;
    let c = client(&server);
    c.transactions_sync(&TransactionsSyncRequest::new(token())).await.unwrap();
    c.transactions_sync(&TransactionsSyncRequest::new(token()).cursor("").count(500)).await.unwrap();
    let page = c
        .transactions_sync(
            &TransactionsSyncRequest::new(token()).cursor("CURSOR+/=").count(500).include_original_description(true),
        )
        .await
        .unwrap();
    assert_eq!(page.transactions_update_status, plaid::TransactionsUpdateStatus::NotReady);
    assert_eq!(page.next_cursor, "");
    let all = bodies(&server).await;
    assert_eq!(all[0], j!({"access_token": ACCESS_TOKEN}));
    assert_eq!(all[1], j!({"access_token": ACCESS_TOKEN, "count": 500}));
    assert_eq!(
        all[2],
        j!({"access_token": ACCESS_TOKEN, "cursor": "CURSOR+/=", "count": 500,
            "options": {"include_original_description": true}})
    );
}

#[tokio::test]
async fn webhook_verification_key_get() {
    let server = MockServer::start().await;
    expect_call(
        &server,
        "/webhook_verification_key/get",
        r#"{"key":{"alg":"ES256","created_at":1560466150,"crv":"P-256","expired_at":null,"kid":"bfbd5111-8e33-4643-8ced-b2e642a72f3c","kty":"EC","use":"sig","x":"hKXLGIjWvCBv-cP5euCTxl8g9GLG9zHo_3pO5NN1DwQ","y":"shhexqPB7YffGn6fR6h2UhTSuCtPmfzQJ6ENVIoO4Ys"},"request_id":"RZ6Omi1bzzwDaLo"}"#,
    )
    .await;
    let response = client(&server).webhook_verification_key_get("bfbd5111-8e33-4643-8ced-b2e642a72f3c").await.unwrap();
    assert_eq!(response.key.kid, "bfbd5111-8e33-4643-8ced-b2e642a72f3c");
    assert_eq!(response.key.key_use, "sig");
    assert_eq!(response.key.expired_at, None);
    assert_eq!(response.key.created_at, 1560466150);
    assert_eq!(only_body(&server).await, j!({"key_id": "bfbd5111-8e33-4643-8ced-b2e642a72f3c"}));
}

#[tokio::test]
async fn sandbox_public_token_create_and_fire_webhook() {
    let server = MockServer::start().await;
    expect_call(
        &server,
        "/sandbox/public_token/create",
        r#"{"public_token":"public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d","request_id":"Aim3b"}"#,
    )
    .await;
    expect_call(&server, "/sandbox/item/fire_webhook", r#"{"webhook_fired":true,"request_id":"1vwmF5TBQwiqfwP"}"#)
        .await;
    let c = client(&server);
    let created = c
        .sandbox_public_token_create(
            &SandboxPublicTokenCreateRequest::new("ins_109508", [Product::Transactions])
                .webhook("https://example.com/hook")
                .credentials("user_good", "pass_good")
                .days_requested(730),
        )
        .await
        .unwrap();
    assert_eq!(created.public_token.expose_secret(), "public-sandbox-b0e2c4ee-a763-4df5-bfe9-46a46bce993d");
    let fired = c
        .sandbox_item_fire_webhook(&SandboxItemFireWebhookRequest {
            access_token: token(),
            webhook_type: Some(WebhookType::Transactions),
            webhook_code: WebhookCode::SyncUpdatesAvailable,
        })
        .await
        .unwrap();
    assert!(fired.webhook_fired);
    let all = bodies(&server).await;
    assert_eq!(
        all[0],
        j!({
            "institution_id": "ins_109508",
            "initial_products": ["transactions"],
            "options": {
                "webhook": "https://example.com/hook",
                "override_username": "user_good",
                "override_password": "pass_good",
                "transactions": {"days_requested": 730}
            }
        })
    );
    assert_eq!(
        all[1],
        j!({"access_token": ACCESS_TOKEN, "webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE"})
    );
}

#[tokio::test]
async fn base_url_path_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/plaid/item/get"))
        .respond_with(json(
            r#"{"item":{"item_id":"i1","webhook":null,"error":null,"available_products":[],"billed_products":[],"consent_expiration_time":null,"update_type":"background"},"request_id":"r1"}"#,
        ))
        .expect(1)
        .mount(&server)
        .await;
    let mut config = config(&server);
    config.environment = format!("{}/plaid/", server.uri()).parse().unwrap();
    let c = plaid::PlaidClient::new(config).unwrap();
    c.item_get(&token()).await.unwrap();
}
