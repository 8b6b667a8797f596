//! Tracing output at TRACE level, ours and our dependencies', never contains secrets.

use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;
use plaid::{PublicToken, TransactionsSyncRequest};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer};

use crate::common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_have_call_metadata_but_no_secrets() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let server = MockServer::start().await;
    Mock::given(path("/item/public_token/exchange"))
        .respond_with(json(&format!(
            r#"{{"access_token":"{ACCESS_TOKEN}","item_id":"item-1","request_id":"exchange-req-1"}}"#
        )))
        .mount(&server)
        .await;
    Mock::given(path("/transactions/sync"))
        .respond_with(plaid_error(400, "ITEM_ERROR", "ITEM_LOGIN_REQUIRED"))
        .mount(&server)
        .await;
    let c = client(&server);
    c.item_public_token_exchange(&PublicToken::new("public-sandbox-hush-hush")).await.unwrap();
    c.transactions_sync(&TransactionsSyncRequest::new(token())).await.unwrap_err();
    drop(_guard);

    let output = String::from_utf8(captured.0.lock().clone()).unwrap();
    assert!(output.contains("plaid call"), "{output}");
    assert!(output.contains("exchange-req-1"), "{output}");
    assert!(output.contains("/item/public_token/exchange"), "{output}");
    assert!(output.contains("req-ITEM_LOGIN_REQUIRED"), "{output}");
    for secret in [SECRET, ACCESS_TOKEN, "hush-hush"] {
        assert!(!output.contains(secret), "{secret} leaked into logs:\n{output}");
    }
}
