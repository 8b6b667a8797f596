//! SQL shared by both backends, and the one implementation of `Store` that both instantiate.
//!
//! Every statement uses `$n` placeholders, which SQLite accepts too. The implementation is written once inside
//! `impl_store!` and expanded for `sqlx::Sqlite` and `sqlx::Postgres`: being generic over `sqlx::Database` would
//! need higher-ranked `Executor`/`Encode` bounds on every function, and `sqlx::Any` cannot carry our types. The
//! only dialect fork is the job-claim statement (`FOR UPDATE SKIP LOCKED` on PostgreSQL).

pub const INSERT_USER: &str = "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)";
pub const USER_BY_NAME: &str = "SELECT id, username, password_hash, created_at FROM users WHERE username = $1";
pub const USER_BY_ID: &str = "SELECT id, username, password_hash, created_at FROM users WHERE id = $1";

pub const INSERT_SESSION: &str =
    "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
pub const FIND_SESSION: &str = "SELECT id_hash, user_id, csrf_token, created_at, expires_at FROM sessions \
    WHERE id_hash = $1 AND expires_at > $2";
pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";
pub const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";

pub const INSERT_API_TOKEN: &str =
    "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
pub const API_TOKEN_OWNER: &str = "SELECT user_id, last_used_at FROM api_tokens WHERE token_hash = $1";
pub const TOUCH_API_TOKEN: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1";
pub const LIST_API_TOKENS: &str = "SELECT id, user_id, name, token_hash, created_at, last_used_at FROM api_tokens \
    WHERE user_id = $1 ORDER BY created_at, id";
pub const DELETE_API_TOKEN: &str = "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2";

pub const INSERT_ITEM: &str = "INSERT INTO items (id, item_id, user_id, institution_id, institution_name, \
    access_token_ciphertext, access_token_nonce, access_token_key_id, status, new_accounts_available, created_at, \
    updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'good', FALSE, $9, $9)";
pub const UPDATE_ITEM_STATUS: &str = "UPDATE items SET status = $2, error_code = $3, error_message = $4, \
    display_message = $5, disconnect_at = $6, updated_at = $7 WHERE id = $1";
pub const UPDATE_ITEM_CONSENT: &str = "UPDATE items SET consent_expires_at = $2, updated_at = $3 WHERE id = $1";
pub const UPDATE_ITEM_NEW_ACCOUNTS: &str =
    "UPDATE items SET new_accounts_available = $2, updated_at = $3 WHERE id = $1";
pub const UPDATE_ITEM_TOKEN: &str = "UPDATE items SET access_token_ciphertext = $2, access_token_nonce = $3, \
    access_token_key_id = $4, updated_at = $5 WHERE id = $1";
pub const RESET_ITEM_CURSOR: &str = "UPDATE items SET cursor = NULL, updated_at = $2 WHERE id = $1";
pub const DELETE_ITEM: &str = "DELETE FROM items WHERE item_id = $1 AND user_id = $2";
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
/// Compare-and-set of the sync cursor: the row changes only if nobody committed since `$3` was read.
pub const CAS_ITEM_CURSOR: &str = "UPDATE items SET cursor = $2, last_sync_at = $4, last_successful_sync_at = $4, \
    updated_at = $4 WHERE id = $1 AND cursor IS NOT DISTINCT FROM $3";
/// The same check without moving the cursor (a batch applied with `next_cursor: None`).
pub const CHECK_ITEM_CURSOR: &str = "UPDATE items SET updated_at = $3 WHERE id = $1 AND cursor IS NOT DISTINCT FROM $2";

/// $16 now, $17 the moment before which a live balance no longer counts as recent. The account's details are
/// always updated; its balance only when the incoming one is not older than the stored one, and a cached balance
/// (from a sync or /accounts/get, whose age Plaid often does not say) never replaces a recent live one.
pub const UPSERT_ACCOUNT: &str = concat!(
    "INSERT INTO accounts (account_id, item_ref, user_id, name, official_name, mask, \
    type, subtype, balance_available, balance_current, balance_limit, currency, currency_is_official, balance_as_of, \
    balance_source, removed, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, FALSE, $16, $16) \
    ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, official_name = excluded.official_name, \
    mask = excluded.mask, type = excluded.type, subtype = excluded.subtype, ",
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
pub const UPDATE_BALANCE: &str = "UPDATE accounts SET balance_available = $3, balance_current = $4, \
    balance_limit = $5, currency = $6, currency_is_official = $7, balance_as_of = $8, balance_source = $9, \
    updated_at = $10 WHERE account_id = $1 AND item_ref = $2";

/// Columns of `sync_staging` in insert order (28).
pub const STAGING_COLUMNS: &str = "run_id, transaction_id, op, account_id, amount, amount_key, currency, \
    currency_is_official, datetime, time_unknown, date, authorized_date, name, merchant_name, display_name, \
    logo_url, website, pfc_primary, pfc_detailed, pfc_confidence, pfc_icon_url, payment_channel, pending, \
    pending_transaction_id, counterparties, location, account_owner, raw";
pub const STAGING_COLUMN_COUNT: usize = 28;
/// A later change to the same transaction within one run replaces the earlier one.
pub const STAGING_ON_CONFLICT: &str = " ON CONFLICT (run_id, transaction_id) DO UPDATE SET op = excluded.op, \
    account_id = excluded.account_id, amount = excluded.amount, amount_key = excluded.amount_key, \
    currency = excluded.currency, currency_is_official = excluded.currency_is_official, \
    datetime = excluded.datetime, time_unknown = excluded.time_unknown, date = excluded.date, \
    authorized_date = excluded.authorized_date, name = excluded.name, merchant_name = excluded.merchant_name, \
    display_name = excluded.display_name, logo_url = excluded.logo_url, website = excluded.website, \
    pfc_primary = excluded.pfc_primary, pfc_detailed = excluded.pfc_detailed, \
    pfc_confidence = excluded.pfc_confidence, pfc_icon_url = excluded.pfc_icon_url, \
    payment_channel = excluded.payment_channel, pending = excluded.pending, \
    pending_transaction_id = excluded.pending_transaction_id, counterparties = excluded.counterparties, \
    location = excluded.location, account_owner = excluded.account_owner, raw = excluded.raw";
pub const DELETE_STAGING: &str = "DELETE FROM sync_staging WHERE run_id = $1";

/// The upsert of a transaction row (after `INSERT ... VALUES/SELECT`): Plaid's later version replaces the row and
/// restores it if it was removed; user fields are never overwritten; a transaction_id owned by another Item is
/// left alone.
macro_rules! upsert_transaction_on_conflict {
    () => {
        " ON CONFLICT (transaction_id) DO UPDATE SET account_id = excluded.account_id, amount = excluded.amount, \
        amount_key = excluded.amount_key, currency = excluded.currency, \
        currency_is_official = excluded.currency_is_official, datetime = excluded.datetime, \
        time_unknown = excluded.time_unknown, date = excluded.date, authorized_date = excluded.authorized_date, \
        name = excluded.name, merchant_name = excluded.merchant_name, display_name = excluded.display_name, \
        logo_url = excluded.logo_url, website = excluded.website, pfc_primary = excluded.pfc_primary, \
        pfc_detailed = excluded.pfc_detailed, pfc_confidence = excluded.pfc_confidence, \
        pfc_icon_url = excluded.pfc_icon_url, payment_channel = excluded.payment_channel, pending = excluded.pending, \
        pending_transaction_id = excluded.pending_transaction_id, counterparties = excluded.counterparties, \
        location = excluded.location, account_owner = excluded.account_owner, raw = excluded.raw, deleted_at = NULL, \
        updated_at = excluded.updated_at \
        WHERE transactions.item_ref = excluded.item_ref"
    };
}

/// $1 run, $2 item_ref, $3 user_id, $4 now. Upserts by transaction_id (restoring soft-deleted rows); user fields
/// are never overwritten; a transaction_id owned by another Item is left alone.
pub const MOVE_UPSERTS: &str = concat!(
    "INSERT INTO transactions (transaction_id, item_ref, user_id, account_id, amount, \
    amount_key, currency, currency_is_official, datetime, time_unknown, date, authorized_date, name, merchant_name, \
    display_name, logo_url, website, pfc_primary, pfc_detailed, pfc_confidence, pfc_icon_url, payment_channel, \
    pending, pending_transaction_id, counterparties, location, account_owner, raw, deleted_at, created_at, \
    updated_at) \
    SELECT transaction_id, $2, $3, account_id, amount, amount_key, currency, currency_is_official, datetime, \
    time_unknown, date, authorized_date, name, merchant_name, display_name, logo_url, website, pfc_primary, \
    pfc_detailed, pfc_confidence, pfc_icon_url, payment_channel, pending, pending_transaction_id, counterparties, \
    location, account_owner, raw, NULL, $4, $4 FROM sync_staging WHERE run_id = $1 AND op = 'upsert'",
    upsert_transaction_on_conflict!()
);
// In the three statements below, `item_ref || ''` keeps the planner from walking the Item's index (every row of the
// Item) instead of looking up the few staged ids by primary key; without table statistics SQLite would guess wrong.

/// $1 run, $2 item_ref. A posted transaction takes over the user's note and category from the pending one it
/// names (unless the posted row already has its own).
pub const MOVE_CARRY_EDITS: &str = "UPDATE transactions SET \
    user_note = COALESCE(user_note, (SELECT p.user_note FROM transactions p \
        WHERE p.transaction_id = transactions.pending_transaction_id AND p.item_ref = transactions.item_ref)), \
    user_category = COALESCE(user_category, (SELECT p.user_category FROM transactions p \
        WHERE p.transaction_id = transactions.pending_transaction_id AND p.item_ref = transactions.item_ref)) \
    WHERE transaction_id IN (SELECT s.transaction_id FROM sync_staging s \
        WHERE s.run_id = $1 AND s.op = 'upsert' AND s.pending_transaction_id IS NOT NULL) AND item_ref || '' = $2";
/// $1 run, $2 item_ref, $3 now. The pending row a posted transaction replaces is hidden, so both never show.
pub const MOVE_SUPERSEDE_PENDING: &str = "UPDATE transactions SET deleted_at = $3, updated_at = $3 \
    WHERE transaction_id IN (SELECT s.pending_transaction_id FROM sync_staging s \
        WHERE s.run_id = $1 AND s.op = 'upsert' AND s.pending_transaction_id IS NOT NULL) \
    AND item_ref || '' = $2 AND deleted_at IS NULL";
/// $1 run, $2 item_ref, $3 now. Soft delete: a removed id that comes back later is restored by the upsert.
pub const MOVE_REMOVALS: &str = "UPDATE transactions SET deleted_at = $3, updated_at = $3 \
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
pub const CLAIM_INITIAL_SYNC: &str = "UPDATE items SET initial_sync_run = $2 WHERE id = $1 AND cursor IS NULL \
    AND (initial_sync_run IS NOT NULL OR NOT EXISTS (SELECT 1 FROM transactions t WHERE t.item_ref = $1))";
pub const DELETE_ITEM_TRANSACTIONS: &str = "DELETE FROM transactions WHERE item_ref = $1";
/// $1 item_ref, $2 run. Each page write starts with this: the run still holds the claim (and, on PostgreSQL,
/// holds the Item's row until the page commits, so a takeover waits for it).
pub const GUARD_INITIAL_SYNC: &str = "UPDATE items SET initial_sync_run = initial_sync_run \
    WHERE id = $1 AND initial_sync_run = $2 AND cursor IS NULL";
/// $1 item_ref, $2 run, $3 cursor, $4 now. Reveals the history.
pub const COMMIT_INITIAL_SYNC: &str = "UPDATE items SET initial_sync_run = NULL, cursor = $3, last_sync_at = $4, \
    last_successful_sync_at = $4, updated_at = $4 WHERE id = $1 AND initial_sync_run = $2 AND cursor IS NULL";
/// $1 item_ref, $2 run. Gives the claim up; the caller then deletes the hidden rows.
pub const RELEASE_INITIAL_SYNC: &str =
    "UPDATE items SET initial_sync_run = NULL WHERE id = $1 AND initial_sync_run = $2";
/// Columns of a transaction written straight into `transactions` (initial sync), in insert order.
pub const DIRECT_COLUMNS: &str = "transaction_id, item_ref, user_id, account_id, amount, amount_key, currency, \
    currency_is_official, datetime, time_unknown, date, authorized_date, name, merchant_name, display_name, \
    logo_url, website, pfc_primary, pfc_detailed, pfc_confidence, pfc_icon_url, payment_channel, pending, \
    pending_transaction_id, counterparties, location, account_owner, raw, created_at, updated_at";
pub const DIRECT_COLUMN_COUNT: usize = 30;
/// A later page's version replaces an earlier one (see the macro).
pub const DIRECT_ON_CONFLICT: &str = upsert_transaction_on_conflict!();

pub const GET_TRANSACTION: &str = "SELECT t.transaction_id, i.item_id, t.account_id, t.amount, t.currency, \
    t.currency_is_official, t.datetime, t.time_unknown, t.date, t.authorized_date, t.name, t.merchant_name, \
    t.display_name, t.logo_url, t.website, t.pfc_primary, t.pfc_detailed, t.pfc_confidence, t.pfc_icon_url, \
    t.payment_channel, t.pending, t.pending_transaction_id, t.counterparties, t.location, t.account_owner, t.raw, \
    t.user_note, t.user_category, t.created_at, t.updated_at \
    FROM transactions t JOIN items i ON i.id = t.item_ref \
    WHERE t.transaction_id = $1 AND t.user_id = $2 AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL";
/// $3/$5: whether to set the note/category; $4/$6 the new values.
pub const PATCH_TRANSACTION: &str = "UPDATE transactions SET \
    user_note = CASE WHEN $3 THEN $4 ELSE user_note END, \
    user_category = CASE WHEN $5 THEN $6 ELSE user_category END, updated_at = $7 \
    WHERE transaction_id = $1 AND user_id = $2 AND deleted_at IS NULL \
    AND NOT EXISTS (SELECT 1 FROM items i WHERE i.id = transactions.item_ref AND i.initial_sync_run IS NOT NULL)";

pub const INSERT_SYNC_RUN: &str = "INSERT INTO sync_runs (id, item_ref, triggered_by, started_at, status) \
    VALUES ($1, $2, $3, $4, 'running')";
pub const FINISH_SYNC_RUN: &str = "UPDATE sync_runs SET finished_at = $2, status = $3, added = $4, modified = $5, \
    removed = $6, pages = $7, restarts = $8, error_code = $9, error_message = $10 WHERE id = $1";
pub const TOUCH_ITEM_LAST_SYNC: &str = "UPDATE items SET last_sync_at = $2 \
    WHERE id = (SELECT item_ref FROM sync_runs WHERE id = $1)";

pub const INSERT_PLAID_CALL: &str = "INSERT INTO plaid_calls (endpoint, item_id, request_id, http_status, outcome, \
    error_type, error_code, latency_ms, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

pub const INSERT_WEBHOOK: &str = "INSERT INTO webhook_events (id, dedupe_key, item_id, webhook_type, webhook_code, \
    body, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedupe_key) DO NOTHING";
pub const WEBHOOK_BY_KEY: &str = "SELECT id FROM webhook_events WHERE dedupe_key = $1";
pub const MARK_WEBHOOK: &str = "UPDATE webhook_events SET processed_at = $2 WHERE id = $1";

/// Joins a queued job with the same (kind, coalesce_key) through the partial unique index; the earlier
/// `run_after` wins. Returns the id of the row that now stands for the request.
pub const ENQUEUE_JOB: &str = "INSERT INTO jobs (id, kind, coalesce_key, user_id, item_id, payload, state, \
    attempts, max_attempts, run_after, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, 'queued', 0, $7, $8, $9, $9) \
    ON CONFLICT (kind, coalesce_key) WHERE state = 'queued' DO UPDATE SET \
    run_after = CASE WHEN excluded.run_after < jobs.run_after THEN excluded.run_after ELSE jobs.run_after END, \
    updated_at = excluded.updated_at \
    RETURNING id";

/// $1 worker, $2 lease expiry, $3 now. One statement, so it is atomic on SQLite; PostgreSQL adds
/// `FOR UPDATE SKIP LOCKED` so concurrent claimers in several processes skip each other's rows.
macro_rules! claim_job_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET state = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1, ",
            "updated_at = $3 WHERE id = (SELECT id FROM jobs j WHERE (j.state = 'queued' AND j.run_after <= $3 ",
            // A queued job waits while another job for the same work is running under a live lease, in any
            // process: two banksync instances must never sync one Item at the same time.
            "AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.kind = j.kind AND r.coalesce_key = j.coalesce_key ",
            "AND r.state = 'running' AND r.lease_expires_at >= $3)) ",
            "OR (j.state = 'running' AND j.lease_expires_at < $3 AND j.attempts < j.max_attempts) ",
            "ORDER BY j.run_after, j.created_at, j.id LIMIT 1",
            $lock,
            ") RETURNING id, kind, coalesce_key, user_id, item_id, payload, result, state, attempts, max_attempts, ",
            "run_after, lease_owner, lease_expires_at, last_error, created_at, updated_at"
        )
    };
}
pub const CLAIM_JOB_SQLITE: &str = claim_job_sql!("");
pub const CLAIM_JOB_POSTGRES: &str = claim_job_sql!(" FOR UPDATE SKIP LOCKED");

pub const HEARTBEAT_JOB: &str = "UPDATE jobs SET lease_expires_at = $3, updated_at = $4 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
pub const COMPLETE_JOB: &str = "UPDATE jobs SET state = 'done', result = $3, lease_owner = NULL, \
    lease_expires_at = NULL, last_error = NULL, updated_at = $4 WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
pub const HELD_JOB_ATTEMPTS: &str = "SELECT attempts, max_attempts FROM jobs \
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
/// $3 new state. A retry becomes `failed` instead when another queued job already stands for the same work.
pub const FAIL_JOB: &str = "UPDATE jobs SET \
    state = CASE WHEN $3 = 'queued' AND coalesce_key IS NOT NULL AND EXISTS (SELECT 1 FROM jobs q \
        WHERE q.kind = jobs.kind AND q.coalesce_key = jobs.coalesce_key AND q.state = 'queued') \
        THEN 'failed' ELSE $3 END, \
    last_error = $4, run_after = $5, lease_owner = NULL, lease_expires_at = NULL, updated_at = $6 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'running' RETURNING state";
pub const FAIL_JOB_SUPERSEDED: &str = "UPDATE jobs SET state = 'failed', last_error = $3, lease_owner = NULL, \
    lease_expires_at = NULL, updated_at = $4 WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
pub const RECLAIM_EXHAUSTED_JOBS: &str = "UPDATE jobs SET state = 'failed', \
    last_error = COALESCE(last_error, 'lease expired'), lease_owner = NULL, lease_expires_at = NULL, updated_at = $1 \
    WHERE state = 'running' AND lease_expires_at < $1 AND attempts >= max_attempts";
/// $8 now. A running job with its one attempt used, unless the same work runs under a live lease.
pub const INSERT_RUNNING_JOB: &str = "INSERT INTO jobs (id, kind, coalesce_key, user_id, item_id, payload, result, \
    state, attempts, max_attempts, run_after, lease_owner, lease_expires_at, created_at, updated_at) \
    SELECT $1, $2, $3, $4, $5, $6, $7, 'running', 1, 1, $8, $9, $10, $8, $8 \
    WHERE NOT EXISTS (SELECT 1 FROM jobs r WHERE r.kind = $2 AND r.coalesce_key = $3 AND r.state = 'running' \
    AND r.lease_expires_at >= $8)";
pub const LIVE_RUNNING_JOB: &str = "SELECT id FROM jobs WHERE kind = $1 AND coalesce_key = $2 AND state = 'running' \
    AND lease_expires_at >= $3 ORDER BY created_at DESC, id LIMIT 1";
pub const UPDATE_RUNNING_JOB_RESULT: &str = "UPDATE jobs SET result = $3, updated_at = $4 \
    WHERE id = $1 AND lease_owner = $2 AND state = 'running'";
pub const DELETE_FINISHED_JOBS: &str =
    "DELETE FROM jobs WHERE kind = $1 AND state IN ('done', 'failed') AND run_after < $2";

/// One change of a sync page.
pub enum PageOp<'a> {
    Upsert(&'a crate::domain::NewTransaction),
    Remove(&'a str),
}

impl PageOp<'_> {
    fn id(&self) -> &str {
        match self {
            PageOp::Upsert(t) => &t.transaction_id,
            PageOp::Remove(id) => id,
        }
    }
}

/// The pages' changes, keeping only each transaction's last one (pages in order; within a page added, then
/// modified, then removed): one statement may not touch a row twice (PostgreSQL refuses).
pub fn last_change_per_id(pages: &[crate::domain::SyncPage]) -> Vec<PageOp<'_>> {
    let all: Vec<PageOp<'_>> = pages
        .iter()
        .flat_map(|page| {
            page.added
                .iter()
                .chain(&page.modified)
                .map(PageOp::Upsert)
                .chain(page.removed.iter().map(|id| PageOp::Remove(id.as_str())))
        })
        .collect();
    let mut last = std::collections::HashMap::with_capacity(all.len());
    for (i, op) in all.iter().enumerate() {
        last.insert(op.id(), i);
    }
    let keep: Vec<bool> = (0..all.len()).map(|i| last[all[i].id()] == i).collect();
    all.into_iter().zip(keep).filter_map(|(op, keep)| keep.then_some(op)).collect()
}

/// Rows per multi-row statement with `columns` binds each: well below both engines' bind-parameter limits
/// (SQLite 32766, PostgreSQL 65535).
pub const fn rows_per_statement(columns: usize) -> usize {
    30_000 / columns
}

/// Expands to `impl Store for $store`. The backend type provides `writer()`/`reader()` pools, a migrator, and the
/// staging hooks `prepare_staging`, `remember_run`, `check_run`, `clear_staging`, `forget_run` (where the backends
/// differ in where staged pages live).
macro_rules! impl_store {
    ($store:ty, $db:ty, $backend:expr, $claim_sql:expr) => {
        impl $store {
            /// Writes one page (or batch) into `sync_staging` inside `tx`, in multi-row statements.
            async fn stage_rows(
                tx: &mut sqlx::Transaction<'_, $db>,
                run_id: &str,
                page: &$crate::domain::SyncPage,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::*;
                Self::prepare_staging(tx).await?;
                let ops = last_change_per_id(std::slice::from_ref(page));
                for chunk in ops.chunks(rows_per_statement(STAGING_COLUMN_COUNT)) {
                    let mut qb =
                        sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO sync_staging ({STAGING_COLUMNS}) "));
                    qb.push_values(chunk, |mut b, op| {
                        b.push_bind(run_id);
                        match op {
                            PageOp::Upsert(t) => {
                                b.push_bind(t.transaction_id.as_str()).push_bind("upsert");
                                Self::push_txn_fields(&mut b, t);
                            }
                            PageOp::Remove(id) => {
                                let none_text = || None::<&str>;
                                b.push_bind(*id).push_bind("remove");
                                for _ in 0..4 {
                                    b.push_bind(none_text()); // account_id, amount, amount_key, currency
                                }
                                b.push_bind(None::<bool>).push_bind(none_text()).push_bind(None::<bool>);
                                for _ in 0..12 {
                                    // date .. payment_channel
                                    b.push_bind(none_text());
                                }
                                b.push_bind(None::<bool>);
                                for _ in 0..5 {
                                    // pending_transaction_id .. raw
                                    b.push_bind(none_text());
                                }
                            }
                        }
                    });
                    qb.push(STAGING_ON_CONFLICT);
                    qb.build().execute(&mut **tx).await?;
                }
                Ok(())
            }

            /// Binds the 25 columns from `account_id` to `raw`, in the order of `STAGING_COLUMNS` and
            /// `DIRECT_COLUMNS`, borrowing the page's text rather than copying it.
            fn push_txn_fields<'args>(
                b: &mut sqlx::query_builder::Separated<'_, 'args, $db, &'static str>,
                t: &'args $crate::domain::NewTransaction,
            ) {
                use $crate::store::codec;
                b.push_bind(t.account_id.as_str())
                    .push_bind(codec::money(t.amount))
                    .push_bind(codec::amount_key(t.amount))
                    .push_bind(t.currency.as_deref())
                    .push_bind(Some(t.currency_is_official))
                    .push_bind(codec::ts(t.datetime))
                    .push_bind(Some(t.time_unknown))
                    .push_bind(codec::date(t.date))
                    .push_bind(t.authorized_date.map(codec::date))
                    .push_bind(t.name.as_str())
                    .push_bind(t.merchant_name.as_deref())
                    .push_bind(t.display_name())
                    .push_bind(t.logo_url.as_deref())
                    .push_bind(t.website.as_deref())
                    .push_bind(t.pfc_primary.as_deref())
                    .push_bind(t.pfc_detailed.as_deref())
                    .push_bind(t.pfc_confidence.as_deref())
                    .push_bind(t.pfc_icon_url.as_deref())
                    .push_bind(t.payment_channel.as_deref())
                    .push_bind(Some(t.pending))
                    .push_bind(t.pending_transaction_id.as_deref())
                    .push_bind(t.counterparties.as_deref())
                    .push_bind(t.location.as_deref())
                    .push_bind(t.account_owner.as_deref())
                    .push_bind(t.raw.as_str());
            }

            /// Inside `tx`: checks that `run_id` still holds the Item's initial-sync claim (and on PostgreSQL locks the
            /// Item's row until `tx` ends, so a takeover waits for this page).
            async fn hold_initial_claim(
                tx: &mut sqlx::Transaction<'_, $db>,
                item: &$crate::domain::Item,
                run_id: &str,
            ) -> $crate::store::Result<()> {
                let held = sqlx::query($crate::store::sql::GUARD_INITIAL_SYNC)
                    .bind(&item.id)
                    .bind(run_id)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                if held != 1 {
                    return Err(Self::lost_initial_claim());
                }
                Ok(())
            }

            fn lost_initial_claim() -> $crate::store::StoreError {
                $crate::store::StoreError::Conflict(
                    "another sync took over this Item's initial sync (or the Item was synced or removed meanwhile)"
                        .into(),
                )
            }

            /// A multi-row insert of `chunk` straight into `transactions`.
            fn direct_insert<'a>(
                item: &'a $crate::domain::Item,
                now: &'a str,
                chunk: &[&'a $crate::domain::NewTransaction],
            ) -> sqlx::QueryBuilder<'a, $db> {
                use $crate::store::sql::*;
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO transactions ({DIRECT_COLUMNS}) "));
                qb.push_values(chunk.iter().copied(), |mut b, t| {
                    b.push_bind(t.transaction_id.as_str()).push_bind(item.id.as_str()).push_bind(item.user_id.as_str());
                    Self::push_txn_fields(&mut b, t);
                    b.push_bind(now).push_bind(now);
                });
                qb.push(DIRECT_ON_CONFLICT);
                qb
            }

            /// Inside `tx`, which holds the run's initial-sync claim: writes consecutive pages straight into
            /// `transactions` (hidden until the commit), then applies their removals and pending→posted
            /// replacements.
            async fn write_direct(
                tx: &mut sqlx::Transaction<'_, $db>,
                item: &$crate::domain::Item,
                pages: &[$crate::domain::SyncPage],
            ) -> $crate::store::Result<$crate::domain::ApplyStats> {
                use $crate::store::codec;
                use $crate::store::sql::*;
                let now = codec::ts(codec::now());
                let ops = last_change_per_id(pages);
                let mut upserts: Vec<&$crate::domain::NewTransaction> = ops
                    .iter()
                    .filter_map(|op| match op {
                        PageOp::Upsert(t) => Some(*t),
                        PageOp::Remove(_) => None,
                    })
                    .collect();
                // Ids in order: the primary-key index is then filled left to right within a batch, not at random.
                upserts.sort_unstable_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
                let mut stats = $crate::domain::ApplyStats::default();
                // Binding a statement's ~30,000 values takes about a quarter of the time SQLite takes to run it, so
                // the next statement is bound while the database thread runs the current one (measured: 100,000
                // transactions 50.6k/s -> 53.0k/s, six interleaved runs each).
                let mut chunks = upserts.chunks(rows_per_statement(DIRECT_COLUMN_COUNT));
                let statement = |chunk| Self::direct_insert(item, &now, chunk);
                let mut next = chunks.next().map(statement);
                while let Some(mut qb) = next.take() {
                    let (done, following) =
                        tokio::join!(qb.build().execute(&mut **tx), async { chunks.next().map(statement) });
                    stats.upserted += done?.rows_affected();
                    next = following;
                }
                // Soft deletes of some of the Item's rows by id: removals, and pending rows whose posted version
                // arrived (on this page, or on an earlier one: `named_by_posted`).
                async fn hide<'a>(
                    tx: &mut sqlx::Transaction<'_, $db>,
                    item_ref: &str,
                    now: &str,
                    ids: impl Iterator<Item = &'a str>,
                    named_by_posted: bool,
                ) -> $crate::store::Result<u64> {
                    let ids: Vec<&str> = ids.collect();
                    let mut hidden = 0;
                    for chunk in ids.chunks(rows_per_statement(1)) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE transactions SET deleted_at = ");
                        qb.push_bind(now).push(", updated_at = ").push_bind(now);
                        // `|| ''`: look the few ids up by primary key rather than walk the Item's index.
                        qb.push(" WHERE item_ref || '' = ").push_bind(item_ref);
                        qb.push(" AND deleted_at IS NULL AND transaction_id IN (");
                        let mut list = qb.separated(", ");
                        for id in chunk {
                            list.push_bind(*id);
                        }
                        qb.push(")");
                        if named_by_posted {
                            qb.push(
                                " AND EXISTS (SELECT 1 FROM transactions p \
                                WHERE p.pending_transaction_id = transactions.transaction_id AND p.item_ref = ",
                            );
                            qb.push_bind(item_ref).push(" AND p.deleted_at IS NULL)");
                        }
                        hidden += qb.build().execute(&mut **tx).await?.rows_affected();
                    }
                    Ok(hidden)
                }
                let removed_ids = ops.iter().filter_map(|op| match op {
                    PageOp::Remove(id) => Some(*id),
                    PageOp::Upsert(_) => None,
                });
                stats.removed = hide(tx, &item.id, &now, removed_ids, false).await?;
                let named = upserts.iter().filter_map(|t| t.pending_transaction_id.as_deref());
                stats.pending_replaced = hide(tx, &item.id, &now, named, false).await?;
                let pending = upserts.iter().filter(|t| t.pending).map(|t| t.transaction_id.as_str());
                stats.pending_replaced += hide(tx, &item.id, &now, pending, true).await?;
                Ok(stats)
            }

            /// Inside `tx`: checks and moves the cursor, then moves the run's staged rows into `transactions`. The
            /// caller clears the staged rows.
            async fn move_staged(
                tx: &mut sqlx::Transaction<'_, $db>,
                item: &$crate::domain::Item,
                run_id: &str,
                next_cursor: Option<&str>,
            ) -> $crate::store::Result<$crate::domain::ApplyStats> {
                use $crate::store::codec;
                use $crate::store::sql::*;
                let now = codec::ts(codec::now());
                // The cursor first: on PostgreSQL this locks the Item's row, serializing overlapping commits.
                let cas = match next_cursor {
                    Some(next) => {
                        sqlx::query(CAS_ITEM_CURSOR)
                            .bind(&item.id)
                            .bind(next)
                            .bind(item.cursor.as_deref())
                            .bind(&now)
                            .execute(&mut **tx)
                            .await?
                    }
                    None => {
                        sqlx::query(CHECK_ITEM_CURSOR)
                            .bind(&item.id)
                            .bind(item.cursor.as_deref())
                            .bind(&now)
                            .execute(&mut **tx)
                            .await?
                    }
                };
                if cas.rows_affected() != 1 {
                    return Err($crate::store::StoreError::Conflict(
                        "the Item's sync cursor changed since this sync started (or the Item is gone)".into(),
                    ));
                }
                let upserted = sqlx::query(MOVE_UPSERTS)
                    .bind(run_id)
                    .bind(&item.id)
                    .bind(&item.user_id)
                    .bind(&now)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                sqlx::query(MOVE_CARRY_EDITS).bind(run_id).bind(&item.id).execute(&mut **tx).await?;
                let pending_replaced = sqlx::query(MOVE_SUPERSEDE_PENDING)
                    .bind(run_id)
                    .bind(&item.id)
                    .bind(&now)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                let removed = sqlx::query(MOVE_REMOVALS)
                    .bind(run_id)
                    .bind(&item.id)
                    .bind(&now)
                    .execute(&mut **tx)
                    .await?
                    .rows_affected();
                Ok($crate::domain::ApplyStats { upserted, removed, pending_replaced })
            }

            async fn fetch_items(
                &self,
                where_clause: &str,
                binds: &[&str],
            ) -> $crate::store::Result<Vec<$crate::domain::Item>> {
                let sql = format!(
                    "SELECT {} FROM items {where_clause} ORDER BY created_at, id",
                    $crate::store::rows::ITEM_COLUMNS
                );
                let mut q = sqlx::query_as::<_, $crate::store::rows::ItemRow>(&sql);
                for b in binds {
                    q = q.bind(*b);
                }
                $crate::store::rows::convert_all(q.fetch_all(self.reader()).await?)
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            fn backend(&self) -> $crate::store::Backend {
                $backend
            }

            async fn migrate(&self) -> $crate::store::Result<()> {
                Self::migrator().run(self.writer()).await?;
                Ok(())
            }

            async fn ping(&self) -> $crate::store::Result<()> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn create_user(
                &self,
                username: &str,
                password_hash: &str,
            ) -> $crate::store::Result<$crate::domain::User> {
                let user = $crate::domain::User {
                    id: uuid::Uuid::new_v4().to_string(),
                    username: username.to_owned(),
                    password_hash: password_hash.to_owned(),
                    created_at: $crate::store::codec::now(),
                };
                sqlx::query($crate::store::sql::INSERT_USER)
                    .bind(&user.id)
                    .bind(&user.username)
                    .bind(&user.password_hash)
                    .bind($crate::store::codec::ts(user.created_at))
                    .execute(self.writer())
                    .await
                    .map_err(|e| match $crate::store::StoreError::from(e) {
                        $crate::store::StoreError::Conflict(_) => {
                            $crate::store::StoreError::Conflict(format!("user {username:?} already exists"))
                        }
                        other => other,
                    })?;
                Ok(user)
            }

            async fn find_user_by_username(
                &self,
                username: &str,
            ) -> $crate::store::Result<Option<$crate::domain::User>> {
                sqlx::query_as::<_, $crate::store::rows::UserRow>($crate::store::sql::USER_BY_NAME)
                    .bind(username)
                    .fetch_optional(self.reader())
                    .await?
                    .map(TryInto::try_into)
                    .transpose()
            }

            async fn get_user(&self, user_id: &str) -> $crate::store::Result<$crate::domain::User> {
                sqlx::query_as::<_, $crate::store::rows::UserRow>($crate::store::sql::USER_BY_ID)
                    .bind(user_id)
                    .fetch_one(self.reader())
                    .await?
                    .try_into()
            }

            async fn create_session(
                &self,
                s: &$crate::domain::NewSession,
            ) -> $crate::store::Result<$crate::domain::Session> {
                let created_at = $crate::store::codec::now();
                sqlx::query($crate::store::sql::INSERT_SESSION)
                    .bind(&s.id_hash)
                    .bind(&s.user_id)
                    .bind(&s.csrf_token)
                    .bind($crate::store::codec::ts(created_at))
                    .bind($crate::store::codec::ts(s.expires_at))
                    .execute(self.writer())
                    .await?;
                Ok($crate::domain::Session {
                    id_hash: s.id_hash.clone(),
                    user_id: s.user_id.clone(),
                    csrf_token: s.csrf_token.clone(),
                    created_at,
                    expires_at: $crate::store::codec::parse_ts(&$crate::store::codec::ts(s.expires_at))?,
                })
            }

            async fn find_session(
                &self,
                id_hash: &str,
            ) -> $crate::store::Result<Option<$crate::domain::Session>> {
                sqlx::query_as::<_, $crate::store::rows::SessionRow>($crate::store::sql::FIND_SESSION)
                    .bind(id_hash)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .fetch_optional(self.reader())
                    .await?
                    .map(TryInto::try_into)
                    .transpose()
            }

            async fn delete_session(&self, id_hash: &str) -> $crate::store::Result<()> {
                sqlx::query($crate::store::sql::DELETE_SESSION).bind(id_hash).execute(self.writer()).await?;
                Ok(())
            }

            async fn delete_expired_sessions(&self) -> $crate::store::Result<u64> {
                Ok(sqlx::query($crate::store::sql::DELETE_EXPIRED_SESSIONS)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?
                    .rows_affected())
            }

            async fn create_api_token(
                &self,
                user_id: &str,
                name: &str,
                token_hash: &str,
            ) -> $crate::store::Result<$crate::domain::ApiToken> {
                let token = $crate::domain::ApiToken {
                    id: uuid::Uuid::new_v4().to_string(),
                    user_id: user_id.to_owned(),
                    name: name.to_owned(),
                    token_hash: token_hash.to_owned(),
                    created_at: $crate::store::codec::now(),
                    last_used_at: None,
                };
                sqlx::query($crate::store::sql::INSERT_API_TOKEN)
                    .bind(&token.id)
                    .bind(&token.user_id)
                    .bind(&token.name)
                    .bind(&token.token_hash)
                    .bind($crate::store::codec::ts(token.created_at))
                    .execute(self.writer())
                    .await?;
                Ok(token)
            }

            async fn find_user_by_api_token_hash(
                &self,
                token_hash: &str,
            ) -> $crate::store::Result<Option<$crate::domain::User>> {
                let owner: Option<(String, Option<String>)> = sqlx::query_as($crate::store::sql::API_TOKEN_OWNER)
                    .bind(token_hash)
                    .fetch_optional(self.reader())
                    .await?;
                let Some((user_id, last_used_at)) = owner else {
                    return Ok(None);
                };
                // Record the use at most once a minute, so authenticated reads do not queue behind the writer.
                let now = chrono::Utc::now();
                let stale = $crate::store::codec::ts(now - chrono::Duration::minutes(1));
                if last_used_at.is_none_or(|t| t < stale) {
                    sqlx::query($crate::store::sql::TOUCH_API_TOKEN)
                        .bind(token_hash)
                        .bind($crate::store::codec::ts(now))
                        .execute(self.writer())
                        .await?;
                }
                Ok(Some(self.get_user(&user_id).await?))
            }

            async fn list_api_tokens(
                &self,
                user_id: &str,
            ) -> $crate::store::Result<Vec<$crate::domain::ApiToken>> {
                let rows = sqlx::query_as::<_, $crate::store::rows::ApiTokenRow>($crate::store::sql::LIST_API_TOKENS)
                    .bind(user_id)
                    .fetch_all(self.reader())
                    .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn delete_api_token(&self, user_id: &str, token_id: &str) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::DELETE_API_TOKEN)
                    .bind(token_id)
                    .bind(user_id)
                    .execute(self.writer())
                    .await?;
                if done.rows_affected() == 0 {
                    return Err($crate::store::StoreError::NotFound);
                }
                Ok(())
            }

            async fn insert_item(
                &self,
                item: &$crate::domain::NewItem,
            ) -> $crate::store::Result<$crate::domain::Item> {
                let id = uuid::Uuid::new_v4().to_string();
                let now = $crate::store::codec::now();
                sqlx::query($crate::store::sql::INSERT_ITEM)
                    .bind(&id)
                    .bind(&item.item_id)
                    .bind(&item.user_id)
                    .bind(&item.institution_id)
                    .bind(&item.institution_name)
                    .bind(&item.access_token.ciphertext)
                    .bind(&item.access_token.nonce)
                    .bind(&item.access_token.key_id)
                    .bind($crate::store::codec::ts(now))
                    .execute(self.writer())
                    .await
                    .map_err(|e| match $crate::store::StoreError::from(e) {
                        $crate::store::StoreError::Conflict(_) => {
                            $crate::store::StoreError::Conflict("this Item is already linked".into())
                        }
                        other => other,
                    })?;
                self.fetch_items("WHERE id = $1", &[&id]).await?.pop().ok_or($crate::store::StoreError::NotFound)
            }

            async fn find_item_by_institution(
                &self,
                user_id: &str,
                institution_id: &str,
            ) -> $crate::store::Result<Option<$crate::domain::Item>> {
                Ok(self
                    .fetch_items("WHERE user_id = $1 AND institution_id = $2", &[user_id, institution_id])
                    .await?
                    .into_iter()
                    .next())
            }

            async fn get_item(
                &self,
                user_id: &str,
                item_id: &str,
            ) -> $crate::store::Result<$crate::domain::Item> {
                self.fetch_items("WHERE item_id = $1 AND user_id = $2", &[item_id, user_id])
                    .await?
                    .pop()
                    .ok_or($crate::store::StoreError::NotFound)
            }

            async fn get_item_by_plaid_id(
                &self,
                item_id: &str,
            ) -> $crate::store::Result<Option<$crate::domain::Item>> {
                Ok(self.fetch_items("WHERE item_id = $1", &[item_id]).await?.pop())
            }

            async fn list_items(&self, user_id: &str) -> $crate::store::Result<Vec<$crate::domain::Item>> {
                self.fetch_items("WHERE user_id = $1", &[user_id]).await
            }

            async fn list_all_items(&self) -> $crate::store::Result<Vec<$crate::domain::Item>> {
                self.fetch_items("", &[]).await
            }

            async fn update_item_status(
                &self,
                item_ref: &str,
                h: &$crate::domain::ItemHealth,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::UPDATE_ITEM_STATUS)
                    .bind(item_ref)
                    .bind(h.status.as_str())
                    .bind(&h.error_code)
                    .bind(&h.error_message)
                    .bind(&h.display_message)
                    .bind($crate::store::codec::ts_opt(h.disconnect_at))
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn set_item_consent_expiration(
                &self,
                item_ref: &str,
                at: Option<chrono::DateTime<chrono::Utc>>,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::UPDATE_ITEM_CONSENT)
                    .bind(item_ref)
                    .bind($crate::store::codec::ts_opt(at))
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn set_new_accounts_available(&self, item_ref: &str, available: bool) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::UPDATE_ITEM_NEW_ACCOUNTS)
                    .bind(item_ref)
                    .bind(available)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn update_item_access_token(
                &self,
                item_ref: &str,
                sealed: &$crate::vault::Sealed,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::UPDATE_ITEM_TOKEN)
                    .bind(item_ref)
                    .bind(&sealed.ciphertext)
                    .bind(&sealed.nonce)
                    .bind(&sealed.key_id)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn reset_item_cursor(&self, item_ref: &str) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::RESET_ITEM_CURSOR)
                    .bind(item_ref)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn delete_item(&self, user_id: &str, item_id: &str) -> $crate::store::Result<()> {
                // Foreign keys cascade to accounts, transactions and sync runs.
                let done = sqlx::query($crate::store::sql::DELETE_ITEM)
                    .bind(item_id)
                    .bind(user_id)
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn upsert_accounts(
                &self,
                item: &$crate::domain::Item,
                accounts: &[$crate::domain::NewAccount],
                full_list: bool,
            ) -> $crate::store::Result<()> {
                use $crate::store::codec::{money_opt, ts, ts_opt};
                let now = ts(chrono::Utc::now());
                let live_recent_since = ts(chrono::Utc::now() - $crate::store::LIVE_BALANCE_RECENT);
                let mut tx = self.writer().begin().await?;
                for a in accounts {
                    sqlx::query($crate::store::sql::UPSERT_ACCOUNT)
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
                        .execute(&mut *tx)
                        .await?;
                }
                if full_list {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE accounts SET removed = TRUE, updated_at = ");
                    qb.push_bind(now.clone()).push(" WHERE item_ref = ").push_bind(item.id.clone());
                    qb.push(" AND removed = FALSE");
                    if !accounts.is_empty() {
                        qb.push(" AND account_id NOT IN (");
                        let mut ids = qb.separated(", ");
                        for a in accounts {
                            ids.push_bind(a.account_id.clone());
                        }
                        qb.push(")");
                    }
                    qb.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_accounts(
                &self,
                user_id: &str,
                filter: &$crate::domain::AccountFilter,
            ) -> $crate::store::Result<Vec<$crate::domain::Account>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM accounts a JOIN items i ON i.id = a.item_ref WHERE a.user_id = ",
                    $crate::store::rows::ACCOUNT_COLUMNS
                ));
                qb.push_bind(user_id.to_owned());
                if let Some(item_id) = &filter.item_id {
                    qb.push(" AND i.item_id = ").push_bind(item_id.clone());
                }
                if !filter.include_removed {
                    qb.push(" AND a.removed = FALSE");
                }
                qb.push(" ORDER BY i.created_at, i.id, a.name, a.account_id");
                let rows = qb.build_query_as::<$crate::store::rows::AccountRow>().fetch_all(self.reader()).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn update_balances(
                &self,
                item_ref: &str,
                updates: &[$crate::domain::BalanceUpdate],
            ) -> $crate::store::Result<u64> {
                use $crate::store::codec::{money_opt, ts};
                let now = ts(chrono::Utc::now());
                let mut tx = self.writer().begin().await?;
                let mut n = 0;
                for u in updates {
                    n += sqlx::query($crate::store::sql::UPDATE_BALANCE)
                        .bind(&u.account_id)
                        .bind(item_ref)
                        .bind(money_opt(u.balances.available))
                        .bind(money_opt(u.balances.current))
                        .bind(money_opt(u.balances.limit))
                        .bind(&u.balances.currency)
                        .bind(u.balances.currency_is_official)
                        .bind(ts(u.as_of))
                        .bind(u.source.as_str())
                        .bind(&now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(n)
            }

            async fn apply_sync(
                &self,
                item: &$crate::domain::Item,
                batch: &$crate::domain::SyncBatch,
            ) -> $crate::store::Result<$crate::domain::ApplyStats> {
                // Staged under a private run id inside the same transaction: one code path for the rules.
                let run_id = format!("apply-{}", uuid::Uuid::new_v4());
                let mut tx = self.writer().begin().await?;
                Self::stage_rows(&mut tx, &run_id, &batch.page).await?;
                let stats = Self::move_staged(&mut tx, item, &run_id, batch.next_cursor.as_deref()).await?;
                sqlx::query($crate::store::sql::DELETE_STAGING).bind(&run_id).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(stats)
            }

            async fn stage_sync_page(
                &self,
                run_id: &str,
                page: &$crate::domain::SyncPage,
            ) -> $crate::store::Result<()> {
                let mut tx = self.writer().begin().await?;
                Self::stage_rows(&mut tx, run_id, page).await?;
                self.remember_run(&mut tx, run_id).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn commit_sync(
                &self,
                item: &$crate::domain::Item,
                run_id: &str,
                next_cursor: &str,
            ) -> $crate::store::Result<$crate::domain::ApplyStats> {
                let mut tx = self.writer().begin().await?;
                self.check_run(&mut tx, run_id).await?;
                let stats = Self::move_staged(&mut tx, item, run_id, Some(next_cursor)).await?;
                self.clear_staging(&mut tx, run_id).await?;
                tx.commit().await?;
                self.forget_run(run_id);
                Ok(stats)
            }

            async fn discard_sync(&self, run_id: &str) -> $crate::store::Result<()> {
                self.forget_run(run_id);
                sqlx::query($crate::store::sql::DELETE_STAGING).bind(run_id).execute(self.writer()).await?;
                Ok(())
            }

            async fn claim_initial_sync(
                &self,
                item: &$crate::domain::Item,
                run_id: &str,
            ) -> $crate::store::Result<bool> {
                use $crate::store::sql::*;
                let mut tx = self.writer().begin().await?;
                let claimed =
                    sqlx::query(CLAIM_INITIAL_SYNC).bind(&item.id).bind(run_id).execute(&mut *tx).await?.rows_affected();
                if claimed == 0 {
                    return Ok(false);
                }
                // Rows of a previous holder of the claim: never shown, and this run rewrites the history anyway.
                let stale = sqlx::query(DELETE_ITEM_TRANSACTIONS).bind(&item.id).execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                if stale > 0 {
                    tracing::info!(item_id = %item.item_id, stale, "took over an unfinished initial sync");
                }
                Ok(true)
            }

            async fn write_initial_pages(
                &self,
                item: &$crate::domain::Item,
                run_id: &str,
                pages: &[$crate::domain::SyncPage],
            ) -> $crate::store::Result<$crate::domain::ApplyStats> {
                let mut tx = self.writer().begin().await?;
                Self::hold_initial_claim(&mut tx, item, run_id).await?;
                let stats = Self::write_direct(&mut tx, item, pages).await?;
                tx.commit().await?;
                Ok(stats)
            }

            async fn commit_initial_sync(
                &self,
                item: &$crate::domain::Item,
                run_id: &str,
                next_cursor: &str,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::COMMIT_INITIAL_SYNC)
                    .bind(&item.id)
                    .bind(run_id)
                    .bind(next_cursor)
                    .bind($crate::store::codec::ts($crate::store::codec::now()))
                    .execute(self.writer())
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(Self::lost_initial_claim());
                }
                Ok(())
            }

            async fn release_initial_sync(
                &self,
                item: &$crate::domain::Item,
                run_id: &str,
            ) -> $crate::store::Result<()> {
                use $crate::store::sql::*;
                let mut tx = self.writer().begin().await?;
                let released =
                    sqlx::query(RELEASE_INITIAL_SYNC).bind(&item.id).bind(run_id).execute(&mut *tx).await?.rows_affected();
                // Without the claim the rows belong to whoever holds it now (or were revealed): leave them.
                if released == 1 {
                    sqlx::query(DELETE_ITEM_TRANSACTIONS).bind(&item.id).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn list_transactions(
                &self,
                user_id: &str,
                f: &$crate::domain::TransactionFilter,
            ) -> $crate::store::Result<$crate::domain::Page<$crate::domain::Transaction>> {
                use $crate::store::codec::{self, TxnCursor};
                let limit = f.effective_limit();
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM transactions t JOIN items i ON i.id = t.item_ref WHERE t.user_id = ",
                    $crate::store::rows::TXN_COLUMNS
                ));
                // An Item whose initial sync is still being written shows nothing (see `CLAIM_INITIAL_SYNC`).
                qb.push_bind(user_id.to_owned()).push(" AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL");
                if let Some(account_id) = &f.account_id {
                    qb.push(" AND t.account_id = ").push_bind(account_id.clone());
                }
                if let Some(item_id) = &f.item_id {
                    qb.push(" AND i.item_id = ").push_bind(item_id.clone());
                }
                if let Some(start) = f.start {
                    qb.push(" AND t.date >= ").push_bind(codec::date(start));
                }
                if let Some(end) = f.end {
                    qb.push(" AND t.date <= ").push_bind(codec::date(end));
                }
                if let Some(category) = &f.category {
                    qb.push(" AND (COALESCE(t.user_category, t.pfc_primary) = ").push_bind(category.clone());
                    qb.push(" OR (t.user_category IS NULL AND t.pfc_detailed = ").push_bind(category.clone());
                    qb.push("))");
                }
                if let Some(pending) = f.pending {
                    qb.push(" AND t.pending = ").push_bind(pending);
                }
                if let Some(q) = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
                    let pattern = $crate::store::sql::like_pattern(q);
                    qb.push(" AND (LOWER(t.name) LIKE ").push_bind(pattern.clone());
                    qb.push(" ESCAPE '!' OR LOWER(COALESCE(t.merchant_name, '')) LIKE ").push_bind(pattern);
                    qb.push(" ESCAPE '!')");
                }
                if let Some(min) = f.min_amount {
                    qb.push(" AND t.amount_key >= ").push_bind(codec::amount_key(min));
                }
                if let Some(max) = f.max_amount {
                    qb.push(" AND t.amount_key <= ").push_bind(codec::amount_key(max));
                }
                if let Some(after) = &f.after {
                    let c = TxnCursor::decode(after)?;
                    qb.push(" AND (t.datetime, t.transaction_id) < (").push_bind(c.datetime);
                    qb.push(", ").push_bind(c.transaction_id).push(")");
                }
                qb.push(" ORDER BY t.datetime DESC, t.transaction_id DESC LIMIT ").push_bind(i64::from(limit) + 1);
                let mut rows = qb.build_query_as::<$crate::store::rows::TxnRow>().fetch_all(self.reader()).await?;
                let more = rows.len() > limit as usize;
                rows.truncate(limit as usize);
                let next_cursor = match (more, rows.last()) {
                    (true, Some(last)) => Some(
                        TxnCursor { datetime: last.datetime.clone(), transaction_id: last.transaction_id.clone() }
                            .encode(),
                    ),
                    _ => None,
                };
                Ok($crate::domain::Page { items: $crate::store::rows::convert_all(rows)?, next_cursor })
            }

            async fn get_transaction(
                &self,
                user_id: &str,
                transaction_id: &str,
            ) -> $crate::store::Result<$crate::domain::Transaction> {
                sqlx::query_as::<_, $crate::store::rows::TxnRow>($crate::store::sql::GET_TRANSACTION)
                    .bind(transaction_id)
                    .bind(user_id)
                    .fetch_one(self.reader())
                    .await?
                    .try_into()
            }

            async fn update_transaction_user_fields(
                &self,
                user_id: &str,
                transaction_id: &str,
                patch: &$crate::domain::UserFieldsPatch,
            ) -> $crate::store::Result<$crate::domain::Transaction> {
                let done = sqlx::query($crate::store::sql::PATCH_TRANSACTION)
                    .bind(transaction_id)
                    .bind(user_id)
                    .bind(patch.note.is_some())
                    .bind(patch.note.clone().flatten())
                    .bind(patch.category.is_some())
                    .bind(patch.category.clone().flatten())
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())?;
                sqlx::query_as::<_, $crate::store::rows::TxnRow>($crate::store::sql::GET_TRANSACTION)
                    .bind(transaction_id)
                    .bind(user_id)
                    .fetch_one(self.writer())
                    .await?
                    .try_into()
            }

            async fn start_sync_run(
                &self,
                item_ref: &str,
                triggered_by: &str,
            ) -> $crate::store::Result<$crate::domain::SyncRun> {
                let id = uuid::Uuid::new_v4().to_string();
                sqlx::query($crate::store::sql::INSERT_SYNC_RUN)
                    .bind(&id)
                    .bind(item_ref)
                    .bind(triggered_by)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                self.get_sync_run(&id).await
            }

            async fn finish_sync_run(
                &self,
                run_id: &str,
                o: &$crate::domain::SyncRunOutcome,
            ) -> $crate::store::Result<$crate::domain::SyncRun> {
                let now = $crate::store::codec::ts(chrono::Utc::now());
                let status = if o.succeeded {
                    $crate::domain::SyncRunStatus::Succeeded
                } else {
                    $crate::domain::SyncRunStatus::Failed
                };
                let mut tx = self.writer().begin().await?;
                let done = sqlx::query($crate::store::sql::FINISH_SYNC_RUN)
                    .bind(run_id)
                    .bind(&now)
                    .bind(status.as_str())
                    .bind(o.added)
                    .bind(o.modified)
                    .bind(o.removed)
                    .bind(o.pages)
                    .bind(o.restarts)
                    .bind(&o.error_code)
                    .bind(&o.error_message)
                    .execute(&mut *tx)
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())?;
                sqlx::query($crate::store::sql::TOUCH_ITEM_LAST_SYNC).bind(run_id).bind(&now).execute(&mut *tx).await?;
                tx.commit().await?;
                self.get_sync_run(run_id).await
            }

            async fn list_sync_runs(
                &self,
                item_ref: &str,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::domain::SyncRun>> {
                let sql = format!(
                    "SELECT {} FROM sync_runs WHERE item_ref = $1 ORDER BY started_at DESC, id DESC LIMIT $2",
                    $crate::store::rows::SYNC_RUN_COLUMNS
                );
                let rows = sqlx::query_as::<_, $crate::store::rows::SyncRunRow>(&sql)
                    .bind(item_ref)
                    .bind(i64::from(limit.max(1)))
                    .fetch_all(self.reader())
                    .await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn record_plaid_call(&self, c: &$crate::domain::PlaidCall) -> $crate::store::Result<()> {
                sqlx::query($crate::store::sql::INSERT_PLAID_CALL)
                    .bind(&c.endpoint)
                    .bind(&c.item_id)
                    .bind(&c.request_id)
                    .bind(c.http_status)
                    .bind(&c.outcome)
                    .bind(&c.error_type)
                    .bind(&c.error_code)
                    .bind(c.latency_ms)
                    .bind($crate::store::codec::ts(c.at))
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn list_plaid_calls(
                &self,
                item_id: Option<&str>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::domain::PlaidCall>> {
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM plaid_calls",
                    $crate::store::rows::PLAID_CALL_COLUMNS
                ));
                if let Some(item_id) = item_id {
                    qb.push(" WHERE item_id = ").push_bind(item_id.to_owned());
                }
                qb.push(" ORDER BY at DESC, id DESC LIMIT ").push_bind(i64::from(limit.max(1)));
                let rows = qb.build_query_as::<$crate::store::rows::PlaidCallRow>().fetch_all(self.reader()).await?;
                $crate::store::rows::convert_all(rows)
            }

            async fn record_webhook_event(
                &self,
                e: &$crate::domain::NewWebhookEvent,
            ) -> $crate::store::Result<$crate::domain::WebhookRecord> {
                let id = uuid::Uuid::new_v4().to_string();
                let inserted = sqlx::query($crate::store::sql::INSERT_WEBHOOK)
                    .bind(&id)
                    .bind(&e.dedupe_key)
                    .bind(&e.item_id)
                    .bind(&e.webhook_type)
                    .bind(&e.webhook_code)
                    .bind(&e.body)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?
                    .rows_affected();
                if inserted == 1 {
                    return Ok($crate::domain::WebhookRecord { id, is_new: true });
                }
                let (id,): (String,) = sqlx::query_as($crate::store::sql::WEBHOOK_BY_KEY)
                    .bind(&e.dedupe_key)
                    .fetch_one(self.writer())
                    .await?;
                Ok($crate::domain::WebhookRecord { id, is_new: false })
            }

            async fn mark_webhook_processed(&self, id: &str) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::MARK_WEBHOOK)
                    .bind(id)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn enqueue_job(
                &self,
                job: &$crate::domain::NewJob,
            ) -> $crate::store::Result<$crate::domain::Enqueued> {
                let id = uuid::Uuid::new_v4().to_string();
                let (job_id,): (String,) = sqlx::query_as($crate::store::sql::ENQUEUE_JOB)
                    .bind(&id)
                    .bind(&job.kind)
                    .bind(&job.coalesce_key)
                    .bind(&job.user_id)
                    .bind(&job.item_id)
                    .bind(&job.payload)
                    .bind(job.max_attempts.max(1))
                    .bind($crate::store::codec::ts(job.run_after))
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .fetch_one(self.writer())
                    .await?;
                let coalesced = job_id != id;
                Ok($crate::domain::Enqueued { job_id, coalesced })
            }

            async fn claim_job(
                &self,
                worker_id: &str,
                lease: std::time::Duration,
            ) -> $crate::store::Result<Option<$crate::domain::Job>> {
                let now = chrono::Utc::now();
                sqlx::query_as::<_, $crate::store::rows::JobRow>($claim_sql)
                    .bind(worker_id)
                    .bind($crate::store::codec::ts(now + $crate::store::sql::chrono_duration(lease)))
                    .bind($crate::store::codec::ts(now))
                    .fetch_optional(self.writer())
                    .await?
                    .map(TryInto::try_into)
                    .transpose()
            }

            async fn heartbeat_job(
                &self,
                job_id: &str,
                worker_id: &str,
                lease: std::time::Duration,
            ) -> $crate::store::Result<()> {
                let now = chrono::Utc::now();
                let done = sqlx::query($crate::store::sql::HEARTBEAT_JOB)
                    .bind(job_id)
                    .bind(worker_id)
                    .bind($crate::store::codec::ts(now + $crate::store::sql::chrono_duration(lease)))
                    .bind($crate::store::codec::ts(now))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn complete_job(
                &self,
                job_id: &str,
                worker_id: &str,
                result: Option<&str>,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::COMPLETE_JOB)
                    .bind(job_id)
                    .bind(worker_id)
                    .bind(result)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn fail_job(
                &self,
                job_id: &str,
                worker_id: &str,
                error: &str,
                retry_after: Option<std::time::Duration>,
            ) -> $crate::store::Result<$crate::domain::JobState> {
                let (attempts, max_attempts): (i64, i64) = sqlx::query_as($crate::store::sql::HELD_JOB_ATTEMPTS)
                    .bind(job_id)
                    .bind(worker_id)
                    .fetch_one(self.writer())
                    .await?;
                let now = chrono::Utc::now();
                let wanted = if attempts < max_attempts { "queued" } else { "failed" };
                let delay = retry_after.unwrap_or_else(|| $crate::store::job_backoff(attempts));
                let run_after = $crate::store::codec::ts(now + $crate::store::sql::chrono_duration(delay));
                let now = $crate::store::codec::ts(now);
                let updated: std::result::Result<Option<(String,)>, sqlx::Error> =
                    sqlx::query_as($crate::store::sql::FAIL_JOB)
                        .bind(job_id)
                        .bind(worker_id)
                        .bind(wanted)
                        .bind(error)
                        .bind(&run_after)
                        .bind(&now)
                        .fetch_optional(self.writer())
                        .await;
                let state = match updated.map_err($crate::store::StoreError::from) {
                    Ok(Some((state,))) => state,
                    Ok(None) => return Err($crate::store::StoreError::NotFound),
                    // Another process queued the same work between our check and our update.
                    Err($crate::store::StoreError::Conflict(_)) => {
                        let done = sqlx::query($crate::store::sql::FAIL_JOB_SUPERSEDED)
                            .bind(job_id)
                            .bind(worker_id)
                            .bind(error)
                            .bind(&now)
                            .execute(self.writer())
                            .await?;
                        $crate::store::sql::one_row(done.rows_affected())?;
                        "failed".to_owned()
                    }
                    Err(e) => return Err(e),
                };
                state.parse().map_err($crate::store::StoreError::corrupt)
            }

            async fn reclaim_expired_jobs(&self) -> $crate::store::Result<u64> {
                Ok(sqlx::query($crate::store::sql::RECLAIM_EXHAUSTED_JOBS)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?
                    .rows_affected())
            }

            async fn get_job(&self, job_id: &str) -> $crate::store::Result<$crate::domain::Job> {
                let sql = format!("SELECT {} FROM jobs WHERE id = $1", $crate::store::rows::JOB_COLUMNS);
                sqlx::query_as::<_, $crate::store::rows::JobRow>(&sql)
                    .bind(job_id)
                    .fetch_one(self.reader())
                    .await?
                    .try_into()
            }

            async fn create_running_job(
                &self,
                id: &str,
                job: &$crate::domain::NewJob,
                worker_id: &str,
                lease: std::time::Duration,
                result: &str,
            ) -> $crate::store::Result<$crate::domain::Enqueued> {
                // The running job found may end between the two statements: then try again.
                for _ in 0..3 {
                    let now = chrono::Utc::now();
                    let inserted = sqlx::query($crate::store::sql::INSERT_RUNNING_JOB)
                        .bind(id)
                        .bind(&job.kind)
                        .bind(&job.coalesce_key)
                        .bind(&job.user_id)
                        .bind(&job.item_id)
                        .bind(&job.payload)
                        .bind(result)
                        .bind($crate::store::codec::ts(now))
                        .bind(worker_id)
                        .bind($crate::store::codec::ts(now + $crate::store::sql::chrono_duration(lease)))
                        .execute(self.writer())
                        .await?
                        .rows_affected();
                    if inserted == 1 {
                        return Ok($crate::domain::Enqueued { job_id: id.to_owned(), coalesced: false });
                    }
                    let running: Option<(String,)> = sqlx::query_as($crate::store::sql::LIVE_RUNNING_JOB)
                        .bind(&job.kind)
                        .bind(&job.coalesce_key)
                        .bind($crate::store::codec::ts(now))
                        .fetch_optional(self.writer())
                        .await?;
                    if let Some((job_id,)) = running {
                        return Ok($crate::domain::Enqueued { job_id, coalesced: true });
                    }
                }
                Err($crate::store::StoreError::Conflict("the same job keeps starting and ending".into()))
            }

            async fn update_running_job_result(
                &self,
                job_id: &str,
                worker_id: &str,
                result: &str,
            ) -> $crate::store::Result<()> {
                let done = sqlx::query($crate::store::sql::UPDATE_RUNNING_JOB_RESULT)
                    .bind(job_id)
                    .bind(worker_id)
                    .bind(result)
                    .bind($crate::store::codec::ts(chrono::Utc::now()))
                    .execute(self.writer())
                    .await?;
                $crate::store::sql::one_row(done.rows_affected())
            }

            async fn delete_finished_jobs(
                &self,
                kind: &str,
                before: chrono::DateTime<chrono::Utc>,
            ) -> $crate::store::Result<u64> {
                Ok(sqlx::query($crate::store::sql::DELETE_FINISHED_JOBS)
                    .bind(kind)
                    .bind($crate::store::codec::ts(before))
                    .execute(self.writer())
                    .await?
                    .rows_affected())
            }
        }

        impl $store {
            async fn get_sync_run(&self, id: &str) -> $crate::store::Result<$crate::domain::SyncRun> {
                let sql = format!("SELECT {} FROM sync_runs WHERE id = $1", $crate::store::rows::SYNC_RUN_COLUMNS);
                sqlx::query_as::<_, $crate::store::rows::SyncRunRow>(&sql)
                    .bind(id)
                    .fetch_one(self.writer())
                    .await?
                    .try_into()
            }
        }
    };
}

/// An UPDATE/DELETE that must hit exactly one row: zero means the row is not there (or not the caller's).
pub fn one_row(affected: u64) -> super::Result<()> {
    if affected == 0 { Err(super::StoreError::NotFound) } else { Ok(()) }
}

pub fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(365 * 100))
}

/// `%q%` for a case-insensitive LIKE, with `!` escaping the pattern characters in `q`.
pub fn like_pattern(q: &str) -> String {
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
