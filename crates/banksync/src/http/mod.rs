//! The HTTP API: routes, extractors, middleware, the error format and the OpenAPI document.
//!
//! Each area is a module with a `router()`; [`routes`] merges them, and [`router`] adds the cross-cutting layers:
//! a request body limit (413 in our JSON error format), per-route time budgets, and a tracing span per request.
//! Every route is registered through `utoipa_axum::routes!` from its handler's `#[utoipa::path]`, so the same
//! registration builds the axum router and the OpenAPI document served at `GET /api/openapi.json` ([`openapi`]).
//!
//! The rest of the crate does not depend on this module: it is one of the top layers (with `startup` and `cli`),
//! and the modules below it know nothing of `AppState` or HTTP errors.

mod accounts;
mod balances;
mod body;
pub mod error;
mod events;
mod extract;
mod health;
mod items;
mod jobs;
mod link;
mod logos;
mod middleware;
mod oauth_return;
pub use middleware::{API_CSP, HSTS, SecurityHeaders};
mod openapi;
mod overview;
mod public_config;
pub mod server;
mod session;
mod spending;
mod tokens;
pub(crate) mod transactions;
pub mod views;
mod web;
pub mod webhooks;

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use axum::{Extension, Router};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;
use error::ApiError;

/// Largest request body any route accepts. Our JSON bodies are a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time budget of ordinary requests (several Plaid calls with retries fit).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Budget of the balance long-poll: its longest wait plus room to answer.
pub const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(40);

/// Every route, with its group's time budget, and the OpenAPI document of exactly these routes.
pub fn routes() -> OpenApiRouter<AppState> {
    let normal = OpenApiRouter::new()
        .merge(session::router())
        .merge(public_config::router())
        .merge(items::router())
        .merge(accounts::router())
        .merge(transactions::router())
        .merge(spending::router())
        .merge(link::router())
        .merge(overview::router())
        .merge(logos::router())
        .merge(tokens::router())
        .merge(balances::start_router())
        .merge(openapi::router())
        .layer(axum::middleware::from_fn(|req, next| middleware::time_limit(REQUEST_TIMEOUT, req, next)));
    // Long-polls wait up to 30 s by design ("sync now" waits for its job as long).
    let long_poll = balances::poll_router()
        .merge(jobs::router())
        .merge(items::sync_router())
        .layer(axum::middleware::from_fn(|req, next| middleware::time_limit(LONG_POLL_TIMEOUT, req, next)));

    // Webhooks verify Plaid's signature instead of a user; the event stream stays open as long as the page does.
    let mut all = OpenApiRouter::with_openapi(openapi::base())
        .merge(webhooks::router())
        .merge(events::router())
        .merge(normal)
        .merge(long_poll)
        .merge(health::router())
        .merge(web::router())
        .merge(oauth_return::router());
    openapi::add_default_error_responses(all.get_openapi_mut());
    all
}

/// The OpenAPI document `GET /api/openapi.json` serves.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
}

/// The router with the default limits and security headers (tests of single routes, benchmarks).
pub fn router(state: AppState) -> Router {
    router_with(state, server::ServerLimits::default(), middleware::SecurityHeaders::default())
}

/// The router with the server's limits (body-read timeout, long-poll and heartbeat lengths derived from the idle
/// timeout) and the security headers computed at start; both reach handlers and middleware as request extensions.
pub fn router_with(state: AppState, limits: server::ServerLimits, security: middleware::SecurityHeaders) -> Router {
    let (routes, doc) = routes().split_for_parts();
    let doc = Bytes::from(doc.to_json().expect("the OpenAPI document serializes"));
    routes
        .fallback(|| async { ApiError::NotFound("route") })
        .layer(Extension(openapi::Document(doc)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(middleware::read_body))
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
        .layer(Extension(limits))
        .layer(Extension(security))
        .with_state(state)
}
