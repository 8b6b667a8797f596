//! `GET /api/jobs/{job_id}`: any of the caller's jobs (a sync "sync now" handed back as 202, a live balance refresh),
//! long-polling until it ends.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody, StoreResultExt as _};
use crate::auth::CurrentUser;
use crate::domain::{Job, JobId, PlaidItemId};
use crate::jobs::JobQueue;
use crate::state::AppState;

/// Longest long-poll: shorter than the route's time budget and common proxy idle timeouts.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show))
}

/// A job as its owner sees it. Never the worker's raw error text (it may name internals): `result` carries what the
/// user can read.
#[derive(Serialize, ToSchema)]
pub struct JobView {
    #[schema(value_type = String)]
    job_id: JobId,
    /// `sync` or `balance_refresh`.
    kind: String,
    /// `queued`, `running`, `done` or `failed`.
    state: String,
    #[schema(value_type = Option<String>)]
    item_id: Option<PlaidItemId>,
    attempts: i64,
    max_attempts: i64,
    /// When it runs (next), if queued.
    run_after: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// The job's outcome or progress. A sync: `{"outcome": "synced", "summary": {…}}`, `{"outcome": "failed",
    /// "error": {"message", "plaid"?}, "will_retry"}` or `{"outcome": "skipped", "reason"}`; a balance refresh: its
    /// per-Item states.
    #[schema(value_type = Option<Object>)]
    result: Option<serde_json::Value>,
}

impl JobView {
    fn of(job: Job) -> Self {
        JobView {
            result: job.result.as_deref().and_then(|r| serde_json::from_str(r).ok()),
            job_id: job.id,
            kind: job.kind,
            state: job.state.as_str().to_owned(),
            item_id: job.item_id,
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            run_after: job.run_after,
            created_at: job.created_at,
            updated_at: job.updated_at,
        }
    }
}

/// One of the caller's jobs, long-polling up to `wait` seconds (at most 30) for it to end.
#[utoipa::path(
    get,
    path = "/api/jobs/{job_id}",
    tag = "jobs",
    operation_id = "get_job",
    params(
        ("job_id" = String, Path, description = "From a 202 answer (e.g. `POST /api/items/{item_id}/sync`)"),
        ("wait" = Option<f64>, Query, description = "Seconds to wait for the job to end (0 to 30)"),
    ),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: unknown job, or another user's", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(job_id): Path<JobId>,
    limits: Option<axum::Extension<super::server::ServerLimits>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<JobView>> {
    let wait = wait_param(params, limits.map(|l| l.0))?;
    let job = state.store.get_job(&job_id).await.or_not_found("job")?;
    // The caller's when it names them, or when it is about one of their Items (syncs started by webhooks too).
    let theirs = match (&job.user_id, &job.item_id) {
        (Some(owner), _) => owner == user.id(),
        (None, Some(item_id)) => state.store.get_item(user.id(), item_id).await.is_ok(),
        (None, None) => false,
    };
    if !theirs {
        return Err(ApiError::NotFound("job"));
    }
    let job = state.jobs.wait_for(&job.id, wait, JobQueue::is_finished).await.or_not_found("job")?;
    Ok(AppJson(JobView::of(job)))
}

/// The `wait` query parameter (seconds, capped at [`MAX_WAIT`] and at the server's long-poll length, half its idle
/// timeout, so a wait never looks like a dead connection); any other parameter is refused.
pub fn wait_param(params: HashMap<String, String>, limits: Option<super::server::ServerLimits>) -> ApiResult<Duration> {
    let cap = MAX_WAIT.min(limits.map_or(MAX_WAIT, |l| l.long_poll));
    let mut wait = Duration::ZERO;
    for (name, value) in params {
        match name.as_str() {
            "wait" => {
                let seconds =
                    value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(|| {
                        ApiError::bad_request("invalid_query", "wait must be a number of seconds (0 to 30)")
                    })?;
                wait = Duration::from_secs_f64(seconds.min(cap.as_secs_f64()));
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}; expected wait"),
                ));
            }
        }
    }
    Ok(wait)
}
