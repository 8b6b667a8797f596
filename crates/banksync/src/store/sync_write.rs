//! Applying syncs: Plaid's pages into `transactions`, atomically with the Item's cursor (see the module docs of
//! `store` for staging, and below for an Item's initial sync).

use std::sync::LazyLock;

use super::codec;
use super::dialect::DELETE_STAGING;
use super::exec::{Sql, Tx};
use super::transaction_row::{
    BOUND_PER_TRANSACTION, DATA_COLUMNS, SET_DATA_FROM_EXCLUDED, bind_new_transaction, bind_nulls,
};
use super::{Result, Store, StoreError, rows_per_statement};
use crate::domain::{ApplyStats, Item, ItemRef, NewTransaction, SyncBatch, SyncPage, TransactionId};

/// Compare-and-set of the sync cursor: the row changes only if nobody committed since `$3` was read.
const CAS_ITEM_CURSOR: &str = "UPDATE items SET cursor = $2, last_sync_at = $4, last_successful_sync_at = $4, \
    updated_at = $4 WHERE id = $1 AND cursor IS NOT DISTINCT FROM $3";
/// The same check without moving the cursor (a batch applied with `next_cursor: None`).
const CHECK_ITEM_CURSOR: &str = "UPDATE items SET updated_at = $3 WHERE id = $1 AND cursor IS NOT DISTINCT FROM $2";

/// The upsert of a transaction row (after `INSERT ... VALUES/SELECT`): Plaid's later version replaces the row and
/// restores it if it was removed; user fields are never overwritten; a transaction_id owned by another Item is
/// left alone.
static UPSERT_TRANSACTION_ON_CONFLICT: LazyLock<String> = LazyLock::new(|| {
    format!(
        " ON CONFLICT (transaction_id) DO UPDATE SET {}, deleted_at = NULL, updated_at = excluded.updated_at \
        WHERE transactions.item_ref = excluded.item_ref",
        *SET_DATA_FROM_EXCLUDED
    )
});

/// Columns of `sync_staging` in insert order.
static STAGING_COLUMNS: LazyLock<String> = LazyLock::new(|| format!("run_id, transaction_id, op, {}", *DATA_COLUMNS));
const STAGING_COLUMN_COUNT: usize = 3 + BOUND_PER_TRANSACTION;
/// A later change to the same transaction within one run replaces the earlier one.
static STAGING_ON_CONFLICT: LazyLock<String> = LazyLock::new(|| {
    format!(" ON CONFLICT (run_id, transaction_id) DO UPDATE SET op = excluded.op, {}", *SET_DATA_FROM_EXCLUDED)
});

/// $1 run, $2 item_ref, $3 user_id, $4 now. Upserts by transaction_id (restoring soft-deleted rows); user fields
/// are never overwritten; a transaction_id owned by another Item is left alone.
///
/// In date order, like an initial sync's rows (`write_direct`): the staging table's own order is by id, i.e. random
/// days, and SQLite's full-text index flushes a segment whenever a row's day key is lower than the last one's. A
/// large sync after the first (Plaid's history arriving after its first 30 days) pays for it: 200,000 rows in
/// batches of 5,000 took 88-91 s in id order and 49-54 s in date order (a replay of this schema, interleaved).
static MOVE_UPSERTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO transactions (transaction_id, item_ref, user_id, {data}, deleted_at, created_at, updated_at) \
        SELECT transaction_id, $2, $3, {data}, NULL, $4, $4 FROM sync_staging WHERE run_id = $1 AND op = 'upsert' \
        ORDER BY date, transaction_id{}",
        *UPSERT_TRANSACTION_ON_CONFLICT,
        data = *DATA_COLUMNS
    )
});
// In the three statements below, `item_ref || ''` keeps the planner from walking the Item's index (every row of the
// Item) instead of looking up the few staged ids by primary key; without table statistics SQLite would guess wrong.

/// $1 run, $2 item_ref. A posted transaction takes over the user's note and category from the pending one it
/// names (unless the posted row already has its own).
const MOVE_CARRY_EDITS: &str = "UPDATE transactions SET \
    user_note = COALESCE(user_note, (SELECT p.user_note FROM transactions p \
        WHERE p.transaction_id = transactions.pending_transaction_id AND p.item_ref = transactions.item_ref)), \
    user_category = COALESCE(user_category, (SELECT p.user_category FROM transactions p \
        WHERE p.transaction_id = transactions.pending_transaction_id AND p.item_ref = transactions.item_ref)) \
    WHERE transaction_id IN (SELECT s.transaction_id FROM sync_staging s \
        WHERE s.run_id = $1 AND s.op = 'upsert' AND s.pending_transaction_id IS NOT NULL) AND item_ref || '' = $2";
/// $1 run, $2 item_ref, $3 now. The pending row a posted transaction replaces is hidden, so both never show.
const MOVE_SUPERSEDE_PENDING: &str = "UPDATE transactions SET deleted_at = $3, updated_at = $3 \
    WHERE transaction_id IN (SELECT s.pending_transaction_id FROM sync_staging s \
        WHERE s.run_id = $1 AND s.op = 'upsert' AND s.pending_transaction_id IS NOT NULL) \
    AND item_ref || '' = $2 AND deleted_at IS NULL";
/// $1 run, $2 item_ref, $3 now. Soft delete: a removed id that comes back later is restored by the upsert.
const MOVE_REMOVALS: &str = "UPDATE transactions SET deleted_at = $3, updated_at = $3 \
    WHERE transaction_id IN (SELECT s.transaction_id FROM sync_staging s WHERE s.run_id = $1 AND s.op = 'remove') \
    AND item_ref || '' = $2 AND deleted_at IS NULL";

// An Item's initial sync writes its pages straight into `transactions` (no staging copy of a history that may hold
// hundreds of thousands of rows), hidden from readers while `items.initial_sync_run` names the run: every reader
// joins `items` and skips Items with a claim. The run's commit clears the claim and stores the cursor in one
// statement, so the whole history appears at once, exactly like a staged commit.

/// $1 item_ref, $2 run. Claims the initial sync of an Item that has never committed one: when it holds no rows, or
/// when a previous run's claim is still there (that run died or was overtaken; its rows are hidden and get deleted
/// by `DELETE_ITEM_TRANSACTIONS` right after, in the same database transaction). Locks the Item's row on
/// PostgreSQL, so a page write of the previous holder either committed before (and is deleted) or fails its guard.
const CLAIM_INITIAL_SYNC: &str = "UPDATE items SET initial_sync_run = $2 WHERE id = $1 AND cursor IS NULL \
    AND (initial_sync_run IS NOT NULL OR NOT EXISTS (SELECT 1 FROM transactions t WHERE t.item_ref = $1))";
const DELETE_ITEM_TRANSACTIONS: &str = "DELETE FROM transactions WHERE item_ref = $1";
/// $1 item_ref, $2 run. Each page write starts with this: the run still holds the claim (and, on PostgreSQL,
/// holds the Item's row until the page commits, so a takeover waits for it).
const GUARD_INITIAL_SYNC: &str = "UPDATE items SET initial_sync_run = initial_sync_run \
    WHERE id = $1 AND initial_sync_run = $2 AND cursor IS NULL";
/// $1 item_ref, $2 run, $3 cursor, $4 now. Reveals the history.
const COMMIT_INITIAL_SYNC: &str = "UPDATE items SET initial_sync_run = NULL, cursor = $3, last_sync_at = $4, \
    last_successful_sync_at = $4, updated_at = $4 WHERE id = $1 AND initial_sync_run = $2 AND cursor IS NULL";
/// $1 item_ref, $2 run. Gives the claim up; the caller then deletes the hidden rows.
const RELEASE_INITIAL_SYNC: &str = "UPDATE items SET initial_sync_run = NULL WHERE id = $1 AND initial_sync_run = $2";
/// Columns of a transaction written straight into `transactions` (initial sync), in insert order.
static DIRECT_COLUMNS: LazyLock<String> =
    LazyLock::new(|| format!("transaction_id, item_ref, user_id, {}, created_at, updated_at", *DATA_COLUMNS));
const DIRECT_COLUMN_COUNT: usize = 5 + BOUND_PER_TRANSACTION;

/// One change of a sync page.
enum PageOp<'a> {
    Upsert(&'a NewTransaction),
    Remove(&'a TransactionId),
}

impl PageOp<'_> {
    fn id(&self) -> &TransactionId {
        match self {
            PageOp::Upsert(t) => &t.transaction_id,
            PageOp::Remove(id) => id,
        }
    }
}

/// The pages' changes, keeping only each transaction's last one (pages in order; within a page added, then
/// modified, then removed): one statement may not touch a row twice (PostgreSQL refuses).
fn last_change_per_id(pages: &[SyncPage]) -> Vec<PageOp<'_>> {
    let all: Vec<PageOp<'_>> = pages
        .iter()
        .flat_map(|page| {
            page.added.iter().chain(&page.modified).map(PageOp::Upsert).chain(page.removed.iter().map(PageOp::Remove))
        })
        .collect();
    let mut last = std::collections::HashMap::with_capacity(all.len());
    for (i, op) in all.iter().enumerate() {
        last.insert(op.id(), i);
    }
    let keep: Vec<bool> = (0..all.len()).map(|i| last[all[i].id()] == i).collect();
    all.into_iter().zip(keep).filter_map(|(op, keep)| keep.then_some(op)).collect()
}

impl Store {
    /// Applies a whole batch and its cursor in one database transaction (see the module docs). `Conflict` when the
    /// Item's stored cursor is no longer `item.cursor`.
    pub async fn apply_sync(&self, item: &Item, batch: &SyncBatch) -> Result<ApplyStats> {
        // Staged under a private run id inside the same transaction: one code path for the rules.
        let run_id = format!("apply-{}", uuid::Uuid::new_v4());
        let mut tx = self.writer.begin().await?;
        self.stage_rows(&mut tx, &run_id, &batch.page).await?;
        let stats = move_staged(&mut tx, item, &run_id, batch.next_cursor.as_deref()).await?;
        tx.execute(&Sql::new(DELETE_STAGING).bind(&run_id)).await?;
        tx.commit().await?;
        self.after_commit(&stats).await;
        Ok(stats)
    }

    /// Stages one page of a sync run; nothing becomes visible before `commit_sync`.
    pub async fn stage_sync_page(&self, run_id: &str, page: &SyncPage) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        self.stage_rows(&mut tx, run_id, page).await?;
        self.dialect.remember_run(&mut tx, run_id).await?;
        tx.commit().await
    }

    /// Moves the run's staged pages into `transactions` and stores `next_cursor`, atomically. `Conflict` (and
    /// nothing changed) when the stored cursor is no longer `item.cursor`.
    pub async fn commit_sync(&self, item: &Item, run_id: &str, next_cursor: &str) -> Result<ApplyStats> {
        let mut tx = self.writer.begin().await?;
        self.dialect.check_run(&mut tx, run_id).await?;
        let stats = move_staged(&mut tx, item, run_id, Some(next_cursor)).await?;
        self.dialect.clear_staging(&mut tx, run_id).await?;
        tx.commit().await?;
        self.dialect.forget_run(run_id);
        self.after_commit(&stats).await;
        Ok(stats)
    }

    /// Drops a run's staged pages (restart or failure).
    pub async fn discard_sync(&self, run_id: &str) -> Result<()> {
        self.dialect.forget_run(run_id);
        self.writer.execute(&Sql::new(DELETE_STAGING).bind(run_id)).await?;
        Ok(())
    }

    /// An Item's first sync can skip staging: the Item has nothing to keep consistent, so its pages go straight into
    /// `transactions`, hidden from every reader until [`Store::commit_initial_sync`] reveals them together with the
    /// cursor (a large history is then written once instead of twice). This claims that for `run_id`: `true` when
    /// the Item has never committed a sync and holds no transactions, or when a previous run's claim is left over
    /// (that run died or was overtaken; its hidden rows are deleted). `false`: stage the run's pages instead.
    pub async fn claim_initial_sync(&self, item: &Item, run_id: &str) -> Result<bool> {
        let mut tx = self.writer.begin().await?;
        if tx.execute(&Sql::new(CLAIM_INITIAL_SYNC).bind(&item.id).bind(run_id)).await? == 0 {
            return Ok(false);
        }
        // Rows of a previous holder of the claim: never shown, and this run rewrites the history anyway.
        let stale = tx.execute(&Sql::new(DELETE_ITEM_TRANSACTIONS).bind(&item.id)).await?;
        tx.commit().await?;
        if stale > 0 {
            tracing::info!(item_id = %item.item_id, stale, "took over an unfinished initial sync");
        }
        Ok(true)
    }

    /// Writes consecutive pages of a claimed initial sync in one database transaction (hidden until the commit).
    /// `Conflict` when the claim was lost.
    pub async fn write_initial_pages(&self, item: &Item, run_id: &str, pages: &[SyncPage]) -> Result<ApplyStats> {
        let mut write = self.begin_initial_write(item, run_id).await?;
        let stats = write.write(item, pages).await?;
        self.finish_initial_write(write).await?;
        Ok(stats)
    }

    /// Opens a database transaction for pages of a claimed initial sync, for the caller to write several batches
    /// into (see [`InitialWrite`]). `Conflict` when the claim was lost.
    pub async fn begin_initial_write(&self, item: &Item, run_id: &str) -> Result<InitialWrite> {
        let mut tx = self.writer.begin().await?;
        hold_initial_claim(&mut tx, item, run_id).await?;
        Ok(InitialWrite { tx, changes: 0 })
    }

    /// Commits what was written in `write` (still hidden until [`Store::commit_initial_sync`]).
    pub async fn finish_initial_write(&self, write: InitialWrite) -> Result<()> {
        write.tx.commit().await?;
        self.dialect.note_rows_written(write.changes);
        Ok(())
    }

    /// Stores the cursor and reveals the written pages, atomically. `Conflict` when the claim was lost.
    pub async fn commit_initial_sync(&self, item: &Item, run_id: &str, next_cursor: &str) -> Result<()> {
        let commit =
            Sql::new(COMMIT_INITIAL_SYNC).bind(&item.id).bind(run_id).bind(next_cursor).bind(codec::ts(codec::now()));
        if self.writer.execute(&commit).await? != 1 {
            return Err(lost_initial_claim());
        }
        // The history just became visible: the planner must know the table's new size now, not when autovacuum
        // gets to it.
        self.dialect.refresh_statistics_if_due(&self.writer).await;
        Ok(())
    }

    /// Gives up the claim (restart or failure) and deletes the pages written under it. A no-op when the claim is no
    /// longer this run's.
    pub async fn release_initial_sync(&self, item: &Item, run_id: &str) -> Result<()> {
        let mut tx = self.writer.begin().await?;
        // Without the claim the rows belong to whoever holds it now (or were revealed): leave them.
        if tx.execute(&Sql::new(RELEASE_INITIAL_SYNC).bind(&item.id).bind(run_id)).await? == 1 {
            tx.execute(&Sql::new(DELETE_ITEM_TRANSACTIONS).bind(&item.id)).await?;
        }
        tx.commit().await
    }

    /// Counts a commit's rows towards the next statistics refresh, and refreshes when due (PostgreSQL).
    async fn after_commit(&self, stats: &ApplyStats) {
        self.dialect.note_rows_written(stats.rows_changed());
        self.dialect.refresh_statistics_if_due(&self.writer).await;
    }

    /// Writes one page (or batch) into `sync_staging` inside `tx`, in multi-row statements.
    async fn stage_rows(&self, tx: &mut Tx, run_id: &str, page: &SyncPage) -> Result<()> {
        self.dialect.prepare_staging(tx).await?;
        let ops = last_change_per_id(std::slice::from_ref(page));
        for chunk in ops.chunks(rows_per_statement(STAGING_COLUMN_COUNT)) {
            let mut insert = Sql::with_capacity(
                format!("INSERT INTO sync_staging ({}) VALUES ", *STAGING_COLUMNS),
                chunk.len() * STAGING_COLUMN_COUNT,
            );
            insert.push_rows(chunk, |row, op| {
                row.bind(run_id);
                match op {
                    PageOp::Upsert(t) => {
                        row.bind(t.transaction_id.as_str()).bind("upsert");
                        bind_new_transaction(row, t);
                    }
                    PageOp::Remove(id) => {
                        row.bind(*id).bind("remove");
                        bind_nulls(row);
                    }
                }
            });
            insert.push(&STAGING_ON_CONFLICT);
            tx.execute(&insert).await?;
        }
        Ok(())
    }
}

/// A database transaction of an initial sync, open across consecutive batches of its pages: a transaction's commit
/// writes every page it changed to the WAL, and transaction ids arrive in random order, so each commit rewrites most
/// of the primary-key index. At 1,000,000 rows that index outgrows any batch, and committing every 5,000 rows instead of
/// every 20,000 made the whole sync ~1.25x slower, so the sync engine keeps one transaction for several batches while
/// the fetcher keeps up, and commits before it would wait for a page (the store has one writer, which the fetcher's
/// rate-budget reservations need too). Dropped uncommitted (an error, a restart), it rolls back.
pub struct InitialWrite {
    tx: Tx,
    /// Changes written in it so far (towards the next statistics refresh).
    changes: u64,
}

impl InitialWrite {
    /// Writes `pages` (consecutive, after the ones already written) straight into `transactions`, hidden until the
    /// commit.
    pub async fn write(&mut self, item: &Item, pages: &[SyncPage]) -> Result<ApplyStats> {
        let stats = write_direct(&mut self.tx, item, pages).await?;
        self.changes += stats.rows_changed();
        Ok(stats)
    }

    /// Changes written in this transaction so far.
    pub fn changes(&self) -> u64 {
        self.changes
    }
}

/// Inside `tx`: checks that `run_id` still holds the Item's initial-sync claim (and on PostgreSQL locks the Item's
/// row until `tx` ends, so a takeover waits for this page).
async fn hold_initial_claim(tx: &mut Tx, item: &Item, run_id: &str) -> Result<()> {
    if tx.execute(&Sql::new(GUARD_INITIAL_SYNC).bind(&item.id).bind(run_id)).await? != 1 {
        return Err(lost_initial_claim());
    }
    Ok(())
}

fn lost_initial_claim() -> StoreError {
    StoreError::Conflict(
        "another sync took over this Item's initial sync (or the Item was synced or removed meanwhile)".into(),
    )
}

/// A multi-row insert of `chunk` straight into `transactions`.
fn direct_insert<'a>(item: &'a Item, now: &'a str, chunk: &[&'a NewTransaction]) -> Sql<'a> {
    let mut insert = Sql::with_capacity(
        format!("INSERT INTO transactions ({}) VALUES ", *DIRECT_COLUMNS),
        chunk.len() * DIRECT_COLUMN_COUNT,
    );
    insert.push_rows(chunk.iter().copied(), |row, t| {
        row.bind(t.transaction_id.as_str()).bind(item.id.as_str()).bind(item.user_id.as_str());
        bind_new_transaction(row, t);
        row.bind(now).bind(now);
    });
    insert.push(&UPSERT_TRANSACTION_ON_CONFLICT);
    insert
}

/// Inside `tx`, which holds the run's initial-sync claim: writes consecutive pages straight into `transactions`
/// (hidden until the commit), then applies their removals and pending→posted replacements.
async fn write_direct(tx: &mut Tx, item: &Item, pages: &[SyncPage]) -> Result<ApplyStats> {
    let now = codec::ts(codec::now());
    let ops = last_change_per_id(pages);
    let mut upserts: Vec<&NewTransaction> = ops
        .iter()
        .filter_map(|op| match op {
            PageOp::Upsert(t) => Some(*t),
            PageOp::Remove(_) => None,
        })
        .collect();
    // In date order (then id): on SQLite each row's full-text entry is keyed by its day (migration
    // `search_newest_first`), and FTS5 flushes its pending entries to a new segment whenever a key is lower than the
    // last one, which in id order (random dates) was nearly every row: 4x the full-text index's write time.
    upserts.sort_unstable_by(|a, b| (a.fields.date, &a.transaction_id).cmp(&(b.fields.date, &b.transaction_id)));
    let mut stats = ApplyStats::default();
    // Binding a statement's ~30,000 values takes about a quarter of the time SQLite takes to run it, so the next
    // statement is built while the database thread runs the current one (measured: 100,000 transactions
    // 50.6k/s -> 53.0k/s, six interleaved runs each).
    let mut chunks = upserts.chunks(rows_per_statement(DIRECT_COLUMN_COUNT));
    let statement = |chunk| direct_insert(item, &now, chunk).prepared();
    let mut next = chunks.next().map(statement);
    while let Some(insert) = next.take() {
        let (done, following) = tokio::join!(tx.execute(&insert), async { chunks.next().map(statement) });
        stats.upserted += done?;
        next = following;
    }
    let removed_ids = ops.iter().filter_map(|op| match op {
        PageOp::Remove(id) => Some(*id),
        PageOp::Upsert(_) => None,
    });
    stats.removed = hide(tx, &item.id, &now, removed_ids, false).await?;
    let named = upserts.iter().filter_map(|t| t.fields.pending_transaction_id.as_ref());
    stats.pending_replaced = hide(tx, &item.id, &now, named, false).await?;
    let pending = upserts.iter().filter(|t| t.fields.pending).map(|t| &t.transaction_id);
    stats.pending_replaced += hide(tx, &item.id, &now, pending, true).await?;
    Ok(stats)
}

/// Soft deletes of some of the Item's rows by id: removals, and pending rows whose posted version arrived (on this
/// page, or on an earlier one: `named_by_posted`).
async fn hide<'a>(
    tx: &mut Tx,
    item_ref: &ItemRef,
    now: &str,
    ids: impl Iterator<Item = &'a TransactionId>,
    named_by_posted: bool,
) -> Result<u64> {
    let ids: Vec<&TransactionId> = ids.collect();
    let mut hidden = 0;
    for chunk in ids.chunks(rows_per_statement(1)) {
        let mut update = Sql::new("UPDATE transactions SET deleted_at = ");
        update.push_bind(now).push(", updated_at = ").push_bind(now);
        // `|| ''`: look the few ids up by primary key rather than walk the Item's index.
        update.push(" WHERE item_ref || '' = ").push_bind(item_ref);
        update.push(" AND deleted_at IS NULL AND transaction_id IN (");
        for (i, id) in chunk.iter().enumerate() {
            update.push(if i == 0 { "" } else { ", " }).push_bind(*id);
        }
        update.push(")");
        if named_by_posted {
            update.push(
                " AND EXISTS (SELECT 1 FROM transactions p \
                WHERE p.pending_transaction_id = transactions.transaction_id AND p.item_ref = ",
            );
            update.push_bind(item_ref).push(" AND p.deleted_at IS NULL)");
        }
        hidden += tx.execute(&update).await?;
    }
    Ok(hidden)
}

/// Inside `tx`: checks and moves the cursor, then moves the run's staged rows into `transactions`. The caller
/// clears the staged rows.
async fn move_staged(tx: &mut Tx, item: &Item, run_id: &str, next_cursor: Option<&str>) -> Result<ApplyStats> {
    let now = codec::ts(codec::now());
    // The cursor first: on PostgreSQL this locks the Item's row, serializing overlapping commits.
    let cas = match next_cursor {
        Some(next) => Sql::new(CAS_ITEM_CURSOR).bind(&item.id).bind(next).bind(item.cursor.as_deref()).bind(&now),
        None => Sql::new(CHECK_ITEM_CURSOR).bind(&item.id).bind(item.cursor.as_deref()).bind(&now),
    };
    if tx.execute(&cas).await? != 1 {
        return Err(StoreError::Conflict(
            "the Item's sync cursor changed since this sync started (or the Item is gone)".into(),
        ));
    }
    let upserted =
        tx.execute(&Sql::new(MOVE_UPSERTS.as_str()).bind(run_id).bind(&item.id).bind(&item.user_id).bind(&now)).await?;
    tx.execute(&Sql::new(MOVE_CARRY_EDITS).bind(run_id).bind(&item.id)).await?;
    let pending_replaced = tx.execute(&Sql::new(MOVE_SUPERSEDE_PENDING).bind(run_id).bind(&item.id).bind(&now)).await?;
    let removed = tx.execute(&Sql::new(MOVE_REMOVALS).bind(run_id).bind(&item.id).bind(&now)).await?;
    Ok(ApplyStats { upserted, removed, pending_replaced })
}
