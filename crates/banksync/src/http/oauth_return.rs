//! `GET /oauth-return`: where an OAuth bank sends the browser back (`redirect_uri` on link tokens, see
//! `config::OAuthRedirect`). It serves the page itself, which finds the link token it saved in `sessionStorage`
//! and resumes Link with `receivedRedirectUri` (the query carries Plaid's `oauth_state_id`).

use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(oauth_return))
}

/// The web page, resuming Link after an OAuth bank's login (`?oauth_state_id=…`).
#[utoipa::path(get, path = "/oauth-return", tag = "page", operation_id = "page_oauth_return",
    params(("oauth_state_id" = Option<String>, Query, description = "Plaid's OAuth state (read by the page)")),
    responses((status = 200, description = "The page (HTML)", body = String, content_type = "text/html")))]
async fn oauth_return() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            // The URL carries the OAuth state: keep it out of Referer headers.
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        crate::web::INDEX_HTML,
    )
}
