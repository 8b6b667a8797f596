//! Live balances: `POST /api/balances/refresh` answers `202 {job_id}` at once; the job asks each bank through
//! `/accounts/balance/get` in the background (seconds, sometimes 30 s+). `GET /api/balances/refresh/{job_id}?wait=S`
//! long-polls for the outcome per Item.

use std::collections::HashMap;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use super::body::optional_json;
use super::error::{ApiError, ApiResult, AppJson};
use crate::auth::CurrentUser;
use crate::balances::BalanceJob;
use crate::state::AppState;

/// Longest long-poll: shorter than the route's time budget and than common proxy idle timeouts.
pub const MAX_WAIT: Duration = Duration::from_secs(30);

pub fn start_router() -> Router<AppState> {
    Router::new().route("/api/balances/refresh", post(start))
}

pub fn poll_router() -> Router<AppState> {
    Router::new().route("/api/balances/refresh/{job_id}", get(status))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    item_id: Option<String>,
}

#[derive(Serialize)]
struct Started {
    job_id: String,
}

async fn start(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<(StatusCode, AppJson<Started>)> {
    let request: RefreshRequest = optional_json(&body)?;
    let job_id = state.balances.start(user.id(), request.item_id.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, AppJson(Started { job_id })))
}

async fn status(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(job_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<AppJson<BalanceJob>> {
    let mut wait = Duration::ZERO;
    for (name, value) in params {
        match name.as_str() {
            "wait" => {
                let seconds =
                    value.trim().parse::<f64>().ok().filter(|s| s.is_finite() && *s >= 0.0).ok_or_else(|| {
                        ApiError::bad_request("invalid_query", "wait must be a number of seconds (0 to 30)")
                    })?;
                wait = Duration::from_secs_f64(seconds.min(MAX_WAIT.as_secs_f64()));
            }
            other => {
                return Err(ApiError::bad_request(
                    "invalid_query",
                    format!("unknown query parameter {other:?}; expected wait"),
                ));
            }
        }
    }
    let job =
        state.balances.status(user.id(), &job_id, wait).await?.ok_or(ApiError::NotFound("balance refresh job"))?;
    Ok(AppJson(job))
}
