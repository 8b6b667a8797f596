//! `/api/users`: the owner manages who may use this banksync. Owner only (others get 403 `owner_only`): list,
//! create (a plain user, with the password rules of setup), delete (never oneself; never a user who still has
//! linked banks, since each Item must be removed at Plaid first, which only removing the Item does — deleting the
//! rows would leave the connection live and billed at Plaid).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, AppJson, ErrorBody, StoreResultExt as _};
use crate::auth::CurrentUser;
use crate::auth::password::{validate_new_password, validate_new_username};
use crate::domain::{User, UserId};
use crate::state::AppState;
use crate::store::{DeleteUser, StoreError};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list, create)).routes(routes!(delete))
}

#[derive(Serialize, ToSchema)]
struct UserEntry {
    id: String,
    username: String,
    is_owner: bool,
    created_at: DateTime<Utc>,
}

impl UserEntry {
    fn of(user: User) -> Self {
        UserEntry { id: user.id.into(), username: user.username, is_owner: user.is_owner, created_at: user.created_at }
    }
}

#[derive(Serialize, ToSchema)]
struct UserList {
    users: Vec<UserEntry>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    /// 1-64 characters, no spaces; unique.
    username: String,
    /// At least 10 characters, not the user name.
    #[schema(format = Password)]
    password: String,
}

fn require_owner(user: &CurrentUser) -> ApiResult<()> {
    if user.user.is_owner {
        Ok(())
    } else {
        Err(ApiError::Forbidden { code: "owner_only", message: "only the owner manages users".into() })
    }
}

/// Every user, by name (owner only).
#[utoipa::path(
    get,
    path = "/api/users",
    tag = "users",
    operation_id = "list_users",
    responses(
        (status = 200, description = "The users", body = UserList),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`owner_only`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> ApiResult<AppJson<UserList>> {
    require_owner(&user)?;
    let users = state.store.list_users().await?;
    Ok(AppJson(UserList { users: users.into_iter().map(UserEntry::of).collect() }))
}

/// Creates a (non-owner) user (owner only).
#[utoipa::path(
    post,
    path = "/api/users",
    tag = "users",
    operation_id = "create_user",
    request_body = CreateUser,
    responses(
        (status = 201, description = "The new user", body = UserEntry),
        (status = 400, description = "`invalid_username`, `invalid_password`, `malformed_json`, `invalid_body`",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`owner_only`, `csrf_token_invalid`", body = ErrorBody),
        (status = 409, description = "`username_taken`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a JSON body", body = ErrorBody),
        (status = 503, description = "`busy`: too many password hashes waiting", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<CreateUser>,
) -> ApiResult<(StatusCode, AppJson<UserEntry>)> {
    require_owner(&user)?;
    let username = body.username.trim();
    validate_new_username(username).map_err(|m| ApiError::bad_request("invalid_username", m))?;
    validate_new_password(&body.password, username).map_err(|m| ApiError::bad_request("invalid_password", m))?;
    if state.store.find_user_by_username(username).await?.is_some() {
        return Err(username_taken(username));
    }
    let hash = state.auth.passwords.hash(SecretString::from(body.password)).await?;
    let created = state.store.create_user(username, &hash).await.map_err(|e| match e {
        StoreError::Conflict(_) => username_taken(username),
        other => other.into(),
    })?;
    tracing::info!(by = %user.id(), user_id = %created.id, "user created");
    Ok((StatusCode::CREATED, AppJson(UserEntry::of(created))))
}

fn username_taken(username: &str) -> ApiError {
    ApiError::conflict("username_taken", format!("a user named {username:?} already exists"))
}

/// Deletes a user with their sessions, API tokens and everything else they own (owner only). Not oneself; not a
/// user who still has linked banks (409 `user_has_items`: they must remove them first, so each is removed at Plaid).
#[utoipa::path(
    delete,
    path = "/api/users/{user_id}",
    tag = "users",
    operation_id = "delete_user",
    params(("user_id" = String, Path, description = "The user's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`owner_only`, `csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`cannot_delete_self`, `user_has_items`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(user_id): Path<String>,
) -> ApiResult<StatusCode> {
    require_owner(&user)?;
    let target = UserId::from(user_id);
    if &target == user.id() {
        return Err(ApiError::conflict("cannot_delete_self", "you cannot delete yourself"));
    }
    match state.store.delete_user(&target).await.or_not_found("user")? {
        DeleteUser::Deleted => {
            tracing::info!(by = %user.id(), user_id = %target, "user deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteUser::HasItems(n) => Err(ApiError::conflict(
            "user_has_items",
            format!(
                "this user still has {n} linked bank(s); they must remove them first (each is removed at Plaid, so \
                 it stops being billed), then the user can be deleted"
            ),
        )),
    }
}
