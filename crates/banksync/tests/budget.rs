//! The rate budget as the engines use it: each `/transactions/sync` page is reserved before it is asked for.

mod support;

use banksync::budget::{Budget, RateLimits};
use banksync::sync::{SyncOptions, SyncTrigger};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sync_page_is_reserved_in_the_budget() {
    let env = support::sqlite(support::sim_config(), SyncOptions { page_size: 100, ..SyncOptions::default() }).await;
    let item = env.new_item("ins_109508", "user_bulk_450").await;
    env.engine.set_budget(Budget::new(env.store.clone(), RateLimits::sandbox()));
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let summary = env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    assert!(summary.pages >= 5, "{summary:?}");
    let reserved = env.store.count_reserved_calls("/transactions/sync", Some(item.item_id.as_str()), since).await;
    assert_eq!(reserved.unwrap(), summary.pages, "one reservation per page");
    env.assert_converged(&item.item_id).await;
}

/// An initial sync larger than one write, under a budget whose reservations are writes to the same SQLite store: the
/// sync keeps a database transaction open across batches while the fetcher keeps up (`store::InitialWrite`), and it
/// must never wait for a page while it holds the one writer the fetcher's next reservation needs (that stalled each
/// page for the writer's acquire timeout, a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_initial_sync_reserves_every_page_while_it_writes() {
    let env = support::sqlite(support::sim_config(), SyncOptions { page_size: 500, ..SyncOptions::default() }).await;
    let item = env.new_item("ins_109508", "user_bulk_30000").await;
    let limits = RateLimits::sandbox().with_limit(plaid::Endpoint::TransactionsSync, 1_000, 10_000);
    env.engine.set_budget(Budget::new(env.store.clone(), limits));
    let since = chrono::Utc::now() - chrono::Duration::seconds(1);
    let sync = env.engine.sync_item(&item, SyncTrigger::Link);
    let summary = tokio::time::timeout(std::time::Duration::from_secs(50), sync)
        .await
        .expect("the sync waited on itself for the store's writer")
        .unwrap();
    assert_eq!((summary.added, summary.pages, summary.restarts), (30_000, 60, 0), "{summary:?}");
    let reserved = env.store.count_reserved_calls("/transactions/sync", Some(item.item_id.as_str()), since).await;
    assert_eq!(reserved.unwrap(), summary.pages, "one reservation per page");
    assert_eq!(env.assert_converged(&item.item_id).await, 30_000);
}
