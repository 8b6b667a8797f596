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
