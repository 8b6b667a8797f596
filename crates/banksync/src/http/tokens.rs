//! `/api/tokens`: the caller's API tokens. Listing shows ids, labels and dates, never a token or its hash; a new
//! token is shown once in the `POST` answer; `DELETE` revokes at once (the bearer check reads the database on every
//! request).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiResult, AppJson, StoreResultExt as _};
use crate::auth::CurrentUser;
use crate::auth::token::{hash_secret, new_api_token};
use crate::domain::ApiToken;
use crate::state::AppState;

/// Longest label, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Tokens one user may hold; a bound on what a stolen session can mint.
pub const MAX_TOKENS_PER_USER: usize = 100;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/tokens", get(list).post(create)).route("/api/tokens/{token_id}", delete(revoke))
}

#[derive(Serialize)]
struct TokenView {
    id: String,
    name: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
}

impl TokenView {
    fn of(token: &ApiToken) -> Self {
        TokenView {
            id: token.id.clone(),
            name: token.name.clone(),
            created_at: token.created_at,
            last_used_at: token.last_used_at,
        }
    }
}

#[derive(Serialize)]
struct TokenList {
    tokens: Vec<TokenView>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    name: String,
}

#[derive(Serialize)]
struct Created {
    #[serde(flatten)]
    view: TokenView,
    /// The bearer token, shown only in this answer; only its hash is stored.
    token: String,
}

async fn list(State(state): State<AppState>, user: CurrentUser) -> ApiResult<AppJson<TokenList>> {
    let tokens = state.store.list_api_tokens(user.id()).await?;
    Ok(AppJson(TokenList { tokens: tokens.iter().map(TokenView::of).collect() }))
}

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
    let stored = state.store.create_api_token(user.id(), name, &hash_secret(&token)).await?;
    tracing::info!(user_id = %user.id(), token_id = %stored.id, "API token created");
    Ok((StatusCode::CREATED, AppJson(Created { view: TokenView::of(&stored), token })))
}

/// 204; 404 for an unknown id or another user's token.
async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(token_id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_api_token(user.id(), &token_id).await.or_not_found("token")?;
    tracing::info!(user_id = %user.id(), token_id = %token_id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
