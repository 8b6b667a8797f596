//! Accounts of an Item and their balances.

use super::codec::{money_opt, parse_enum, parse_money_opt, parse_ts, parse_ts_opt, ts, ts_opt};
use super::exec::Sql;
use super::{LIVE_BALANCE_RECENT, Result, Store, StoreError};
use crate::domain::{Account, AccountFilter, BalanceUpdate, Balances, Item, ItemRef, NewAccount, UserId};

/// `column = ` the stored value when the stored balance is the better one (see [`UPSERT_ACCOUNT`]), else the
/// incoming value. Every SET expression sees the row as it was before the update, so all balance columns agree.
macro_rules! keep_newer_balance {
    ($column:literal) => {
        concat!(
            $column,
            " = CASE WHEN accounts.balance_as_of IS NOT NULL AND (excluded.balance_as_of IS NULL \
            OR accounts.balance_as_of > excluded.balance_as_of \
            OR (accounts.balance_source = 'live' AND excluded.balance_source = 'cached' \
                AND accounts.balance_as_of >= $17)) THEN accounts.",
            $column,
            " ELSE excluded.",
            $column,
            " END"
        )
    };
}
/// $16 now, $17 the moment before which a live balance no longer counts as recent, $18 `persistent_account_id` (kept
/// when Plaid stops sending it: it is what a relink matches accounts on). The account's details are
/// always updated; its balance only when the incoming one is not older than the stored one, and a cached balance
/// (from a sync or /accounts/get, whose age Plaid often does not say) never replaces a recent live one.
const UPSERT_ACCOUNT: &str = concat!(
    "INSERT INTO accounts (account_id, item_ref, user_id, name, official_name, mask, \
    type, subtype, balance_available, balance_current, balance_limit, currency, currency_is_official, balance_as_of, \
    balance_source, removed, created_at, updated_at, persistent_account_id) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, FALSE, $16, $16, $18) \
    ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, official_name = excluded.official_name, \
    mask = excluded.mask, type = excluded.type, subtype = excluded.subtype, \
    persistent_account_id = COALESCE(excluded.persistent_account_id, accounts.persistent_account_id), ",
    keep_newer_balance!("balance_available"),
    ", ",
    keep_newer_balance!("balance_current"),
    ", ",
    keep_newer_balance!("balance_limit"),
    ", ",
    keep_newer_balance!("currency"),
    ", ",
    keep_newer_balance!("currency_is_official"),
    ", ",
    keep_newer_balance!("balance_as_of"),
    ", ",
    keep_newer_balance!("balance_source"),
    ", removed = FALSE, updated_at = excluded.updated_at WHERE accounts.item_ref = excluded.item_ref"
);
const UPDATE_BALANCE: &str = "UPDATE accounts SET balance_available = $3, balance_current = $4, \
    balance_limit = $5, currency = $6, currency_is_official = $7, balance_as_of = $8, balance_source = $9, \
    updated_at = $10 WHERE account_id = $1 AND item_ref = $2";

/// Selected with `a.*`-style explicit columns plus the owning Item's Plaid id.
const ACCOUNT_COLUMNS: &str = "a.account_id, a.persistent_account_id, i.item_id, a.name, a.official_name, a.mask, a.type, a.subtype, \
    a.balance_available, a.balance_current, a.balance_limit, a.currency, a.currency_is_official, a.balance_as_of, \
    a.balance_source, a.removed, a.created_at, a.updated_at";

impl Store {
    /// Inserts or updates accounts (clearing `removed`). With `full_list`, the Item's accounts missing from `accounts`
    /// are flagged removed. A stored balance stays when it is newer than the incoming one (`balance_as_of`), or
    /// when it is live and recent ([`LIVE_BALANCE_RECENT`]) and the incoming one is cached.
    pub async fn upsert_accounts(&self, item: &Item, accounts: &[NewAccount], full_list: bool) -> Result<()> {
        let now = ts(chrono::Utc::now());
        let live_recent_since = ts(chrono::Utc::now() - LIVE_BALANCE_RECENT);
        let mut tx = self.writer.begin().await?;
        for a in accounts {
            let upsert = Sql::new(UPSERT_ACCOUNT)
                .bind(&a.account_id)
                .bind(&item.id)
                .bind(&item.user_id)
                .bind(&a.name)
                .bind(&a.official_name)
                .bind(&a.mask)
                .bind(&a.account_type)
                .bind(&a.subtype)
                .bind(money_opt(a.balances.available))
                .bind(money_opt(a.balances.current))
                .bind(money_opt(a.balances.limit))
                .bind(&a.balances.currency)
                .bind(a.balances.currency_is_official)
                .bind(ts_opt(a.balance_as_of))
                .bind(a.balance_source.as_str())
                .bind(&now)
                .bind(&live_recent_since)
                .bind(&a.persistent_account_id);
            tx.execute(&upsert).await?;
        }
        if full_list {
            let mut flag = Sql::new("UPDATE accounts SET removed = TRUE, updated_at = ");
            flag.push_bind(&now).push(" WHERE item_ref = ").push_bind(&item.id).push(" AND removed = FALSE");
            if !accounts.is_empty() {
                flag.push(" AND account_id NOT IN (");
                for (i, a) in accounts.iter().enumerate() {
                    flag.push(if i == 0 { "" } else { ", " }).push_bind(&a.account_id);
                }
                flag.push(")");
            }
            tx.execute(&flag).await?;
        }
        tx.commit().await
    }

    pub async fn list_accounts(&self, user_id: &UserId, filter: &AccountFilter) -> Result<Vec<Account>> {
        let mut select = Sql::new(format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN items i ON i.id = a.item_ref WHERE a.user_id = "
        ));
        select.push_bind(user_id);
        if let Some(item_id) = &filter.item_id {
            select.push(" AND i.item_id = ").push_bind(item_id);
        }
        if !filter.include_removed {
            select.push(" AND a.removed = FALSE");
        }
        select.push(" ORDER BY i.created_at, i.id, a.name, a.account_id");
        let rows: Vec<AccountRow> = self.reader.fetch_all(&select).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Updates balances of the Item's accounts; unknown account ids are ignored. Returns rows updated.
    pub async fn update_balances(&self, item_ref: &ItemRef, updates: &[BalanceUpdate]) -> Result<u64> {
        let now = ts(chrono::Utc::now());
        let mut tx = self.writer.begin().await?;
        let mut n = 0;
        for u in updates {
            let update = Sql::new(UPDATE_BALANCE)
                .bind(&u.account_id)
                .bind(item_ref)
                .bind(money_opt(u.balances.available))
                .bind(money_opt(u.balances.current))
                .bind(money_opt(u.balances.limit))
                .bind(&u.balances.currency)
                .bind(u.balances.currency_is_official)
                .bind(ts(u.as_of))
                .bind(u.source.as_str())
                .bind(&now);
            n += tx.execute(&update).await?;
        }
        tx.commit().await?;
        Ok(n)
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    account_id: String,
    persistent_account_id: Option<String>,
    item_id: String,
    name: String,
    official_name: Option<String>,
    mask: Option<String>,
    #[sqlx(rename = "type")]
    account_type: String,
    subtype: Option<String>,
    balance_available: Option<String>,
    balance_current: Option<String>,
    balance_limit: Option<String>,
    currency: Option<String>,
    currency_is_official: bool,
    balance_as_of: Option<String>,
    balance_source: String,
    removed: bool,
    created_at: String,
    updated_at: String,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            account_id: r.account_id.into(),
            persistent_account_id: r.persistent_account_id,
            item_id: r.item_id.into(),
            name: r.name,
            official_name: r.official_name,
            mask: r.mask,
            account_type: r.account_type,
            subtype: r.subtype,
            balances: Balances {
                available: parse_money_opt(r.balance_available.as_deref())?,
                current: parse_money_opt(r.balance_current.as_deref())?,
                limit: parse_money_opt(r.balance_limit.as_deref())?,
                currency: r.currency,
                currency_is_official: r.currency_is_official,
            },
            balance_as_of: parse_ts_opt(r.balance_as_of.as_deref())?,
            balance_source: parse_enum(&r.balance_source)?,
            removed: r.removed,
            created_at: parse_ts(&r.created_at)?,
            updated_at: parse_ts(&r.updated_at)?,
        })
    }
}
