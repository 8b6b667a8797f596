//! The [`CurrentUser`] extractor: bearer token or session cookie, plus CSRF on cookie-authenticated writes.
//!
//! A session is valid until its absolute expiry and its idle expiry; each authenticated use moves the idle expiry,
//! but the write happens at most once a minute per session (`Store::touch_session` compares the stored
//! `last_seen_at` first), so almost every request stays read-only and does not queue behind SQLite's one writer.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};

use super::error::ApiError;
use crate::auth::token::{constant_time_eq, hash_secret};
use crate::auth::{AuthMethod, CSRF_HEADER, CurrentUser, session_cookie};
use crate::state::AppState;

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            // A present but unusable Authorization header is a 401, never a silent fall-back to the cookie.
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(ApiError::Unauthorized)?;
            let user = state
                .store
                .find_user_by_api_token_hash(&hash_secret(token))
                .await
                .map_err(|e| ApiError::store(e, "looking up an API token"))?
                .ok_or(ApiError::Unauthorized)?;
            return Ok(CurrentUser { user, via: AuthMethod::Bearer });
        }

        let session_id = session_cookie(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let id_hash = hash_secret(&session_id);
        // The session and its user in one read: a deleted user's sessions are gone with it (the foreign key
        // cascades), so no row means no valid session either way.
        let (session, user) = state
            .store
            .find_session_with_user(&id_hash)
            .await
            .map_err(|e| ApiError::store(e, "looking up a session"))?
            .ok_or(ApiError::Unauthorized)?;

        if !is_safe_method(&parts.method) {
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
            if !constant_time_eq(sent, &session.csrf_token) {
                return Err(ApiError::Forbidden {
                    code: "csrf_token_invalid",
                    message: "this request needs the session's CSRF token in the X-CSRF-Token header".into(),
                });
            }
        }

        // A failed refresh costs at most an earlier idle expiry: log it, do not refuse the request.
        if let Err(e) =
            state.store.touch_session(&session, chrono::Utc::now(), state.auth.sessions.idle_timeout()).await
        {
            tracing::warn!(error = %e, "cannot record a session's use");
        }
        Ok(CurrentUser {
            user,
            via: AuthMethod::Session { id_hash, public_id: session.public_id, csrf_token: session.csrf_token },
        })
    }
}

fn is_safe_method(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}
