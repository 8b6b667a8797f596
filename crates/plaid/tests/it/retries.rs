//! Retry behaviour end to end, and the observer seeing every attempt.

use std::time::Duration;

use plaid::{
    AccountsBalanceGetRequest, CallOutcome, ClientConfig, Endpoint, Error, ErrorType, PlaidClient, PublicToken,
    RetryPolicy, SecretString, Timeouts, TransactionsSyncRequest,
};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::*;

const SYNC_OK: &str = r#"{"added":[],"modified":[],"removed":[],"accounts":[],"next_cursor":"c1","has_more":false,"transactions_update_status":"HISTORICAL_UPDATE_COMPLETE","request_id":"ok-1"}"#;

async fn fail_then_succeed(server: &MockServer, failure: ResponseTemplate, times: u64) {
    Mock::given(path("/transactions/sync"))
        .respond_with(failure)
        .up_to_n_times(times)
        .expect(times)
        .mount(server)
        .await;
    Mock::given(path("/transactions/sync")).respond_with(json(SYNC_OK)).mount(server).await;
}

async fn sync(c: &PlaidClient) -> Result<plaid::TransactionsSyncResponse, Error> {
    c.transactions_sync(&TransactionsSyncRequest::new(token())).await
}

async fn request_count(server: &MockServer) -> usize {
    server.received_requests().await.unwrap().len()
}

#[tokio::test]
async fn rate_limit_429_then_success() {
    let server = MockServer::start().await;
    fail_then_succeed(&server, plaid_error(429, "RATE_LIMIT_EXCEEDED", "TRANSACTIONS_SYNC_LIMIT"), 1).await;
    let (c, recorder) = Recorder::attach(&retrying_client(&server, 3));
    let page = sync(&c).await.unwrap();
    assert_eq!(page.next_cursor, "c1");
    assert_eq!(request_count(&server).await, 2);

    let records = recorder.records();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].endpoint, Endpoint::TransactionsSync);
    assert_eq!(records[0].attempt, 1);
    assert_eq!(records[0].http_status, Some(429));
    assert_eq!(records[0].request_id.as_deref(), Some("req-TRANSACTIONS_SYNC_LIMIT"));
    assert_eq!(
        records[0].outcome,
        CallOutcome::ApiError {
            error_type: ErrorType::RateLimitExceeded,
            error_code: "TRANSACTIONS_SYNC_LIMIT".into()
        }
    );
    assert_eq!(records[1].attempt, 2);
    assert_eq!(records[1].http_status, Some(200));
    assert_eq!(records[1].request_id.as_deref(), Some("ok-1"));
    assert_eq!(records[1].outcome, CallOutcome::Ok);
}

#[tokio::test]
async fn api_error_500_three_times_then_success() {
    let server = MockServer::start().await;
    fail_then_succeed(&server, plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR"), 3).await;
    let (c, recorder) = Recorder::attach(&retrying_client(&server, 4));
    sync(&c).await.unwrap();
    assert_eq!(request_count(&server).await, 4);
    let attempts: Vec<u32> = recorder.records().iter().map(|r| r.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
}

#[tokio::test]
async fn gives_up_after_max_attempts_with_the_last_error() {
    let server = MockServer::start().await;
    Mock::given(path("/transactions/sync"))
        .respond_with(plaid_error(500, "API_ERROR", "INTERNAL_SERVER_ERROR"))
        .expect(3)
        .mount(&server)
        .await;
    let err = sync(&retrying_client(&server, 3)).await.unwrap_err();
    assert!(err.has_code("INTERNAL_SERVER_ERROR"), "{err:?}");
}

#[tokio::test]
async fn institution_not_responding_is_retried() {
    let server = MockServer::start().await;
    fail_then_succeed(&server, plaid_error(400, "INSTITUTION_ERROR", "INSTITUTION_NOT_RESPONDING"), 2).await;
    sync(&retrying_client(&server, 3)).await.unwrap();
    assert_eq!(request_count(&server).await, 3);
}

#[tokio::test]
async fn permanent_errors_are_sent_exactly_once() {
    for (status, error_type, code) in [
        (400, "INVALID_REQUEST", "MISSING_FIELDS"),
        (400, "INVALID_INPUT", "INVALID_ACCESS_TOKEN"),
        (400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED"),
        (400, "TRANSACTIONS_ERROR", "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION"),
        (400, "INSTITUTION_ERROR", "INSTITUTION_NO_LONGER_SUPPORTED"),
    ] {
        let server = MockServer::start().await;
        Mock::given(path("/transactions/sync"))
            .respond_with(plaid_error(status, error_type, code))
            .expect(1)
            .mount(&server)
            .await;
        let (c, recorder) = Recorder::attach(&retrying_client(&server, 5));
        let err = sync(&c).await.unwrap_err();
        assert!(err.has_code(code), "{err:?}");
        assert_eq!(request_count(&server).await, 1, "{code}");
        assert_eq!(recorder.records().len(), 1);
    }
}

#[tokio::test]
async fn timeouts_are_retried_only_where_a_repeat_is_harmless() {
    let server = MockServer::start().await;
    let slow = json(r#"{"request_id":"slow"}"#).set_delay(Duration::from_secs(2));
    for p in ["/transactions/sync", "/item/public_token/exchange", "/accounts/balance/get"] {
        Mock::given(path(p)).respond_with(slow.clone()).mount(&server).await;
    }
    let (c, recorder) =
        Recorder::attach(&retrying_client(&server, 3).with_timeouts(Timeouts::uniform(Duration::from_millis(150))));

    let err = sync(&c).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    let err = c.item_public_token_exchange(&PublicToken::new("public-sandbox-1")).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));
    let err = c.accounts_balance_get(&AccountsBalanceGetRequest::new(token())).await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }));

    let count = |endpoint| {
        recorder
            .records()
            .iter()
            .filter(|r| r.endpoint == endpoint)
            .inspect(|r| assert_eq!(r.outcome, CallOutcome::Timeout))
            .count()
    };
    assert_eq!(count(Endpoint::TransactionsSync), 3);
    assert_eq!(count(Endpoint::ItemPublicTokenExchange), 1);
    assert_eq!(count(Endpoint::AccountsBalanceGet), 1);
}

#[tokio::test]
async fn balance_rate_limit_is_retried() {
    let server = MockServer::start().await;
    Mock::given(path("/accounts/balance/get"))
        .respond_with(plaid_error(429, "RATE_LIMIT_EXCEEDED", "BALANCE_LIMIT"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(path("/accounts/balance/get"))
        .respond_with(json(r#"{"accounts":[],"item":{"item_id":"i"},"request_id":"r"}"#))
        .mount(&server)
        .await;
    retrying_client(&server, 2).accounts_balance_get(&AccountsBalanceGetRequest::new(token())).await.unwrap();
    assert_eq!(request_count(&server).await, 2);
}

#[tokio::test]
async fn refused_connections_are_retried_even_for_the_exchange() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = PlaidClient::new(ClientConfig {
        environment: format!("http://127.0.0.1:{port}").parse().unwrap(),
        client_id: CLIENT_ID.into(),
        secret: SecretString::from(SECRET),
        timeouts: Timeouts::uniform(Duration::from_secs(2)),
        retry: RetryPolicy::new(3, Duration::from_millis(5)),
    })
    .unwrap();
    let (c, recorder) = Recorder::attach(&c);
    let err = c.item_public_token_exchange(&PublicToken::new("public-sandbox-1")).await.unwrap_err();
    assert!(matches!(err, Error::Transport { .. }), "{err:?}");
    let records = recorder.records();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.outcome == CallOutcome::Transport && r.http_status.is_none()));
}

#[tokio::test]
async fn no_retries_with_policy_none() {
    let server = MockServer::start().await;
    Mock::given(path("/transactions/sync"))
        .respond_with(plaid_error(429, "RATE_LIMIT_EXCEEDED", "TRANSACTIONS_SYNC_LIMIT"))
        .expect(1)
        .mount(&server)
        .await;
    let err = sync(&client(&server)).await.unwrap_err();
    assert!(err.is_transient());
}
