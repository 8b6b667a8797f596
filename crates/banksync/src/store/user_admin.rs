//! The operator's view of users (`banksync user list | passwd`): a summary per user and a password change that
//! also signs the user out everywhere (a changed password must end sessions opened with the old one).

use super::codec::{self, parse_ts};
use super::exec::Sql;
use super::{Result, Store, one_row};
use crate::domain::UserId;

const LIST_USERS: &str = "SELECT u.id, u.username, u.created_at, \
    (SELECT COUNT(*) FROM items i WHERE i.user_id = u.id) AS items, \
    (SELECT COUNT(*) FROM api_tokens t WHERE t.user_id = u.id) AS tokens, \
    (SELECT COUNT(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > $1) AS sessions \
    FROM users u ORDER BY u.username";
const SET_PASSWORD: &str = "UPDATE users SET password_hash = $2 WHERE id = $1";
const END_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";

/// One line of `banksync user list` (never the password hash).
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserSummary {
    pub id: String,
    pub username: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub items: i64,
    pub api_tokens: i64,
    pub active_sessions: i64,
}

impl Store {
    pub async fn list_user_summaries(&self) -> Result<Vec<UserSummary>> {
        let rows: Vec<(String, String, String, i64, i64, i64)> =
            self.reader.fetch_all(&Sql::new(LIST_USERS).bind(codec::ts(codec::now()))).await?;
        rows.into_iter()
            .map(|(id, username, created_at, items, api_tokens, active_sessions)| {
                Ok(UserSummary { id, username, created_at: parse_ts(&created_at)?, items, api_tokens, active_sessions })
            })
            .collect()
    }

    /// Replaces the password hash and ends every session of the user, in one transaction; returns the number of
    /// sessions ended. API tokens stay valid (they are revoked one by one with `banksync token revoke`).
    pub async fn set_password_and_end_sessions(&self, user_id: &UserId, password_hash: &str) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        one_row(tx.execute(&Sql::new(SET_PASSWORD).bind(user_id).bind(password_hash)).await?)?;
        let ended = tx.execute(&Sql::new(END_SESSIONS).bind(user_id)).await?;
        tx.commit().await?;
        Ok(ended)
    }
}
