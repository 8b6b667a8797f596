//! What the overview page needs beyond accounts and Items: the user's last visit ("what changed since"), and
//! counts of what happened after it.

use chrono::{DateTime, Utc};

use super::Result;
use super::Store;
use super::codec::{self, parse_ts_opt};
use super::exec::Sql;
use crate::domain::UserId;

const UPSERT_SEEN: &str = "INSERT INTO overview_visits (user_id, seen_at) VALUES ($1, $2) \
    ON CONFLICT (user_id) DO UPDATE SET seen_at = excluded.seen_at";

/// What happened in the user's data after a moment (or ever, without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChangesSince {
    /// Visible transactions stored after the moment (new to banksync, not necessarily new at the bank).
    pub new_transactions: i64,
    /// The user's Items whose last successful sync is after the moment.
    pub items_synced: i64,
}

impl Store {
    /// The user's previous overview visit, if any.
    pub async fn overview_seen_at(&self, user_id: &UserId) -> Result<Option<DateTime<Utc>>> {
        let select = Sql::new("SELECT seen_at FROM overview_visits WHERE user_id = $1").bind(user_id);
        let row: Option<(String,)> = self.writer.fetch_optional(&select).await?;
        parse_ts_opt(row.as_ref().map(|r| r.0.as_str()))
    }

    /// Records a visit at `at` (the next overview counts changes from there).
    pub async fn mark_overview_seen(&self, user_id: &UserId, at: DateTime<Utc>) -> Result<()> {
        self.writer.execute(&Sql::new(UPSERT_SEEN).bind(user_id).bind(codec::ts(at))).await?;
        Ok(())
    }

    /// Counts of what changed after `since` (everything without it). Hidden rows (an initial sync still being
    /// written, removed transactions) do not count.
    pub async fn changes_since(&self, user_id: &UserId, since: Option<DateTime<Utc>>) -> Result<ChangesSince> {
        let since = since.map(codec::ts);
        let mut transactions = Sql::new(
            "SELECT COUNT(*) FROM transactions t JOIN items i ON i.id = t.item_ref WHERE t.user_id = $1 \
             AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL",
        )
        .bind(user_id);
        let mut items =
            Sql::new("SELECT COUNT(*) FROM items WHERE user_id = $1 AND last_successful_sync_at IS NOT NULL")
                .bind(user_id);
        if let Some(since) = &since {
            transactions.push(" AND t.created_at > ").push_bind(since.as_str());
            items.push(" AND last_successful_sync_at > ").push_bind(since.as_str());
        }
        let (new_transactions,): (i64,) = self.reader.fetch_one(&transactions).await?;
        let (items_synced,): (i64,) = self.reader.fetch_one(&items).await?;
        Ok(ChangesSince { new_transactions, items_synced })
    }
}
