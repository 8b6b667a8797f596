//! First-run setup: `GET /api/setup` (is it needed, does it need the code) and `POST /api/setup` (create the owner
//! and log them in). No authentication: there is nobody to authenticate yet.
//!
//! Who may set up: a direct connection from this machine (TCP peer on loopback and no proxy header, see
//! `http::peer`), or anyone with the one-time setup code printed in the server's log at start. Without that rule,
//! whoever reached a fresh server first — from the network, or through a reverse proxy on the same host — would own
//! it. Only while no user exists: the insert itself checks that (`Store::create_owner_if_none`), so two racing
//! setups end with exactly one owner and a 409 `already_set_up` for the other.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody};
use super::session::{SessionView, open_session};
use crate::auth::password::{validate_new_password, validate_new_username};
use crate::auth::setup_code::SetupCodeError;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status, set_up))
}

#[derive(Serialize, ToSchema)]
struct SetupStatus {
    /// True while no user exists: the page shows the setup form instead of the login.
    needed: bool,
    /// True when this request would need the setup code (it does not come straight from this machine).
    code_required: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SetupRequest {
    /// 1-64 characters, no spaces.
    username: String,
    /// At least 10 characters, not the user name.
    #[schema(format = Password)]
    password: String,
    /// `XXXX-XXXX-XXXX` from the server's log; needed unless the request comes straight from this machine.
    setup_code: Option<String>,
}

/// Whether the request comes straight from this machine (see `http::peer`).
struct Local(bool);

impl<S: Send + Sync> FromRequestParts<S> for Local {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Local(super::peer::is_direct_loopback(parts)))
    }
}

/// Whether first-run setup is needed, and whether this caller would need the setup code.
#[utoipa::path(
    get,
    path = "/api/setup",
    tag = "setup",
    operation_id = "setup_status",
    responses((status = 200, description = "Setup state", body = SetupStatus)),
)]
async fn status(State(state): State<AppState>, Local(local): Local) -> ApiResult<AppJson<SetupStatus>> {
    let needed = state.store.count_users().await? == 0;
    Ok(AppJson(SetupStatus { needed, code_required: !local }))
}

/// Creates the owner while no user exists and logs them in: the session cookie and the CSRF token, as
/// `POST /api/session` answers.
#[utoipa::path(
    post,
    path = "/api/setup",
    tag = "setup",
    operation_id = "set_up",
    request_body = SetupRequest,
    responses(
        (status = 201, description = "The owner exists and is logged in", body = SessionView,
            headers(("Set-Cookie" = String, description = "`banksync_session=…; HttpOnly; SameSite=Lax`"))),
        (status = 400, description = "`invalid_username`, `invalid_password`, `malformed_json`, `invalid_body`",
            body = ErrorBody),
        (status = 403, description = "`setup_code_required`, `setup_code_invalid`, `setup_code_exhausted` (restart \
            banksync for a new code)", body = ErrorBody),
        (status = 409, description = "`already_set_up`: a user exists", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a JSON body", body = ErrorBody),
        (status = 503, description = "`busy`: too many password hashes waiting", body = ErrorBody),
    ),
)]
async fn set_up(
    State(state): State<AppState>,
    Local(local): Local,
    headers: HeaderMap,
    AppJson(body): AppJson<SetupRequest>,
) -> ApiResult<Response> {
    if state.store.count_users().await? > 0 {
        return Err(already_set_up());
    }
    if !local {
        let code = body.setup_code.as_deref().map(str::trim).filter(|c| !c.is_empty()).ok_or_else(|| {
            forbidden(
                "setup_code_required",
                "this request does not come straight from the server's machine: enter the setup code from the \
                 server's log (the line `setup code: XXXX-XXXX-XXXX`)",
            )
        })?;
        state.auth.setup_code.check(code).map_err(|e| match e {
            SetupCodeError::Wrong => forbidden("setup_code_invalid", e.to_string()),
            SetupCodeError::Exhausted | SetupCodeError::Unavailable => forbidden("setup_code_exhausted", e.to_string()),
        })?;
    }
    let username = body.username.trim();
    validate_new_username(username).map_err(|m| ApiError::bad_request("invalid_username", m))?;
    validate_new_password(&body.password, username).map_err(|m| ApiError::bad_request("invalid_password", m))?;

    let hash = state.auth.passwords.hash(SecretString::from(body.password)).await?;
    let owner = state.store.create_owner_if_none(username, &hash).await?.ok_or_else(already_set_up)?;
    state.auth.setup_code.consume();
    tracing::info!(user_id = %owner.id, local, "first-run setup: owner created");
    open_session(&state, owner, &headers, StatusCode::CREATED).await
}

fn already_set_up() -> ApiError {
    ApiError::conflict("already_set_up", "banksync is already set up: log in instead")
}

fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Forbidden { code, message: message.into() }
}
