//! The Link flow: `POST /api/link/token` (new Item, or update mode with `item_id`) and `POST /api/link/exchange`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::body::optional_json;
use super::error::{ApiError, ApiResult, AppJson, ErrorBody};
use super::views::ItemView;
use crate::auth::CurrentUser;
use crate::domain::PlaidItemId;
use crate::link::{LinkMetadata, SameInstitution};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_token)).routes(routes!(exchange))
}

#[derive(Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LinkTokenRequest {
    /// Update mode: repair this Item's login.
    #[schema(value_type = Option<String>)]
    item_id: Option<PlaidItemId>,
}

#[derive(Serialize, ToSchema)]
struct LinkTokenView {
    link_token: String,
    expiration: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    item_id: Option<PlaidItemId>,
}

/// A Link token for a new Item, or with `item_id` an update-mode token to repair that Item's login.
#[utoipa::path(
    post,
    path = "/api/link/token",
    tag = "link",
    operation_id = "create_link_token",
    request_body(content = Option<LinkTokenRequest>, description = "Optional: no body, `{}`, or `{item_id}`",
        content_type = "application/json"),
    responses(
        (status = 200, description = "The Link token", body = LinkTokenView),
        (status = 400, description = "`malformed_json`, `invalid_body`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such Item (update mode)", body = ErrorBody),
        (status = 502, description = "Plaid failed (its error code in lower case)", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<AppJson<LinkTokenView>> {
    let request: LinkTokenRequest = optional_json(&body)?;
    let token = state.link.create_link_token(user.id(), request.item_id.as_ref()).await?;
    Ok(AppJson(LinkTokenView { link_token: token.link_token, expiration: token.expiration, item_id: token.item_id }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ExchangeRequest {
    public_token: String,
    /// Link's onSuccess metadata (informational).
    #[serde(default)]
    metadata: Option<LinkMetadata>,
    /// Link a second Item at an institution this user already linked.
    #[serde(default)]
    allow_duplicate: bool,
    /// Replace this Item of the user (same institution): once the new Item's history is synced, the old one's
    /// history, notes and categories are merged into it and the old Item is removed (here and at Plaid). The
    /// merge's report shows in `GET /api/items/{item_id}` as `relink_report`.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    replaces_item_id: Option<PlaidItemId>,
}

/// Exchanges Link's public token: stores the new Item with its accounts and starts its first sync.
#[utoipa::path(
    post,
    path = "/api/link/exchange",
    tag = "link",
    operation_id = "exchange_public_token",
    request_body = ExchangeRequest,
    responses(
        (status = 201, description = "The new Item with its accounts", body = ItemView),
        (status = 400, description = "`malformed_json`, `invalid_body`, `invalid_public_token`, \
            `invalid_replaces_item_id` (another institution's Item)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`csrf_token_invalid`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such Item to replace", body = ErrorBody),
        (status = 409, description = "`institution_already_linked` (unless `allow_duplicate` or `replaces_item_id`; \
            the message names the existing Item), `replacement_pending` (that Item already has a replacement)",
            body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not a JSON body", body = ErrorBody),
        (status = 502, description = "Plaid failed (its error code in lower case)", body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [], "csrf" = [])),
)]
async fn exchange(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<ExchangeRequest>,
) -> ApiResult<(StatusCode, AppJson<ItemView>)> {
    let public_token = body.public_token.trim();
    if public_token.is_empty() || public_token.len() > 512 {
        return Err(ApiError::bad_request("invalid_body", "public_token must be the token Link's onSuccess gave"));
    }
    let same_institution = match (body.replaces_item_id, body.allow_duplicate) {
        (Some(_), true) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "replaces_item_id and allow_duplicate exclude each other: replace the existing connection, or keep both",
            ));
        }
        (Some(old), false) if old.as_str().trim().is_empty() || old.as_str().len() > 128 => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "replaces_item_id must be the item_id of one of your Items",
            ));
        }
        (Some(old), false) => SameInstitution::Replace(old),
        (None, true) => SameInstitution::KeepBoth,
        (None, false) => SameInstitution::Refuse,
    };
    let linked = state.link.exchange_with(user.id(), public_token, body.metadata, same_institution).await?;
    Ok((StatusCode::CREATED, AppJson(ItemView::of(&linked.item).with_accounts(&linked.accounts))))
}
