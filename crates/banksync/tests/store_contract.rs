//! One contract suite, run against both backends: SQLite (a temp file per test) and PostgreSQL at
//! `BANKSYNC_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), each PostgreSQL test in a fresh
//! schema dropped afterwards. Without a reachable PostgreSQL the PostgreSQL half fails when `CI` is set and is
//! skipped loudly otherwise.

#[path = "common/pg.rs"]
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
    let Some((mut admin, schema)) = pg::fresh_schema("banksync_test", "contract test").await else { return };
    let options =
        sqlx::postgres::PgConnectOptions::from_str(&pg::url()).unwrap().options([("search_path", schema.as_str())]);
    let pg = Store::connect_postgres(options, 8).await.unwrap();
    let pg = Arc::new(pg);
    let store: S = pg.clone();
    assert_eq!(store.backend(), Backend::Postgres);
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    // Run the body as a task so the schema is dropped even when it panics.
    let outcome = tokio::spawn(test(store)).await;
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
    items_are_unique_and_scoped_by_owner,
    item_status_and_token_updates,
    delete_item_cascades,
    accounts_and_balances,
    cached_balances_do_not_replace_newer_or_recent_live_ones,
    apply_sync_upserts_removes_and_stores_cursor,
    failed_apply_leaves_old_cursor_and_no_rows,
    staged_pages_commit_atomically,
    initial_sync_is_hidden_until_its_commit,
    initial_sync_claims_only_fresh_items_and_can_be_taken_over,
    pending_to_posted_keeps_user_edits_without_duplicates,
    removed_then_readded_is_restored,
    keyset_pagination_is_stable_across_pages,
    filters_narrow_the_list,
    amounts_are_exact,
    user_field_patches,
    sync_runs_plaid_calls_and_webhooks,
    jobs_coalesce_while_queued,
    job_lease_complete_and_fail,
    expired_lease_is_reclaimed,
    concurrent_claimers_never_share_a_job,
    running_jobs_are_recorded_joined_and_never_claimed,
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

async fn all_txns(s: &S, u: &User, mut filter: TransactionFilter) -> Vec<Transaction> {
    filter.limit = 500;
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

// ---------------------------------------------------------------------------------------------------------------
// Contract

async fn users_sessions_and_tokens(s: S) {
    let alice = user(&s, "alice").await;
    assert!(is_conflict(s.create_user("alice", "x").await), "duplicate username");
    assert_eq!(s.find_user_by_username("alice").await.unwrap().unwrap().id, alice.id);
    assert!(s.find_user_by_username("nobody").await.unwrap().is_none());
    assert_eq!(s.get_user(&alice.id).await.unwrap().password_hash, "$argon2id$fake");
    assert!(is_not_found(s.get_user(&"missing".into()).await));
    assert!(!format!("{alice:?}").contains("argon2"), "Debug redacts the password hash");

    let session = NewSession {
        id_hash: "sess-hash".into(),
        user_id: alice.id.clone(),
        csrf_token: "csrf".into(),
        expires_at: Utc::now() + chrono::Duration::hours(1),
    };
    s.create_session(&session).await.unwrap();
    let found = s.find_session("sess-hash").await.unwrap().unwrap();
    assert_eq!((found.user_id.as_str(), found.csrf_token.as_str()), (alice.id.as_str(), "csrf"));
    let expired =
        NewSession { id_hash: "old".into(), expires_at: Utc::now() - chrono::Duration::seconds(1), ..session };
    s.create_session(&expired).await.unwrap();
    assert!(s.find_session("old").await.unwrap().is_none(), "expired session");
    assert_eq!(s.delete_expired_sessions().await.unwrap(), 1);
    s.delete_session("sess-hash").await.unwrap();
    assert!(s.find_session("sess-hash").await.unwrap().is_none());

    let token = s.create_api_token(&alice.id, "cli", "tok-hash").await.unwrap();
    assert!(token.last_used_at.is_none());
    assert!(is_conflict(s.create_api_token(&alice.id, "again", "tok-hash").await), "token hashes are unique");
    assert_eq!(s.find_user_by_api_token_hash("tok-hash").await.unwrap().unwrap().id, alice.id);
    assert!(s.find_user_by_api_token_hash("other").await.unwrap().is_none());
    let listed = s.list_api_tokens(&alice.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "use is recorded");
    let bob = user(&s, "bob").await;
    assert!(is_not_found(s.delete_api_token(&bob.id, &token.id).await), "another user's token");
    s.delete_api_token(&alice.id, &token.id).await.unwrap();
    assert!(s.find_user_by_api_token_hash("tok-hash").await.unwrap().is_none());
}

async fn items_are_unique_and_scoped_by_owner(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    assert_eq!(a.status, ItemStatus::Good);
    assert_eq!(a.access_token, sealed("item-a"), "sealed token round-trips byte for byte");
    assert!(a.cursor.is_none());

    let dup = s
        .insert_item(&NewItem {
            item_id: "item-a".into(),
            user_id: bob.id.clone(),
            institution_id: None,
            institution_name: None,
            access_token: sealed("x"),
        })
        .await;
    assert!(is_conflict(dup), "Plaid's item_id is unique");

    assert_eq!(s.get_item(&alice.id, &"item-a".into()).await.unwrap().id, a.id);
    assert!(is_not_found(s.get_item(&bob.id, &"item-a".into()).await), "another user's Item is NotFound");
    assert!(is_not_found(s.get_item(&alice.id, &"nope".into()).await));
    assert_eq!(s.get_item_by_plaid_id(&"item-a".into()).await.unwrap().unwrap().user_id, alice.id);
    assert!(s.get_item_by_plaid_id(&"nope".into()).await.unwrap().is_none());

    assert_eq!(s.find_item_by_institution(&alice.id, "ins_1").await.unwrap().unwrap().item_id, "item-a");
    assert!(s.find_item_by_institution(&bob.id, "ins_1").await.unwrap().is_none());
    item(&s, &bob, "item-b", "ins_1").await;
    assert_eq!(s.list_items(&alice.id).await.unwrap().len(), 1);
    assert_eq!(s.list_items(&bob.id).await.unwrap().len(), 1);
    assert_eq!(s.list_all_items().await.unwrap().len(), 2);
    assert!(is_not_found(s.delete_item(&bob.id, &"item-a".into()).await), "cannot delete another user's Item");
    assert!(s.get_item_by_plaid_id(&"item-a".into()).await.unwrap().is_some());
}

async fn item_status_and_token_updates(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let deadline = at("2026-12-01T00:00:00Z");
    let health = ItemHealth {
        status: ItemStatus::PendingDisconnect,
        error_code: Some("ITEM_LOGIN_REQUIRED".into()),
        error_message: Some("internal".into()),
        display_message: Some("Please log in again".into()),
        disconnect_at: Some(deadline),
    };
    s.update_item_status(&a.id, &health).await.unwrap();
    s.set_item_consent_expiration(&a.id, Some(deadline)).await.unwrap();
    s.set_new_accounts_available(&a.id, true).await.unwrap();
    let got = fresh(&s, &a).await;
    assert_eq!(got.status, ItemStatus::PendingDisconnect);
    assert_eq!(got.error_code.as_deref(), Some("ITEM_LOGIN_REQUIRED"));
    assert_eq!(got.display_message.as_deref(), Some("Please log in again"));
    assert_eq!((got.disconnect_at, got.consent_expires_at), (Some(deadline), Some(deadline)));
    assert!(got.new_accounts_available);

    s.update_item_status(&a.id, &ItemHealth::good()).await.unwrap();
    let got = fresh(&s, &a).await;
    assert_eq!((got.status, got.error_code, got.disconnect_at), (ItemStatus::Good, None, None));

    let resealed = Sealed { key_id: "k2".into(), nonce: vec![9; 12], ciphertext: b"new".to_vec() };
    s.update_item_access_token(&a.id, &resealed).await.unwrap();
    assert_eq!(fresh(&s, &a).await.access_token, resealed);
    assert!(is_not_found(s.update_item_status(&"missing".into(), &ItemHealth::good()).await));
}

async fn delete_item_cascades(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &alice, "item-b", "ins_2").await;
    let acct = |id: &str| NewAccount {
        account_id: id.into(),
        name: "Checking".into(),
        official_name: None,
        mask: Some("0000".into()),
        account_type: "depository".into(),
        subtype: Some("checking".into()),
        balances: Balances::default(),
        balance_as_of: None,
        balance_source: BalanceSource::Cached,
    };
    s.upsert_accounts(&a, &[acct("acc-a")], true).await.unwrap();
    s.upsert_accounts(&b, &[acct("acc-b")], true).await.unwrap();
    s.apply_sync(&a, &batch(vec![txn("t-a", "acc-a", "1", "2026-01-01T10:00:00Z")], vec![], &[], "c1")).await.unwrap();
    s.apply_sync(&b, &batch(vec![txn("t-b", "acc-b", "2", "2026-01-01T10:00:00Z")], vec![], &[], "c1")).await.unwrap();
    let run = s.start_sync_run(&a.id, "manual").await.unwrap();

    s.delete_item(&alice.id, &"item-a".into()).await.unwrap();
    assert!(s.get_item_by_plaid_id(&"item-a".into()).await.unwrap().is_none());
    let accounts =
        s.list_accounts(&alice.id, &AccountFilter { include_removed: true, ..Default::default() }).await.unwrap();
    assert_eq!(accounts.iter().map(|a| a.account_id.as_str()).collect::<Vec<_>>(), ["acc-b"]);
    assert_eq!(ids(&all_txns(&s, &alice, TransactionFilter::default()).await), ["t-b"]);
    assert!(is_not_found(s.get_transaction(&alice.id, &"t-a".into()).await));
    assert!(s.list_sync_runs(&a.id, 10).await.unwrap().is_empty(), "run {} went with the Item", run.id);
    assert!(is_not_found(s.delete_item(&alice.id, &"item-a".into()).await));
}

async fn accounts_and_balances(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &alice, "item-b", "ins_2").await;
    let as_of = at("2026-03-01T12:00:00Z");
    let acct = |id: &str, current: &str| NewAccount {
        account_id: id.into(),
        name: format!("Account {id}"),
        official_name: Some("Official".into()),
        mask: Some("1234".into()),
        account_type: "depository".into(),
        subtype: Some("checking".into()),
        balances: Balances {
            available: Some(dec("100.10")),
            current: Some(dec(current)),
            limit: None,
            currency: Some("USD".into()),
            currency_is_official: true,
        },
        balance_as_of: Some(as_of),
        balance_source: BalanceSource::Cached,
    };
    s.upsert_accounts(&a, &[acct("acc-1", "1234567.891234"), acct("acc-2", "0.1")], true).await.unwrap();
    s.upsert_accounts(&b, &[acct("acc-3", "5")], true).await.unwrap();

    let all = s.list_accounts(&alice.id, &AccountFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    let one = all.iter().find(|x| x.account_id == "acc-1").unwrap();
    assert_eq!(one.item_id, "item-a");
    assert_eq!(one.balances.current, Some(dec("1234567.891234")));
    assert_eq!(one.balances.available.unwrap().to_string(), "100.10", "scale kept");
    assert_eq!((one.balance_as_of, one.balance_source), (Some(as_of), BalanceSource::Cached));
    let only_b = AccountFilter { item_id: Some("item-b".into()), ..Default::default() };
    assert_eq!(s.list_accounts(&alice.id, &only_b).await.unwrap().len(), 1);
    assert!(s.list_accounts(&bob.id, &AccountFilter::default()).await.unwrap().is_empty(), "scoped by owner");

    // A full list without acc-2 flags it removed; it comes back when listed again.
    s.upsert_accounts(&a, &[acct("acc-1", "1")], true).await.unwrap();
    let visible = s.list_accounts(&alice.id, &AccountFilter::default()).await.unwrap();
    assert!(visible.iter().all(|x| x.account_id != "acc-2"));
    let with_removed = AccountFilter { include_removed: true, ..Default::default() };
    let listed = s.list_accounts(&alice.id, &with_removed).await.unwrap();
    assert!(listed.iter().any(|x| x.account_id == "acc-2" && x.removed));

    let live_at = at("2026-03-02T08:00:00Z");
    let update = |id: &str| BalanceUpdate {
        account_id: id.into(),
        balances: Balances {
            available: None,
            current: Some(dec("-42.005")),
            limit: Some(dec("1000")),
            currency: Some("EUR".into()),
            currency_is_official: true,
        },
        as_of: live_at,
        source: BalanceSource::Live,
    };
    let n = s.update_balances(&a.id, &[update("acc-1"), update("acc-3"), update("ghost")]).await.unwrap();
    assert_eq!(n, 1, "only the Item's own accounts are updated");
    let got = s.list_accounts(&alice.id, &AccountFilter::default()).await.unwrap();
    let one = got.iter().find(|x| x.account_id == "acc-1").unwrap();
    assert_eq!(one.balances.current.unwrap().to_string(), "-42.005");
    assert_eq!((one.balance_as_of, one.balance_source), (Some(live_at), BalanceSource::Live));
    let three = got.iter().find(|x| x.account_id == "acc-3").unwrap();
    assert_eq!(three.balance_source, BalanceSource::Cached, "acc-3 belongs to item-b");
}

async fn cached_balances_do_not_replace_newer_or_recent_live_ones(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let acct = |id: &str, name: &str, current: &str, as_of: Option<DateTime<Utc>>| NewAccount {
        account_id: id.into(),
        name: name.into(),
        official_name: None,
        mask: None,
        account_type: "depository".into(),
        subtype: None,
        balances: Balances {
            current: Some(dec(current)),
            currency: Some("USD".into()),
            currency_is_official: true,
            ..Balances::default()
        },
        balance_as_of: as_of,
        balance_source: BalanceSource::Cached,
    };
    let balance = |current: &str, as_of: DateTime<Utc>, source: BalanceSource| BalanceUpdate {
        account_id: "acc-1".into(),
        balances: Balances { current: Some(dec(current)), currency: Some("EUR".into()), ..Balances::default() },
        as_of,
        source,
    };
    async fn get(s: &S, user_id: &UserId) -> Account {
        let all = s.list_accounts(user_id, &AccountFilter::default()).await.unwrap();
        all.into_iter().find(|x| x.account_id == "acc-1").unwrap()
    }
    // Whole seconds: the database keeps microseconds.
    let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let hour = chrono::TimeDelta::hours(1);
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "10", Some(now - hour * 48))], true).await.unwrap();

    // A live balance from a minute ago; then a sync brings a cached one stamped "now" (age unknown).
    let live_at = now - chrono::TimeDelta::minutes(1);
    s.update_balances(&a.id, &[balance("20", live_at, BalanceSource::Live)]).await.unwrap();
    s.upsert_accounts(&a, &[acct("acc-1", "Renamed", "11", Some(now))], false).await.unwrap();
    let one = get(&s, &alice.id).await;
    assert_eq!(one.name, "Renamed", "the account's details are still updated");
    assert_eq!(one.balances.current, Some(dec("20")), "the recent live balance stays");
    assert_eq!(one.balances.currency.as_deref(), Some("EUR"), "all balance columns stay together");
    assert_eq!((one.balance_source, one.balance_as_of), (BalanceSource::Live, Some(live_at)));

    // Cached data older than what is stored never replaces it, whatever the source.
    s.update_balances(&a.id, &[balance("30", now - hour * 5, BalanceSource::Cached)]).await.unwrap();
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "12", Some(now - hour * 6))], false).await.unwrap();
    let one = get(&s, &alice.id).await;
    assert_eq!((one.balances.current, one.balance_source), (Some(dec("30")), BalanceSource::Cached));
    // Nor does a balance without a date.
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "13", None)], false).await.unwrap();
    assert_eq!(get(&s, &alice.id).await.balances.current, Some(dec("30")));

    // Newer cached data replaces an older cached balance, and a live balance that is no longer recent.
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "14", Some(now - hour * 4))], false).await.unwrap();
    assert_eq!(get(&s, &alice.id).await.balances.current, Some(dec("14")));
    s.update_balances(&a.id, &[balance("40", now - hour * 3, BalanceSource::Live)]).await.unwrap();
    s.upsert_accounts(&a, &[acct("acc-1", "Checking", "15", Some(now - hour * 2))], false).await.unwrap();
    let one = get(&s, &alice.id).await;
    assert_eq!((one.balances.current, one.balance_source), (Some(dec("15")), BalanceSource::Cached));
    assert_eq!(one.balances.currency.as_deref(), Some("USD"));
}

async fn apply_sync_upserts_removes_and_stores_cursor(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let stats = s
        .apply_sync(
            &a,
            &batch(
                vec![
                    txn("t1", "acc", "10.00", "2026-01-01T10:00:00Z"),
                    txn("t2", "acc", "20.00", "2026-01-02T10:00:00Z"),
                    txn("t3", "acc", "30.00", "2026-01-03T10:00:00Z"),
                ],
                vec![],
                &[],
                "cursor-1",
            ),
        )
        .await
        .unwrap();
    assert_eq!(stats, ApplyStats { upserted: 3, removed: 0, pending_replaced: 0 });
    let a = fresh(&s, &a).await;
    assert_eq!(a.cursor.as_deref(), Some("cursor-1"));
    assert!(a.last_successful_sync_at.is_some());
    assert_eq!(ids(&all_txns(&s, &alice, TransactionFilter::default()).await), ["t3", "t2", "t1"]);

    let mut changed = txn("t2", "acc", "21.50", "2026-01-02T11:00:00Z");
    changed.fields.merchant_name = Some("Corner Shop".into());
    let stats = s.apply_sync(&a, &batch(vec![], vec![changed], &["t1", "never-seen"], "cursor-2")).await.unwrap();
    assert_eq!(stats, ApplyStats { upserted: 1, removed: 1, pending_replaced: 0 });
    let list = all_txns(&s, &alice, TransactionFilter::default()).await;
    assert_eq!(ids(&list), ["t3", "t2"]);
    let t2 = &list[1];
    assert_eq!(t2.fields.amount, dec("21.50"));
    assert_eq!(t2.display_name, "Corner Shop", "merchant_name wins");
    assert_eq!(t2.fields.name, "Name of t2", "both kept");
    assert_eq!(t2.item_id, "item-a");
    assert_eq!(t2.raw, r#"{"transaction_id":"t2","amount":21.50}"#);
    assert_eq!(fresh(&s, &a).await.cursor.as_deref(), Some("cursor-2"));

    // A batch without a cursor leaves it alone.
    let a = fresh(&s, &a).await;
    let keep = SyncBatch { page: SyncPage { removed: vec!["t3".into()], ..Default::default() }, next_cursor: None };
    s.apply_sync(&a, &keep).await.unwrap();
    assert_eq!(fresh(&s, &a).await.cursor.as_deref(), Some("cursor-2"));

    // Another user sees nothing.
    let bob = user(&s, "bob").await;
    assert!(all_txns(&s, &bob, TransactionFilter::default()).await.is_empty());
    assert!(is_not_found(s.get_transaction(&bob.id, &"t2".into()).await));
}

async fn failed_apply_leaves_old_cursor_and_no_rows(s: S) {
    let alice = user(&s, "alice").await;
    let stale = item(&s, &alice, "item-a", "ins_1").await;
    s.apply_sync(&stale, &batch(vec![txn("t1", "acc", "1", "2026-01-01T00:00:00Z")], vec![], &[], "c1")).await.unwrap();

    // `stale` still says cursor None: the batch is staged inside the transaction, then the cursor check fails and
    // everything rolls back.
    let big: Vec<_> = (0..1200).map(|i| txn(&format!("n{i}"), "acc", "2", "2026-02-01T00:00:00Z")).collect();
    let result = s.apply_sync(&stale, &batch(big, vec![], &["t1"], "c-bad")).await;
    assert!(is_conflict(result), "stale cursor");
    let current = fresh(&s, &stale).await;
    assert_eq!(current.cursor.as_deref(), Some("c1"));
    assert_eq!(ids(&all_txns(&s, &alice, TransactionFilter::default()).await), ["t1"], "no partial rows, no removal");

    // The same holds for a staged run committed against a stale Item.
    s.stage_sync_page(
        "run-x",
        &SyncPage { added: vec![txn("x1", "acc", "3", "2026-03-01T00:00:00Z")], ..Default::default() },
    )
    .await
    .unwrap();
    assert!(is_conflict(s.commit_sync(&stale, "run-x", "c-bad").await));
    assert_eq!(fresh(&s, &stale).await.cursor.as_deref(), Some("c1"));
    assert_eq!(all_txns(&s, &alice, TransactionFilter::default()).await.len(), 1);
    s.discard_sync("run-x").await.unwrap();
    // After a discard, committing the run (with the right cursor) adds nothing.
    let stats = s.commit_sync(&current, "run-x", "c2").await.unwrap();
    assert_eq!(stats, ApplyStats::default());
    assert_eq!(all_txns(&s, &alice, TransactionFilter::default()).await.len(), 1);
}

async fn staged_pages_commit_atomically(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    s.apply_sync(&a, &batch(vec![txn("old", "acc", "1", "2025-12-01T00:00:00Z")], vec![], &[], "c0")).await.unwrap();
    let a = fresh(&s, &a).await;
    let run = s.start_sync_run(&a.id, "webhook").await.unwrap();
    let page1: Vec<_> = (0..500).map(|i| txn(&format!("p{i:03}"), "acc", "5", "2026-01-01T00:00:00Z")).collect();
    s.stage_sync_page(&run.id, &SyncPage { added: page1, ..Default::default() }).await.unwrap();
    // Page 2 modifies a page-1 row and removes another plus an already stored one.
    let mut p7 = txn("p007", "acc", "7.77", "2026-01-01T00:00:00Z");
    p7.fields.name = "modified on page 2".into();
    s.stage_sync_page(
        &run.id,
        &SyncPage { added: vec![], modified: vec![p7], removed: vec!["p008".into(), "old".into()] },
    )
    .await
    .unwrap();
    // A change then its reversal in the same page: the last one wins.
    s.stage_sync_page(
        &run.id,
        &SyncPage {
            added: vec![txn("p009", "acc", "9", "2026-01-01T00:00:00Z")],
            modified: vec![],
            removed: vec!["p009".into()],
        },
    )
    .await
    .unwrap();

    // Another Item's run is staged at the same time and must survive this run's commit.
    let b = item(&s, &alice, "item-b", "ins_2").await;
    let run_b = s.start_sync_run(&b.id, "webhook").await.unwrap();
    let page_b = SyncPage { added: vec![txn("b1", "acc-b", "1", "2025-11-01T00:00:00Z")], ..Default::default() };
    s.stage_sync_page(&run_b.id, &page_b).await.unwrap();

    // Nothing is visible before the commit.
    assert_eq!(ids(&all_txns(&s, &alice, TransactionFilter::default()).await), ["old"]);
    assert_eq!(fresh(&s, &a).await.cursor.as_deref(), Some("c0"));

    let stats = s.commit_sync(&a, &run.id, "c1").await.unwrap();
    assert_eq!(stats.upserted, 498, "500 minus p008 and p009, which ended removed");
    assert_eq!(stats.removed, 1, "only `old` existed to be removed");
    let list = all_txns(&s, &alice, TransactionFilter::default()).await;
    assert_eq!(list.len(), 498);
    assert!(list.iter().all(|t| !["p008", "p009", "old"].contains(&t.transaction_id.as_str())));
    let p7 = s.get_transaction(&alice.id, &"p007".into()).await.unwrap();
    assert_eq!((p7.fields.name.as_str(), p7.fields.amount), ("modified on page 2", dec("7.77")));
    assert_eq!(fresh(&s, &a).await.cursor.as_deref(), Some("c1"));
    // The staging rows are gone: committing the same run again changes nothing.
    let a = fresh(&s, &a).await;
    assert_eq!(s.commit_sync(&a, &run.id, "c2").await.unwrap(), ApplyStats::default());

    let stats = s.commit_sync(&b, &run_b.id, "b-c1").await.unwrap();
    assert_eq!(stats.upserted, 1, "the other run's pages were kept");
    assert_eq!(s.get_transaction(&alice.id, &"b1".into()).await.unwrap().item_id, "item-b");
}

fn page(added: Vec<NewTransaction>, modified: Vec<NewTransaction>, removed: &[&str]) -> SyncPage {
    SyncPage { added, modified, removed: removed.iter().map(|s| (*s).into()).collect() }
}

fn pending(mut t: NewTransaction) -> NewTransaction {
    t.fields.pending = true;
    t
}

fn posted_from(mut t: NewTransaction, pending_id: &str) -> NewTransaction {
    t.fields.pending_transaction_id = Some(pending_id.into());
    t
}

async fn initial_sync_is_hidden_until_its_commit(s: S) {
    let alice = user(&s, "alice").await;
    // Another Item with visible data: an initial sync of the new Item must not hide it.
    let other = item(&s, &alice, "item-other", "ins_9").await;
    s.apply_sync(&other, &batch(vec![txn("other-1", "acc-o", "1", "2025-10-01T00:00:00Z")], vec![], &[], "o1"))
        .await
        .unwrap();
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let run = s.start_sync_run(&a.id, "link").await.unwrap();
    assert!(s.claim_initial_sync(&a, &run.id).await.unwrap());

    let first: Vec<_> = (0..600).map(|i| txn(&format!("t{i:03}"), "acc", "5", "2026-01-01T00:00:00Z")).collect();
    let pend_early = pending(txn("pend-early", "acc", "3", "2026-01-02T00:00:00Z"));
    // Two pages in one write: the second modifies, removes, and posts the first page's pending row.
    let stats = s
        .write_initial_pages(
            &a,
            &run.id,
            &[
                page([first, vec![pend_early]].concat(), vec![], &[]),
                page(
                    vec![posted_from(txn("post-early", "acc", "3", "2026-01-03T00:00:00Z"), "pend-early")],
                    vec![{
                        let mut t = txn("t007", "acc", "7.77", "2026-01-01T00:00:00Z");
                        t.fields.name = "modified later".into();
                        t
                    }],
                    &["t008"],
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(
        (stats.upserted, stats.removed, stats.pending_replaced),
        (601, 0, 1),
        "t008 never lands: its last change in the write is the removal"
    );
    // A later write: a posted row first, its pending row after (Plaid may send both in one history); a removal
    // followed by the same id coming back.
    s.write_initial_pages(
        &a,
        &run.id,
        &[page(vec![posted_from(txn("post-late", "acc", "4", "2026-01-05T00:00:00Z"), "pend-late")], vec![], &[])],
    )
    .await
    .unwrap();
    s.write_initial_pages(
        &a,
        &run.id,
        &[
            page(vec![pending(txn("pend-late", "acc", "4", "2026-01-04T00:00:00Z"))], vec![], &["t009"]),
            page(vec![txn("t009", "acc", "9", "2026-01-01T00:00:00Z")], vec![], &[]),
        ],
    )
    .await
    .unwrap();

    // Nothing of the Item is visible yet, by any reader; the other Item is.
    assert_eq!(ids(&all_txns(&s, &alice, TransactionFilter::default()).await), ["other-1"]);
    assert!(is_not_found(s.get_transaction(&alice.id, &"t001".into()).await));
    let note = UserFieldsPatch { note: Some(Some("too early".into())), category: None };
    assert!(is_not_found(s.update_transaction_user_fields(&alice.id, &"t001".into(), &note).await));
    assert_eq!(fresh(&s, &a).await.cursor, None);

    s.commit_initial_sync(&a, &run.id, "c1").await.unwrap();
    let list = all_txns(&s, &alice, TransactionFilter { item_id: Some("item-a".into()), ..Default::default() }).await;
    let listed: HashSet<&str> = ids(&list).into_iter().collect();
    assert_eq!(list.len(), 600 - 1 + 2, "600 rows minus t008, plus both posted rows; no pending row");
    assert!(!listed.contains("t008") && !listed.contains("pend-early") && !listed.contains("pend-late"));
    assert!(listed.contains("t009"), "removed, then back on a later page");
    let t7 = s.get_transaction(&alice.id, &"t007".into()).await.unwrap();
    assert_eq!((t7.fields.name.as_str(), t7.fields.amount), ("modified later", dec("7.77")));
    assert_eq!(fresh(&s, &a).await.cursor.as_deref(), Some("c1"));
    s.update_transaction_user_fields(&alice.id, &"t001".into(), &note).await.unwrap();
    // A committed Item is never claimed again: later syncs stage.
    let a = fresh(&s, &a).await;
    let next = s.start_sync_run(&a.id, "webhook").await.unwrap();
    assert!(!s.claim_initial_sync(&a, &next.id).await.unwrap());
    assert!(is_conflict(s.write_initial_pages(&a, &run.id, &[page(vec![], vec![], &["t001"])]).await));
    assert_eq!(ids(&all_txns(&s, &alice, TransactionFilter::default()).await).len(), 602);
}

async fn initial_sync_claims_only_fresh_items_and_can_be_taken_over(s: S) {
    let alice = user(&s, "alice").await;
    // Rows but no cursor (a batch applied without one): not fresh, so it stages.
    let used = item(&s, &alice, "item-used", "ins_2").await;
    let mut b = batch(vec![txn("u1", "acc-u", "1", "2025-10-01T00:00:00Z")], vec![], &[], "x");
    b.next_cursor = None;
    s.apply_sync(&used, &b).await.unwrap();
    assert!(!s.claim_initial_sync(&fresh(&s, &used).await, "run-u").await.unwrap());

    let a = item(&s, &alice, "item-a", "ins_1").await;
    let one = |id: &str| page(vec![txn(id, "acc", "1", "2026-01-01T00:00:00Z")], vec![], &[]);
    assert!(s.claim_initial_sync(&a, "run-1").await.unwrap());
    s.write_initial_pages(&a, "run-1", &[one("r1-only"), one("shared")]).await.unwrap();
    // run-1 died (or runs in another process): a new run takes over and starts from nothing.
    assert!(s.claim_initial_sync(&a, "run-2").await.unwrap());
    s.write_initial_pages(&a, "run-2", &[one("shared"), one("r2-only")]).await.unwrap();
    // The overtaken run can no longer write, commit, or delete the new run's rows.
    assert!(is_conflict(s.write_initial_pages(&a, "run-1", &[one("late")]).await));
    assert!(is_conflict(s.commit_initial_sync(&a, "run-1", "c-1").await));
    s.release_initial_sync(&a, "run-1").await.unwrap();
    s.commit_initial_sync(&a, "run-2", "c-2").await.unwrap();
    let visible =
        all_txns(&s, &alice, TransactionFilter { item_id: Some("item-a".into()), ..Default::default() }).await;
    let mut got: Vec<&str> = ids(&visible);
    got.sort_unstable();
    assert_eq!(got, ["r2-only", "shared"]);
    assert_eq!(fresh(&s, &a).await.cursor.as_deref(), Some("c-2"));

    // A released claim (restart, failure, not ready) deletes what the run wrote; the next run claims afresh.
    let c = item(&s, &alice, "item-c", "ins_3").await;
    assert!(s.claim_initial_sync(&c, "run-c1").await.unwrap());
    s.write_initial_pages(&c, "run-c1", &[one("c-row")]).await.unwrap();
    s.release_initial_sync(&c, "run-c1").await.unwrap();
    assert!(is_conflict(s.write_initial_pages(&c, "run-c1", &[one("c-row-2")]).await));
    assert!(s.claim_initial_sync(&c, "run-c2").await.unwrap());
    s.commit_initial_sync(&c, "run-c2", "c-c").await.unwrap();
    let c_rows = all_txns(&s, &alice, TransactionFilter { item_id: Some("item-c".into()), ..Default::default() }).await;
    assert!(c_rows.is_empty(), "nothing of the released run survives: {:?}", ids(&c_rows));

    // Removing the Item during its initial sync: the run's next write fails, nothing is left behind.
    let d = item(&s, &alice, "item-d", "ins_4").await;
    assert!(s.claim_initial_sync(&d, "run-d").await.unwrap());
    s.write_initial_pages(&d, "run-d", &[one("d-row")]).await.unwrap();
    s.delete_item(&alice.id, &"item-d".into()).await.unwrap();
    assert!(s.write_initial_pages(&d, "run-d", &[one("d-row-2")]).await.is_err());
}

async fn pending_to_posted_keeps_user_edits_without_duplicates(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let mut pending = txn("pend-1", "acc", "12.34", "2026-01-05T09:00:00Z");
    pending.fields.pending = true;
    let mut pending2 = txn("pend-2", "acc", "5.00", "2026-01-05T08:00:00Z");
    pending2.fields.pending = true;
    s.apply_sync(&a, &batch(vec![pending, pending2], vec![], &[], "c1")).await.unwrap();
    let patch = UserFieldsPatch { note: Some(Some("team lunch".into())), category: Some(Some("Work".into())) };
    s.update_transaction_user_fields(&alice.id, &"pend-1".into(), &patch).await.unwrap();
    s.update_transaction_user_fields(
        &alice.id,
        &"pend-2".into(),
        &UserFieldsPatch { note: Some(Some("coffee".into())), category: None },
    )
    .await
    .unwrap();

    // Plaid: the posted transaction names the pending one, and the pending id is removed in the same sync.
    let mut posted = txn("post-1", "acc", "12.34", "2026-01-06T09:00:00Z");
    posted.fields.pending_transaction_id = Some("pend-1".into());
    // Here the pending id is NOT listed as removed: the posted row must still replace it.
    let mut posted2 = txn("post-2", "acc", "5.25", "2026-01-06T08:00:00Z");
    posted2.fields.pending_transaction_id = Some("pend-2".into());
    let a = fresh(&s, &a).await;
    let stats = s.apply_sync(&a, &batch(vec![posted, posted2], vec![], &["pend-1"], "c2")).await.unwrap();
    assert_eq!(stats.pending_replaced, 2);

    let list = all_txns(&s, &alice, TransactionFilter::default()).await;
    assert_eq!(ids(&list), ["post-1", "post-2"], "never both visible");
    assert_eq!(list[0].user_note.as_deref(), Some("team lunch"));
    assert_eq!(list[0].user_category.as_deref(), Some("Work"));
    assert_eq!(list[1].user_note.as_deref(), Some("coffee"));
    assert_eq!(list[1].user_category, None);
    assert!(is_not_found(s.get_transaction(&alice.id, &"pend-1".into()).await));
    // The category filter sees the carried user category.
    let work = all_txns(&s, &alice, TransactionFilter { category: Some("Work".into()), ..Default::default() }).await;
    assert_eq!(ids(&work), ["post-1"]);

    // A later modification of the posted row keeps the carried edits.
    let mut again = txn("post-1", "acc", "12.34", "2026-01-06T09:00:00Z");
    again.fields.pending_transaction_id = Some("pend-1".into());
    again.fields.name = "renamed".into();
    let a = fresh(&s, &a).await;
    s.apply_sync(&a, &batch(vec![], vec![again], &[], "c3")).await.unwrap();
    let t = s.get_transaction(&alice.id, &"post-1".into()).await.unwrap();
    assert_eq!((t.fields.name.as_str(), t.user_note.as_deref()), ("renamed", Some("team lunch")));
}

async fn removed_then_readded_is_restored(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    s.apply_sync(&a, &batch(vec![txn("t1", "acc", "1", "2026-01-01T00:00:00Z")], vec![], &[], "c1")).await.unwrap();
    s.update_transaction_user_fields(
        &alice.id,
        &"t1".into(),
        &UserFieldsPatch { note: Some(Some("keep".into())), category: None },
    )
    .await
    .unwrap();
    let a = fresh(&s, &a).await;
    assert_eq!(s.apply_sync(&a, &batch(vec![], vec![], &["t1"], "c2")).await.unwrap().removed, 1);
    assert!(all_txns(&s, &alice, TransactionFilter::default()).await.is_empty());
    assert!(is_not_found(s.get_transaction(&alice.id, &"t1".into()).await), "soft-deleted rows are hidden");
    assert!(
        is_not_found(s.update_transaction_user_fields(&alice.id, &"t1".into(), &UserFieldsPatch::default()).await),
        "and not editable"
    );
    let a = fresh(&s, &a).await;
    s.apply_sync(&a, &batch(vec![txn("t1", "acc", "1.5", "2026-01-01T00:00:00Z")], vec![], &[], "c3")).await.unwrap();
    let t = s.get_transaction(&alice.id, &"t1".into()).await.unwrap();
    assert_eq!((t.fields.amount, t.user_note.as_deref()), (dec("1.5"), Some("keep")), "restored with its edits");
}

async fn keyset_pagination_is_stable_across_pages(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    // 57 transactions over 12 distinct datetimes, so ties are broken by transaction_id.
    let mut added = Vec::new();
    for i in 0..57u32 {
        let hour = i % 12;
        let acct = if i % 3 == 0 { "acc-x" } else { "acc-y" };
        added.push(txn(&format!("tx{i:02}"), acct, &format!("{i}.25"), &format!("2026-02-01T{hour:02}:00:00Z")));
    }
    s.apply_sync(&a, &batch(added.clone(), vec![], &[], "c1")).await.unwrap();
    let mut expected = added.clone();
    expected.sort_by(|x, y| (y.fields.datetime, &y.transaction_id).cmp(&(x.fields.datetime, &x.transaction_id)));
    let expected: Vec<&str> = expected.iter().map(|t| t.transaction_id.as_str()).collect();

    let mut filter = TransactionFilter { limit: 10, ..Default::default() };
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut inserted_between_pages = false;
    loop {
        let page = s.list_transactions(&alice.id, &filter).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|t| t.transaction_id.clone()));
        if !inserted_between_pages {
            // New rows arriving between pages (newer ones and one equal to the cursor position) neither shift
            // nor repeat the following pages.
            inserted_between_pages = true;
            let a = fresh(&s, &a).await;
            let newer = txn("zz-new", "acc-x", "1", "2026-03-01T00:00:00Z");
            s.apply_sync(&a, &batch(vec![newer], vec![], &[], "c2")).await.unwrap();
        }
        match page.next_cursor {
            Some(c) => filter.after = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(seen, expected);

    // With a filter, pages continue within the filter.
    let mut filter = TransactionFilter { account_id: Some("acc-x".into()), limit: 4, ..Default::default() };
    let mut seen = Vec::new();
    loop {
        let page = s.list_transactions(&alice.id, &filter).await.unwrap();
        seen.extend(page.items.iter().map(|t| t.transaction_id.clone()));
        match page.next_cursor {
            Some(c) => filter.after = Some(c),
            None => break,
        }
    }
    let mut want: Vec<&str> = expected.iter().copied().filter(|id| id[2..].parse::<u32>().unwrap() % 3 == 0).collect();
    want.insert(0, "zz-new");
    assert_eq!(seen, want);

    let bad = TransactionFilter { after: Some("garbage".into()), ..Default::default() };
    assert!(matches!(s.list_transactions(&alice.id, &bad).await, Err(StoreError::InvalidInput(_))));
    // limit 0 means the default; limits above the maximum are capped.
    let page = s.list_transactions(&alice.id, &TransactionFilter::default()).await.unwrap();
    assert_eq!((page.items.len(), page.next_cursor), (58, None));
}

async fn filters_narrow_the_list(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &alice, "item-b", "ins_2").await;
    let mut coffee = txn("coffee", "acc-1", "4.50", "2026-01-10T08:00:00Z");
    coffee.fields.merchant_name = Some("Blue Bottle Coffee".into());
    coffee.fields.pfc_primary = Some("FOOD_AND_DRINK".into());
    coffee.fields.pfc_detailed = Some("FOOD_AND_DRINK_COFFEE".into());
    let mut pct = txn("pct", "acc-1", "10.00", "2026-01-11T08:00:00Z");
    pct.fields.name = "100% Pure_Juice".into();
    let mut refund = txn("refund", "acc-2", "-25.00", "2026-01-12T08:00:00Z");
    refund.fields.pending = true;
    let mut unknown_time = txn("dated", "acc-1", "99.99", "2026-01-13T00:00:00Z");
    unknown_time.fields.time_unknown = true;
    unknown_time.fields.date = day("2026-01-13");
    s.apply_sync(&a, &batch(vec![coffee, pct, refund, unknown_time], vec![], &[], "c1")).await.unwrap();
    s.apply_sync(&b, &batch(vec![txn("other", "acc-9", "1000", "2026-01-20T00:00:00Z")], vec![], &[], "c1"))
        .await
        .unwrap();

    let q = |f: TransactionFilter| {
        let s = s.clone();
        let alice = alice.clone();
        async move { all_txns(&s, &alice, f).await.iter().map(|t| t.transaction_id.clone()).collect::<Vec<_>>() }
    };
    assert_eq!(q(TransactionFilter { account_id: Some("acc-2".into()), ..Default::default() }).await, ["refund"]);
    assert_eq!(q(TransactionFilter { item_id: Some("item-b".into()), ..Default::default() }).await, ["other"]);
    assert_eq!(
        q(TransactionFilter { start: Some(day("2026-01-11")), end: Some(day("2026-01-12")), ..Default::default() })
            .await,
        ["refund", "pct"]
    );
    assert_eq!(
        q(TransactionFilter { category: Some("FOOD_AND_DRINK".into()), ..Default::default() }).await,
        ["coffee"]
    );
    assert_eq!(
        q(TransactionFilter { category: Some("FOOD_AND_DRINK_COFFEE".into()), ..Default::default() }).await,
        ["coffee"]
    );
    assert_eq!(q(TransactionFilter { pending: Some(true), ..Default::default() }).await, ["refund"]);
    assert_eq!(q(TransactionFilter { pending: Some(false), ..Default::default() }).await.len(), 4);
    assert_eq!(q(TransactionFilter { q: Some("bottle".into()), ..Default::default() }).await, ["coffee"]);
    assert_eq!(q(TransactionFilter { q: Some("COFFEE".into()), ..Default::default() }).await, ["coffee"]);
    // LIKE metacharacters are literal.
    assert_eq!(q(TransactionFilter { q: Some("0% p".into()), ..Default::default() }).await, ["pct"]);
    assert_eq!(q(TransactionFilter { q: Some("e_j".into()), ..Default::default() }).await, ["pct"]);
    assert!(q(TransactionFilter { q: Some("_".into()), ..Default::default() }).await.contains(&"pct".into()));
    assert_eq!(q(TransactionFilter { q: Some("%".into()), ..Default::default() }).await, ["pct"]);
    assert_eq!(
        q(TransactionFilter { min_amount: Some(dec("4.5")), max_amount: Some(dec("10")), ..Default::default() }).await,
        ["pct", "coffee"]
    );
    assert_eq!(q(TransactionFilter { max_amount: Some(dec("0")), ..Default::default() }).await, ["refund"]);
    assert_eq!(
        q(TransactionFilter {
            account_id: Some("acc-1".into()),
            min_amount: Some(dec("5")),
            q: Some("name".into()),
            ..Default::default()
        })
        .await,
        ["dated"]
    );
    let dated = s.get_transaction(&alice.id, &"dated".into()).await.unwrap();
    assert!(dated.fields.time_unknown);
}

async fn amounts_are_exact(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let amounts = [
        "0.1",
        "1234567.891234",
        "1234567.991234",
        "-0.10",
        "0.10000001",
        "79228162514264337593543950335",
        "-0.0000000000000000000000000001",
        "100.00",
    ];
    let added: Vec<_> = amounts
        .iter()
        .enumerate()
        .map(|(i, amt)| txn(&format!("m{i}"), "acc", amt, &format!("2026-01-01T00:00:{i:02}Z")))
        .collect();
    s.apply_sync(&a, &batch(added, vec![], &[], "c1")).await.unwrap();
    for (i, amt) in amounts.iter().enumerate() {
        let t = s.get_transaction(&alice.id, &format!("m{i}").into()).await.unwrap();
        assert_eq!(t.fields.amount.to_string(), *amt, "exact, scale included");
    }
    let sum = s.get_transaction(&alice.id, &"m0".into()).await.unwrap().fields.amount
        + s.get_transaction(&alice.id, &"m1".into()).await.unwrap().fields.amount;
    assert_eq!(sum, dec("1234567.991234"));
    let between = |min: &str, max: &str| TransactionFilter {
        min_amount: Some(dec(min)),
        max_amount: Some(dec(max)),
        ..Default::default()
    };
    let got = all_txns(&s, &alice, between("0.1", "0.1")).await;
    assert_eq!(ids(&got), ["m0"], "0.1 matches exactly, 0.10000001 does not");
    let got = all_txns(&s, &alice, between("1234567.991234", "1234567.991234")).await;
    assert_eq!(ids(&got), ["m2"]);
    let got = all_txns(&s, &alice, between("-0.1", "-0.1")).await;
    assert_eq!(ids(&got), ["m3"], "-0.10 equals -0.1");
    let got = all_txns(&s, &alice, between("100", "100")).await;
    assert_eq!(ids(&got), ["m7"]);
    let negative = all_txns(
        &s,
        &alice,
        TransactionFilter { max_amount: Some(dec("-0.0000000000000000000000000001")), ..Default::default() },
    )
    .await;
    assert_eq!(ids(&negative), ["m6", "m3"]);
}

async fn user_field_patches(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    s.apply_sync(&a, &batch(vec![txn("t1", "acc", "1", "2026-01-01T00:00:00Z")], vec![], &[], "c1")).await.unwrap();
    let t = s
        .update_transaction_user_fields(
            &alice.id,
            &"t1".into(),
            &UserFieldsPatch { note: Some(Some("n1".into())), category: Some(Some("Cat".into())) },
        )
        .await
        .unwrap();
    assert_eq!((t.user_note.as_deref(), t.user_category.as_deref()), (Some("n1"), Some("Cat")));
    let t = s
        .update_transaction_user_fields(&alice.id, &"t1".into(), &UserFieldsPatch { note: Some(None), category: None })
        .await
        .unwrap();
    assert_eq!((t.user_note, t.user_category.as_deref()), (None, Some("Cat")), "absent field untouched");
    // A sync update of the row does not overwrite user fields.
    let a = fresh(&s, &a).await;
    s.apply_sync(&a, &batch(vec![], vec![txn("t1", "acc", "2", "2026-01-01T00:00:00Z")], &[], "c2")).await.unwrap();
    assert_eq!(s.get_transaction(&alice.id, &"t1".into()).await.unwrap().user_category.as_deref(), Some("Cat"));
    let other = s.update_transaction_user_fields(&bob.id, &"t1".into(), &UserFieldsPatch::default()).await;
    assert!(is_not_found(other), "another user's transaction");
    assert!(is_not_found(
        s.update_transaction_user_fields(&alice.id, &"nope".into(), &UserFieldsPatch::default()).await
    ));
}

async fn sync_runs_plaid_calls_and_webhooks(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let run = s.start_sync_run(&a.id, "webhook").await.unwrap();
    assert_eq!((run.status, run.triggered_by.as_str()), (SyncRunStatus::Running, "webhook"));
    let outcome = SyncRunOutcome {
        succeeded: true,
        added: 5,
        modified: 2,
        removed: 1,
        pages: 2,
        restarts: 1,
        ..Default::default()
    };
    let done = s.finish_sync_run(&run.id, &outcome).await.unwrap();
    assert_eq!(
        (done.status, done.added, done.modified, done.removed, done.pages, done.restarts),
        (SyncRunStatus::Succeeded, 5, 2, 1, 2, 1)
    );
    assert!(done.finished_at.is_some());
    let failed = s.start_sync_run(&a.id, "schedule").await.unwrap();
    let outcome = SyncRunOutcome {
        succeeded: false,
        error_code: Some("ITEM_LOGIN_REQUIRED".into()),
        error_message: Some("login".into()),
        ..Default::default()
    };
    s.finish_sync_run(&failed.id, &outcome).await.unwrap();
    let runs = s.list_sync_runs(&a.id, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert!(
        runs.iter()
            .any(|r| r.status == SyncRunStatus::Failed && r.error_code.as_deref() == Some("ITEM_LOGIN_REQUIRED"))
    );
    assert!(fresh(&s, &a).await.last_sync_at.is_some());
    assert!(is_not_found(s.finish_sync_run("missing", &SyncRunOutcome::default()).await));

    for (i, outcome) in ["ok", "plaid_error"].iter().enumerate() {
        s.record_plaid_call(&PlaidCall {
            endpoint: "/transactions/sync".into(),
            item_id: Some("item-a".into()),
            request_id: Some(format!("req-{i}")),
            http_status: Some(if i == 0 { 200 } else { 400 }),
            outcome: (*outcome).into(),
            error_type: (i == 1).then(|| "ITEM_ERROR".into()),
            error_code: (i == 1).then(|| "ITEM_LOGIN_REQUIRED".into()),
            latency_ms: 12 + i as i64,
            at: at(&format!("2026-01-01T00:00:0{i}Z")),
        })
        .await
        .unwrap();
    }
    let calls = s.list_plaid_calls(Some(&"item-a".into()), 10).await.unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!((calls[0].request_id.as_deref(), calls[0].http_status), (Some("req-1"), Some(400)), "newest first");
    assert!(s.list_plaid_calls(Some(&"item-b".into()), 10).await.unwrap().is_empty());

    let event = NewWebhookEvent {
        dedupe_key: "sha256-of-body".into(),
        item_id: Some("item-a".into()),
        webhook_type: "TRANSACTIONS".into(),
        webhook_code: "SYNC_UPDATES_AVAILABLE".into(),
        body: "{}".into(),
    };
    let first = s.record_webhook_event(&event).await.unwrap();
    assert!(first.is_new);
    let again = s.record_webhook_event(&event).await.unwrap();
    assert_eq!(again, WebhookRecord { id: first.id.clone(), is_new: false });
    s.mark_webhook_processed(&first.id).await.unwrap();
    assert!(is_not_found(s.mark_webhook_processed("missing").await));
}

async fn jobs_coalesce_while_queued(s: S) {
    let first = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap();
    assert!(!first.coalesced);
    for _ in 0..3 {
        let again = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap();
        assert_eq!(again, Enqueued { job_id: first.job_id.clone(), coalesced: true });
    }
    let other_item = s.enqueue_job(&NewJob::for_item("sync", &"item-b".into())).await.unwrap();
    let other_kind = s.enqueue_job(&NewJob::for_item("balances", &"item-a".into())).await.unwrap();
    assert!(!other_item.coalesced && !other_kind.coalesced);
    assert_ne!(other_item.job_id, first.job_id);
    assert_ne!(other_kind.job_id, first.job_id);
    // No coalesce key: never coalesces.
    let free = NewJob { coalesce_key: None, ..NewJob::for_item("refresh", &"item-a".into()) };
    let f1 = s.enqueue_job(&free).await.unwrap();
    let f2 = s.enqueue_job(&free).await.unwrap();
    assert_ne!(f1.job_id, f2.job_id);

    // A later request that is more urgent moves the queued job earlier; a less urgent one does not delay it.
    let later =
        NewJob { run_after: Utc::now() + chrono::Duration::hours(2), ..NewJob::for_item("sync", &"item-c".into()) };
    let c = s.enqueue_job(&later).await.unwrap();
    let even_later = NewJob { run_after: Utc::now() + chrono::Duration::hours(5), ..later.clone() };
    s.enqueue_job(&even_later).await.unwrap();
    let job = s.get_job(&c.job_id).await.unwrap();
    assert!(
        job.run_after > Utc::now() + chrono::Duration::minutes(100)
            && job.run_after < Utc::now() + chrono::Duration::hours(3)
    );
    s.enqueue_job(&NewJob::for_item("sync", &"item-c".into())).await.unwrap();
    assert!(s.get_job(&c.job_id).await.unwrap().run_after <= Utc::now());

    // Once the job runs, a new request queues a new job (changes during a sync need another sync).
    let mut claimed = HashSet::new();
    while let Some(job) = s.claim_job("w1", Duration::from_secs(60)).await.unwrap() {
        claimed.insert(job.id);
    }
    assert!(claimed.contains(&first.job_id));
    let next = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap();
    assert!(!next.coalesced);
    assert_ne!(next.job_id, first.job_id);

    // ...but it waits while the first one runs under a live lease, in any process: one Item never syncs twice at
    // once. It becomes claimable when the running job ends.
    assert!(
        s.claim_job("w2", Duration::from_secs(60)).await.unwrap().is_none(),
        "a job must not be claimed while another job for the same Item runs"
    );
    s.complete_job(&first.job_id, "w1", None).await.unwrap();
    let claimed_next =
        s.claim_job("w2", Duration::from_secs(60)).await.unwrap().expect("claimable after the first ended");
    assert_eq!(claimed_next.id, next.job_id);
}

async fn job_lease_complete_and_fail(s: S) {
    let mut new = NewJob::for_item("sync", &"item-a".into());
    new.payload = r#"{"trigger":"webhook"}"#.into();
    new.max_attempts = 2;
    let id = s.enqueue_job(&new).await.unwrap().job_id;
    let job = s.claim_job("w1", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((job.id.as_str(), job.state, job.attempts), (id.as_str(), JobState::Running, 1));
    assert_eq!(job.lease_owner.as_deref(), Some("w1"));
    assert_eq!(job.payload, r#"{"trigger":"webhook"}"#);
    assert!(job.lease_expires_at.unwrap() > Utc::now() + chrono::Duration::seconds(50));
    assert!(s.claim_job("w2", Duration::from_secs(60)).await.unwrap().is_none(), "leased job is not claimable");

    s.heartbeat_job(&id, "w1", Duration::from_secs(120)).await.unwrap();
    assert!(s.get_job(&id).await.unwrap().lease_expires_at.unwrap() > Utc::now() + chrono::Duration::seconds(100));
    assert!(is_not_found(s.heartbeat_job(&id, "w2", Duration::from_secs(1)).await), "only the holder extends");
    assert!(is_not_found(s.complete_job(&id, "w2", None).await), "only the holder completes");

    // Failure with attempts left: queued again after the backoff.
    assert_eq!(s.fail_job(&id, "w1", "bank timeout", None).await.unwrap(), JobState::Queued);
    let job = s.get_job(&id).await.unwrap();
    assert_eq!((job.last_error.as_deref(), job.lease_owner.as_deref()), (Some("bank timeout"), None));
    assert!(job.run_after > Utc::now(), "backoff");
    assert!(s.claim_job("w1", Duration::from_secs(60)).await.unwrap().is_none(), "not due yet");
    assert!(is_not_found(s.fail_job(&id, "w1", "again", None).await), "no longer held");

    // Make it due (a more urgent request coalesces into it), run it again and exhaust the attempts.
    s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap();
    let job = s.claim_job("w1", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((job.id.as_str(), job.attempts), (id.as_str(), 2));
    assert_eq!(s.fail_job(&id, "w1", "still broken", Some(Duration::ZERO)).await.unwrap(), JobState::Failed);
    assert!(s.claim_job("w1", Duration::from_secs(60)).await.unwrap().is_none());

    // Completion records the result.
    let id = s.enqueue_job(&NewJob::for_item("balances", &"item-a".into())).await.unwrap().job_id;
    let job = s.claim_job("w3", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(job.id, id);
    s.complete_job(&id, "w3", Some(r#"{"ok":true}"#)).await.unwrap();
    let job = s.get_job(&id).await.unwrap();
    assert_eq!((job.state, job.result.as_deref(), job.lease_owner), (JobState::Done, Some(r#"{"ok":true}"#), None));
    assert!(is_not_found(s.complete_job(&id, "w3", None).await), "completing twice");

    // A retry while another request for the same work is already queued yields to that job.
    let id = s.enqueue_job(&NewJob::for_item("sync", &"item-z".into())).await.unwrap().job_id;
    s.claim_job("w4", Duration::from_secs(60)).await.unwrap().unwrap();
    let queued = s.enqueue_job(&NewJob::for_item("sync", &"item-z".into())).await.unwrap();
    assert!(!queued.coalesced);
    assert_eq!(s.fail_job(&id, "w4", "boom", None).await.unwrap(), JobState::Failed);
    assert_eq!(s.get_job(&queued.job_id).await.unwrap().state, JobState::Queued);
    assert!(is_not_found(s.get_job(&"missing".into()).await));
}

async fn expired_lease_is_reclaimed(s: S) {
    let id = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap().job_id;
    let job = s.claim_job("crashed-worker", Duration::from_millis(50)).await.unwrap().unwrap();
    assert_eq!(job.id, id);
    assert!(s.claim_job("w2", Duration::from_secs(60)).await.unwrap().is_none());
    tokio::time::sleep(Duration::from_millis(120)).await;
    let again = s.claim_job("w2", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.attempts, again.lease_owner.as_deref()), (id.as_str(), 2, Some("w2")));
    assert!(is_not_found(s.complete_job(&id, "crashed-worker", None).await), "the old holder lost the lease");
    s.complete_job(&id, "w2", None).await.unwrap();

    // With no attempts left, an expired lease is failed by the reclaimer instead.
    let one_shot = NewJob { max_attempts: 1, ..NewJob::for_item("sync", &"item-b".into()) };
    let id = s.enqueue_job(&one_shot).await.unwrap().job_id;
    s.claim_job("crashed-worker", Duration::from_millis(30)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert!(s.claim_job("w2", Duration::from_secs(60)).await.unwrap().is_none());
    assert_eq!(s.reclaim_expired_jobs().await.unwrap(), 1);
    let job = s.get_job(&id).await.unwrap();
    assert_eq!((job.state, job.last_error.as_deref()), (JobState::Failed, Some("lease expired")));
    assert_eq!(s.reclaim_expired_jobs().await.unwrap(), 0);
}

async fn concurrent_claimers_never_share_a_job(s: S) {
    let mut expected = HashSet::new();
    for i in 0..60 {
        expected.insert(s.enqueue_job(&NewJob::for_item("sync", &format!("item-{i}").into())).await.unwrap().job_id);
    }
    let mut workers = Vec::new();
    for w in 0..6 {
        let s = s.clone();
        workers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(job) = s.claim_job(&format!("w{w}"), Duration::from_secs(60)).await.unwrap() {
                assert_eq!(job.lease_owner.as_deref(), Some(format!("w{w}").as_str()));
                mine.push(job.id);
                tokio::task::yield_now().await;
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for w in workers {
        all.extend(w.await.unwrap());
    }
    let unique: HashSet<_> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique, expected);
}

async fn running_jobs_are_recorded_joined_and_never_claimed(s: S) {
    let lease = Duration::from_secs(60);
    let new = NewJob {
        coalesce_key: Some("u1/*".into()),
        user_id: Some("u1".into()),
        item_id: None,
        ..NewJob::for_item("balance_refresh", &"unused".into())
    };
    let created = s.create_running_job(&"job-1".into(), &new, "w1", lease, r#"{"n":0}"#).await.unwrap();
    assert_eq!(created, Enqueued { job_id: "job-1".into(), coalesced: false });
    let job = s.get_job(&"job-1".into()).await.unwrap();
    assert_eq!(
        (job.kind.as_str(), job.state, job.attempts, job.max_attempts, job.lease_owner.as_deref()),
        ("balance_refresh", JobState::Running, 1, 1, Some("w1"))
    );
    assert_eq!(
        (
            job.user_id.as_ref().map(UserId::as_str),
            job.item_id.as_ref().map(PlaidItemId::as_str),
            job.result.as_deref()
        ),
        (Some("u1"), None, Some(r#"{"n":0}"#))
    );
    assert!(job.lease_expires_at.unwrap() > Utc::now() + chrono::Duration::seconds(50));

    // The same work while it runs under a live lease, from any worker: joined, nothing created.
    let again = s.create_running_job(&"job-2".into(), &new, "w2", lease, "{}").await.unwrap();
    assert_eq!(again, Enqueued { job_id: "job-1".into(), coalesced: true });
    assert!(is_not_found(s.get_job(&"job-2".into()).await));
    // Other work: its own job.
    let one_item = NewJob { coalesce_key: Some("u1/item-a".into()), item_id: Some("item-a".into()), ..new.clone() };
    assert!(!s.create_running_job(&"job-3".into(), &one_item, "w1", lease, "{}").await.unwrap().coalesced);
    // Workers never claim such a job.
    assert!(s.claim_job("w9", lease).await.unwrap().is_none());

    // Progress is written by the holder only; completion ends it, and the same work then starts anew.
    s.update_running_job_result(&"job-1".into(), "w1", r#"{"n":1}"#).await.unwrap();
    assert!(is_not_found(s.update_running_job_result(&"job-1".into(), "w2", "{}").await), "only the holder");
    assert_eq!(s.get_job(&"job-1".into()).await.unwrap().result.as_deref(), Some(r#"{"n":1}"#));
    s.heartbeat_job(&"job-1".into(), "w1", lease).await.unwrap();
    s.complete_job(&"job-1".into(), "w1", Some(r#"{"n":2}"#)).await.unwrap();
    let job = s.get_job(&"job-1".into()).await.unwrap();
    assert_eq!((job.state, job.result.as_deref()), (JobState::Done, Some(r#"{"n":2}"#)));
    assert!(is_not_found(s.update_running_job_result(&"job-1".into(), "w1", "{}").await), "finished");
    let next = s.create_running_job(&"job-4".into(), &new, "w2", lease, "{}").await.unwrap();
    assert_eq!(next, Enqueued { job_id: "job-4".into(), coalesced: false });

    // A holder that dies stops renewing: its job is neither joined nor claimed once the lease ran out, and the
    // reclaimer fails it.
    let dying = NewJob { coalesce_key: Some("u2/*".into()), user_id: Some("u2".into()), ..new.clone() };
    s.create_running_job(&"job-5".into(), &dying, "crashed", Duration::from_millis(50), "{}").await.unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(s.claim_job("w9", lease).await.unwrap().is_none(), "a dead holder's job is not run again");
    let fresh = s.create_running_job(&"job-6".into(), &dying, "w3", lease, "{}").await.unwrap();
    assert_eq!(fresh, Enqueued { job_id: "job-6".into(), coalesced: false });
    assert_eq!(s.reclaim_expired_jobs().await.unwrap(), 1);
    let job = s.get_job(&"job-5".into()).await.unwrap();
    assert_eq!((job.state, job.last_error.as_deref()), (JobState::Failed, Some("lease expired")));

    // Retention: finished jobs of the kind started before the cutoff go; running ones and other kinds stay.
    let sync = s.enqueue_job(&NewJob::for_item("sync", &"item-a".into())).await.unwrap().job_id;
    s.claim_job("w1", lease).await.unwrap().unwrap();
    s.complete_job(&sync, "w1", None).await.unwrap();
    assert_eq!(s.delete_finished_jobs("balance_refresh", Utc::now() - chrono::Duration::hours(1)).await.unwrap(), 0);
    assert_eq!(s.delete_finished_jobs("balance_refresh", Utc::now() + chrono::Duration::seconds(1)).await.unwrap(), 2);
    assert!(is_not_found(s.get_job(&"job-1".into()).await));
    assert!(is_not_found(s.get_job(&"job-5".into()).await));
    for kept in ["job-3", "job-4", "job-6", sync.as_str()] {
        s.get_job(&kept.into()).await.unwrap();
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Throughput measurement (not a timing assertion): `cargo test --release -p banksync --test store_contract --
// --ignored --nocapture apply_throughput`. Stages 100,000 transactions in pages of 500, then commits, the way the sync
// engine does, and prints transactions per second per backend.

fn realistic_txn(i: usize) -> NewTransaction {
    let mut t = txn(&format!("txn-{i:07}-abcdefghijklmnop"), &format!("acc-{}", i % 4), "0", "2024-01-01T00:00:00Z");
    t.fields.amount = Decimal::new(i as i64 * 37 % 100_000 - 20_000, 2);
    t.fields.datetime = at("2024-01-01T00:00:00Z") + chrono::Duration::minutes(i as i64 * 7);
    t.fields.date = t.fields.datetime.date_naive();
    t.fields.merchant_name = Some(format!("Merchant {}", i % 500));
    t.fields.logo_url = Some(format!("https://plaid-merchant-logos.plaid.com/m{}.png", i % 500));
    t.fields.website = Some("example.com".into());
    t.fields.counterparties = Some(format!(
        r#"[{{"name":"Merchant {}","type":"merchant","logo_url":null,"website":"example.com","entity_id":"E{}","confidence_level":"HIGH"}}]"#,
        i % 500,
        i % 500
    ));
    t.fields.location = Some(r#"{"address":null,"city":"Springfield","region":"IL","postal_code":null,"country":"US","lat":null,"lon":null,"store_number":null}"#.into());
    t.raw = format!(
        r#"{{"transaction_id":"{}","account_id":"{}","amount":{},"iso_currency_code":"USD","unofficial_currency_code":null,"date":"{}","datetime":"{}","name":"{}","merchant_name":"{}","pending":false,"payment_channel":"in store","personal_finance_category":{{"primary":"GENERAL_MERCHANDISE","detailed":"GENERAL_MERCHANDISE_OTHER","confidence_level":"HIGH"}}}}"#,
        t.transaction_id,
        t.fields.account_id,
        t.fields.amount,
        t.fields.date,
        t.fields.datetime.to_rfc3339(),
        t.fields.name,
        t.fields.merchant_name.as_deref().unwrap_or("")
    );
    t
}

async fn measure_apply(s: S) {
    const TOTAL: usize = 100_000;
    const PAGE: usize = 500;
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-bench", "ins_1").await;
    let run = s.start_sync_run(&a.id, "bench").await.unwrap();
    let started = std::time::Instant::now();
    for p in 0..TOTAL / PAGE {
        let added = (p * PAGE..(p + 1) * PAGE).map(realistic_txn).collect();
        s.stage_sync_page(&run.id, &SyncPage { added, ..Default::default() }).await.unwrap();
    }
    let staged = started.elapsed();
    let stats = s.commit_sync(&a, &run.id, "cursor-bench").await.unwrap();
    let total = started.elapsed();
    assert_eq!(stats.upserted, TOTAL as u64);
    eprintln!(
        "{:?}: staged {TOTAL} in {:.2?}, committed in {:.2?}, total {:.2?} = {:.0} txns/s",
        s.backend(),
        staged,
        total - staged,
        total,
        TOTAL as f64 / total.as_secs_f64()
    );
    // A second full sync over the same rows (all updates) for the modify path.
    let a = fresh(&s, &a).await;
    let started = std::time::Instant::now();
    for chunk in (0..TOTAL).collect::<Vec<_>>().chunks(10_000) {
        let modified = chunk.iter().map(|&i| realistic_txn(i)).collect();
        let batch = SyncBatch { page: SyncPage { modified, ..Default::default() }, next_cursor: None };
        s.apply_sync(&a, &batch).await.unwrap();
    }
    let total = started.elapsed();
    eprintln!(
        "{:?}: apply_sync of {TOTAL} updates in batches of 10,000: {:.2?} = {:.0} txns/s",
        s.backend(),
        total,
        TOTAL as f64 / total.as_secs_f64()
    );
    let page = s.list_transactions(&alice.id, &TransactionFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(page.items.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run with --release --ignored --nocapture"]
async fn apply_throughput_sqlite() {
    run_sqlite(measure_apply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run with --release --ignored --nocapture"]
async fn apply_throughput_postgres() {
    run_postgres(measure_apply).await;
}

// ---------------------------------------------------------------------------------------------------------------
// Backend selection

#[tokio::test]
async fn the_url_scheme_selects_the_backend() {
    for bad in ["mysql://localhost/db", "banksync.db", "", "http://x"] {
        assert!(matches!(connect(bad).await, Err(StoreError::InvalidInput(_))), "{bad:?}");
    }
    let memory = connect("sqlite::memory:").await.unwrap();
    assert_eq!(memory.backend(), Backend::Sqlite);
    memory.migrate().await.unwrap();
    memory.ping().await.unwrap();
    // An in-memory database shares one connection between writes and reads.
    let u = memory.create_user("solo", "h").await.unwrap();
    assert_eq!(memory.get_user(&u.id).await.unwrap().username, "solo");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested.db");
    let file = Store::open_sqlite(&path).await.unwrap();
    file.migrate().await.unwrap();
    assert!(path.exists(), "created on first open");
}

#[test]
fn both_migration_trees_have_the_same_versions_and_names() {
    let names = |dialect: &str| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    };
    let sqlite = names("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("postgres"));
}
