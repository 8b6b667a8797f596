//! `GET /api/config`: what the web page needs before login (which Link script to load, which Plaid mode).

use axum::extract::State;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::AppJson;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(config))
}

#[derive(Serialize, utoipa::ToSchema)]
struct PublicConfig {
    /// The Plaid Link script the page loads.
    link_script_url: String,
    /// simulator | plaid
    #[schema(example = "simulator")]
    plaid_mode: &'static str,
    /// `proxy`: transactions carry `logo_path` (served by `GET /api/logos/{id}`); `off`: no merchant logos.
    #[schema(example = "proxy")]
    merchant_logos: &'static str,
}

/// What the web page needs before login (no auth).
#[utoipa::path(
    get,
    path = "/api/config",
    tag = "config",
    operation_id = "public_config",
    responses((status = 200, description = "The page's settings", body = PublicConfig)),
)]
async fn config(State(state): State<AppState>) -> AppJson<PublicConfig> {
    AppJson(PublicConfig {
        link_script_url: state.web.link_script_url.clone(),
        plaid_mode: state.web.plaid_mode,
        merchant_logos: state.web.merchant_logos.as_str(),
    })
}
