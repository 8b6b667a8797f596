//! The audit trail of Plaid calls: every HTTP attempt (endpoint, request_id, outcome, latency) becomes a
//! `plaid_calls` row.
//!
//! The client reports attempts inline on the request path, so the observer only pushes the record into a bounded
//! channel; one writer task drains it into the store, everything waiting at once in one statement (a large sync's
//! page calls no longer queue a commit each behind its writes on SQLite's one writer). A full channel (the database
//! far behind) drops records with a warning rather than slowing down calls to Plaid. Whoever stops the process
//! calls [`AuditTrail::flush`] first: the queued records were otherwise lost with it.
//!
//! Which Item a call concerns is not in the request the client sees (it only has the access token, which must not
//! be logged), so the engines tag their calls: code run inside [`with_item`] attributes its calls to that Item
//! through a task-local.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::Utc;
use plaid::{CallObserver, CallOutcome, CallRecord};
use tokio::sync::{mpsc, oneshot};

use crate::domain::{PlaidCall, PlaidItemId};
use crate::store::Store;

/// Records waiting for the writer before new ones are dropped.
const QUEUE: usize = 4096;
/// Records the writer takes from the queue at once (one statement).
const BATCH: usize = 512;
/// How long [`AuditTrail::flush`] waits: a database that stopped answering must not hold up a shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

tokio::task_local! {
    static ITEM_ID: Arc<str>;
}

/// Runs `f` with its Plaid calls attributed to Plaid's `item_id`.
pub async fn with_item<F: Future>(item_id: &PlaidItemId, f: F) -> F::Output {
    ITEM_ID.scope(Arc::from(item_id.as_str()), f).await
}

/// The Item the current task's calls are attributed to, if any.
pub fn current_item() -> Option<PlaidItemId> {
    ITEM_ID.try_with(|id| PlaidItemId::from(&**id)).ok()
}

enum Message {
    Call(PlaidCall),
    /// Answered once every call queued before it is written.
    Flush(oneshot::Sender<()>),
}

/// The writer task and the observer feeding it: [`AuditTrail::observer`] goes to the Plaid client. The task ends
/// once the trail and every observer it handed out are dropped.
#[derive(Clone)]
pub struct AuditTrail {
    observer: Arc<AuditObserver>,
}

impl AuditTrail {
    /// Starts the writer task; must be called inside a Tokio runtime.
    pub fn start(store: Arc<Store>) -> AuditTrail {
        let (tx, rx) = mpsc::channel::<Message>(QUEUE);
        tokio::spawn(write_calls(store, rx));
        AuditTrail { observer: Arc::new(AuditObserver { tx, dropped: AtomicU64::new(0) }) }
    }

    /// For `PlaidClient::with_observer`.
    pub fn observer(&self) -> Arc<dyn CallObserver> {
        self.observer.clone()
    }

    /// Waits until every call observed before now is written (or could not be: the writer logs that), at most
    /// `FLUSH_TIMEOUT`.
    pub async fn flush(&self) {
        let (done, written) = oneshot::channel();
        let flushed = async {
            if self.observer.tx.send(Message::Flush(done)).await.is_ok() {
                let _ = written.await;
            }
        };
        if tokio::time::timeout(FLUSH_TIMEOUT, flushed).await.is_err() {
            tracing::warn!("the Plaid call audit trail did not finish writing in time; its last records may be lost");
        }
    }
}

async fn write_calls(store: Arc<Store>, mut rx: mpsc::Receiver<Message>) {
    let mut messages = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut messages, BATCH).await > 0 {
        let mut calls = Vec::with_capacity(messages.len());
        let mut flushes = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Call(call) => calls.push(call),
                Message::Flush(done) => flushes.push(done),
            }
        }
        if !calls.is_empty()
            && let Err(e) = store.record_plaid_calls(&calls).await
        {
            tracing::warn!(error = %e, calls = calls.len(), "could not record Plaid calls");
        }
        for done in flushes {
            let _ = done.send(());
        }
    }
}

struct AuditObserver {
    tx: mpsc::Sender<Message>,
    dropped: AtomicU64,
}

impl CallObserver for AuditObserver {
    fn on_call(&self, call: &CallRecord) {
        let record = to_row(call, current_item());
        if self.tx.try_send(Message::Call(record)).is_err() {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            // Once per thousand, so a stalled database does not also flood the log.
            if dropped % 1000 == 1 {
                tracing::warn!(dropped, "Plaid call audit queue full or closed; dropping records");
            }
        }
    }
}

fn to_row(call: &CallRecord, item_id: Option<PlaidItemId>) -> PlaidCall {
    let (error_type, error_code) = match &call.outcome {
        CallOutcome::ApiError { error_type, error_code } => {
            (Some(error_type.as_str().to_owned()), Some(error_code.clone()).filter(|c| !c.is_empty()))
        }
        _ => (None, None),
    };
    let latency = chrono::Duration::from_std(call.latency).unwrap_or(chrono::Duration::zero());
    PlaidCall {
        endpoint: call.endpoint.path().to_owned(),
        item_id,
        request_id: call.request_id.clone(),
        http_status: call.http_status.map(i64::from),
        outcome: call.outcome.label().to_owned(),
        error_type,
        error_code,
        latency_ms: i64::try_from(call.latency.as_millis()).unwrap_or(i64::MAX),
        // When the call started.
        at: Utc::now() - latency,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use plaid::{Endpoint, ErrorType};

    use super::*;

    #[tokio::test]
    async fn calls_inside_with_item_are_attributed() {
        assert_eq!(current_item(), None);
        let inside = with_item(&"item-1".into(), async { current_item() }).await;
        assert_eq!(inside.as_ref().map(PlaidItemId::as_str), Some("item-1"));
    }

    #[test]
    fn rows_carry_outcome_and_error_code() {
        let call = CallRecord {
            endpoint: Endpoint::TransactionsSync,
            attempt: 1,
            http_status: Some(400),
            request_id: Some("req-1".into()),
            outcome: CallOutcome::ApiError {
                error_type: ErrorType::ItemError,
                error_code: "ITEM_LOGIN_REQUIRED".into(),
            },
            latency: Duration::from_millis(42),
        };
        let row = to_row(&call, Some("item-1".into()));
        assert_eq!(row.endpoint, "/transactions/sync");
        assert_eq!(row.item_id.as_ref().map(PlaidItemId::as_str), Some("item-1"));
        assert_eq!(row.request_id.as_deref(), Some("req-1"));
        assert_eq!(row.http_status, Some(400));
        assert_eq!(row.outcome, "api_error");
        assert_eq!(row.error_type.as_deref(), Some("ITEM_ERROR"));
        assert_eq!(row.error_code.as_deref(), Some("ITEM_LOGIN_REQUIRED"));
        assert_eq!(row.latency_ms, 42);
    }
}
