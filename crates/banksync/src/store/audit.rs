//! Audit trails: each sync run of an Item, each Plaid call, each received webhook.

use super::codec::{self, parse_enum, parse_ts, parse_ts_opt};
use super::exec::Sql;
use super::{Result, Store, StoreError, one_row};
use crate::domain::{
    ItemRef, NewWebhookEvent, PlaidCall, PlaidItemId, SyncRun, SyncRunOutcome, SyncRunStatus, WebhookRecord,
};

const INSERT_SYNC_RUN: &str = "INSERT INTO sync_runs (id, item_ref, triggered_by, started_at, status) \
    VALUES ($1, $2, $3, $4, 'running')";
const FINISH_SYNC_RUN: &str = "UPDATE sync_runs SET finished_at = $2, status = $3, added = $4, modified = $5, \
    removed = $6, pages = $7, restarts = $8, error_code = $9, error_message = $10 WHERE id = $1";
const TOUCH_ITEM_LAST_SYNC: &str = "UPDATE items SET last_sync_at = $2 \
    WHERE id = (SELECT item_ref FROM sync_runs WHERE id = $1)";

const INSERT_PLAID_CALLS: &str = "INSERT INTO plaid_calls (endpoint, item_id, request_id, http_status, outcome, \
    error_type, error_code, latency_ms, at) VALUES ";
const PLAID_CALL_FIELDS: usize = 9;

const INSERT_WEBHOOK: &str = "INSERT INTO webhook_events (id, dedupe_key, item_id, webhook_type, webhook_code, \
    body, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING";
/// A duplicate delivery: counted, so the receiver can tell the first duplicate from the rest.
pub(super) const COUNT_DUPLICATE_WEBHOOK: &str =
    "UPDATE webhook_events SET duplicates = duplicates + 1 WHERE dedupe_key = $1 RETURNING id, duplicates";
const MARK_WEBHOOK: &str = "UPDATE webhook_events SET processed_at = $2 WHERE id = $1";

impl Store {
    pub async fn start_sync_run(&self, item_ref: &ItemRef, triggered_by: &str) -> Result<SyncRun> {
        let id = uuid::Uuid::new_v4().to_string();
        let insert =
            Sql::new(INSERT_SYNC_RUN).bind(&id).bind(item_ref).bind(triggered_by).bind(codec::ts(chrono::Utc::now()));
        self.writer.execute(&insert).await?;
        self.get_sync_run(&id).await
    }

    /// Closes the run; also records the Item's `last_sync_at`.
    pub async fn finish_sync_run(&self, run_id: &str, o: &SyncRunOutcome) -> Result<SyncRun> {
        let now = codec::ts(chrono::Utc::now());
        let status = if o.succeeded { SyncRunStatus::Succeeded } else { SyncRunStatus::Failed };
        let mut tx = self.writer.begin().await?;
        let finish = Sql::new(FINISH_SYNC_RUN)
            .bind(run_id)
            .bind(&now)
            .bind(status.as_str())
            .bind(o.added)
            .bind(o.modified)
            .bind(o.removed)
            .bind(o.pages)
            .bind(o.restarts)
            .bind(&o.error_code)
            .bind(&o.error_message);
        one_row(tx.execute(&finish).await?)?;
        tx.execute(&Sql::new(TOUCH_ITEM_LAST_SYNC).bind(run_id).bind(&now)).await?;
        tx.commit().await?;
        self.get_sync_run(run_id).await
    }

    pub async fn list_sync_runs(&self, item_ref: &ItemRef, limit: u32) -> Result<Vec<SyncRun>> {
        let select = Sql::new(format!(
            "SELECT {SYNC_RUN_COLUMNS} FROM sync_runs WHERE item_ref = $1 ORDER BY started_at DESC, id DESC LIMIT $2"
        ))
        .bind(item_ref)
        .bind(i64::from(limit.max(1)));
        let rows: Vec<SyncRunRow> = self.reader.fetch_all(&select).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn get_sync_run(&self, id: &str) -> Result<SyncRun> {
        let select = Sql::new(format!("SELECT {SYNC_RUN_COLUMNS} FROM sync_runs WHERE id = $1")).bind(id);
        self.writer.fetch_one::<SyncRunRow>(&select).await?.try_into()
    }

    pub async fn record_plaid_call(&self, c: &PlaidCall) -> Result<()> {
        self.record_plaid_calls(std::slice::from_ref(c)).await
    }

    /// Records many calls, a statement per few thousand.
    pub async fn record_plaid_calls(&self, calls: &[PlaidCall]) -> Result<()> {
        for chunk in calls.chunks(super::rows_per_statement(PLAID_CALL_FIELDS)) {
            let mut insert = Sql::with_capacity(INSERT_PLAID_CALLS, chunk.len() * PLAID_CALL_FIELDS);
            insert.push_rows(chunk, |row, c| {
                row.bind(&c.endpoint).bind(&c.item_id).bind(&c.request_id).bind(c.http_status).bind(&c.outcome);
                row.bind(&c.error_type).bind(&c.error_code).bind(c.latency_ms).bind(codec::ts(c.at));
            });
            self.writer.execute(&insert).await?;
        }
        Ok(())
    }

    /// Newest first; all Items when `item_id` is `None`.
    pub async fn list_plaid_calls(&self, item_id: Option<&PlaidItemId>, limit: u32) -> Result<Vec<PlaidCall>> {
        let mut select = Sql::new(format!("SELECT {PLAID_CALL_COLUMNS} FROM plaid_calls"));
        if let Some(item_id) = item_id {
            select.push(" WHERE item_id = ").push_bind(item_id);
        }
        select.push(" ORDER BY at DESC, id DESC LIMIT ").push_bind(i64::from(limit.max(1)));
        let rows: Vec<PlaidCallRow> = self.reader.fetch_all(&select).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Records a webhook delivery once per dedupe key.
    pub async fn record_webhook_event(&self, e: &NewWebhookEvent) -> Result<WebhookRecord> {
        let id = uuid::Uuid::new_v4().to_string();
        let insert = Sql::new(INSERT_WEBHOOK)
            .bind(&id)
            .bind(&e.dedupe_key)
            .bind(&e.item_id)
            .bind(&e.webhook_type)
            .bind(&e.webhook_code)
            .bind(&e.body)
            .bind(codec::ts(chrono::Utc::now()));
        if self.writer.execute(&insert).await? == 1 {
            return Ok(WebhookRecord { id, is_new: true, duplicates: 0 });
        }
        let count = Sql::new(COUNT_DUPLICATE_WEBHOOK).bind(&e.dedupe_key);
        let (id, duplicates): (String, i64) = self.writer.fetch_one(&count).await?;
        Ok(WebhookRecord { id, is_new: false, duplicates })
    }

    pub async fn mark_webhook_processed(&self, id: &str) -> Result<()> {
        one_row(self.writer.execute(&Sql::new(MARK_WEBHOOK).bind(id).bind(codec::ts(chrono::Utc::now()))).await?)
    }
}

const SYNC_RUN_COLUMNS: &str = "id, item_ref, triggered_by, started_at, finished_at, status, added, modified, \
    removed, pages, restarts, error_code, error_message";

#[derive(sqlx::FromRow)]
struct SyncRunRow {
    id: String,
    item_ref: String,
    triggered_by: String,
    started_at: String,
    finished_at: Option<String>,
    status: String,
    added: i64,
    modified: i64,
    removed: i64,
    pages: i64,
    restarts: i64,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl TryFrom<SyncRunRow> for SyncRun {
    type Error = StoreError;
    fn try_from(r: SyncRunRow) -> Result<Self, StoreError> {
        Ok(SyncRun {
            id: r.id,
            item_ref: r.item_ref.into(),
            triggered_by: r.triggered_by,
            started_at: parse_ts(&r.started_at)?,
            finished_at: parse_ts_opt(r.finished_at.as_deref())?,
            status: parse_enum(&r.status)?,
            added: r.added,
            modified: r.modified,
            removed: r.removed,
            pages: r.pages,
            restarts: r.restarts,
            error_code: r.error_code,
            error_message: r.error_message,
        })
    }
}

const PLAID_CALL_COLUMNS: &str =
    "endpoint, item_id, request_id, http_status, outcome, error_type, error_code, latency_ms, at";

#[derive(sqlx::FromRow)]
struct PlaidCallRow {
    endpoint: String,
    item_id: Option<String>,
    request_id: Option<String>,
    http_status: Option<i64>,
    outcome: String,
    error_type: Option<String>,
    error_code: Option<String>,
    latency_ms: i64,
    at: String,
}

impl TryFrom<PlaidCallRow> for PlaidCall {
    type Error = StoreError;
    fn try_from(r: PlaidCallRow) -> Result<Self, StoreError> {
        Ok(PlaidCall {
            endpoint: r.endpoint,
            item_id: r.item_id.map(Into::into),
            request_id: r.request_id,
            http_status: r.http_status,
            outcome: r.outcome,
            error_type: r.error_type,
            error_code: r.error_code,
            latency_ms: r.latency_ms,
            at: parse_ts(&r.at)?,
        })
    }
}
