//! `POST /api/session` (log in), `GET /api/session` (who am I), `DELETE /api/session` (log out), and
//! [`open_session`], which first-run setup shares.
//!
//! A login reserves one of the name's attempts (`auth::throttle`) before the password is checked through the
//! bounded hash pool (`auth::hash_pool`: 503 `busy` when full), and always checks a hash, a dummy one for unknown
//! names, so the answer and its timing are the same for an unknown user and a wrong password. Every login makes a
//! new session id (no fixation): the cookie's secret is random, only its hash is stored, and the session has a
//! separate public id for `/api/sessions`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody};
use crate::auth::token::{hash_secret, random_secret};
use crate::auth::{AuthMethod, CurrentUser, SESSION_COOKIE, session_cookie};
use crate::domain::{MAX_USER_AGENT_CHARS, NewSession, User};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login, whoami, logout))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    #[schema(format = Password)]
    password: String,
}

#[derive(Serialize, ToSchema)]
pub struct UserView {
    pub id: String,
    pub username: String,
    /// The owner administers the other users (`/api/users`).
    pub is_owner: bool,
}

impl UserView {
    pub fn of(user: User) -> Self {
        UserView { id: user.id.into(), username: user.username, is_owner: user.is_owner }
    }
}

#[derive(Serialize, ToSchema)]
pub(super) struct SessionView {
    user: UserView,
    /// Send back as `X-CSRF-Token` on every cookie-authenticated POST/PATCH/DELETE. Null for bearer requests.
    csrf_token: Option<String>,
}

/// Logs in: sets the session cookie and answers the session's CSRF token.
///
/// A wrong user name and a wrong password get the same 401. Ten attempts for one name within 15 minutes lock it
/// for the rest of the window (counted before the password is checked, so concurrent guesses cannot exceed it);
/// a success resets the count. 503 `busy` (with `Retry-After`) when too many password checks are already waiting.
#[utoipa::path(
    post,
    path = "/api/session",
    tag = "session",
    operation_id = "log_in",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = SessionView,
            headers(("Set-Cookie" = String, description = "`banksync_session=…; HttpOnly; SameSite=Lax`"))),
        (status = 400, description = "`malformed_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`invalid_credentials`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a JSON body", body = ErrorBody),
        (status = 429, description = "`too_many_login_attempts`", body = ErrorBody),
        (status = 503, description = "`busy`: too many password checks waiting; retry after `Retry-After` seconds",
            body = ErrorBody, headers(("Retry-After" = u64, description = "seconds"))),
    ),
)]
async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(body): AppJson<LoginRequest>,
) -> ApiResult<Response> {
    let password = SecretString::from(body.password);
    let user = check_password(&state, &body.username, password).await?;
    open_session(&state, user, &headers, StatusCode::OK).await
}

/// The user named `username` if `password` is theirs: one attempt reserved on the name first (429 past the
/// limit), the check through the bounded pool (503 when full), the same 401 for an unknown name and a wrong
/// password. A success resets the name's count.
pub(super) async fn check_password(state: &AppState, username: &str, password: SecretString) -> ApiResult<User> {
    let attempt = state.auth.throttle.reserve(username).map_err(too_many_attempts)?;
    let user = state
        .store
        .find_user_by_username(username.trim())
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("looking up a user")))?;
    // Always verify (against a dummy hash for unknown users) so timing does not reveal which usernames exist.
    let ok = state.auth.passwords.verify(user.as_ref().map(|u| u.password_hash.clone()), password).await?;
    match (ok, user) {
        (true, Some(user)) => {
            attempt.succeeded();
            Ok(user)
        }
        _ => {
            attempt.failed();
            Err(ApiError::InvalidCredentials)
        }
    }
}

fn too_many_attempts(wait: std::time::Duration) -> ApiError {
    ApiError::TooManyRequests {
        code: "too_many_login_attempts",
        message: format!("too many failed logins for this user name; try again in {} minutes", wait.as_secs() / 60 + 1),
    }
}

/// Starts a new session for `user`: the cookie (a fresh random id: never one the client chose) and the session's
/// CSRF token in the body, answered with `status`.
pub(super) async fn open_session(
    state: &AppState,
    user: User,
    headers: &HeaderMap,
    status: StatusCode,
) -> ApiResult<Response> {
    let session_id = random_secret();
    let csrf_token = random_secret();
    let policy = state.auth.sessions;
    let now = Utc::now();
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT_CHARS).collect::<String>())
        .filter(|ua| !ua.trim().is_empty());
    let session = state
        .store
        .create_session(&NewSession {
            id_hash: hash_secret(&session_id),
            // A second random id, unrelated to the cookie's secret, names the session in listings.
            public_id: random_secret(),
            user_id: user.id.clone(),
            csrf_token: csrf_token.clone(),
            expires_at: now + policy.lifetime(),
            idle_expires_at: now + policy.idle_timeout().min(policy.lifetime()),
            user_agent,
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("creating a session")))?;
    tracing::info!(user_id = %user.id, session = %session.public_id, "session created");

    let cookie = format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        policy.lifetime().num_seconds(),
        if state.web.secure_cookies { "; Secure" } else { "" }
    );
    let body = SessionView { user: UserView::of(user), csrf_token: Some(csrf_token) };
    Ok((status, set_cookie(cookie)?, AppJson(body)).into_response())
}

/// Who am I: the caller, and the session's CSRF token when it authenticated with the session cookie.
#[utoipa::path(
    get,
    path = "/api/session",
    tag = "session",
    operation_id = "current_session",
    responses(
        (status = 200, description = "The caller", body = SessionView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn whoami(user: CurrentUser) -> AppJson<SessionView> {
    let csrf_token = match user.via {
        AuthMethod::Session { csrf_token, .. } => Some(csrf_token),
        AuthMethod::Bearer => None,
    };
    AppJson(SessionView { user: UserView::of(user.user), csrf_token })
}

/// Ends the session (cookie-authenticated, so CSRF-checked by the extractor). Idempotent for bearer callers.
#[utoipa::path(
    delete,
    path = "/api/session",
    tag = "session",
    operation_id = "log_out",
    responses(
        (status = 204, description = "Logged out; the cookie is cleared",
            headers(("Set-Cookie" = String, description = "the expired session cookie, when one was sent"))),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn logout(State(state): State<AppState>, user: CurrentUser, headers: HeaderMap) -> ApiResult<Response> {
    if let AuthMethod::Session { id_hash, .. } = &user.via {
        state
            .store
            .delete_session(id_hash)
            .await
            .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("deleting a session")))?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    if session_cookie(&headers).is_some() {
        let expired = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
        response.headers_mut().extend(set_cookie(expired)?);
    }
    Ok(response)
}

fn set_cookie(cookie: String) -> ApiResult<HeaderMap> {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(anyhow::anyhow!("bad cookie: {e}")))?;
    headers.insert(header::SET_COOKIE, value);
    Ok(headers)
}
