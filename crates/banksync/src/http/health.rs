//! `GET /health`: 200 when the database answers, 503 otherwise. Unauthenticated, for load balancers.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
}

/// Fields in alphabetical order, as the `json!` map this replaced wrote them.
#[derive(Serialize, utoipa::ToSchema)]
struct Health {
    /// ok | error | timeout
    #[schema(example = "ok")]
    database: &'static str,
    /// ok | error
    #[schema(example = "ok")]
    status: &'static str,
}

/// Whether the service and its database answer (for load balancers; no auth).
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    operation_id = "health",
    responses(
        (status = 200, description = "The database answers", body = Health),
        (status = 503, description = "The database failed or did not answer within 5 s", body = Health),
    ),
)]
async fn health(State(state): State<AppState>) -> (StatusCode, axum::Json<Health>) {
    match tokio::time::timeout(Duration::from_secs(5), state.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, axum::Json(Health { status: "ok", database: "ok" })),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check: database error");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Health { status: "error", database: "error" }))
        }
        Err(_) => {
            tracing::error!("health check: database did not answer within 5 s");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(Health { status: "error", database: "timeout" }))
        }
    }
}
