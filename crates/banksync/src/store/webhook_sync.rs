//! A verified SYNC_UPDATES_AVAILABLE delivery in one write transaction: the delivery recorded (already processed)
//! and its Item's sync queued, never before the Item's rate-limit hold ends.
//!
//! This is the webhook receiver's hot path (Plaid sends one per Item per update, a burst after a bank's nightly
//! batch). Done as separate calls it took three commits on the single writer (record, enqueue, mark processed) and
//! a read of the Item's sync state before queueing; on SQLite the writer serializes every webhook, so those commits
//! bounded the receiver's throughput. One transaction is one commit, and the delivery can no longer be recorded
//! without its job (or the other way round).

use super::codec;
use super::exec::{Sql, Tx};
use super::{Result, Store, StoreError};
use crate::domain::{Enqueued, ItemRef, NewJob, NewWebhookEvent, WebhookRecord};

/// [`super::audit`]'s insert, with `processed_at` set: the job is queued in the same transaction.
const INSERT_PROCESSED_WEBHOOK: &str = "INSERT INTO webhook_events (id, dedupe_key, item_id, webhook_type, \
    webhook_code, body, received_at, processed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
    ON CONFLICT (dedupe_key) DO NOTHING";
/// [`super::jobs::ENQUEUE_JOB`] (keep the two in step), its `run_after` ($8) moved to the end of the Item's
/// rate-limit hold ($10's `hold_until`) when that is later: the hold is read inside the statement, one round trip
/// less on the single writer than reading it first. Timestamps are fixed-width text, so `>` compares them in time.
const ENQUEUE_JOB_AFTER_HOLD: &str = "INSERT INTO jobs (id, kind, coalesce_key, user_id, item_id, payload, state, \
    attempts, max_attempts, run_after, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, \
    COALESCE((SELECT s.hold_until FROM item_sync_state s WHERE s.item_id = $10 AND s.hold_until > $8), $8), $9, $9) \
    ON CONFLICT (kind, coalesce_key) WHERE state = 'queued' DO UPDATE SET \
    run_after = CASE WHEN excluded.run_after < jobs.run_after THEN excluded.run_after ELSE jobs.run_after END, \
    updated_at = excluded.updated_at \
    RETURNING id";

/// One verified SYNC_UPDATES_AVAILABLE delivery to record, with the job it queues when it is new.
#[derive(Debug, Clone)]
pub struct WebhookSync {
    pub event: NewWebhookEvent,
    pub item: ItemRef,
    pub job: NewJob,
}

/// The delivery as recorded, and the job it queued (or joined) if it was new.
pub type WebhookSyncOutcome = (WebhookRecord, Option<Enqueued>);

impl Store {
    /// Records a delivery once per dedupe key and, when it is new, queues `job` (coalescing like
    /// [`Store::enqueue_job`]) no earlier than the hold on `item`. A repeat delivery only counts as a duplicate and
    /// queues nothing (the caller decides, as for [`Store::record_webhook_event`]).
    pub async fn record_webhook_and_enqueue(
        &self,
        event: &NewWebhookEvent,
        item: &ItemRef,
        job: &NewJob,
    ) -> Result<WebhookSyncOutcome> {
        let mut tx = self.writer.begin().await?;
        let outcome = record_and_enqueue(&mut tx, event, item, job).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// [`Store::record_webhook_and_enqueue`] for several deliveries, in order, in one transaction: one commit on
    /// the single writer for all of them (the receiver's group commit, `jobs::webhook_writes`). The outcomes are
    /// those of the calls one after the other; if any fails, none is recorded.
    pub async fn record_webhooks_and_enqueue(&self, deliveries: &[WebhookSync]) -> Result<Vec<WebhookSyncOutcome>> {
        let mut tx = self.writer.begin().await?;
        let mut outcomes = Vec::with_capacity(deliveries.len());
        for d in deliveries {
            outcomes.push(record_and_enqueue(&mut tx, &d.event, &d.item, &d.job).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }
}

/// Inside `tx`: [`Store::record_webhook_and_enqueue`]'s two statements.
async fn record_and_enqueue(
    tx: &mut Tx,
    event: &NewWebhookEvent,
    item: &ItemRef,
    job: &NewJob,
) -> Result<WebhookSyncOutcome> {
    let now = chrono::Utc::now();
    let id = uuid::Uuid::new_v4().to_string();
    let insert = Sql::new(INSERT_PROCESSED_WEBHOOK)
        .bind(&id)
        .bind(&event.dedupe_key)
        .bind(&event.item_id)
        .bind(&event.webhook_type)
        .bind(&event.webhook_code)
        .bind(&event.body)
        .bind(codec::ts(now));
    if tx.execute(&insert).await? == 0 {
        let count = Sql::new(super::audit::COUNT_DUPLICATE_WEBHOOK).bind(&event.dedupe_key);
        let (id, duplicates): (String, i64) = tx.fetch_optional(&count).await?.ok_or(StoreError::NotFound)?;
        return Ok((WebhookRecord { id, is_new: false, duplicates }, None));
    }
    let job_id = uuid::Uuid::new_v4().to_string();
    let enqueue = super::jobs::bind_new_job(Sql::new(ENQUEUE_JOB_AFTER_HOLD), &job_id, job, now).bind(item);
    let (queued,): (String,) = tx.fetch_optional(&enqueue).await?.ok_or(StoreError::NotFound)?;
    let coalesced = queued != job_id;
    Ok((WebhookRecord { id, is_new: true, duplicates: 0 }, Some(Enqueued { job_id: queued.into(), coalesced })))
}
