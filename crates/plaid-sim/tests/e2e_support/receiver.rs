//! A webhook receiver on loopback: an axum app that records each POST's headers and raw body
//! bytes exactly as they arrived, for verification in the test.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use plaid::Webhook;
use plaid::webhook::VERIFICATION_HEADER;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;

/// One delivery as received.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Delivery {
    /// The `Plaid-Verification` header, if present and ASCII.
    pub fn verification(&self) -> Option<&str> {
        self.headers.get(VERIFICATION_HEADER).and_then(|v| v.to_str().ok())
    }

    /// The body parsed by the client's webhook model (only after verifying it).
    pub fn webhook(&self) -> Webhook {
        Webhook::from_slice(&self.body).expect("webhook body parses")
    }

    fn code(&self) -> Option<String> {
        let value: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        value["webhook_code"].as_str().map(str::to_owned)
    }
}

pub struct Receiver {
    /// Where to point an Item's webhook.
    pub url: String,
    deliveries: Mutex<mpsc::UnboundedReceiver<Delivery>>,
    server: JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let app = Router::new().route("/plaid/webhook", post(record)).with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("receiver binds loopback");
        let addr = listener.local_addr().expect("receiver address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        Receiver { url: format!("http://{addr}/plaid/webhook"), deliveries: Mutex::new(rx), server }
    }

    /// Waits (up to 10 s) for the next delivery with `webhook_code`, skipping others.
    pub async fn next_with_code(&self, code: &str) -> Delivery {
        let mut deliveries = self.deliveries.lock().await;
        let wait = async {
            loop {
                let delivery = deliveries.recv().await.expect("receiver channel open");
                if delivery.code().as_deref() == Some(code) {
                    return delivery;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("no {code} webhook arrived at {} within 10 s", self.url))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn record(State(tx): State<mpsc::UnboundedSender<Delivery>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let _ = tx.send(Delivery { headers, body });
    StatusCode::OK
}
