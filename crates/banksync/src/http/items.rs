//! `/api/items`: the caller's linked Items (bank connections) with their health and sync state; "sync now".

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::optional_json;
use super::error::{ApiError, ApiResult, AppJson, ErrorBody, StoreResultExt as _};
use super::views::{ItemView, SyncRunView};
use crate::auth::CurrentUser;
use crate::domain::{AccountFilter, Job, JobId, JobState, PlaidItemId};
use crate::domain::{PlaidCall, SyncRun};
use crate::jobs::{JobQueue, SyncJobResult, SyncRefused};
use crate::state::AppState;
use crate::sync::{SyncSummary, SyncTrigger};

/// How many sync runs `GET /api/items/{item_id}` shows.
const RECENT_SYNC_RUNS: u32 = 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, remove))
        .routes(routes!(repaired))
        .routes(routes!(history))
}

/// "Sync now" waits up to [`SYNC_WAIT`] for its job; it gets the long-poll time budget.
pub fn sync_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sync))
}

#[derive(Serialize, ToSchema)]
struct ItemList {
    items: Vec<ItemView>,
}

/// The caller's Items with their accounts and health.
#[utoipa::path(
    get,
    path = "/api/items",
    tag = "items",
    operation_id = "list_items",
    responses(
        (status = 200, description = "The Items, each with its accounts", body = ItemList),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> ApiResult<AppJson<ItemList>> {
    let items = state.store.list_items(user.id()).await?;
    let accounts = state.store.list_accounts(user.id(), &AccountFilter::default()).await?;
    let sync_states = state.store.sync_states_of_user(user.id()).await?;
    let items = items
        .iter()
        .map(|item| {
            let own: Vec<_> = accounts.iter().filter(|a| a.item_id == item.item_id).cloned().collect();
            ItemView::of(item).with_accounts(&own).with_sync_state(sync_states.get(&item.id))
        })
        .collect();
    Ok(AppJson(ItemList { items }))
}

/// One Item with its accounts and its recent sync runs.
#[utoipa::path(
    get,
    path = "/api/items/{item_id}",
    tag = "items",
    operation_id = "get_item",
    params(("item_id" = String, Path, description = "Plaid's item_id")),
    responses(
        (status = 200, description = "The Item", body = ItemView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found` (also another user's Item)", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
) -> ApiResult<AppJson<ItemView>> {
    let item = state.store.get_item(user.id(), &item_id).await.or_not_found("item")?;
    let filter = AccountFilter { item_id: Some(item.item_id.clone()), include_removed: false };
    let accounts = state.store.list_accounts(user.id(), &filter).await?;
    let runs = state.store.list_sync_runs(&item.id, RECENT_SYNC_RUNS).await?;
    let sync_state = state.store.sync_state(&item.id).await?;
    let mut view = ItemView::of(&item).with_accounts(&accounts).with_sync_state(Some(&sync_state));
    view.recent_sync_runs = Some(runs.iter().map(SyncRunView::of).collect());
    Ok(AppJson(view))
}

/// Removes an Item: `/item/remove` at Plaid (so it stops billing), then the Item's local data.
#[utoipa::path(
    delete,
    path = "/api/items/{item_id}",
    tag = "items",
    operation_id = "remove_item",
    params(("item_id" = String, Path, description = "Plaid's item_id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 502, description = "Plaid failed (its error code in lower case)", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
) -> ApiResult<StatusCode> {
    state.link.remove(user.id(), &item_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Called after Link in update mode succeeded: the Item is marked good and a sync is queued (at most one per sync
/// cooldown, like "sync now").
#[utoipa::path(
    post,
    path = "/api/items/{item_id}/repaired",
    tag = "items",
    operation_id = "item_repaired",
    params(("item_id" = String, Path, description = "Plaid's item_id")),
    responses(
        (status = 200, description = "The Item, healthy again", body = ItemView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn repaired(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
) -> ApiResult<AppJson<ItemView>> {
    state.link.repaired(user.id(), &item_id).await?;
    let item = state.store.get_item(user.id(), &item_id).await.or_not_found("item")?;
    let sync_state = state.store.sync_state(&item.id).await?;
    Ok(AppJson(ItemView::of(&item).with_sync_state(Some(&sync_state))))
}

/// No options yet: an empty body or `{}`.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SyncRequest {}

/// The sync is still running when "sync now" stops waiting: poll `GET /api/jobs/{job_id}`.
#[derive(Serialize, ToSchema)]
struct SyncAccepted {
    #[schema(value_type = String)]
    job_id: JobId,
    /// `queued` or `running`.
    state: String,
}

/// Syncs now: asks the bank for new data (`/transactions/refresh`, unless off or not enabled), waits for its answer,
/// then syncs, all as a job in the durable queue (joining a sync already queued for the Item). Answers `200` with
/// the summary when the job ends within 30 s, else `202` with its id.
#[utoipa::path(
    post,
    path = "/api/items/{item_id}/sync",
    tag = "items",
    operation_id = "sync_item",
    params(("item_id" = String, Path, description = "Plaid's item_id")),
    request_body(content = Option<SyncRequest>, description = "Optional: no body or `{}`",
        content_type = "application/json"),
    responses(
        (status = 200, description = "The sync's summary", body = SyncSummary),
        (status = 202, description = "Still running: poll `GET /api/jobs/{job_id}`", body = SyncAccepted),
        (status = 400, description = "`malformed_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`item_revoked`, or Plaid's `item_login_required`", body = ErrorBody),
        (status = 429, description = "`sync_cooldown`: synced a moment ago; or Plaid's rate limit", body = ErrorBody),
        (status = 503, description = "`sync_restarts_exhausted`, `sync_failed`, or the bank is down", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn sync(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
    limits: Option<axum::Extension<super::server::ServerLimits>>,
    body: Bytes,
) -> ApiResult<Response> {
    let _: SyncRequest = optional_json(&body)?;
    // Within the idle timeout, so the connection is never cut while it waits without sending a byte.
    let wait = SYNC_WAIT.min(limits.map_or(SYNC_WAIT, |l| l.long_poll));
    let item = state.store.get_item(user.id(), &item_id).await.or_not_found("item")?;
    let enqueued = state.jobs.request_sync(&item, SyncTrigger::Manual, Duration::ZERO).await.map_err(refused)?;
    // A failed attempt is answered at once (the job may retry by itself): it is one made after this request joined.
    let joined = state.store.get_job(&enqueued.job_id).await?;
    let attempts_before = if joined.state == JobState::Queued { joined.attempts } else { joined.attempts - 1 };
    let answered = |job: &Job| {
        JobQueue::is_finished(job)
            || (job.state == JobState::Queued && job.attempts > attempts_before && job.result.is_some())
    };
    let job = state.jobs.wait_for(&enqueued.job_id, wait, answered).await.or_not_found("job")?;
    if !answered(&job) {
        let accepted = SyncAccepted { job_id: job.id.clone(), state: job.state.as_str().to_owned() };
        let location = format!("/api/jobs/{}", job.id);
        return Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], AppJson(accepted)).into_response());
    }
    match job.result.as_deref().map(serde_json::from_str::<SyncJobResult>) {
        Some(Ok(SyncJobResult::Synced { summary, .. })) => Ok(AppJson(summary).into_response()),
        Some(Ok(SyncJobResult::Failed { error, .. })) => Err(match error.into_error() {
            crate::sync::SyncError::Other(message) => {
                ApiError::Upstream { status: StatusCode::SERVICE_UNAVAILABLE, code: "sync_failed".into(), message }
            }
            other => other.into(),
        }),
        Some(Ok(SyncJobResult::Skipped { reason })) if reason.contains("revoked") => Err(refused(SyncRefused::Revoked)),
        Some(Ok(SyncJobResult::Skipped { .. })) => Err(ApiError::NotFound("item")),
        _ => Err(ApiError::Internal(anyhow::anyhow!("sync job {} ended without a readable result", job.id))),
    }
}

/// Longest "sync now" waits for its job: shorter than the long-poll time budget and common proxy timeouts.
pub const SYNC_WAIT: Duration = Duration::from_secs(30);

fn refused(refused: SyncRefused) -> ApiError {
    match refused {
        // The user revoked access at Plaid: a sync can only fail (and is billed). Removal or a new link is the way out.
        SyncRefused::Revoked => ApiError::Conflict {
            code: "item_revoked",
            message: "Access to this bank was revoked. Remove it here, or link the bank again.".into(),
        },
        // Plaid bills and throttles syncs: one manual sync per Item per cooldown period.
        SyncRefused::Cooldown(remaining) => {
            let seconds = remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0);
            ApiError::TooManyRequests {
                code: "sync_cooldown",
                message: format!("This bank was synced a moment ago; try again in {seconds} seconds."),
            }
        }
        SyncRefused::Store(e) => e.into(),
    }
}

/// Default and largest `limit` of `GET /api/items/{item_id}/history`.
const HISTORY_DEFAULT: u32 = 50;
const HISTORY_MAX: u32 = 200;

/// An Item's sync runs and Plaid calls, newest first: what the Banks view shows to explain a problem.
#[derive(Serialize, ToSchema)]
struct ItemHistory {
    runs: Vec<HistoryRun>,
    calls: Vec<HistoryCall>,
}

#[derive(Serialize, ToSchema)]
struct HistoryRun {
    id: String,
    /// What started it: link | manual | webhook | schedule | repair | follow_up …
    trigger: String,
    started_at: chrono::DateTime<chrono::Utc>,
    finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// running | succeeded | failed
    outcome: String,
    added: i64,
    modified: i64,
    removed: i64,
    error_code: Option<String>,
    error_message: Option<String>,
}

impl HistoryRun {
    fn of(run: &SyncRun) -> Self {
        HistoryRun {
            id: run.id.clone(),
            trigger: run.triggered_by.clone(),
            started_at: run.started_at,
            finished_at: run.finished_at,
            outcome: run.status.as_str().to_owned(),
            added: run.added,
            modified: run.modified,
            removed: run.removed,
            error_code: run.error_code.clone(),
            error_message: run.error_message.clone(),
        }
    }
}

/// One HTTP attempt to Plaid about this Item (from the audit trail; never a token or secret).
#[derive(Serialize, ToSchema)]
struct HistoryCall {
    /// When the call started.
    at: chrono::DateTime<chrono::Utc>,
    /// Plaid's endpoint, e.g. `/transactions/sync`.
    endpoint: String,
    /// The HTTP status, null when no answer arrived.
    status: Option<i64>,
    /// Plaid's request id: quote it to Plaid's support.
    request_id: Option<String>,
    /// Plaid's error code, or `timeout` / `transport` / `decode` when no Plaid error came back.
    error_code: Option<String>,
    /// A sentence saying what went wrong; null for a successful call.
    error_message: Option<String>,
    duration_ms: i64,
}

impl HistoryCall {
    fn of(call: &PlaidCall) -> Self {
        let (error_code, error_message) = match (call.outcome.as_str(), &call.error_code) {
            ("ok", _) => (None, None),
            (_, Some(code)) => {
                let error = plaid::PlaidError { error_code: code.clone(), ..plaid::PlaidError::default() };
                (Some(code.clone()), Some(error.user_message()))
            }
            (outcome, None) => {
                let message = match outcome {
                    "timeout" => "Plaid did not answer in time.",
                    "transport" => "Plaid could not be reached.",
                    "decode" => "Plaid's answer could not be read.",
                    _ => "The call failed.",
                };
                (Some(outcome.to_owned()), Some(message.to_owned()))
            }
        };
        HistoryCall {
            at: call.at,
            endpoint: call.endpoint.clone(),
            status: call.http_status,
            request_id: call.request_id.clone(),
            error_code,
            error_message,
            duration_ms: call.latency_ms,
        }
    }
}

/// The Item's recent sync runs and Plaid calls, newest first (`limit` of each, default 50, at most 200).
#[utoipa::path(
    get,
    path = "/api/items/{item_id}/history",
    tag = "items",
    operation_id = "item_history",
    params(
        ("item_id" = String, Path, description = "Plaid's item_id"),
        ("limit" = Option<u32>, Query, description = "Runs and calls to list, each (1 to 200, default 50)",
            minimum = 1, maximum = 200),
    ),
    responses(
        (status = 200, description = "Sync runs and Plaid calls, newest first", body = ItemHistory),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found` (also another user's Item)", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<ItemHistory>> {
    let mut limit = HISTORY_DEFAULT;
    for (name, value) in params {
        match name.as_str() {
            "limit" => {
                limit = value.trim().parse().ok().filter(|n| (1..=HISTORY_MAX).contains(n)).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_query",
                        format!("limit must be a whole number from 1 to {HISTORY_MAX}"),
                    )
                })?;
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}; expected limit"),
                ));
            }
        }
    }
    let item = state.store.get_item(user.id(), &item_id).await.or_not_found("item")?;
    let runs = state.store.list_sync_runs(&item.id, limit).await?;
    let calls = state.store.list_plaid_calls(Some(&item.item_id), limit).await?;
    Ok(AppJson(ItemHistory {
        runs: runs.iter().map(HistoryRun::of).collect(),
        calls: calls.iter().map(HistoryCall::of).collect(),
    }))
}
