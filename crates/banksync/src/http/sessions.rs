//! `/api/sessions`: the caller's browser sessions — list them (`current: true` on the one asking), sign one out,
//! or sign out every other. Sessions are named by their public id, a random id unrelated to the cookie's secret.
//! A bearer caller (a script) has no current session: it sees them all and "others" means all of them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiResult, AppJson, ErrorBody, StoreResultExt as _};
use crate::auth::CurrentUser;
use crate::domain::Session;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(sign_out)).routes(routes!(sign_out_others))
}

#[derive(Serialize, ToSchema)]
struct SessionEntry {
    /// The session's public id (for `DELETE /api/sessions/{id}`); not a credential.
    id: String,
    created_at: DateTime<Utc>,
    /// Last use, recorded at most once a minute.
    last_seen_at: DateTime<Utc>,
    /// Ends here unless used before (the idle timeout).
    idle_expires_at: DateTime<Utc>,
    /// Ends here however active (the absolute lifetime).
    expires_at: DateTime<Utc>,
    /// The browser's `User-Agent` at log-in (at most 200 characters).
    user_agent: Option<String>,
    /// The session this request came with.
    current: bool,
}

impl SessionEntry {
    fn of(session: Session, current: Option<&str>) -> Self {
        SessionEntry {
            current: current == Some(session.public_id.as_str()),
            id: session.public_id,
            created_at: session.created_at,
            last_seen_at: session.last_seen_at,
            idle_expires_at: session.idle_expires_at,
            expires_at: session.expires_at,
            user_agent: session.user_agent,
        }
    }
}

#[derive(Serialize, ToSchema)]
struct SessionList {
    sessions: Vec<SessionEntry>,
}

#[derive(Serialize, ToSchema)]
struct SignedOut {
    /// How many sessions ended.
    signed_out: u64,
}

/// The caller's live sessions, most recently used first.
#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "session",
    operation_id = "list_sessions",
    responses(
        (status = 200, description = "The sessions", body = SessionList),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> ApiResult<AppJson<SessionList>> {
    let sessions = state.store.list_sessions(user.id()).await?;
    let current = user.session_public_id();
    Ok(AppJson(SessionList { sessions: sessions.into_iter().map(|s| SessionEntry::of(s, current)).collect() }))
}

/// Signs one of the caller's sessions out (the current one too: that is a log-out). 404 for an unknown id or
/// another user's session.
#[utoipa::path(
    delete,
    path = "/api/sessions/{session_id}",
    tag = "session",
    operation_id = "sign_out_session",
    params(("session_id" = String, Path, description = "The session's public id")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn sign_out(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(session_id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_session_by_public_id(user.id(), &session_id).await.or_not_found("session")?;
    tracing::info!(user_id = %user.id(), session = %session_id, "session signed out");
    Ok(StatusCode::NO_CONTENT)
}

/// Signs out every session of the caller except the one this request came with (all of them for a bearer caller).
#[utoipa::path(
    post,
    path = "/api/sessions/sign-out-others",
    tag = "session",
    operation_id = "sign_out_other_sessions",
    responses(
        (status = 200, description = "How many sessions ended", body = SignedOut),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn sign_out_others(State(state): State<AppState>, user: CurrentUser) -> ApiResult<AppJson<SignedOut>> {
    let signed_out = state.store.delete_other_sessions(user.id(), user.session_public_id()).await?;
    tracing::info!(user_id = %user.id(), signed_out, "other sessions signed out");
    Ok(AppJson(SignedOut { signed_out }))
}
