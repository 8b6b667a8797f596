//! Optional JSON bodies: `POST /api/items/{id}/sync` and friends accept no body, `{}`, or their options.

use axum::body::Bytes;
use serde::de::DeserializeOwned;

use super::error::{ApiError, ApiResult};

/// Parses `bytes` as `T`, or gives `T::default()` for an empty body. Errors use the same codes as [`super::error::AppJson`].
pub fn optional_json<T: DeserializeOwned + Default>(bytes: &Bytes) -> ApiResult<T> {
    let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace()) else {
        return Ok(T::default());
    };
    let parsed = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
        }
        _ => ApiError::bad_request("invalid_body", e.to_string()),
    })?;
    // Options are a JSON object; serde would also read a struct from an array (see `AppJson`).
    if *first != b'{' {
        return Err(ApiError::bad_request("invalid_body", "the body must be a JSON object"));
    }
    Ok(parsed)
}
