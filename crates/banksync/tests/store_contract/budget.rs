//! The Plaid rate budget's shared state: sliding windows per Item and per client, blocks, pruning; and two stores
//! (two banksync processes) on one database sharing one budget.

use super::*;

use banksync::budget::{Budget, RateLimits};

const BALANCE: &str = "/accounts/balance/get";
const LIMIT: CallLimit = CallLimit { per_item: 2, per_client: 3, window: Duration::from_secs(60) };

fn t(seconds: i64) -> DateTime<Utc> {
    at("2030-01-01T00:00:00Z") + chrono::Duration::seconds(seconds)
}

fn wait(until: i64, client_wide: bool) -> Reservation {
    Reservation::Wait { until: t(until), client_wide }
}

pub(crate) async fn call_budget_counts_sliding_windows_per_item_and_per_client(s: S) {
    assert_eq!(s.reserve_call(BALANCE, "a", LIMIT, t(0)).await.unwrap(), Reservation::Reserved);
    assert_eq!(s.reserve_call(BALANCE, "a", LIMIT, t(1)).await.unwrap(), Reservation::Reserved);
    // Item a's window holds 2: room again when its older call leaves the window.
    assert_eq!(s.reserve_call(BALANCE, "a", LIMIT, t(2)).await.unwrap(), wait(60, false));
    assert_eq!(s.reserve_call(BALANCE, "b", LIMIT, t(3)).await.unwrap(), Reservation::Reserved);
    // The client's window holds 3 (a refused call is not counted): every Item waits for the oldest to leave.
    assert_eq!(s.reserve_call(BALANCE, "c", LIMIT, t(4)).await.unwrap(), wait(60, true));
    // Another endpoint has its own windows.
    assert_eq!(s.reserve_call("/transactions/sync", "c", LIMIT, t(4)).await.unwrap(), Reservation::Reserved);
    assert_eq!(s.count_reserved_calls(BALANCE, None, t(-1)).await.unwrap(), 3);
    assert_eq!(s.count_reserved_calls(BALANCE, Some("a"), t(-1)).await.unwrap(), 2);

    // At 60 s the first call has left the window (it is sliding, not a fixed minute).
    assert_eq!(s.reserve_call(BALANCE, "c", LIMIT, t(60)).await.unwrap(), Reservation::Reserved);
    assert_eq!(s.reserve_call(BALANCE, "c", LIMIT, t(60)).await.unwrap(), wait(61, true));
    assert_eq!(s.reserve_call(BALANCE, "a", LIMIT, t(61)).await.unwrap(), Reservation::Reserved);
    assert_eq!(s.count_reserved_calls(BALANCE, None, t(1)).await.unwrap(), 3, "b, c and a again");

    // Pruning deletes what no window can see any more.
    assert_eq!(s.prune_call_budget(t(2)).await.unwrap(), 2, "the calls at 0 s and 1 s");
    assert_eq!(s.count_reserved_calls(BALANCE, None, t(-1)).await.unwrap(), 3);
}

pub(crate) async fn call_budget_blocks_cover_an_item_or_the_client_and_only_grow(s: S) {
    s.block_calls(BALANCE, Some("a"), t(100)).await.unwrap();
    s.block_calls(BALANCE, Some("a"), t(50)).await.unwrap();
    assert_eq!(s.reserve_call(BALANCE, "a", LIMIT, t(0)).await.unwrap(), wait(100, false), "the later end stays");
    assert_eq!(s.reserve_call(BALANCE, "b", LIMIT, t(0)).await.unwrap(), Reservation::Reserved, "other Items pass");
    s.block_calls(BALANCE, None, t(80)).await.unwrap();
    assert_eq!(s.reserve_call(BALANCE, "b", LIMIT, t(1)).await.unwrap(), wait(80, true));
    // Item a waits for whichever ends last.
    assert_eq!(s.reserve_call(BALANCE, "a", LIMIT, t(1)).await.unwrap(), wait(100, false));
    assert_eq!(s.reserve_call("/item/get", "a", LIMIT, t(1)).await.unwrap(), Reservation::Reserved);
    assert_eq!(s.reserve_call(BALANCE, "b", LIMIT, t(80)).await.unwrap(), Reservation::Reserved);
    assert_eq!(s.reserve_call(BALANCE, "a", LIMIT, t(100)).await.unwrap(), Reservation::Reserved);
    // Ended blocks are pruned with the old reservations.
    assert_eq!(s.prune_call_budget(t(200)).await.unwrap(), 6, "four calls and two blocks");
}

pub(crate) async fn concurrent_reservations_never_exceed_the_window(s: S) {
    let limit = CallLimit { per_item: 100, per_client: 10, window: Duration::from_secs(60) };
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.reserve_call(BALANCE, &format!("item-{i}"), limit, t(0)).await.unwrap() })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if task.await.unwrap() == Reservation::Reserved {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 10);
    assert_eq!(s.count_reserved_calls(BALANCE, None, t(-1)).await.unwrap(), 10);
}

/// Two stores on one database, as two banksync processes: `hammer` reserves from both at once.
async fn two_stores_share_one_window(a: S, b: S) {
    let limit = CallLimit { per_item: 1_000, per_client: 25, window: Duration::from_secs(60) };
    let now = Utc::now();
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { s.reserve_call(BALANCE, &format!("item-{}", i % 7), limit, now).await.unwrap() })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        if task.await.unwrap() == Reservation::Reserved {
            reserved += 1;
        }
    }
    assert_eq!(reserved, 25, "exactly the client's limit, over both stores");

    // The same through the budget each process holds: the shared window is full, so neither lets a call through
    // before a deadline shorter than the window, and both know it without waiting for the deadline.
    let limits = RateLimits::sandbox()
        .with_limit(plaid::Endpoint::AccountsBalanceGet, 1_000, 25)
        .with_window(Duration::from_secs(60), Duration::ZERO);
    let (first, second) = (Budget::new(a.clone(), limits.clone()), Budget::new(b.clone(), limits));
    // The deadline is 45 s away (inside the window) and each refusal is waited for 30 s at most: answered before the
    // deadline, so without waiting for it (a generous bound on waiting, not a threshold a loaded machine breaks).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    let item: PlaidItemId = "item-x".into();
    for budget in [&first, &second] {
        let asked = budget.acquire_before(plaid::Endpoint::AccountsBalanceGet, &item, deadline);
        let over = tokio::time::timeout(Duration::from_secs(30), asked)
            .await
            .expect("refused at once, not at the deadline")
            .unwrap_err();
        assert!(over.until > now + chrono::Duration::seconds(50), "{over:?}");
    }
    // A Plaid 429 noted by one process pauses the other too.
    let error = plaid::Error::Api {
        status: 429,
        error: Box::new(plaid::PlaidError {
            error_type: plaid::ErrorType::RateLimitExceeded,
            error_code: "ACCOUNTS_BALANCE_GET_LIMIT".into(),
            ..Default::default()
        }),
    };
    first.note_rate_limited(plaid::Endpoint::TransactionsSync, Some(&item), &error).await;
    let blocked = b.reserve_call("/transactions/sync", "another-item", limit, Utc::now()).await.unwrap();
    assert!(matches!(blocked, Reservation::Wait { client_wide: true, .. }), "{blocked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_stores_on_one_file_share_one_budget() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let a = connect(&url).await.unwrap();
    a.migrate().await.unwrap();
    let b = connect(&url).await.unwrap();
    two_stores_share_one_window(a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_stores_on_one_schema_share_one_budget() {
    let Some((mut admin, schema)) = pg::fresh_schema("banksync_budget", "budget test").await else { return };
    let options =
        sqlx::postgres::PgConnectOptions::from_str(&pg::url()).unwrap().options([("search_path", schema.as_str())]);
    let a = Arc::new(Store::connect_postgres(options.clone(), 8).await.unwrap());
    a.migrate().await.unwrap();
    let b = Arc::new(Store::connect_postgres(options, 8).await.unwrap());
    let outcome = tokio::spawn(two_stores_share_one_window(a.clone(), b.clone())).await;
    a.close().await;
    b.close().await;
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}
