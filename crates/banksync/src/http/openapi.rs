//! `GET /api/openapi.json`: the OpenAPI 3.1 document of this API (no auth: it describes the API, no data).
//!
//! It is not written by hand. Every route is registered through `utoipa_axum`'s `routes!` from its handler's
//! `#[utoipa::path]` annotation, which gives both the axum route (path and methods) and the document's operation,
//! so the document lists exactly the routes the server answers (the page's files and `/webhooks/plaid` included:
//! they are routes too, and listing them keeps that rule without exceptions). [`base`] adds what no handler says:
//! the title, the security schemes, and the `default` error response every operation can give.

use axum::Extension;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, ResponseBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ErrorBody, ErrorDetail};
use crate::auth::SESSION_COOKIE;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(document))
}

/// The document as served, rendered once when the router is built.
#[derive(Clone)]
pub(super) struct Document(pub(super) Bytes);

/// This document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    operation_id = "openapi_document",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = serde_json::Value)),
)]
async fn document(Extension(Document(json)): Extension<Document>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "banksync",
        description = "Self-hosted Plaid sync: your balances and transactions in your own database.\n\n\
            Errors are `{\"error\": {\"code\", \"message\"}}` with a stable code. Money is an exact decimal \
            string (\"12.34\"), never a float; amounts use Plaid's sign (positive = money out). Every route sees \
            only the caller's data: another user's id is a 404, like an unknown one."
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    tags(
        (name = "session", description = "Log in with a password (session cookie + CSRF token), log out"),
        (name = "tokens", description = "API tokens for scripts (`Authorization: Bearer`)"),
        (name = "link", description = "Linking a bank through Plaid Link"),
        (name = "items", description = "Linked Items (bank logins), their health, manual syncs"),
        (name = "accounts", description = "Accounts and their last known balances"),
        (name = "balances", description = "Live balance refreshes"),
        (name = "transactions", description = "Transactions, filters, the user's notes and categories"),
        (name = "spending", description = "Spending by category and cash flow per month (the charts)"),
        (name = "events", description = "Live updates (server-sent events)"),
        (name = "webhooks", description = "Plaid's webhooks (signed by Plaid, no user auth)"),
        (name = "config", description = "What the web page needs before login"),
        (name = "health", description = "For load balancers"),
        (name = "page", description = "The web page's files"),
        (name = "meta", description = "This document"),
    ),
)]
struct Base;

/// The document before any route is added: title, version, tags, security schemes and the error body's schema.
pub fn base() -> OpenApi {
    let mut doc = <Base as utoipa::OpenApi>::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("An API token (`bsk_…`) from `banksync token create` or `POST /api/tokens`"))
                .build(),
        ),
    );
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            SESSION_COOKIE,
            "The session cookie `POST /api/session` sets. Cookie-authenticated POST, PATCH and DELETE also need \
             the `csrf` header",
        ))),
    );
    components.add_security_scheme(
        "csrf",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            "The session's `csrf_token` (from `POST /api/session` or `GET /api/session`); only with the session \
             cookie",
        ))),
    );
    components.add_security_scheme(
        "plaid_verification",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            plaid::webhook::VERIFICATION_HEADER,
            "Plaid's signed JWT (ES256) over the SHA-256 of the body",
        ))),
    );
    doc
}

/// Adds a `default` response in our error format to every operation: any route can also answer 405
/// `method_not_allowed`, 413 `payload_too_large`, 500 `internal` or 503 `request_timeout`.
pub fn add_default_error_responses(doc: &mut OpenApi) {
    let default = ResponseBuilder::new()
        .description(
            "Any other error in the one error format, e.g. 413 `payload_too_large`, 500 `internal` (no details), \
             503 `request_timeout`",
        )
        .content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody"))))
        .build();
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation.responses.responses.entry("default".to_owned()).or_insert_with(|| RefOr::T(default.clone()));
        }
    }
}
