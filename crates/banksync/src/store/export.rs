//! The journal account names `banksync export` gives accounts (`account_export_names`), stored so they never change
//! between runs (see the migration). Transactions themselves are streamed with `list_transactions`.

use std::collections::HashMap;

use super::codec;
use super::exec::Sql;
use super::{Result, Store};
use crate::domain::UserId;

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
}
