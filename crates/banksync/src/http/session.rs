//! `POST /api/session` (log in), `GET /api/session` (who am I), `DELETE /api/session` (log out).

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
use crate::auth::password::verify_password;
use crate::auth::token::{hash_secret, random_secret};
use crate::auth::{AuthMethod, CurrentUser, SESSION_COOKIE, session_cookie};
use crate::domain::NewSession;
use crate::state::AppState;

/// How long a session lasts.
pub const SESSION_LIFETIME: chrono::Duration = chrono::Duration::days(7);

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
}

#[derive(Serialize, ToSchema)]
struct SessionView {
    user: UserView,
    /// Send back as `X-CSRF-Token` on every cookie-authenticated POST/PATCH/DELETE. Null for bearer requests.
    csrf_token: Option<String>,
}

/// Logs in: sets the session cookie and answers the session's CSRF token.
///
/// A wrong user name and a wrong password get the same 401. Ten failures for one name within 15 minutes lock it
/// for the rest of the window.
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
    ),
)]
async fn login(State(state): State<AppState>, AppJson(body): AppJson<LoginRequest>) -> ApiResult<Response> {
    let password = SecretString::from(body.password);
    if let Err(wait) = state.login_throttle.check(&body.username) {
        return Err(ApiError::TooManyRequests {
            code: "too_many_login_attempts",
            message: format!(
                "too many failed logins for this user name; try again in {} minutes",
                wait.as_secs() / 60 + 1
            ),
        });
    }
    let user = state
        .store
        .find_user_by_username(body.username.trim())
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("looking up a user")))?;
    // Always verify (against a dummy hash for unknown users) so timing does not reveal which usernames exist.
    let ok = verify_password(user.as_ref().map(|u| u.password_hash.clone()), password).await?;
    let user = match (ok, user) {
        (true, Some(user)) => user,
        _ => {
            state.login_throttle.record_failure(&body.username);
            return Err(ApiError::InvalidCredentials);
        }
    };

    state.login_throttle.record_success(&body.username);
    let session_id = random_secret();
    let csrf_token = random_secret();
    state
        .store
        .create_session(&NewSession {
            id_hash: hash_secret(&session_id),
            user_id: user.id.clone(),
            csrf_token: csrf_token.clone(),
            expires_at: Utc::now() + SESSION_LIFETIME,
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("creating a session")))?;
    tracing::info!(user_id = %user.id, "session created");

    let cookie = format!(
        "{SESSION_COOKIE}={session_id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        SESSION_LIFETIME.num_seconds(),
        if state.web.secure_cookies { "; Secure" } else { "" }
    );
    let body =
        SessionView { user: UserView { id: user.id.into(), username: user.username }, csrf_token: Some(csrf_token) };
    Ok((set_cookie(cookie)?, AppJson(body)).into_response())
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
    AppJson(SessionView { user: UserView { id: user.user.id.into(), username: user.user.username }, csrf_token })
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
