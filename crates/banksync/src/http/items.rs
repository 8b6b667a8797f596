//! `/api/items`: the caller's linked Items (bank connections) with their health.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::optional_json;
use super::error::{ApiError, ApiResult, AppJson, ErrorBody, StoreResultExt as _};
use super::views::{ItemView, SyncRunView};
use crate::auth::CurrentUser;
use crate::domain::{AccountFilter, PlaidItemId};
use crate::state::AppState;
use crate::sync::{SyncSummary, SyncTrigger};

/// How many sync runs `GET /api/items/{item_id}` shows.
const RECENT_SYNC_RUNS: u32 = 10;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(show, remove)).routes(routes!(repaired))
}

/// Routes that may legitimately run long (a first sync of years of history); they get their own time budget.
pub fn sync_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sync))
}

#[derive(Serialize, ToSchema)]
struct ItemList {
    items: Vec<ItemView>,
}

/// The caller's Items with their accounts and health.
#[utoipa::path(
    get,
    path = "/api/items",
    tag = "items",
    operation_id = "list_items",
    responses(
        (status = 200, description = "The Items, each with its accounts", body = ItemList),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn list(State(state): State<AppState>, user: CurrentUser) -> ApiResult<AppJson<ItemList>> {
    let items = state.store.list_items(user.id()).await?;
    let accounts = state.store.list_accounts(user.id(), &AccountFilter::default()).await?;
    let items = items
        .iter()
        .map(|item| {
            let own: Vec<_> = accounts.iter().filter(|a| a.item_id == item.item_id).cloned().collect();
            ItemView::of(item).with_accounts(&own)
        })
        .collect();
    Ok(AppJson(ItemList { items }))
}

/// One Item with its accounts and its recent sync runs.
#[utoipa::path(
    get,
    path = "/api/items/{item_id}",
    tag = "items",
    operation_id = "get_item",
    params(("item_id" = String, Path, description = "Plaid's item_id")),
    responses(
        (status = 200, description = "The Item", body = ItemView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found` (also another user's Item)", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn show(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
) -> ApiResult<AppJson<ItemView>> {
    let item = state.store.get_item(user.id(), &item_id).await.or_not_found("item")?;
    let filter = AccountFilter { item_id: Some(item.item_id.clone()), include_removed: false };
    let accounts = state.store.list_accounts(user.id(), &filter).await?;
    let runs = state.store.list_sync_runs(&item.id, RECENT_SYNC_RUNS).await?;
    let mut view = ItemView::of(&item).with_accounts(&accounts);
    view.recent_sync_runs = Some(runs.iter().map(SyncRunView::of).collect());
    Ok(AppJson(view))
}

/// Removes an Item: `/item/remove` at Plaid (so it stops billing), then the Item's local data.
#[utoipa::path(
    delete,
    path = "/api/items/{item_id}",
    tag = "items",
    operation_id = "remove_item",
    params(("item_id" = String, Path, description = "Plaid's item_id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 502, description = "Plaid failed (its error code in lower case)", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn remove(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
) -> ApiResult<StatusCode> {
    state.link.remove(user.id(), &item_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Called after Link in update mode succeeded: the Item is marked good and synced again (in the background).
#[utoipa::path(
    post,
    path = "/api/items/{item_id}/repaired",
    tag = "items",
    operation_id = "item_repaired",
    params(("item_id" = String, Path, description = "Plaid's item_id")),
    responses(
        (status = 200, description = "The Item, healthy again", body = ItemView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn repaired(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
) -> ApiResult<AppJson<ItemView>> {
    state.link.repaired(user.id(), &item_id).await?;
    let item = state.store.get_item(user.id(), &item_id).await.or_not_found("item")?;
    Ok(AppJson(ItemView::of(&item)))
}

/// No options yet: an empty body or `{}`.
#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SyncRequest {}

/// Runs a sync now and answers with its summary. A sync already running for the Item is joined, not repeated.
#[utoipa::path(
    post,
    path = "/api/items/{item_id}/sync",
    tag = "items",
    operation_id = "sync_item",
    params(("item_id" = String, Path, description = "Plaid's item_id")),
    request_body(content = Option<SyncRequest>, description = "Optional: no body or `{}`",
        content_type = "application/json"),
    responses(
        (status = 200, description = "The sync's summary", body = SyncSummary),
        (status = 400, description = "`malformed_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`item_revoked`, or Plaid's `item_login_required`", body = ErrorBody),
        (status = 429, description = "`sync_cooldown`: synced a moment ago", body = ErrorBody),
        (status = 503, description = "`request_timeout`, `sync_restarts_exhausted`, or the bank is down", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn sync(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(item_id): Path<PlaidItemId>,
    body: Bytes,
) -> ApiResult<AppJson<SyncSummary>> {
    let _: SyncRequest = optional_json(&body)?;
    let item = state.store.get_item(user.id(), &item_id).await.or_not_found("item")?;
    // The user revoked access at Plaid: a sync can only fail (and is billed). Removal or a new link is the way out.
    if item.status == crate::domain::ItemStatus::Revoked {
        return Err(ApiError::Conflict {
            code: "item_revoked",
            message: "Access to this bank was revoked. Remove it here, or link the bank again.".into(),
        });
    }
    // Plaid bills and throttles syncs: one manual sync per Item per cooldown period.
    if let Err(remaining) = state.sync_cooldown.try_start(&item.item_id) {
        let seconds = crate::jobs::Cooldown::retry_after_secs(remaining);
        return Err(ApiError::TooManyRequests {
            code: "sync_cooldown",
            message: format!("This bank was synced a moment ago; try again in {seconds} seconds."),
        });
    }
    let summary = state.sync.sync_item(&item, SyncTrigger::Manual).await?;
    Ok(AppJson(summary))
}
