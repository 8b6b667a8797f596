//! `/api/account`: the caller's own account. `POST /api/account/password` changes the password: the current one is
//! checked like a login (one of the name's throttled attempts, through the bounded hash pool), the new one must
//! follow the rules, and every OTHER session of the user ends in the same transaction (a session opened with the
//! old password — possibly by whoever learned it — must not survive the change); the session that asked stays.
//!
//! API tokens stay valid: they are separate credentials, listed in `GET /api/tokens` with how they were made
//! (`created_via`, and the creating session for tokens made from the page) and revoked one by one. A token's life is
//! never tied silently to a session: the list says which session made it, whether that session still exists, and
//! revoking is explicit.

use axum::extract::State;
use axum::http::StatusCode;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody};
use crate::auth::CurrentUser;
use crate::auth::password::validate_new_password;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(change_password))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    #[schema(format = Password)]
    current_password: String,
    /// At least 10 characters, not the user name, not the current password.
    #[schema(format = Password)]
    new_password: String,
}

/// Changes the caller's password and signs out every other session (API tokens stay; see `GET /api/tokens`).
#[utoipa::path(
    post,
    path = "/api/account/password",
    tag = "session",
    operation_id = "change_password",
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; every other session ended"),
        (status = 400, description = "`invalid_password`, `malformed_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`current_password_wrong`, `csrf_token_invalid`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a JSON body", body = ErrorBody),
        (status = 429, description = "`too_many_login_attempts`", body = ErrorBody),
        (status = 503, description = "`busy`: too many password checks waiting", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn change_password(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<ChangePassword>,
) -> ApiResult<StatusCode> {
    let username = user.user.username.clone();
    validate_new_password(&body.new_password, &username).map_err(|m| ApiError::bad_request("invalid_password", m))?;
    if body.new_password == body.current_password {
        return Err(ApiError::bad_request("invalid_password", "the new password must differ from the current one"));
    }
    // The same throttle and pool as a login: a stolen session cannot guess the password faster than the login
    // form allows. A wrong current password is a 403 (the caller is authenticated; 401 would read as "log in").
    match super::session::check_password(&state, &username, SecretString::from(body.current_password)).await {
        Ok(_) => {}
        Err(ApiError::InvalidCredentials) => {
            return Err(ApiError::Forbidden {
                code: "current_password_wrong",
                message: "the current password is wrong".into(),
            });
        }
        Err(e) => return Err(e),
    }
    let hash = state.auth.passwords.hash(SecretString::from(body.new_password)).await?;
    let ended = state.store.set_password_and_end_other_sessions(user.id(), &hash, user.session_public_id()).await?;
    tracing::info!(user_id = %user.id(), other_sessions_ended = ended, "password changed");
    Ok(StatusCode::NO_CONTENT)
}
