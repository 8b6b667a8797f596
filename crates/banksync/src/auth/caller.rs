//! Who is calling: [`CurrentUser`] and how it authenticated, the session cookie's name and the CSRF header.
//! The HTTP extractor that fills it in (bearer token or session cookie, plus CSRF on cookie-authenticated writes)
//! is `crate::http::extract`.

use axum::http::header;

use crate::domain::{User, UserId};

pub const SESSION_COOKIE: &str = "banksync_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The authenticated caller. Handlers take it as an argument (the extractor is in `crate::http::extract`); without
/// valid credentials the request never reaches them (401, or 403 for a cookie-authenticated write without the CSRF
/// token).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    /// How the request authenticated.
    pub via: AuthMethod,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    Bearer,
    /// The session's stored id hash, its public id (what `GET /api/sessions` shows) and CSRF token.
    Session {
        id_hash: String,
        public_id: String,
        csrf_token: String,
    },
}

impl CurrentUser {
    pub fn id(&self) -> &UserId {
        &self.user.id
    }

    /// The public id of the session the request came with, if it came with one.
    pub fn session_public_id(&self) -> Option<&str> {
        match &self.via {
            AuthMethod::Session { public_id, .. } => Some(public_id),
            AuthMethod::Bearer => None,
        }
    }
}

/// The session id from the `Cookie` header(s), if any.
pub(crate) fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue};

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; banksync_session=abc; b=2"));
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc"));
        let mut other = HeaderMap::new();
        other.append(header::COOKIE, HeaderValue::from_static("banksync_session_x=1"));
        assert_eq!(session_cookie(&other), None);
    }
}
