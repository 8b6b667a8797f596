//! Reading and editing stored transactions (writing them is `sync_write`). Every reader hides the rows of an Item
//! whose initial sync is still being written (`items.initial_sync_run`, see `sync_write`).

use std::sync::LazyLock;

use super::codec::{self, TxnCursor};
use super::exec::Sql;
use super::transaction_row::{SELECT_COLUMNS, TxnRow};
use super::{Result, Store, one_row};
use crate::domain::{Page, Transaction, TransactionFilter, TransactionId, UserFieldsPatch, UserId};

static GET_TRANSACTION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM transactions t JOIN items i ON i.id = t.item_ref \
        WHERE t.transaction_id = $1 AND t.user_id = $2 AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL",
        *SELECT_COLUMNS
    )
});
/// $3/$5: whether to set the note/category; $4/$6 the new values.
const PATCH_TRANSACTION: &str = "UPDATE transactions SET \
    user_note = CASE WHEN $3 THEN $4 ELSE user_note END, \
    user_category = CASE WHEN $5 THEN $6 ELSE user_category END, updated_at = $7 \
    WHERE transaction_id = $1 AND user_id = $2 AND deleted_at IS NULL \
    AND NOT EXISTS (SELECT 1 FROM items i WHERE i.id = transactions.item_ref AND i.initial_sync_run IS NOT NULL)";

/// The user's transactions every reader may show (not deleted, and not of an Item whose initial sync is still being
/// written), narrowed by the filter's account, Item and date range. Each reader adds its own conditions, order and
/// limit.
pub(super) fn select_visible<'a>(user_id: &'a UserId, f: &'a TransactionFilter) -> Sql<'a> {
    let mut select = Sql::new(format!(
        "SELECT {} FROM transactions t JOIN items i ON i.id = t.item_ref WHERE t.user_id = ",
        *SELECT_COLUMNS
    ));
    select.push_bind(user_id).push(" AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL");
    if let Some(account_id) = &f.account_id {
        select.push(" AND t.account_id = ").push_bind(account_id);
    }
    if let Some(item_id) = &f.item_id {
        select.push(" AND i.item_id = ").push_bind(item_id);
    }
    if let Some(start) = f.start {
        select.push(" AND t.date >= ").push_bind(codec::date(start));
    }
    if let Some(end) = f.end {
        select.push(" AND t.date <= ").push_bind(codec::date(end));
    }
    select
}

impl Store {
    /// Newest first (`datetime`, then `transaction_id`), a page at a time; `Page::next_cursor` continues it.
    pub async fn list_transactions(&self, user_id: &UserId, f: &TransactionFilter) -> Result<Page<Transaction>> {
        let limit = f.effective_limit();
        let mut select = select_visible(user_id, f);
        if let Some(category) = &f.category {
            select.push(" AND (COALESCE(t.user_category, t.pfc_primary) = ").push_bind(category);
            select.push(" OR (t.user_category IS NULL AND t.pfc_detailed = ").push_bind(category);
            select.push("))");
        }
        if let Some(pending) = f.pending {
            select.push(" AND t.pending = ").push_bind(pending);
        }
        if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let pattern = like_pattern(q);
            select.push(" AND (LOWER(t.name) LIKE ").push_bind(pattern.clone());
            select.push(" ESCAPE '!' OR LOWER(COALESCE(t.merchant_name, '')) LIKE ").push_bind(pattern);
            select.push(" ESCAPE '!')");
        }
        if let Some(min) = f.min_amount {
            select.push(" AND t.amount_key >= ").push_bind(codec::amount_key(min));
        }
        if let Some(max) = f.max_amount {
            select.push(" AND t.amount_key <= ").push_bind(codec::amount_key(max));
        }
        if let Some(after) = &f.after {
            let c = TxnCursor::decode(after)?;
            select.push(" AND (t.datetime, t.transaction_id) < (").push_bind(c.datetime);
            select.push(", ").push_bind(c.transaction_id).push(")");
        }
        select.push(" ORDER BY t.datetime DESC, t.transaction_id DESC LIMIT ").push_bind(i64::from(limit) + 1);
        let mut rows: Vec<TxnRow> = self.reader.fetch_all(&select).await?;
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = match (more, rows.last()) {
            (true, Some(last)) => Some(last.cursor().encode()),
            _ => None,
        };
        let items = rows.into_iter().map(TryInto::try_into).collect::<Result<_>>()?;
        Ok(Page { items, next_cursor })
    }

    pub async fn get_transaction(&self, user_id: &UserId, transaction_id: &TransactionId) -> Result<Transaction> {
        let select = Sql::new(GET_TRANSACTION.as_str()).bind(transaction_id).bind(user_id);
        self.reader.fetch_one::<TxnRow>(&select).await?.try_into()
    }

    /// The user's note and category; kept across Plaid's updates (see `sync_write`).
    pub async fn update_transaction_user_fields(
        &self,
        user_id: &UserId,
        transaction_id: &TransactionId,
        patch: &UserFieldsPatch,
    ) -> Result<Transaction> {
        let update = Sql::new(PATCH_TRANSACTION)
            .bind(transaction_id)
            .bind(user_id)
            .bind(patch.note.is_some())
            .bind(patch.note.clone().flatten())
            .bind(patch.category.is_some())
            .bind(patch.category.clone().flatten())
            .bind(codec::ts(chrono::Utc::now()));
        one_row(self.writer.execute(&update).await?)?;
        // From the writer: a reader connection might not see this write yet.
        let select = Sql::new(GET_TRANSACTION.as_str()).bind(transaction_id).bind(user_id);
        self.writer.fetch_one::<TxnRow>(&select).await?.try_into()
    }
}

/// `%q%` for a case-insensitive LIKE, with `!` escaping the pattern characters in `q`.
fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '!') {
            p.push('!');
        }
        p.push(c);
    }
    p.push('%');
    p
}
