//! `/api/tokens`: the caller's API tokens. Listing shows ids, labels, dates and how each token was made, never a
//! token or its hash; a new token is shown once in the `POST` answer; `DELETE` revokes at once (the bearer check
//! reads the database on every request).
//!
//! **The rule for tokens and sessions**: an API token is a credential of its own. It is not ended by logging out,
//! by the end of the session that made it, or by a password change — only by revoking it. So that a token made
//! from the page never outlives its session silently, each token records how it was made (`created_via`: `cli`,
//! `session`, `token`) and, when made from a browser session, that session's public id (`created_by_session`) and
//! whether that session is still live (`created_by_session_active`); the page lists them for revocation.
//! `last_used_at` is recorded at most once a minute.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody, StoreResultExt as _};
use crate::auth::CurrentUser;
use crate::auth::token::{hash_secret, new_api_token};
use crate::domain::{ApiToken, TokenOrigin};
use crate::state::AppState;

/// Longest label, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Tokens one user may hold; a bound on what a stolen session can mint.
pub const MAX_TOKENS_PER_USER: usize = 100;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(revoke))
}

#[derive(Serialize, ToSchema)]
struct TokenView {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    /// Recorded at most once a minute.
    last_used_at: Option<DateTime<Utc>>,
    /// `cli` (`banksync token create`), `session` (made from a logged-in page) or `token` (made by another token).
    created_via: &'static str,
    /// For `created_via = session`: the public id of the session that made it (as in `GET /api/sessions`).
    created_by_session: Option<String>,
    /// Whether that session is still live. The token works either way: revoke it when it is not wanted.
    created_by_session_active: bool,
}

impl TokenView {
    /// `live` are the public ids of the user's live sessions.
    fn of(token: &ApiToken, live: &[String]) -> Self {
        let (created_via, created_by_session) = match &token.origin {
            TokenOrigin::Cli => ("cli", None),
            TokenOrigin::Session { session_id } => ("session", Some(session_id.clone())),
            TokenOrigin::Token => ("token", None),
        };
        TokenView {
            id: token.id.clone(),
            name: token.name.clone(),
            created_at: token.created_at,
            last_used_at: token.last_used_at,
            created_via,
            created_by_session_active: created_by_session.as_ref().is_some_and(|s| live.contains(s)),
            created_by_session,
        }
    }
}

/// Public ids of the user's live sessions.
async fn live_sessions(state: &AppState, user: &CurrentUser) -> ApiResult<Vec<String>> {
    Ok(state.store.list_sessions(user.id()).await?.into_iter().map(|s| s.public_id).collect())
}

#[derive(Serialize, ToSchema)]
struct TokenList {
    tokens: Vec<TokenView>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// A label, 1 to 64 characters.
    name: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CreatedToken)]
struct Created {
    #[serde(flatten)]
    view: TokenView,
    /// The bearer token, shown only in this answer; only its hash is stored.
    token: String,
}

/// The caller's API tokens (never a token or its hash), with how each was made. Tokens outlive the session that
/// made them, log-outs and password changes: they end only when revoked.
#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "tokens",
    operation_id = "list_tokens",
    responses(
        (status = 200, description = "The tokens", body = TokenList),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> ApiResult<AppJson<TokenList>> {
    let tokens = state.store.list_api_tokens(user.id()).await?;
    let live = live_sessions(&state, &user).await?;
    Ok(AppJson(TokenList { tokens: tokens.iter().map(|t| TokenView::of(t, &live)).collect() }))
}

/// Creates an API token; the token is shown only in this answer. It records how it was made (from this browser
/// session, or by another token) and stays valid until revoked, whatever happens to the session.
#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "tokens",
    operation_id = "create_token",
    request_body = CreateRequest,
    responses(
        (status = 201, description = "The new token, with the `bsk_…` secret", body = Created),
        (status = 400, description = "`invalid_name`, `malformed_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 409, description = "`too_many_tokens`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a JSON body", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<CreateRequest>,
) -> ApiResult<(StatusCode, AppJson<Created>)> {
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("name must be 1-{MAX_NAME_CHARS} characters without control characters"),
        ));
    }
    if state.store.list_api_tokens(user.id()).await?.len() >= MAX_TOKENS_PER_USER {
        return Err(ApiError::conflict(
            "too_many_tokens",
            format!("you already have {MAX_TOKENS_PER_USER} API tokens; revoke some first"),
        ));
    }
    let token = new_api_token();
    let origin = match user.session_public_id() {
        Some(session_id) => TokenOrigin::Session { session_id: session_id.to_owned() },
        None => TokenOrigin::Token,
    };
    let stored = state.store.create_api_token_from(user.id(), name, &hash_secret(&token), origin).await?;
    tracing::info!(user_id = %user.id(), token_id = %stored.id, "API token created");
    let live: Vec<String> = user.session_public_id().map(str::to_owned).into_iter().collect();
    Ok((StatusCode::CREATED, AppJson(Created { view: TokenView::of(&stored, &live), token })))
}

/// Revokes a token at once. 204; 404 for an unknown id or another user's token.
#[utoipa::path(
    delete,
    path = "/api/tokens/{token_id}",
    tag = "tokens",
    operation_id = "revoke_token",
    params(("token_id" = String, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(token_id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_api_token(user.id(), &token_id).await.or_not_found("token")?;
    tracing::info!(user_id = %user.id(), token_id = %token_id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
