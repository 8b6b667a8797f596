//! The journal account names `banksync export` gives accounts (`account_export_names`), stored so they never change
//! between runs (see the migration), and the oldest-first keyset read that streams transactions into a journal
//! (journals read top to bottom in date order; the API's `list_transactions` is newest first). Like every
//! transaction reader it hides the rows of Items whose initial sync is still being written.

use std::collections::HashMap;

use super::codec::{self, TxnCursor};
use super::exec::Sql;
use super::transaction_row::TxnRow;
use super::{Result, Store};
use crate::domain::{Transaction, TransactionFilter, UserId};

/// Any conflict (the key already named, or the name taken by another account) leaves the row as it is.
const CLAIM: &str = "INSERT INTO account_export_names (user_id, account_key, name, created_at) VALUES ($1, $2, $3, $4) \
    ON CONFLICT DO NOTHING";
const LIST: &str = "SELECT account_key, name FROM account_export_names WHERE user_id = $1";

#[derive(sqlx::FromRow)]
struct NameRow {
    account_key: String,
    name: String,
}

impl Store {
    /// account key → stored journal name, for the user.
    pub async fn export_names(&self, user_id: &UserId) -> Result<HashMap<String, String>> {
        let rows: Vec<NameRow> = self.writer.fetch_all(&Sql::new(LIST).bind(user_id)).await?;
        Ok(rows.into_iter().map(|r| (r.account_key, r.name)).collect())
    }

    /// Stores `name` for the account unless it already has one or another account of the user holds it; true when
    /// stored.
    pub async fn claim_export_name(&self, user_id: &UserId, account_key: &str, name: &str) -> Result<bool> {
        let insert = Sql::new(CLAIM).bind(user_id).bind(account_key).bind(name).bind(codec::ts(codec::now()));
        Ok(self.writer.execute(&insert).await? == 1)
    }

    /// One page of the user's transactions oldest first (posted `date`, `datetime`, `transaction_id`: the list's order
    /// reversed, so journals come out in date order), after `after`; the
    /// cursor to continue with comes back while the page was full. Uses `account_id`, `item_id`, `start`, `end`,
    /// `pending` and `limit` of the filter (not `after`, `q`, `category` or amounts).
    pub async fn transactions_oldest_first(
        &self,
        user_id: &UserId,
        f: &TransactionFilter,
        after: Option<&TxnCursor>,
    ) -> Result<(Vec<Transaction>, Option<TxnCursor>)> {
        let limit = f.effective_limit();
        let mut select = super::transactions::select_visible(self.backend, user_id, f);
        if let Some(pending) = f.pending {
            select.push(" AND t.pending = ").push_bind(pending);
        }
        if let Some(c) = after {
            select.push(" AND (t.date, t.datetime, t.transaction_id) > (").push_bind(c.date.clone());
            select.push(", ").push_bind(c.datetime.clone()).push(", ").push_bind(c.transaction_id.clone()).push(")");
        }
        select.push(" ORDER BY t.date, t.datetime, t.transaction_id LIMIT ").push_bind(i64::from(limit));
        let rows: Vec<TxnRow> = self.scanner.fetch_all(&select).await?;
        let next = (rows.len() == limit as usize).then(|| rows.last().map(TxnRow::cursor)).flatten();
        let items = rows.into_iter().map(TryInto::try_into).collect::<Result<_>>()?;
        Ok((items, next))
    }
}
