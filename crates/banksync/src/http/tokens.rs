//! `/api/tokens`: the caller's API tokens. Listing shows ids, labels and dates, never a token or its hash; a new
//! token is shown once in the `POST` answer; `DELETE` revokes at once (the bearer check reads the database on every
//! request).

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
use crate::domain::ApiToken;
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

/// The caller's API tokens (never a token or its hash).
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
    Ok(AppJson(TokenList { tokens: tokens.iter().map(TokenView::of).collect() }))
}

/// Creates an API token; the token is shown only in this answer.
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
    let stored = state.store.create_api_token(user.id(), name, &hash_secret(&token)).await?;
    tracing::info!(user_id = %user.id(), token_id = %stored.id, "API token created");
    Ok((StatusCode::CREATED, AppJson(Created { view: TokenView::of(&stored), token })))
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
