//! The HTTP API: routes, extractors, middleware and the error format.
//!
//! Each area is a module with a `router()`; [`router`] merges them and adds the cross-cutting layers: a request
//! body limit (413 in our JSON error format), per-route time budgets, and a tracing span per request.

mod accounts;
pub mod error;
mod health;
mod items;
mod middleware;
mod public_config;
mod transactions;
pub mod views;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use error::ApiError;

/// Largest request body any route accepts. Our JSON bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time budget of ordinary requests (several Plaid calls with retries fit).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: AppState) -> Router {
    let normal = Router::new()
        .merge(crate::auth::session::router())
        .merge(public_config::router())
        .merge(items::router())
        .merge(accounts::router())
        .merge(transactions::router())
        .layer(axum::middleware::from_fn(|req, next| middleware::time_limit(REQUEST_TIMEOUT, req, next)));

    Router::new()
        .merge(normal)
        .merge(health::router())
        .merge(crate::web::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let matched = request
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map_or_else(|| request.uri().path().to_owned(), |p| p.as_str().to_owned());
            // The route pattern, not the full URI: query strings can carry search terms.
            tracing::info_span!("request", method = %request.method(), route = %matched)
        }))
        .with_state(state)
}
