//! A verified SYNC_UPDATES_AVAILABLE delivery in one write: the delivery recorded (already processed) and its
//! Item's sync queued, never before the Item's rate-limit hold ends.
//!
//! This is the webhook receiver's hot path (Plaid sends one per Item per update, a burst after a bank's nightly
//! batch). Done as separate calls it took three commits on the single writer (record, enqueue, mark processed) and
//! a read of the Item's sync state before queueing; on SQLite the writer serializes every webhook, so those commits
//! bounded the receiver's throughput. One transaction is one commit, and the delivery can no longer be recorded
//! without its job (or the other way round). The Item is named by its Plaid `item_id` and found inside the write,
//! so the receiver reads nothing before it: a delivery for an Item that is not ours, or is revoked, records nothing
//! here and comes back `None` (the receiver's general path then records and answers it).

use super::codec;
use super::exec::{Sql, Tx};
use super::jobs::enqueue_job_sql;
use super::{Backend, Result, Store, StoreError};
use crate::domain::{Enqueued, NewJob, NewWebhookEvent, PlaidItemId, WebhookRecord};

/// The Item a SYNC_UPDATES_AVAILABLE queues a sync for: ours, and not revoked (a revoked Item never syncs again).
const SYNCING_ITEM: &str = "SELECT id FROM items WHERE item_id = $1 AND status <> 'revoked'";
/// [`super::audit`]'s insert, with `processed_at` set: the job is queued in the same transaction.
const INSERT_PROCESSED_WEBHOOK: &str = "INSERT INTO webhook_events (id, dedupe_key, item_id, webhook_type, \
    webhook_code, body, received_at, processed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
    ON CONFLICT (dedupe_key) DO NOTHING";
/// A job queued like [`super::jobs::enqueue_job_sql`]'s, its `run_after` ($8) moved to the end of the Item's
/// rate-limit hold ($10's `hold_until`) when that is later: the hold is read inside the statement, one round trip
/// less on the single writer than reading it first. Timestamps are fixed-width text, so `>` compares them in time.
const ENQUEUE_JOB_AFTER_HOLD: &str = enqueue_job_sql!(
    "VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, \
    COALESCE((SELECT s.hold_until FROM item_sync_state s WHERE s.item_id = $10 AND s.hold_until > $8), $8), $9, $9)"
);

/// PostgreSQL: [`SYNCING_ITEM`] ($17), [`INSERT_PROCESSED_WEBHOOK`] ($1-$7) for it, then [`ENQUEUE_JOB_AFTER_HOLD`]
/// ($8-$16) when the delivery was new, or else its duplicate counted, as one statement (keep the first two in step;
/// the job's upsert is the same macro's). Each statement on PostgreSQL is a round trip, and reading the Item,
/// `BEGIN`, two inserts and `COMMIT` were five of them, most of the receiver's time on a slow machine. One statement
/// commits alone, just as atomically. The sub-statements share one snapshot: a duplicate whose first delivery
/// committed while this statement waited on its key is not visible to the `UPDATE`, so the last four columns come
/// back `NULL` and the caller counts it afterwards.
const RECORD_AND_ENQUEUE_POSTGRES: &str = concat!(
    "WITH item AS (SELECT id FROM items WHERE item_id = $17 AND status <> 'revoked'), ",
    "event AS (INSERT INTO webhook_events (id, dedupe_key, item_id, webhook_type, webhook_code, body, received_at, ",
    "processed_at) SELECT $1, $2, $3, $4, $5, $6, $7, $7 FROM item ON CONFLICT (dedupe_key) DO NOTHING RETURNING id), ",
    "job AS (",
    enqueue_job_sql!(
        "SELECT $8, $9, $10, $11, $12, $13, 'queued', 0, $14, \
        COALESCE((SELECT s.hold_until FROM item_sync_state s, item WHERE s.item_id = item.id AND s.hold_until > $15), \
        $15), $16, $16 FROM event"
    ),
    "), repeat AS (UPDATE webhook_events SET duplicates = duplicates + 1 ",
    "WHERE dedupe_key = $2 AND EXISTS (SELECT 1 FROM item) AND NOT EXISTS (SELECT 1 FROM event) ",
    "RETURNING id, duplicates) ",
    "SELECT EXISTS (SELECT 1 FROM item), (SELECT id FROM event), (SELECT id FROM job), (SELECT id FROM repeat), ",
    "(SELECT duplicates FROM repeat)"
);

/// One verified SYNC_UPDATES_AVAILABLE delivery to record for the Item `item` (its Plaid id), with the job it
/// queues when it is new.
#[derive(Debug, Clone)]
pub struct WebhookSync {
    pub event: NewWebhookEvent,
    pub item: PlaidItemId,
    pub job: NewJob,
}

/// The delivery as recorded, and the job it queued (or joined) if it was new; `None` when `item` is not an Item
/// of ours that syncs (unknown or revoked): nothing was recorded.
pub type WebhookSyncOutcome = Option<(WebhookRecord, Option<Enqueued>)>;

impl Store {
    /// Records a delivery once per dedupe key and, when it is new, queues `job` (coalescing like
    /// [`Store::enqueue_job`]) no earlier than the hold on `item`. A repeat delivery only counts as a duplicate and
    /// queues nothing (the caller decides, as for [`Store::record_webhook_event`]). `None`, recording nothing, when
    /// `item` is unknown or revoked.
    pub async fn record_webhook_and_enqueue(
        &self,
        event: &NewWebhookEvent,
        item: &PlaidItemId,
        job: &NewJob,
    ) -> Result<WebhookSyncOutcome> {
        if self.backend() == Backend::Postgres {
            return self.record_and_enqueue_postgres(event, item, job).await;
        }
        let mut tx = self.writer.begin().await?;
        let outcome = record_and_enqueue(&mut tx, event, item, job).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// [`Store::record_webhook_and_enqueue`] on PostgreSQL: [`RECORD_AND_ENQUEUE_POSTGRES`], one round trip.
    async fn record_and_enqueue_postgres(
        &self,
        event: &NewWebhookEvent,
        item: &PlaidItemId,
        job: &NewJob,
    ) -> Result<WebhookSyncOutcome> {
        let now = chrono::Utc::now();
        let id = uuid::Uuid::new_v4().to_string();
        let job_id = uuid::Uuid::new_v4().to_string();
        let record = bind_event(Sql::new(RECORD_AND_ENQUEUE_POSTGRES), &id, event, now);
        let record = super::jobs::bind_new_job(record, &job_id, job, now).bind(item);
        type Recorded = (bool, Option<String>, Option<String>, Option<String>, Option<i64>);
        let outcome = match self.writer.fetch_one::<Recorded>(&record).await? {
            (false, ..) => return Ok(None),
            (true, Some(id), Some(queued), _, _) => {
                let coalesced = queued != job_id;
                (WebhookRecord { id, is_new: true, duplicates: 0 }, Some(Enqueued { job_id: queued.into(), coalesced }))
            }
            (true, _, _, Some(id), Some(duplicates)) => (WebhookRecord { id, is_new: false, duplicates }, None),
            // The first delivery committed while this one waited on its key (see the statement).
            (true, None, None, None, None) => {
                let count = Sql::new(super::audit::COUNT_DUPLICATE_WEBHOOK).bind(&event.dedupe_key);
                let (id, duplicates): (String, i64) = self.writer.fetch_one(&count).await?;
                (WebhookRecord { id, is_new: false, duplicates }, None)
            }
            other => {
                return Err(StoreError::Other(anyhow::anyhow!("recording a webhook returned {other:?}")));
            }
        };
        Ok(Some(outcome))
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

/// Inside `tx`: [`Store::record_webhook_and_enqueue`]'s statements.
async fn record_and_enqueue(
    tx: &mut Tx,
    event: &NewWebhookEvent,
    item: &PlaidItemId,
    job: &NewJob,
) -> Result<WebhookSyncOutcome> {
    let Some((item_ref,)) = tx.fetch_optional::<(String,)>(&Sql::new(SYNCING_ITEM).bind(item)).await? else {
        return Ok(None);
    };
    let now = chrono::Utc::now();
    let id = uuid::Uuid::new_v4().to_string();
    let insert = bind_event(Sql::new(INSERT_PROCESSED_WEBHOOK), &id, event, now);
    if tx.execute(&insert).await? == 0 {
        let count = Sql::new(super::audit::COUNT_DUPLICATE_WEBHOOK).bind(&event.dedupe_key);
        let (id, duplicates): (String, i64) = tx.fetch_optional(&count).await?.ok_or(StoreError::NotFound)?;
        return Ok(Some((WebhookRecord { id, is_new: false, duplicates }, None)));
    }
    let job_id = uuid::Uuid::new_v4().to_string();
    let enqueue = super::jobs::bind_new_job(Sql::new(ENQUEUE_JOB_AFTER_HOLD), &job_id, job, now).bind(&item_ref);
    let (queued,): (String,) = tx.fetch_optional(&enqueue).await?.ok_or(StoreError::NotFound)?;
    let coalesced = queued != job_id;
    Ok(Some((WebhookRecord { id, is_new: true, duplicates: 0 }, Some(Enqueued { job_id: queued.into(), coalesced }))))
}

/// Binds $1-$7 of [`INSERT_PROCESSED_WEBHOOK`] and [`RECORD_AND_ENQUEUE_POSTGRES`].
fn bind_event<'a>(
    insert: Sql<'a>,
    id: &'a str,
    event: &'a NewWebhookEvent,
    now: chrono::DateTime<chrono::Utc>,
) -> Sql<'a> {
    insert
        .bind(id)
        .bind(&event.dedupe_key)
        .bind(&event.item_id)
        .bind(&event.webhook_type)
        .bind(&event.webhook_code)
        .bind(&event.body)
        .bind(codec::ts(now))
}
