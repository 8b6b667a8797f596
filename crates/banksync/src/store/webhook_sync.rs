//! A verified SYNC_UPDATES_AVAILABLE delivery in one write transaction: the delivery recorded (already processed)
//! and its Item's sync queued, never before the Item's rate-limit hold ends.
//!
//! This is the webhook receiver's hot path (Plaid sends one per Item per update, a burst after a bank's nightly
//! batch). Done as separate calls it took three commits on the single writer (record, enqueue, mark processed) and
//! a read of the Item's sync state before queueing; on SQLite the writer serializes every webhook, so those commits
//! bounded the receiver's throughput. One transaction is one commit, and the delivery can no longer be recorded
//! without its job (or the other way round).

use super::codec;
use super::exec::Sql;
use super::{Result, Store, StoreError};
use crate::domain::{Enqueued, ItemRef, NewJob, NewWebhookEvent, WebhookRecord};

/// [`super::audit`]'s insert, with `processed_at` set: the job is queued in the same transaction.
const INSERT_PROCESSED_WEBHOOK: &str = "INSERT INTO webhook_events (id, dedupe_key, item_id, webhook_type, \
    webhook_code, body, received_at, processed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
    ON CONFLICT (dedupe_key) DO NOTHING";
const HOLD_UNTIL: &str = "SELECT hold_until FROM item_sync_state WHERE item_id = $1";

impl Store {
    /// Records a delivery once per dedupe key and, when it is new, queues `job` (coalescing like
    /// [`Store::enqueue_job`]) no earlier than the hold on `item`. A repeat delivery only counts as a duplicate and
    /// queues nothing (the caller decides, as for [`Store::record_webhook_event`]).
    pub async fn record_webhook_and_enqueue(
        &self,
        event: &NewWebhookEvent,
        item: &ItemRef,
        job: &NewJob,
    ) -> Result<(WebhookRecord, Option<Enqueued>)> {
        let now = chrono::Utc::now();
        let id = uuid::Uuid::new_v4().to_string();
        let mut tx = self.writer.begin().await?;
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
            tx.commit().await?;
            return Ok((WebhookRecord { id, is_new: false, duplicates }, None));
        }
        let hold: Option<(Option<String>,)> = tx.fetch_optional(&Sql::new(HOLD_UNTIL).bind(item)).await?;
        let hold = codec::parse_ts_opt(hold.and_then(|(h,)| h).as_deref())?;
        let run_after = hold.map_or(job.run_after, |h| h.max(job.run_after));
        let job_id = uuid::Uuid::new_v4().to_string();
        let enqueue = Sql::new(super::jobs::ENQUEUE_JOB)
            .bind(&job_id)
            .bind(&job.kind)
            .bind(&job.coalesce_key)
            .bind(&job.user_id)
            .bind(&job.item_id)
            .bind(&job.payload)
            .bind(job.max_attempts.max(1))
            .bind(codec::ts(run_after))
            .bind(codec::ts(now));
        let (queued,): (String,) = tx.fetch_optional(&enqueue).await?.ok_or(StoreError::NotFound)?;
        tx.commit().await?;
        let coalesced = queued != job_id;
        Ok((WebhookRecord { id, is_new: true, duplicates: 0 }, Some(Enqueued { job_id: queued.into(), coalesced })))
    }
}
