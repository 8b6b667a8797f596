//! Relinking (see `relink.rs`): the pointer from a new Item to the one it replaces, the rows a merge plans from,
//! and the merge itself — carried edits, moved history, kept accounts, the old Item's deletion and the stored
//! report — in one database transaction, applied only if neither Item changed since the plan was read.

use super::codec::{self, parse_date, parse_money, parse_ts};
use super::exec::{Sql, Tx};
use super::{Result, Store, StoreError, one_row};
use crate::domain::{
    Item, ItemFingerprint, ItemRef, MergeReport, PlaidItemId, RelinkAccount, RelinkApplied, RelinkGuard, RelinkPlan,
    RelinkSnapshot, RelinkTransaction, UserId,
};

const SET_REPLACES: &str = "UPDATE items SET replaces_item_id = $2, updated_at = $3 WHERE id = $1";
const PENDING_REPLACEMENT: &str =
    "SELECT item_id FROM items WHERE user_id = $1 AND replaces_item_id = $2 AND relink_report IS NULL";
const FINGERPRINT: &str = "SELECT i.cursor, \
    (SELECT COUNT(*) FROM transactions t WHERE t.item_ref = i.id) AS row_count, \
    (SELECT MAX(t.updated_at) FROM transactions t WHERE t.item_ref = i.id) AS last_update \
    FROM items i WHERE i.id = $1";
const RELINK_ACCOUNTS: &str = "SELECT account_id, persistent_account_id, mask, type, subtype, removed FROM accounts WHERE item_ref = $1 \
    ORDER BY account_id";
const RELINK_TRANSACTIONS: &str = "SELECT transaction_id, account_id, date, datetime, amount, name, user_note, \
    user_category FROM transactions WHERE item_ref = $1 AND deleted_at IS NULL ORDER BY datetime, transaction_id";

/// $1 new item_ref, $2 user, $3 the planned cursor, $4 report, $5 now. Claims the merge: the new Item is still
/// unmerged, fully synced and where the plan saw it (on PostgreSQL this also locks its row until the commit).
const CLAIM_MERGE: &str = "UPDATE items SET relink_report = $4, updated_at = $5 WHERE id = $1 AND user_id = $2 \
    AND relink_report IS NULL AND initial_sync_run IS NULL AND cursor IS NOT DISTINCT FROM $3";
/// $1 old item_ref, $2 user, $3 the planned cursor. Locks the old Item's row where the plan saw it.
const LOCK_OLD: &str = "UPDATE items SET updated_at = updated_at WHERE id = $1 AND user_id = $2 \
    AND cursor IS NOT DISTINCT FROM $3";
/// $1 new transaction, $2 new item_ref, $3 note, $4 category, $5 now. The new transaction's own values win.
const CARRY: &str = "UPDATE transactions SET user_note = COALESCE(user_note, $3), \
    user_category = COALESCE(user_category, $4), updated_at = $5 \
    WHERE transaction_id = $1 AND item_ref = $2 AND deleted_at IS NULL";
/// $1 old item_ref, $2 new item_ref, $3 old account, $4 new account, $5 now (then optionally a date bound).
const MOVE_HISTORY: &str = "UPDATE transactions SET item_ref = $2, account_id = $4, updated_at = $5 \
    WHERE item_ref = $1 AND account_id = $3 AND deleted_at IS NULL";
/// $1 old item_ref, $2 new item_ref, $3 account, $4 now.
const KEEP_ACCOUNT: &str =
    "UPDATE accounts SET item_ref = $2, removed = TRUE, updated_at = $4 WHERE item_ref = $1 AND account_id = $3";
const DELETE_OLD: &str = "DELETE FROM items WHERE id = $1 AND user_id = $2";
const UPDATE_REPORT: &str =
    "UPDATE items SET relink_report = $2, updated_at = $3 WHERE id = $1 AND relink_report IS NOT NULL";
const RECORD_REPORT: &str =
    "UPDATE items SET relink_report = $2, updated_at = $3 WHERE id = $1 AND relink_report IS NULL";

impl Store {
    /// Records that `item_ref` was linked to replace the user's Item `replaces` (Plaid's item_id).
    pub async fn set_item_replaces(&self, item_ref: &ItemRef, replaces: &PlaidItemId) -> Result<()> {
        let update = Sql::new(SET_REPLACES).bind(item_ref).bind(replaces).bind(codec::ts(codec::now()));
        one_row(self.writer.execute(&update).await?)
    }

    /// The user's Item (Plaid's item_id) linked to replace `old` whose merge has not run yet, if any.
    pub async fn pending_replacement_of(&self, user_id: &UserId, old: &PlaidItemId) -> Result<Option<PlaidItemId>> {
        let select = Sql::new(PENDING_REPLACEMENT).bind(user_id).bind(old);
        let row: Option<(String,)> = self.writer.fetch_optional(&select).await?;
        Ok(row.map(|(id,)| id.into()))
    }

    /// Both Items' accounts (removed ones too) and visible transactions, and the guard the merge checks. Read from
    /// the writer (the latest state); the guard is read first, so a change racing the reads fails the guard.
    pub async fn relink_snapshot(&self, new: &Item, old: &Item) -> Result<RelinkSnapshot> {
        let guard = RelinkGuard { new: self.fingerprint(&new.id).await?, old: self.fingerprint(&old.id).await? };
        Ok(RelinkSnapshot {
            old_accounts: self.relink_accounts(&old.id).await?,
            new_accounts: self.relink_accounts(&new.id).await?,
            old_transactions: self.relink_transactions(&old.id).await?,
            new_transactions: self.relink_transactions(&new.id).await?,
            guard,
        })
    }

    /// Applies a merge plan in one database transaction: claims the merge (storing `plan.report`), checks the
    /// guard, carries the edits, moves kept history and accounts to the new Item and deletes the old Item (its
    /// remaining accounts and transactions cascade). `None` (nothing changed) when the new Item is merged
    /// already or either Item changed since the plan was read: re-read and plan again.
    pub async fn apply_relink(&self, plan: &RelinkPlan) -> Result<Option<RelinkApplied>> {
        let now = codec::ts(codec::now());
        let report = report_json(&plan.report)?;
        let mut tx = self.writer.begin().await?;
        let claim = Sql::new(CLAIM_MERGE)
            .bind(&plan.new_item)
            .bind(&plan.user_id)
            .bind(&plan.guard.new.cursor)
            .bind(report)
            .bind(&now);
        if tx.execute(&claim).await? == 0 {
            return Ok(None);
        }
        let lock = Sql::new(LOCK_OLD).bind(&plan.old_item).bind(&plan.user_id).bind(&plan.guard.old.cursor);
        if tx.execute(&lock).await? == 0
            || fingerprint_in(&mut tx, &plan.new_item).await? != plan.guard.new
            || fingerprint_in(&mut tx, &plan.old_item).await? != plan.guard.old
        {
            return Ok(None);
        }
        let mut applied = RelinkApplied::default();
        for c in &plan.carries {
            let carry =
                Sql::new(CARRY).bind(&c.new).bind(&plan.new_item).bind(&c.user_note).bind(&c.user_category).bind(&now);
            applied.carried += tx.execute(&carry).await?;
        }
        for m in &plan.account_moves {
            let mut moving = Sql::new(MOVE_HISTORY)
                .bind(&plan.old_item)
                .bind(&plan.new_item)
                .bind(&m.old_account_id)
                .bind(&m.new_account_id)
                .bind(&now);
            if let Some(before) = m.keep_before {
                moving.push(" AND date < ").push_bind(codec::date(before));
            }
            applied.moved += tx.execute(&moving).await?;
        }
        for account in &plan.kept_accounts {
            let keep = Sql::new(KEEP_ACCOUNT).bind(&plan.old_item).bind(&plan.new_item).bind(account).bind(&now);
            one_row(tx.execute(&keep).await?)?;
            let moving =
                Sql::new(MOVE_HISTORY).bind(&plan.old_item).bind(&plan.new_item).bind(account).bind(account).bind(&now);
            applied.moved += tx.execute(&moving).await?;
        }
        one_row(tx.execute(&Sql::new(DELETE_OLD).bind(&plan.old_item).bind(&plan.user_id)).await?)?;
        tx.commit().await?;
        // Moved rows changed their Item and account: the statistics of a large merge are refreshed like a sync's.
        self.dialect.note_rows_written(applied.moved);
        self.dialect.refresh_statistics_if_due(&self.writer).await;
        Ok(Some(applied))
    }

    /// Replaces the stored report of a merged Item (the outcome of `/item/remove`, known after the commit).
    pub async fn update_relink_report(&self, item_ref: &ItemRef, report: &MergeReport) -> Result<()> {
        let update = Sql::new(UPDATE_REPORT).bind(item_ref).bind(report_json(report)?).bind(codec::ts(codec::now()));
        one_row(self.writer.execute(&update).await?)
    }

    /// Stores the report of a merge that had nothing to do (the replaced Item is gone); false if a report is
    /// already there.
    pub async fn record_relink_report(&self, item_ref: &ItemRef, report: &MergeReport) -> Result<bool> {
        let update = Sql::new(RECORD_REPORT).bind(item_ref).bind(report_json(report)?).bind(codec::ts(codec::now()));
        Ok(self.writer.execute(&update).await? == 1)
    }

    async fn fingerprint(&self, item_ref: &ItemRef) -> Result<ItemFingerprint> {
        let row: FingerprintRow = self.writer.fetch_one(&Sql::new(FINGERPRINT).bind(item_ref)).await?;
        Ok(row.into())
    }

    async fn relink_accounts(&self, item_ref: &ItemRef) -> Result<Vec<RelinkAccount>> {
        let rows: Vec<AccountRow> = self.writer.fetch_all(&Sql::new(RELINK_ACCOUNTS).bind(item_ref)).await?;
        Ok(rows
            .into_iter()
            .map(|r| RelinkAccount {
                account_id: r.account_id.into(),
                persistent_account_id: r.persistent_account_id,
                mask: r.mask,
                account_type: r.account_type,
                subtype: r.subtype,
                removed: r.removed,
            })
            .collect())
    }

    async fn relink_transactions(&self, item_ref: &ItemRef) -> Result<Vec<RelinkTransaction>> {
        let rows: Vec<TxnRow> = self.writer.fetch_all(&Sql::new(RELINK_TRANSACTIONS).bind(item_ref)).await?;
        rows.into_iter()
            .map(|r| {
                Ok(RelinkTransaction {
                    transaction_id: r.transaction_id.into(),
                    account_id: r.account_id.into(),
                    date: parse_date(&r.date)?,
                    datetime: parse_ts(&r.datetime)?,
                    amount: parse_money(&r.amount)?.normalize().to_string(),
                    name: r.name,
                    user_note: r.user_note,
                    user_category: r.user_category,
                })
            })
            .collect()
    }
}

async fn fingerprint_in(tx: &mut Tx, item_ref: &ItemRef) -> Result<ItemFingerprint> {
    let row: Option<FingerprintRow> = tx.fetch_optional(&Sql::new(FINGERPRINT).bind(item_ref)).await?;
    row.map(Into::into).ok_or(StoreError::NotFound)
}

fn report_json(report: &MergeReport) -> Result<String> {
    serde_json::to_string(report).map_err(|e| StoreError::Other(anyhow::Error::new(e).context("merge report")))
}

#[derive(sqlx::FromRow)]
struct FingerprintRow {
    cursor: Option<String>,
    row_count: i64,
    last_update: Option<String>,
}

impl From<FingerprintRow> for ItemFingerprint {
    fn from(r: FingerprintRow) -> Self {
        ItemFingerprint { cursor: r.cursor, rows: r.row_count, last_update: r.last_update }
    }
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    account_id: String,
    persistent_account_id: Option<String>,
    mask: Option<String>,
    #[sqlx(rename = "type")]
    account_type: String,
    subtype: Option<String>,
    removed: bool,
}

#[derive(sqlx::FromRow)]
struct TxnRow {
    transaction_id: String,
    account_id: String,
    date: String,
    datetime: String,
    amount: String,
    name: String,
    user_note: Option<String>,
    user_category: Option<String>,
}
