//! One contract suite, run against both backends: SQLite (a temp file per test) and PostgreSQL at
//! `BANKSYNC_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), each PostgreSQL test in a fresh
//! schema dropped afterwards. Without a reachable PostgreSQL the PostgreSQL half fails, unless
//! `BANKSYNC_TEST_SKIP_POSTGRES=1` skips it (tests/common/pg.rs).

#[path = "../common/pg.rs"]
mod pg;

use std::collections::HashSet;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use banksync::domain::*;
use banksync::store::*;
use banksync::vault::Sealed;
use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

mod accounts_sessions;
mod audit_jobs;
mod backends;
mod budget;
mod overview_logos;
mod queries;
mod relink;
mod retention;
mod sync_write;
mod throughput;
mod transactions;
mod users_items_accounts;

use accounts_sessions::*;
use audit_jobs::*;
use budget::*;
use overview_logos::*;
use queries::*;
use relink::*;
use retention::*;
use sync_write::*;
use transactions::*;
use users_items_accounts::*;

type S = Arc<Store>;

// ---------------------------------------------------------------------------------------------------------------
// Harness

async fn run_sqlite<F, Fut>(test: F)
where
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = connect(&url).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    // Migrating twice is a no-op.
    store.migrate().await.unwrap();
    test(store).await;
}

async fn run_postgres<F, Fut>(test: F)
where
    F: FnOnce(S) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    run_postgres_with(8, |store, _| test(store)).await;
}

/// [`run_postgres`] with a pool of `pool_size`, handing the test the schema's connect options too (for sessions of
/// its own beside the store's).
async fn run_postgres_with<F, Fut>(pool_size: u32, test: F)
where
    F: FnOnce(S, sqlx::postgres::PgConnectOptions) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((mut admin, schema)) = pg::fresh_schema("banksync_test", "contract test").await else { return };
    let options =
        sqlx::postgres::PgConnectOptions::from_str(&pg::url()).unwrap().options([("search_path", schema.as_str())]);
    let pg = Store::connect_postgres(options.clone(), pool_size).await.unwrap();
    let pg = Arc::new(pg);
    let store: S = pg.clone();
    assert_eq!(store.backend(), Backend::Postgres);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    // Run the body as a task so the schema is dropped even when it panics.
    let outcome = tokio::spawn(test(store, options)).await;
    pg.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_sqlite(super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::run_postgres(super::$name).await;
                }
            )*
        }
    };
}

contract!(
    users_sessions_and_tokens,
    the_first_user_is_the_owner_and_setup_creates_one_only_while_there_is_none,
    racing_first_users_make_exactly_one_owner,
    sessions_carry_a_public_id_idle_expiry_and_are_touched_at_most_once_a_minute,
    sessions_are_listed_and_ended_per_user,
    password_change_keeps_the_asking_session_and_tokens_record_their_origin,
    deleting_a_user_takes_their_data_but_never_their_items,
    items_are_unique_and_scoped_by_owner,
    item_status_and_token_updates,
    delete_item_cascades,
    accounts_and_balances,
    cached_balances_do_not_replace_newer_or_recent_live_ones,
    apply_sync_upserts_removes_and_stores_cursor,
    failed_apply_leaves_old_cursor_and_no_rows,
    staged_pages_commit_atomically,
    initial_sync_is_hidden_until_its_commit,
    sync_sized_writes_land_whole,
    initial_sync_claims_only_fresh_items_and_can_be_taken_over,
    pending_to_posted_keeps_user_edits_without_duplicates,
    removed_then_readded_is_restored,
    keyset_pagination_is_stable_across_pages,
    filters_narrow_the_list,
    amounts_are_exact,
    user_field_patches,
    sync_runs_plaid_calls_and_webhooks,
    the_audit_trail_holds_every_observed_call_once_flushed,
    webhook_record_and_enqueue_is_one_step,
    concurrent_repeats_of_a_webhook_are_counted_once_each,
    webhook_batches_record_as_if_one_after_the_other,
    jobs_coalesce_while_queued,
    job_lease_complete_and_fail,
    expired_lease_is_reclaimed,
    concurrent_claimers_never_share_a_job,
    running_jobs_are_recorded_joined_and_never_claimed,
    relink_merge_is_atomic_and_guarded,
    call_budget_counts_sliding_windows_per_item_and_per_client,
    call_budget_blocks_cover_an_item_or_the_client_and_only_grow,
    concurrent_reservations_never_exceed_the_window,
    retention_prunes_old_rows_in_batches_and_keeps_recent_and_last_runs,
    reseal_is_a_compare_and_set_on_the_token_it_read,
    overview_visits_and_changes_since,
    logo_urls_are_scoped_and_the_cache_is_bounded,
    full_text_search_finds_words_and_last_word_prefixes,
    dense_and_sparse_searches_list_the_same_rows_in_order,
    amount_ranges_list_exactly_the_visible_rows_in_order,
    wide_amount_ranges_list_exactly_their_rows_dense_or_sparse,
    dense_searches_list_exactly_their_rows_across_the_years,
    spending_summary_equals_a_group_by_after_random_writes,
    every_filter_shape_has_an_index_path,
    every_field_reads_back_as_written_whatever_its_text,
);

// ---------------------------------------------------------------------------------------------------------------
// Fixtures

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn sealed(tag: &str) -> Sealed {
    Sealed { key_id: "k1".into(), nonce: vec![7; 12], ciphertext: format!("ct-{tag}").into_bytes() }
}

/// A SYNC_UPDATES_AVAILABLE delivery for the Item `item_id`, recorded under `dedupe_key`.
fn sync_update(dedupe_key: &str, item_id: &str) -> NewWebhookEvent {
    NewWebhookEvent {
        dedupe_key: dedupe_key.into(),
        item_id: Some(item_id.into()),
        webhook_type: "TRANSACTIONS".into(),
        webhook_code: "SYNC_UPDATES_AVAILABLE".into(),
        body: "{}".into(),
    }
}

async fn user(s: &S, name: &str) -> User {
    s.create_user(name, "$argon2id$fake").await.unwrap()
}

async fn item(s: &S, owner: &User, item_id: &str, institution: &str) -> Item {
    s.insert_item(&NewItem {
        item_id: item_id.into(),
        user_id: owner.id.clone(),
        institution_id: Some(institution.into()),
        institution_name: Some(format!("Bank {institution}")),
        access_token: sealed(item_id),
    })
    .await
    .unwrap()
}

/// A posted transaction on `account` at `datetime` (the date is the datetime's date).
fn txn(id: &str, account: &str, amount: &str, datetime: &str) -> NewTransaction {
    let dt = at(datetime);
    NewTransaction {
        transaction_id: id.into(),
        fields: TransactionFields {
            account_id: account.into(),
            amount: dec(amount),
            currency: Some("USD".into()),
            currency_is_official: true,
            datetime: dt,
            time_unknown: false,
            date: dt.date_naive(),
            authorized_date: None,
            name: format!("Name of {id}"),
            merchant_name: None,
            logo_url: None,
            website: None,
            pfc_primary: Some("GENERAL_MERCHANDISE".into()),
            pfc_detailed: Some("GENERAL_MERCHANDISE_OTHER".into()),
            pfc_confidence: Some("HIGH".into()),
            pfc_icon_url: None,
            payment_channel: Some("in store".into()),
            pending: false,
            pending_transaction_id: None,
            counterparties: Some("[]".into()),
            location: Some("{}".into()),
            account_owner: None,
        },
        raw: format!(r#"{{"transaction_id":"{id}","amount":{amount}}}"#),
    }
}

fn batch(added: Vec<NewTransaction>, modified: Vec<NewTransaction>, removed: &[&str], cursor: &str) -> SyncBatch {
    SyncBatch {
        page: SyncPage { added, modified, removed: removed.iter().map(|s| (*s).into()).collect() },
        next_cursor: Some(cursor.into()),
    }
}

async fn fresh(s: &S, it: &Item) -> Item {
    s.get_item(&it.user_id, &it.item_id).await.unwrap()
}

async fn all_txns(s: &S, u: &User, filter: TransactionFilter) -> Vec<Transaction> {
    all_txns_in_pages_of(s, u, filter, 500).await
}

async fn all_txns_in_pages_of(s: &S, u: &User, mut filter: TransactionFilter, limit: u32) -> Vec<Transaction> {
    filter.limit = limit;
    let mut out = Vec::new();
    loop {
        let page = s.list_transactions(&u.id, &filter).await.unwrap();
        out.extend(page.items);
        match page.next_cursor {
            Some(c) => filter.after = Some(c),
            None => return out,
        }
    }
}

fn ids(txns: &[Transaction]) -> Vec<&str> {
    txns.iter().map(|t| t.transaction_id.as_str()).collect()
}

fn is_not_found<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::NotFound))
}

fn is_conflict<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict(_)))
}
