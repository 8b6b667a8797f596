//! The web app's files (`crate::web`), no auth: the HTML shell for each of the app's page paths (the browser's
//! router takes over from there, and a reload or a bookmark of `/spending` works), and `GET /assets/{name}`.
//! `/oauth-return` serves the same shell from `super::oauth_return` (with its own Referrer-Policy).
//! Our own files are `no-cache` (revalidated each load, so an upgrade shows at once); vendored files carry their
//! version in the name and are cached for a year.

use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use crate::state::AppState;
use crate::web::{INDEX_HTML, asset};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(page_transactions))
        .routes(routes!(page_spending))
        .routes(routes!(page_banks))
        .routes(routes!(page_settings))
        .routes(routes!(page_setup))
        .routes(routes!(page_login))
        .routes(routes!(asset_file))
}

/// One handler per page path: utoipa documents a handler under one literal path.
macro_rules! page_routes {
    ($($fn:ident, $path:literal, $id:literal, $what:literal;)*) => {$(
        #[doc = $what]
        #[utoipa::path(get, path = $path, tag = "page", operation_id = $id,
            responses((status = 200, description = "The web app (HTML)", body = String, content_type = "text/html")))]
        async fn $fn() -> Response {
            page()
        }
    )*};
}

page_routes! {
    index, "/", "page_index", "The web app: the overview.";
    page_transactions, "/transactions", "page_transactions", "The web app: transactions.";
    page_spending, "/spending", "page_spending", "The web app: spending charts.";
    page_banks, "/banks", "page_banks", "The web app: the linked banks.";
    page_settings, "/settings", "page_settings", "The web app: settings.";
    page_setup, "/setup", "page_setup", "The web app: first-run setup of the owner account.";
    page_login, "/login", "page_login", "The web app: log in.";
}

fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], INDEX_HTML)
        .into_response()
}

/// A script, style sheet or icon of the web app.
#[utoipa::path(get, path = "/assets/{name}", tag = "page", operation_id = "page_asset",
    params(("name" = String, Path, description = "The file's name, e.g. `app.js`")),
    responses(
        (status = 200, description = "The file (JavaScript, CSS or SVG)", body = String),
        (status = 404, description = "`not_found`", body = super::error::ErrorBody),
    ))]
async fn asset_file(Path(name): Path<String>) -> Result<Response, ApiError> {
    let asset = asset(&name).ok_or(ApiError::NotFound("asset"))?;
    let cache = if asset.immutable { "public, max-age=31536000, immutable" } else { "no-cache" };
    Ok(([(header::CONTENT_TYPE, asset.content_type), (header::CACHE_CONTROL, cache)], asset.body).into_response())
}

#[cfg(test)]
mod tests {
    use crate::web::{ASSET_NAMES, INDEX_HTML, PAGE_PATHS, asset};

    #[test]
    fn every_asset_is_embedded_and_every_page_module_is_served() {
        for name in ASSET_NAMES {
            assert!(!asset(name).unwrap().body.is_empty(), "{name}");
        }
        // Every `./x.js` a module imports, and every asset the HTML names, is served.
        for name in ASSET_NAMES.iter().filter(|n| n.ends_with(".js") && !n.starts_with("chart-")) {
            let body = asset(name).unwrap().body;
            for import in body.split("from \"./").skip(1).chain(body.split("import(\"./").skip(1)) {
                let target = import.split('"').next().unwrap();
                assert!(asset(target).is_some(), "{name} imports {target}, which is not served");
            }
        }
        for reference in INDEX_HTML.split("/assets/").skip(1) {
            let target = reference.split('"').next().unwrap();
            assert!(asset(target).is_some(), "index.html names {target}, which is not served");
        }
        assert!(asset("../mod.rs").is_none());
        assert!(PAGE_PATHS.contains(&"/oauth-return"));
    }

    #[test]
    fn the_html_has_no_inline_script_or_style() {
        // The Content-Security-Policy allows only files from 'self': no inline code, no style attributes.
        assert!(!INDEX_HTML.contains("style="), "a style attribute");
        assert!(!INDEX_HTML.contains("<style"), "a style element");
        for script in INDEX_HTML.split("<script").skip(1) {
            assert!(script.trim_start().starts_with("type=\"module\" src=") || script.contains("src="), "{script}");
            assert!(script.split('>').nth(1).is_some_and(|rest| rest.starts_with("</script")), "inline script");
        }
        assert!(!INDEX_HTML.contains("javascript:"));
    }
}
