//! The operator's and the owner's view of users (`banksync user list | passwd`, `/api/users`,
//! `/api/account/password`): a summary per user, a password change that also signs the user out (everywhere, or
//! everywhere but the session that asked: a changed password must end sessions opened with the old one), and
//! deleting a user with what they own.

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
const END_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR public_id <> $2)";
/// No row for an unknown user.
const COUNT_ITEMS: &str = "SELECT (SELECT COUNT(*) FROM items i WHERE i.user_id = u.id) FROM users u WHERE u.id = $1";
/// What a user owns beyond the foreign keys' cascade (`sessions`, `api_tokens` and `items` with everything under
/// them cascade from `users`): rows keyed by user id without a foreign key.
const DELETE_UNLINKED: [&str; 2] =
    ["DELETE FROM account_export_names WHERE user_id = $1", "DELETE FROM jobs WHERE user_id = $1"];
/// Guarded again, for an Item linked since the count (PostgreSQL; SQLite's writer is one connection).
const DELETE_USER: &str =
    "DELETE FROM users WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM items WHERE items.user_id = users.id)";

/// Why [`Store::delete_user`] did not delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteUser {
    Deleted,
    /// The user still has this many Items: each must be removed at Plaid first (`/item/remove`), which only the
    /// Item removal does; deleting the rows would leave them billed and live at Plaid.
    HasItems(i64),
}

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
        self.set_password_and_end_other_sessions(user_id, password_hash, None).await
    }

    /// Like [`Store::set_password_and_end_sessions`], but the session with public id `keep` (the one that asked)
    /// stays.
    pub async fn set_password_and_end_other_sessions(
        &self,
        user_id: &UserId,
        password_hash: &str,
        keep: Option<&str>,
    ) -> Result<u64> {
        let mut tx = self.writer.begin().await?;
        one_row(tx.execute(&Sql::new(SET_PASSWORD).bind(user_id).bind(password_hash)).await?)?;
        let ended = tx.execute(&Sql::new(END_SESSIONS).bind(user_id).bind(keep)).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Deletes the user and everything they own, in one transaction, unless they still have Items. `NotFound` for
    /// an unknown id.
    pub async fn delete_user(&self, user_id: &UserId) -> Result<DeleteUser> {
        let mut tx = self.writer.begin().await?;
        let (items,): (i64,) =
            tx.fetch_optional(&Sql::new(COUNT_ITEMS).bind(user_id)).await?.ok_or(super::StoreError::NotFound)?;
        if items > 0 {
            return Ok(DeleteUser::HasItems(items));
        }
        for sql in DELETE_UNLINKED {
            tx.execute(&Sql::new(sql).bind(user_id)).await?;
        }
        if tx.execute(&Sql::new(DELETE_USER).bind(user_id)).await? == 0 {
            return Ok(DeleteUser::HasItems(1));
        }
        tx.commit().await?;
        Ok(DeleteUser::Deleted)
    }
}
