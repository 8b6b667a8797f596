//! The HTTP API: routes, extractors, middleware and the error format.
//!
//! Each area is a module with a `router()`; [`router`] merges them and adds the cross-cutting layers: a request
//! body limit (413 in our JSON error format), per-route time budgets, and a tracing span per request.

mod accounts;
mod balances;
mod body;
pub mod error;
mod health;
mod items;
mod link;
mod middleware;
mod public_config;
mod tokens;
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
/// Budget of the balance long-poll: its longest wait plus room to answer.
pub const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(40);
/// Budget of a manual sync.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(300);

pub fn router(state: AppState) -> Router {
    let normal = Router::new()
        .merge(crate::auth::session::router())
        .merge(public_config::router())
        .merge(items::router())
        .merge(accounts::router())
        .merge(transactions::router())
        .merge(link::router())
        .merge(tokens::router())
        .merge(balances::start_router())
        .layer(axum::middleware::from_fn(|req, next| middleware::time_limit(REQUEST_TIMEOUT, req, next)));
    // The long-poll waits up to MAX_WAIT by design; a sync of a large Item may take minutes.
    let long_poll = balances::poll_router()
        .layer(axum::middleware::from_fn(|req, next| middleware::time_limit(LONG_POLL_TIMEOUT, req, next)));
    let sync = items::sync_router()
        .layer(axum::middleware::from_fn(|req, next| middleware::time_limit(SYNC_TIMEOUT, req, next)));

    // Webhooks verify Plaid's signature instead of a user; the event stream stays open as long as the page does.
    let webhooks = crate::webhooks::router(state.webhooks.clone());
    Router::new()
        .merge(webhooks)
        .merge(crate::events::router())
        .merge(normal)
        .merge(long_poll)
        .merge(sync)
        .merge(health::router())
        .merge(crate::web::router())
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(middleware::json_errors))
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
