//! The Link flow: `POST /api/link/token` (new Item, or update mode with `item_id`) and `POST /api/link/exchange`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::body::optional_json;
use super::error::{ApiError, ApiResult, AppJson};
use super::views::ItemView;
use crate::auth::CurrentUser;
use crate::link::LinkMetadata;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/link/token", post(create_token)).route("/api/link/exchange", post(exchange))
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkTokenRequest {
    /// Update mode: repair this Item's login.
    item_id: Option<String>,
}

#[derive(Serialize)]
struct LinkTokenView {
    link_token: String,
    expiration: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_id: Option<String>,
}

async fn create_token(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> ApiResult<AppJson<LinkTokenView>> {
    let request: LinkTokenRequest = optional_json(&body)?;
    let token = state.link.create_link_token(user.id(), request.item_id.as_deref()).await?;
    Ok(AppJson(LinkTokenView { link_token: token.link_token, expiration: token.expiration, item_id: token.item_id }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExchangeRequest {
    public_token: String,
    /// Link's onSuccess metadata (informational).
    #[serde(default)]
    metadata: Option<LinkMetadata>,
    /// Link a second Item at an institution this user already linked.
    #[serde(default)]
    allow_duplicate: bool,
}

async fn exchange(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<ExchangeRequest>,
) -> ApiResult<(StatusCode, AppJson<ItemView>)> {
    let public_token = body.public_token.trim();
    if public_token.is_empty() || public_token.len() > 512 {
        return Err(ApiError::bad_request("invalid_body", "public_token must be the token Link's onSuccess gave"));
    }
    let linked = state.link.exchange(user.id(), public_token, body.metadata, body.allow_duplicate).await?;
    Ok((StatusCode::CREATED, AppJson(ItemView::of(&linked.item).with_accounts(&linked.accounts))))
}
