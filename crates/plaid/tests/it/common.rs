use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use plaid::{CallObserver, CallRecord, ClientConfig, Environment, PlaidClient, RetryPolicy, SecretString, Timeouts};
use serde_json::Value;
use wiremock::{MockServer, ResponseTemplate};

pub const CLIENT_ID: &str = "test-client-id-5f3a";
pub const SECRET: &str = "test-secret-value-9d1e7c";
pub const ACCESS_TOKEN: &str = "access-sandbox-de3ce8ef-33f8-452c-a685-8671031fc0f6";

pub fn config(server: &MockServer) -> ClientConfig {
    ClientConfig {
        environment: Environment::Custom(server.uri().parse().unwrap()),
        client_id: CLIENT_ID.into(),
        secret: SecretString::from(SECRET),
        timeouts: Timeouts::uniform(Duration::from_secs(5)),
        retry: RetryPolicy::none(),
    }
}

pub fn client(server: &MockServer) -> PlaidClient {
    PlaidClient::new(config(server)).unwrap()
}

/// Retries with tiny backoffs so tests stay fast.
pub fn retrying_client(server: &MockServer, attempts: u32) -> PlaidClient {
    client(server).with_retry(RetryPolicy::new(attempts, Duration::from_millis(5)))
}

pub fn token() -> plaid::AccessToken {
    plaid::AccessToken::new(ACCESS_TOKEN)
}

pub fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.as_bytes().to_vec(), "application/json")
}

pub fn plaid_error(status: u16, error_type: &str, code: &str) -> ResponseTemplate {
    let body = format!(
        r#"{{"display_message":null,"documentation_url":"https://plaid.com/docs/errors/","error_code":"{code}","error_message":"developer message for {code}","error_type":"{error_type}","request_id":"req-{code}","suggested_action":null}}"#
    );
    ResponseTemplate::new(status).set_body_raw(body.into_bytes(), "application/json")
}

/// Bodies of every request the server received, as JSON.
pub async fn bodies(server: &MockServer) -> Vec<Value> {
    server.received_requests().await.unwrap().iter().map(|r| serde_json::from_slice(&r.body).unwrap()).collect()
}

#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<CallRecord>>);

impl CallObserver for Recorder {
    fn on_call(&self, call: &CallRecord) {
        self.0.lock().push(call.clone());
    }
}

impl Recorder {
    pub fn attach(client: &PlaidClient) -> (PlaidClient, Arc<Recorder>) {
        let recorder = Arc::new(Recorder::default());
        (client.with_observer(recorder.clone()), recorder)
    }

    pub fn records(&self) -> Vec<CallRecord> {
        self.0.lock().clone()
    }
}
