//! The spending aggregates' reads (`domain::spending` says which transactions count and shapes the answers).
//!
//! They come from `spending_months` (see the migration `20261128000011_queries`): one row per user, month, Item,
//! account, currency and effective category with the counting transactions' spending, income and count, kept by
//! triggers inside every statement that writes `transactions` — so a sync's atomic commit, a category edit, a
//! removal or a relink merge changes the summary in the same database transaction, and the answer always equals a
//! GROUP BY over the visible transactions (a store-contract test compares the two after random writes). A chart of
//! 36 months reads at most months × accounts × categories rows instead of every transaction. Like every reader,
//! it skips Items whose initial sync is still being written (their rows are in the summary, hidden by the join),
//! so the claim's commit reveals them and its release (which deletes the rows) removes them.

use rust_decimal::Decimal;

use super::exec::Sql;
use super::{Result, Store, StoreError};
use crate::domain::{Month, SpendingGroup, SpendingScope, UserId};

/// Amounts in the summary are integers of this many decimals.
const SUMMARY_SCALE: u32 = 6;

/// $1 user, $2 first month, $3 last month (`YYYY-MM`, inclusive).
const GROUPS: &str = "SELECT s.currency, s.month, s.category, CAST(SUM(s.spending) AS BIGINT) AS spending, \
    CAST(SUM(s.income) AS BIGINT) AS income, CAST(SUM(s.txn_count) AS BIGINT) AS txn_count \
    FROM spending_months s JOIN items i ON i.id = s.item_ref \
    WHERE s.user_id = $1 AND s.month >= $2 AND s.month <= $3 AND i.initial_sync_run IS NULL";

#[derive(sqlx::FromRow)]
struct GroupRow {
    currency: String,
    month: String,
    category: String,
    spending: i64,
    income: i64,
    txn_count: i64,
}

impl Store {
    /// The user's counting transactions in `scope`, summed per currency, month and effective category (groups
    /// without any counting transaction are left out).
    pub async fn spending_groups(&self, user_id: &UserId, scope: &SpendingScope) -> Result<Vec<SpendingGroup>> {
        let mut select = Sql::new(GROUPS).bind(user_id).bind(scope.from.to_string()).bind(scope.to.to_string());
        if let Some(account_id) = &scope.account_id {
            select.push(" AND s.account_id = ").push_bind(account_id);
        }
        select.push(" GROUP BY s.currency, s.month, s.category");
        let rows: Vec<GroupRow> = self.reader.fetch_all(&select).await?;
        rows.into_iter()
            .filter(|r| r.txn_count > 0)
            .map(|r| {
                Ok(SpendingGroup {
                    month: Month::parse(&r.month).ok_or_else(|| StoreError::corrupt(format!("month {:?}", r.month)))?,
                    currency: r.currency,
                    category: r.category,
                    spending: Decimal::new(r.spending, SUMMARY_SCALE),
                    income: Decimal::new(r.income, SUMMARY_SCALE),
                    count: r.txn_count,
                })
            })
            .collect()
    }
}
