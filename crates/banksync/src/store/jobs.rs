//! The durable job queue: jobs enqueued, leased to one worker, retried with backoff; and jobs run by the process
//! that asked for them (live balance refreshes), recorded for every process to read.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::codec::{self, parse_enum, parse_ts, parse_ts_opt};
use super::exec::Sql;
use super::{Result, Store, StoreError, chrono_duration, job_backoff, one_row};
use crate::domain::{Enqueued, Job, JobId, JobState, NewJob};

/// An `INSERT INTO jobs` of one job from `$rows` (a `VALUES` row or a `SELECT` of the twelve columns below) that
/// joins the queued job with the same (kind, coalesce_key) instead, through the partial unique index: the earlier
/// `run_after` wins, then the `SET` items of `$update` (each followed by a comma) apply. Returns the id of the row
/// that now stands for the request. Every statement that queues a job is written with it (here and in
/// `webhook_sync.rs`), so their conflict handling cannot drift apart.
macro_rules! enqueue_job_sql {
    ($rows:literal $(, $update:literal)?) => {
        concat!(
            "INSERT INTO jobs (id, kind, coalesce_key, user_id, item_id, payload, state, attempts, max_attempts, ",
            "run_after, created_at, updated_at) ",
            $rows,
            " ON CONFLICT (kind, coalesce_key) WHERE state = 'queued' DO UPDATE SET run_after = ",
            "CASE WHEN excluded.run_after < jobs.run_after THEN excluded.run_after ELSE jobs.run_after END, ",
            $($update,)?
            "updated_at = excluded.updated_at RETURNING id"
        )
    };
}
pub(super) use enqueue_job_sql;

/// Queues a job or joins the queued one for the same work ([`enqueue_job_sql`]); binds: [`bind_new_job`].
const ENQUEUE_JOB: &str = enqueue_job_sql!("VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $8, $9, $9)");

/// [`ENQUEUE_JOB`], but a joined queued job takes this request's payload and user (a "sync now" must still ask the
/// bank when it joins a queued webhook sync).
const ENQUEUE_JOB_REPLACING_PAYLOAD: &str = enqueue_job_sql!(
    "VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $8, $9, $9)",
    "payload = excluded.payload, user_id = COALESCE(excluded.user_id, jobs.user_id), "
);

const HEARTBEAT_JOB: &str = "UPDATE jobs SET lease_expires_at = $3, updated_at = $4 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
const COMPLETE_JOB: &str = "UPDATE jobs SET state = 'done', result = $3, lease_owner = NULL, \
    lease_expires_at = NULL, last_error = NULL, updated_at = $4 WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
const HELD_JOB_ATTEMPTS: &str = "SELECT attempts, max_attempts FROM jobs \
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
/// $3 new state. A retry becomes `failed` instead when another queued job already stands for the same work.
const FAIL_JOB: &str = "UPDATE jobs SET \
    state = CASE WHEN $3 = 'queued' AND coalesce_key IS NOT NULL AND EXISTS (SELECT 1 FROM jobs q \
        WHERE q.kind = jobs.kind AND q.coalesce_key = jobs.coalesce_key AND q.state = 'queued') \
        THEN 'failed' ELSE $3 END, \
    last_error = $4, run_after = $5, lease_owner = NULL, lease_expires_at = NULL, updated_at = $6, \
    result = COALESCE($7, result) WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING state";
const FAIL_JOB_SUPERSEDED: &str = "UPDATE jobs SET state = 'failed', last_error = $3, lease_owner = NULL, \
    lease_expires_at = NULL, updated_at = $4, result = COALESCE($5, result) \
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
/// $3 run_after, $4 now. Back to `queued` without using an attempt; `done` instead when another queued job already
/// stands for the same work (it runs in this one's place).
const RESCHEDULE_JOB: &str = "UPDATE jobs SET \
    state = CASE WHEN coalesce_key IS NOT NULL AND EXISTS (SELECT 1 FROM jobs q \
        WHERE q.kind = jobs.kind AND q.coalesce_key = jobs.coalesce_key AND q.state = 'queued') \
        THEN 'done' ELSE 'queued' END, \
    attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END, run_after = $3, lease_owner = NULL, \
    lease_expires_at = NULL, updated_at = $4 WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
const RESCHEDULE_JOB_SUPERSEDED: &str = "UPDATE jobs SET state = 'done', lease_owner = NULL, \
    lease_expires_at = NULL, updated_at = $3 WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
const RECLAIM_EXHAUSTED_JOBS: &str = "UPDATE jobs SET state = 'failed', \
    last_error = COALESCE(last_error, 'lease expired'), lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
    WHERE state = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts";
/// $8 now. A running job with its one attempt used, unless the same work runs under a live lease.
const INSERT_RUNNING_JOB: &str = "INSERT INTO jobs (id, kind, coalesce_key, user_id, item_id, payload, result, \
    state, attempts, max_attempts, run_after, lease_owner, lease_expires_at, created_at, updated_at) \
    SELECT $1, $2, $3, $4, $5, $6, $7, 'running', 1, 1, $8, $9, $10, $8, $8 \
    WHERE NOT EXISTS (SELECT 1 FROM jobs r WHERE r.kind = $2 AND r.coalesce_key = $3 AND r.state = 'running' \
    AND r.lease_expires_at >= $8)";
const LIVE_RUNNING_JOB: &str = "SELECT id FROM jobs WHERE kind = $1 AND coalesce_key = $2 AND state = 'running' \
    AND lease_expires_at >= $3 ORDER BY created_at DESC, id LIMIT 1";
const UPDATE_RUNNING_JOB_RESULT: &str = "UPDATE jobs SET result = $3, updated_at = $4 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
const DELETE_FINISHED_JOBS: &str =
    "DELETE FROM jobs WHERE kind = $1 AND state IN ('done', 'failed') AND run_after < $2";

/// Binds $1-$9 of [`ENQUEUE_JOB`] and the statements shaped like it (id, kind, coalesce key, user, Item, payload,
/// attempts allowed, due time, now).
pub(super) fn bind_new_job<'a>(insert: Sql<'a>, id: &'a str, job: &'a NewJob, now: DateTime<Utc>) -> Sql<'a> {
    bind_job_identity(insert, id, job).bind(job.max_attempts.max(1)).bind(codec::ts(job.run_after)).bind(codec::ts(now))
}

/// Binds $1-$6 of every statement that inserts a job: id, kind, coalesce key, user, Item, payload.
fn bind_job_identity<'a>(insert: Sql<'a>, id: &'a str, job: &'a NewJob) -> Sql<'a> {
    insert.bind(id).bind(&job.kind).bind(&job.coalesce_key).bind(&job.user_id).bind(&job.item_id).bind(&job.payload)
}

impl Store {
    /// Adds a job, or joins the queued job with the same (kind, coalesce_key), moving its `run_after` earlier if
    /// this request is more urgent (the queued job keeps its payload).
    pub async fn enqueue_job(&self, job: &NewJob) -> Result<Enqueued> {
        self.insert_job(ENQUEUE_JOB, job).await
    }

    /// Like [`Store::enqueue_job`], but a joined queued job takes this request's payload (and user, if given).
    pub async fn enqueue_job_replacing_payload(&self, job: &NewJob) -> Result<Enqueued> {
        self.insert_job(ENQUEUE_JOB_REPLACING_PAYLOAD, job).await
    }

    async fn insert_job(&self, statement: &'static str, job: &NewJob) -> Result<Enqueued> {
        let id = uuid::Uuid::new_v4().to_string();
        let insert = bind_new_job(Sql::new(statement), &id, job, chrono::Utc::now());
        let (job_id,): (String,) = self.writer.fetch_one(&insert).await?;
        let coalesced = job_id != id;
        Ok(Enqueued { job_id: job_id.into(), coalesced })
    }

    /// Leases the next due job (or one whose lease expired and has attempts left) to `worker_id`.
    pub async fn claim_job(&self, worker_id: &str, lease: Duration) -> Result<Option<Job>> {
        let now = chrono::Utc::now();
        let claim = Sql::new(self.dialect.claim_job_sql())
            .bind(worker_id)
            .bind(codec::ts(now + chrono_duration(lease)))
            .bind(codec::ts(now));
        let row: Option<JobRow> = self.writer.fetch_optional(&claim).await?;
        row.map(TryInto::try_into).transpose()
    }

    /// Extends the lease; `NotFound` when the worker no longer holds it.
    pub async fn heartbeat_job(&self, job_id: &JobId, worker_id: &str, lease: Duration) -> Result<()> {
        let now = chrono::Utc::now();
        let renew = Sql::new(HEARTBEAT_JOB)
            .bind(job_id)
            .bind(worker_id)
            .bind(codec::ts(now + chrono_duration(lease)))
            .bind(codec::ts(now));
        one_row(self.writer.execute(&renew).await?)
    }

    /// `NotFound` when the worker no longer holds the lease.
    pub async fn complete_job(&self, job_id: &JobId, worker_id: &str, result: Option<&str>) -> Result<()> {
        let complete =
            Sql::new(COMPLETE_JOB).bind(job_id).bind(worker_id).bind(result).bind(codec::ts(chrono::Utc::now()));
        one_row(self.writer.execute(&complete).await?)
    }

    /// Records a failure: back to `queued` after a backoff (`retry_after`, else exponential from 5 s, capped at one
    /// hour) while attempts remain, else `failed`; `result`, if given, replaces the job's result. Returns the new
    /// state.
    pub async fn fail_job(
        &self,
        job_id: &JobId,
        worker_id: &str,
        error: &str,
        retry_after: Option<Duration>,
        result: Option<&str>,
    ) -> Result<JobState> {
        let (attempts, max_attempts): (i64, i64) =
            self.writer.fetch_one(&Sql::new(HELD_JOB_ATTEMPTS).bind(job_id).bind(worker_id)).await?;
        let now = chrono::Utc::now();
        let wanted = if attempts < max_attempts { "queued" } else { "failed" };
        let delay = retry_after.unwrap_or_else(|| job_backoff(attempts));
        let run_after = codec::ts(now + chrono_duration(delay));
        let now = codec::ts(now);
        let fail = Sql::new(FAIL_JOB)
            .bind(job_id)
            .bind(worker_id)
            .bind(wanted)
            .bind(error)
            .bind(&run_after)
            .bind(&now)
            .bind(result);
        let state = match self.writer.fetch_optional::<(String,)>(&fail).await {
            Ok(Some((state,))) => state,
            Ok(None) => return Err(StoreError::NotFound),
            // Another process queued the same work between our check and our update.
            Err(StoreError::Conflict(_)) => {
                let superseded =
                    Sql::new(FAIL_JOB_SUPERSEDED).bind(job_id).bind(worker_id).bind(error).bind(&now).bind(result);
                one_row(self.writer.execute(&superseded).await?)?;
                "failed".to_owned()
            }
            Err(e) => return Err(e),
        };
        parse_enum(&state)
    }

    /// Puts a running job back in the queue for `after` without using an attempt (it was not allowed to run yet).
    /// When another queued job already stands for the same work, this one ends (`done`) and that one runs.
    pub async fn reschedule_job(&self, job_id: &JobId, worker_id: &str, after: Duration) -> Result<()> {
        let now = chrono::Utc::now();
        let reschedule = Sql::new(RESCHEDULE_JOB)
            .bind(job_id)
            .bind(worker_id)
            .bind(codec::ts(now + chrono_duration(after)))
            .bind(codec::ts(now));
        match self.writer.execute(&reschedule).await {
            Ok(n) => one_row(n),
            // Another process queued the same work between the check and the update.
            Err(StoreError::Conflict(_)) => {
                let superseded = Sql::new(RESCHEDULE_JOB_SUPERSEDED).bind(job_id).bind(worker_id).bind(codec::ts(now));
                one_row(self.writer.execute(&superseded).await?)
            }
            Err(e) => Err(e),
        }
    }

    /// Fails running jobs whose lease expired with no attempts left (those with attempts left are simply claimable
    /// again). Returns how many.
    pub async fn reclaim_expired_jobs(&self) -> Result<u64> {
        self.writer.execute(&Sql::new(RECLAIM_EXHAUSTED_JOBS).bind(codec::ts(chrono::Utc::now()))).await
    }

    pub async fn get_job(&self, job_id: &JobId) -> Result<Job> {
        let select = Sql::new(format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1")).bind(job_id);
        self.reader.fetch_one::<JobRow>(&select).await?.try_into()
    }

    /// Creates job `id` already `running`, leased to `worker_id` for `lease`, with `result` as its progress and its
    /// only attempt used (`job.max_attempts` and `job.run_after` do not apply): `claim_job` never takes it, and
    /// `reclaim_expired_jobs` fails it once its holder stops renewing the lease (`heartbeat_job`). When a job with
    /// the same (kind, coalesce_key) is running under a live lease, that one is returned (`coalesced`) instead;
    /// best effort across processes on PostgreSQL (two simultaneous requests may both create one).
    pub async fn create_running_job(
        &self,
        id: &JobId,
        job: &NewJob,
        worker_id: &str,
        lease: Duration,
        result: &str,
    ) -> Result<Enqueued> {
        // The running job found may end between the two statements: then try again.
        for _ in 0..3 {
            let now = chrono::Utc::now();
            let insert = bind_job_identity(Sql::new(INSERT_RUNNING_JOB), id.as_str(), job)
                .bind(result)
                .bind(codec::ts(now))
                .bind(worker_id)
                .bind(codec::ts(now + chrono_duration(lease)));
            if self.writer.execute(&insert).await? == 1 {
                return Ok(Enqueued { job_id: id.clone(), coalesced: false });
            }
            let live = Sql::new(LIVE_RUNNING_JOB).bind(&job.kind).bind(&job.coalesce_key).bind(codec::ts(now));
            if let Some((job_id,)) = self.writer.fetch_optional::<(String,)>(&live).await? {
                return Ok(Enqueued { job_id: job_id.into(), coalesced: true });
            }
        }
        Err(StoreError::Conflict("the same job keeps starting and ending".into()))
    }

    /// Replaces the progress (`result`) of a running job; `NotFound` when the worker no longer holds it.
    pub async fn update_running_job_result(&self, job_id: &JobId, worker_id: &str, result: &str) -> Result<()> {
        let update = Sql::new(UPDATE_RUNNING_JOB_RESULT)
            .bind(job_id)
            .bind(worker_id)
            .bind(result)
            .bind(codec::ts(chrono::Utc::now()));
        one_row(self.writer.execute(&update).await?)
    }

    /// Deletes `done`/`failed` jobs of `kind` due (`run_after`) before `before`; returns how many.
    pub async fn delete_finished_jobs(&self, kind: &str, before: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        self.writer.execute(&Sql::new(DELETE_FINISHED_JOBS).bind(kind).bind(codec::ts(before))).await
    }
}

const JOB_COLUMNS: &str = "id, kind, coalesce_key, user_id, item_id, payload, result, state, attempts, \
    max_attempts, run_after, lease_owner, lease_expires_at, last_error, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    kind: String,
    coalesce_key: Option<String>,
    user_id: Option<String>,
    item_id: Option<String>,
    payload: String,
    result: Option<String>,
    state: String,
    attempts: i64,
    max_attempts: i64,
    run_after: String,
    lease_owner: Option<String>,
    lease_expires_at: Option<String>,
    last_error: Option<String>,
    created_at: String,
    updated_at: String,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        Ok(Job {
            id: r.id.into(),
            kind: r.kind,
            coalesce_key: r.coalesce_key,
            user_id: r.user_id.map(Into::into),
            item_id: r.item_id.map(Into::into),
            payload: r.payload,
            result: r.result,
            state: parse_enum(&r.state)?,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_after: parse_ts(&r.run_after)?,
            lease_owner: r.lease_owner,
            lease_expires_at: parse_ts_opt(r.lease_expires_at.as_deref())?,
            last_error: r.last_error,
            created_at: parse_ts(&r.created_at)?,
            updated_at: parse_ts(&r.updated_at)?,
        })
    }
}
