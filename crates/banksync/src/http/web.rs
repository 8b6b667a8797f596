//! `GET /`, `GET /app.js`, `GET /style.css`: the web page's files (`crate::web`), no auth.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::web::{APP_JS, INDEX_HTML, STYLE_CSS};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(index)).routes(routes!(app_js)).routes(routes!(style_css))
}

/// The web page.
#[utoipa::path(get, path = "/", tag = "page", operation_id = "page_index",
    responses((status = 200, description = "The page (HTML)", body = String, content_type = "text/html")))]
async fn index() -> impl IntoResponse {
    page(INDEX_HTML, "text/html; charset=utf-8")
}

/// The page's script.
#[utoipa::path(get, path = "/app.js", tag = "page", operation_id = "page_script",
    responses((status = 200, description = "JavaScript", body = String, content_type = "text/javascript")))]
async fn app_js() -> impl IntoResponse {
    page(APP_JS, "text/javascript; charset=utf-8")
}

/// The page's style sheet.
#[utoipa::path(get, path = "/style.css", tag = "page", operation_id = "page_style",
    responses((status = 200, description = "CSS", body = String, content_type = "text/css")))]
async fn style_css() -> impl IntoResponse {
    page(STYLE_CSS, "text/css; charset=utf-8")
}

fn page(body: &'static str, content_type: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
}
