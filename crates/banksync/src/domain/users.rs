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
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &"[redacted]")
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// A server-side session. The cookie carries a random token; only its hash (`id_hash`) is stored.
#[derive(Clone)]
pub struct Session {
    pub id_hash: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct NewSession {
    pub id_hash: String,
    pub user_id: UserId,
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
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
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiToken")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("last_used_at", &self.last_used_at)
            .finish_non_exhaustive()
    }
}
