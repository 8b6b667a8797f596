//! Each error class, and that no secret ever shows up in Debug or Display.

use std::time::{Duration, Instant};

use plaid::{
    AccountsBalanceGetRequest, ClientConfig, Environment, Error, ErrorType, PlaidClient, PublicToken, RetryPolicy,
    SecretString, Timeouts, TransactionsSyncRequest,
};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

fn assert_no_secrets(text: &str) {
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(!text.contains(ACCESS_TOKEN), "access token leaked: {text}");
    assert!(!text.contains("access-sandbox"), "access token leaked: {text}");
}

#[tokio::test]
async fn api_error_carries_every_plaid_error_field() {
    let server = MockServer::start().await;
    Mock::given(path("/item/get"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"display_message":null,"documentation_url":"https://plaid.com/docs/errors/invalid-input/#invalid_access_token","error_code":"INVALID_ACCESS_TOKEN","error_code_reason":null,"error_message":"provided access token is in an invalid format. expected format: access-<environment>-<identifier>","error_type":"INVALID_INPUT","request_id":"HNTDNrA8F1shFEW","suggested_action":"Check the token","causes":[],"status":null}"#,
            "application/json",
        ))
        .expect(1)
        .mount(&server)
        .await;
    let err = retrying_client(&server, 3).item_get(&token()).await.unwrap_err();
    let Error::Api { status, error } = &err else { panic!("expected Api, got {err:?}") };
    assert_eq!(*status, 400);
    assert_eq!(error.error_type, ErrorType::InvalidInput);
    assert_eq!(error.error_code, "INVALID_ACCESS_TOKEN");
    assert!(error.error_message.starts_with("provided access token"));
    assert_eq!(error.display_message, None);
    assert_eq!(error.request_id.as_deref(), Some("HNTDNrA8F1shFEW"));
    assert_eq!(error.suggested_action.as_deref(), Some("Check the token"));
    assert!(error.documentation_url.is_some());
    assert!(err.has_code("INVALID_ACCESS_TOKEN"));
    assert_eq!(err.request_id(), Some("HNTDNrA8F1shFEW"));
    assert!(!err.is_transient());
    let shown = err.to_string();
    assert!(shown.contains("INVALID_INPUT/INVALID_ACCESS_TOKEN"), "{shown}");
    assert!(shown.contains("HNTDNrA8F1shFEW"), "{shown}");
    assert_no_secrets(&shown);
    assert_no_secrets(&format!("{err:?}"));
}

#[tokio::test]
async fn timeout_is_its_own_error_and_honours_the_configured_limit() {
    let server = MockServer::start().await;
    Mock::given(path("/item/get"))
        .respond_with(json(r#"{"request_id":"late"}"#).set_delay(Duration::from_secs(120)))
        .mount(&server)
        .await;
    let limit = Duration::from_millis(200);
    let c = client(&server).with_timeouts(Timeouts::uniform(limit));
    let started = Instant::now();
    // The answer would take two minutes: the call ending well within one (a generous bound on waiting, not a
    // threshold a loaded machine could break) shows the configured limit ended it, and not before its time.
    let err = tokio::time::timeout(Duration::from_secs(60), c.item_get(&token()))
        .await
        .expect("the configured 200 ms limit ended the call")
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { endpoint: plaid::Endpoint::ItemGet }), "{err:?}");
    assert!(started.elapsed() >= limit, "gave up after {:?}", started.elapsed());
    assert!(err.is_transient());
    assert_no_secrets(&format!("{err} {err:?}"));
}

#[tokio::test]
async fn balance_uses_its_own_longer_timeout() {
    let server = MockServer::start().await;
    let body = r#"{"accounts":[],"item":{"item_id":"i"},"request_id":"r"}"#;
    Mock::given(path("/accounts/balance/get"))
        .respond_with(json(body).set_delay(Duration::from_millis(600)))
        .mount(&server)
        .await;
    Mock::given(path("/accounts/get"))
        .respond_with(json(body).set_delay(Duration::from_millis(600)))
        .mount(&server)
        .await;
    let c = client(&server).with_timeouts(Timeouts {
        connect: Duration::from_secs(1),
        default: Duration::from_millis(200),
        transactions_sync: Duration::from_millis(200),
        // Far above the bank's 600 ms, so only a wrong choice of timeout (not a slow machine) fails the call.
        balance: Duration::from_secs(30),
    });
    c.accounts_balance_get(&AccountsBalanceGetRequest::new(token()))
        .await
        .expect("balance waits longer than the default timeout");
    let err = c.accounts_get(&plaid::AccountsGetRequest::new(token())).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn transport_error_for_a_closed_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = PlaidClient::new(ClientConfig {
        environment: format!("http://127.0.0.1:{port}").parse().unwrap(),
        client_id: CLIENT_ID.into(),
        secret: SecretString::from(SECRET),
        timeouts: Timeouts::uniform(Duration::from_secs(2)),
        retry: RetryPolicy::none(),
    })
    .unwrap();
    let err = c.item_get(&token()).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    assert!(std::error::Error::source(&err).is_some());
    assert_no_secrets(&format!("{err} {err:?}"));
}

#[tokio::test]
async fn decode_errors_name_the_problem_but_not_the_values() {
    let server = MockServer::start().await;
    Mock::given(path("/item/get"))
        .respond_with(json(r#"{"item":"access-sandbox-should-not-leak","request_id":"r"}"#))
        .mount(&server)
        .await;
    Mock::given(path("/accounts/get")).respond_with(json("this is not json")).mount(&server).await;
    Mock::given(path("/transactions/sync"))
        .respond_with(json(r#"{"added":[{"transaction_id":"t"}],"request_id":"r"}"#))
        .mount(&server)
        .await;
    Mock::given(path("/transactions/refresh"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad gateway</html>"))
        .mount(&server)
        .await;
    let c = client(&server);

    let err = c.item_get(&token()).await.unwrap_err();
    let Error::Decode { status, message, .. } = &err else { panic!("{err:?}") };
    assert_eq!(*status, 200);
    assert!(message.contains("invalid type"), "{message}");
    assert_no_secrets(&format!("{err} {err:?}"));

    let err = c.accounts_get(&plaid::AccountsGetRequest::new(token())).await.unwrap_err();
    assert!(matches!(err, Error::Decode { status: 200, .. }), "{err:?}");

    let err = c.transactions_sync(&TransactionsSyncRequest::new(token())).await.unwrap_err();
    let Error::Decode { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("missing field"), "{message}");

    let err = c.transactions_refresh(&token()).await.unwrap_err();
    assert!(matches!(err, Error::Decode { status: 502, .. }), "{err:?}");
    assert!(!err.to_string().contains("Bad gateway"));
    assert!(err.is_transient());
}

#[tokio::test]
async fn secrets_never_appear_in_debug_output() {
    let server = MockServer::start().await;
    Mock::given(path("/item/public_token/exchange"))
        .respond_with(json(&format!(r#"{{"access_token":"{ACCESS_TOKEN}","item_id":"item-1","request_id":"r"}}"#)))
        .mount(&server)
        .await;
    let c = client(&server);
    assert_no_secrets(&format!("{c:?}"));
    assert_no_secrets(&format!("{:?}", config(&server)));

    let public = PublicToken::new("public-sandbox-123-secretish");
    assert!(!format!("{public:?}").contains("secretish"));
    let response = c.item_public_token_exchange(&public).await.unwrap();
    assert_no_secrets(&format!("{response:?}"));
    assert_eq!(response.access_token.expose_secret(), ACCESS_TOKEN);

    let request = TransactionsSyncRequest::new(token()).cursor("c");
    assert_no_secrets(&format!("{request:?}"));
}

#[test]
fn environment_and_config_errors() {
    let err = "staging".parse::<Environment>().unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    let bad =
        PlaidClient::new(ClientConfig::new(Environment::Sandbox, "id", SecretString::from("bad\nsecret"))).unwrap_err();
    assert!(matches!(bad, Error::Config(_)));
    assert!(!bad.to_string().contains("bad\nsecret"));
}

#[test]
fn custom_environments_must_be_http() {
    let config =
        ClientConfig::new(Environment::Custom("file:///etc/passwd".parse().unwrap()), "id", SecretString::from("s"));
    assert!(matches!(PlaidClient::new(config), Err(Error::Config(_))));
}
