//! Who may use banksync: users, their sessions and API tokens.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::UserId;

#[derive(Clone, Serialize)]
pub struct User {
    pub id: UserId,
    pub username: String,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// The owner administers the other users (`/api/users`). Exactly one: the first user made, by first-run setup
    /// or the first `banksync user add`.
    pub is_owner: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .field("is_owner", &self.is_owner)
            .finish()
    }
}

/// A server-side session. The cookie carries a random token; only its hash (`id_hash`) is stored. `public_id` is
/// a second, unrelated random id that names the session in `GET /api/sessions` and `DELETE /api/sessions/{id}`:
/// showing it gives nothing that logs in.
#[derive(Clone)]
pub struct Session {
    pub id_hash: String,
    pub public_id: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    /// The absolute end, however active the session is.
    pub expires_at: DateTime<Utc>,
    /// Last authenticated request, refreshed at most once a minute.
    pub last_seen_at: DateTime<Utc>,
    /// The session ends here unless used before: `last_seen_at` + the idle timeout.
    pub idle_expires_at: DateTime<Utc>,
    /// The browser's `User-Agent` at log-in, at most [`MAX_USER_AGENT_CHARS`] characters.
    pub user_agent: Option<String>,
}

/// Longest stored user agent, in characters.
pub const MAX_USER_AGENT_CHARS: usize = 200;

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("public_id", &self.public_id)
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("last_seen_at", &self.last_seen_at)
            .field("idle_expires_at", &self.idle_expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct NewSession {
    pub id_hash: String,
    pub public_id: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
    pub idle_expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession").field("user_id", &self.user_id).finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize)]
pub struct ApiToken {
    pub id: String,
    pub user_id: UserId,
    pub name: String,
    #[serde(skip)]
    pub token_hash: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// How the token was made.
    pub origin: TokenOrigin,
}

/// Where an API token came from. Tokens are credentials of their own: they outlive the session that made them and
/// a password change, and end only when revoked; the origin is listed so a token made from a browser session is
/// never a silent survivor of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TokenOrigin {
    /// `banksync token create`.
    Cli,
    /// `POST /api/tokens` from a logged-in browser: the session's public id.
    Session { session_id: String },
    /// `POST /api/tokens` authenticated with another API token.
    Token,
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("last_used_at", &self.last_used_at)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}
