//! `GET /api/config`: what the web page needs before login (which Link script to load, which Plaid mode).

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Serialize;

use super::error::AppJson;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/config", get(config))
}

#[derive(Serialize)]
struct PublicConfig {
    link_script_url: String,
    plaid_mode: &'static str,
}

async fn config(State(state): State<AppState>) -> AppJson<PublicConfig> {
    AppJson(PublicConfig { link_script_url: state.web.link_script_url.clone(), plaid_mode: state.web.plaid_mode })
}
