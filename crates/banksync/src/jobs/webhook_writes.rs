//! Group commit for the webhook receiver: deliveries that arrive while one write is under way are recorded together,
//! in one transaction (`Store::record_webhooks_and_enqueue`).
//!
//! Each verified SYNC_UPDATES_AVAILABLE delivery is one write transaction (record it, queue its Item's sync). On
//! SQLite every write goes through one connection, so at 16 connections the transactions queued behind each other and
//! their count bounded receipt: ~0.5 ms each on this 2-core machine, a ceiling near 2,000 webhooks/s, lower on a
//! slower machine. Plaid sends them in bursts (one per Item after a bank's nightly batch), exactly when they queue.
//! Batched, the burst pays one transaction's begin and commit per batch instead of per delivery: 2,300 → 5,000+
//! webhooks/s, p99 14 → 6-8 ms (`benches/webhook_receiver`, interleaved). PostgreSQL does not batch (see
//! `JobQueue::record_webhook_sync`): its pool runs the transactions side by side.
//!
//! No timer: a delivery that finds no write under way starts one at once (a lone webhook waits for nothing); the
//! ones that arrive meanwhile form the next batch. The writer is a task of its own, so a caller that goes away (its
//! connection closed) leaves the others' writes alone.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt as _;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::store::{Store, StoreError, WebhookSync, WebhookSyncOutcome};

/// Deliveries per transaction at most: bounds how long one batch holds SQLite's writer (a sync's commit waits
/// behind it) and the work redone one by one should the batch fail.
const MAX_BATCH: usize = 64;

type Reply = oneshot::Sender<Result<WebhookSyncOutcome, StoreError>>;

#[derive(Default)]
pub(super) struct WebhookWrites {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: Vec<(WebhookSync, Reply)>,
    /// A writer task is running: it takes what is waiting before it stops.
    writing: bool,
}

impl WebhookWrites {
    /// Records `delivery` (in a batch with whatever else is waiting) and returns its outcome.
    pub(super) async fn record(
        self: &Arc<Self>,
        store: &Arc<Store>,
        delivery: WebhookSync,
    ) -> Result<WebhookSyncOutcome, StoreError> {
        let (reply, outcome) = oneshot::channel();
        let start_writer = {
            let mut state = self.state.lock();
            state.waiting.push((delivery, reply));
            !std::mem::replace(&mut state.writing, true)
        };
        if start_writer {
            tokio::spawn(Arc::clone(self).write_until_idle(Arc::clone(store)));
        }
        outcome.await.unwrap_or_else(|_| Err(StoreError::Other(anyhow::anyhow!("the webhook write failed (panicked)"))))
    }

    async fn write_until_idle(self: Arc<Self>, store: Arc<Store>) {
        loop {
            let batch: Vec<_> = {
                let mut state = self.state.lock();
                if state.waiting.is_empty() {
                    state.writing = false;
                    return;
                }
                let n = state.waiting.len().min(MAX_BATCH);
                state.waiting.drain(..n).collect()
            };
            // A panic fails this batch's callers (their replies are dropped), never the ones still waiting.
            if AssertUnwindSafe(write_batch(&store, batch)).catch_unwind().await.is_err() {
                tracing::error!(
                    "recording a batch of webhooks panicked; its deliveries answer 500 and Plaid retries them"
                );
            }
        }
    }
}

async fn write_batch(store: &Store, batch: Vec<(WebhookSync, Reply)>) {
    let (deliveries, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    match store.record_webhooks_and_enqueue(&deliveries).await {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        // Nothing of the batch was recorded. Each one alone then, so a delivery that cannot be stored fails only
        // itself (answered 500; Plaid retries it) and a passing outage fails each on its own merits.
        Err(e) if deliveries.len() > 1 => {
            tracing::debug!(error = %e, deliveries = deliveries.len(), "a batch of webhooks failed; recording them one by one");
            for (d, reply) in deliveries.iter().zip(replies) {
                let _ = reply.send(store.record_webhook_and_enqueue(&d.event, &d.item, &d.job).await);
            }
        }
        Err(e) => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
    }
}
