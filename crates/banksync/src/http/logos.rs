//! `GET /api/logos/{id}`: a merchant logo from banksync's cache (`crate::logos`), for the caller's own transactions
//! only. Served privately cacheable with an `ETag` (a repeat answers 304), `nosniff`, and a CSP of its own so the
//! image can never act as a document.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ApiResult, ErrorBody};
use crate::auth::CurrentUser;
use crate::config::MerchantLogos;
use crate::logos::LogoError;
use crate::state::AppState;

/// How long the browser may reuse a logo without asking again (a day; the server keeps it a week).
const BROWSER_MAX_AGE: &str = "private, max-age=86400";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(logo))
}

/// A merchant logo (PNG, JPEG, WebP or GIF) of one of the caller's transactions, fetched and cached by banksync.
#[utoipa::path(
    get,
    path = "/api/logos/{id}",
    tag = "transactions",
    operation_id = "get_logo",
    params(("id" = String, Path, description = "The id in a transaction's `logo_path`")),
    responses(
        (status = 200, description = "The image", content_type = "image/png", body = Vec<u8>),
        (status = 304, description = "Not modified (`If-None-Match` matched the `ETag`)"),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found` (not one of the caller's logos, or logos are off); \
            `logo_unavailable` (the logo could not be fetched or is not an accepted image: show the category icon)",
            body = ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])),
)]
async fn logo(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if state.web.merchant_logos == MerchantLogos::Off {
        return Err(ApiError::NotFound("logo"));
    }
    let image = state.logos.get(user.id(), &id).await.map_err(|e| match e {
        LogoError::NotFound => ApiError::NotFound("logo"),
        LogoError::Unavailable => ApiError::Upstream {
            status: StatusCode::NOT_FOUND,
            code: "logo_unavailable".into(),
            message: "This merchant's logo is not available.".into(),
        },
        LogoError::Store(e) => e.into(),
    })?;
    let etag = HeaderValue::from_str(&image.etag).map_err(|e| ApiError::Internal(e.into()))?;
    let common = [
        (header::CACHE_CONTROL, HeaderValue::from_static(BROWSER_MAX_AGE)),
        (header::ETAG, etag),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox")),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == image.etag || tag.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    let content_type = HeaderValue::from_str(&image.content_type).map_err(|e| ApiError::Internal(e.into()))?;
    Ok((common, [(header::CONTENT_TYPE, content_type)], image.body).into_response())
}
