//! `GET /health`: 200 when the database answers, 503 otherwise. Unauthenticated, for load balancers.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::json;

use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/health", get(health))
}

async fn health(State(state): State<AppState>) -> (StatusCode, axum::Json<serde_json::Value>) {
    match tokio::time::timeout(Duration::from_secs(5), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, axum::Json(json!({"status": "ok", "database": "ok"}))),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check: database error");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "error", "database": "error"})))
        }
        Err(_) => {
            tracing::error!("health check: database did not answer within 5 s");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(json!({"status": "error", "database": "timeout"})))
        }
    }
}
