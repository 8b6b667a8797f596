//! Live balances: `POST /api/balances/refresh` answers `202 {job_id}` at once; the job asks each bank through
//! `/accounts/balance/get` in the background (seconds, sometimes 30 s+), as fast as Plaid's rate limits allow (an
//! Item past the limit waits for room rather than failing). A refresh of a scope already running, here or in another
//! instance, answers that job's id; an Item whose live balances are younger than `BANKSYNC_BALANCE_MAX_AGE` is not
//! asked again (`fresh`). `GET /api/balances/refresh/{job_id}?wait=S` long-polls for the outcome per Item.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::optional_json;
use super::error::{ApiError, ApiResult, AppJson, ErrorBody};
use super::views::BalanceJobView;
use crate::auth::CurrentUser;
use crate::balances::BalanceJob;
use crate::domain::{JobId, PlaidItemId};
use crate::state::AppState;

pub fn start_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start))
}

pub fn poll_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status))
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    /// Only this Item; all of the caller's Items without it.
    #[schema(value_type = Option<String>)]
    item_id: Option<PlaidItemId>,
}

#[derive(Serialize, ToSchema)]
struct Started {
    #[schema(value_type = String)]
    job_id: JobId,
}

/// Starts a live balance refresh in the background and answers its job id at once (the running job's, when the
/// same refresh is already running).
#[utoipa::path(
    post,
    path = "/api/balances/refresh",
    tag = "balances",
    operation_id = "start_balance_refresh",
    request_body(content = Option<RefreshRequest>, description = "Optional: no body, `{}`, or `{item_id}`",
        content_type = "application/json"),
    responses(
        (status = 202, description = "Started", body = Started),
        (status = 400, description = "`malformed_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such Item", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn start(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<(StatusCode, AppJson<Started>)> {
    let request: RefreshRequest = optional_json(&body)?;
    let job_id = state.balances.start(user.id(), request.item_id.as_ref()).await?;
    Ok((StatusCode::ACCEPTED, AppJson(Started { job_id })))
}

/// A balance refresh job's state, long-polling up to `wait` seconds (at most 30) for it to finish.
#[utoipa::path(
    get,
    path = "/api/balances/refresh/{job_id}",
    tag = "balances",
    operation_id = "balance_refresh_status",
    params(
        ("job_id" = String, Path, description = "From `POST /api/balances/refresh`"),
        ("wait" = Option<f64>, Query, description = "Seconds to wait for the job to finish (0 to 30)"),
    ),
    responses(
        (status = 200, description = "The job: its state and each Item's outcome", body = BalanceJobView),
        (status = 400, description = "`invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: unknown job, another user's, or expired", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn status(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(job_id): Path<String>,
    limits: Option<axum::Extension<super::server::ServerLimits>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<BalanceJob>> {
    let wait = super::jobs::wait_param(params, limits.map(|l| l.0))?;
    let job = state
        .balances
        .status(user.id(), &JobId::from(job_id), wait)
        .await?
        .ok_or(ApiError::NotFound("balance refresh job"))?;
    Ok(AppJson(job))
}
