//! The link flow against the simulator: link token, exchange + first sync, duplicate refusal, update-mode repair,
//! removal.

mod support;

use std::time::Duration;

use banksync::domain::{ItemRef, ItemStatus, PlaidItemId, SyncRunStatus};
use banksync::link::{LinkError, LinkInstitution, LinkMetadata};
use banksync::store::StoreError;
use banksync::sync::{SyncOptions, SyncTrigger};
use plaid::ItemRemoveRequest;
use serde_json::{Value, json};
use support::Env;

fn recording() -> plaid_sim::SimConfig {
    plaid_sim::SimConfig { record_exchanges: true, ..support::sim_config() }
}

async fn exchanges(env: &Env, path: &str) -> Vec<Value> {
    let all = env.sim_get("/sim/exchanges").await;
    all.as_array().unwrap().iter().filter(|e| e["path"] == path).cloned().collect()
}

/// The link's first sync succeeded and has ended: its run is recorded before the engine lets go of the Item, and a
/// sync asked for in between would join the finishing run instead of starting one.
async fn first_sync_done(env: &Env, item_ref: &ItemRef) {
    env.eventually("the first sync", Duration::from_secs(10), || async {
        let runs = env.store.list_sync_runs(item_ref, 10).await.unwrap();
        runs.iter().any(|r| r.triggered_by == "link" && r.status == SyncRunStatus::Succeeded)
            && !env.engine.is_syncing(item_ref)
    })
    .await;
}

fn metadata(id: &str, name: &str) -> Option<LinkMetadata> {
    Some(LinkMetadata {
        institution: Some(LinkInstitution { institution_id: id.into(), name: name.into() }),
        ..LinkMetadata::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_token_exchange_and_first_sync() {
    let env = support::sqlite(recording(), SyncOptions::default()).await;
    let link = env.link_service();

    let token = link.create_link_token(&env.user.id, None).await.unwrap();
    assert!(!token.link_token.is_empty());
    assert!(token.expiration > chrono::Utc::now());
    let request = &exchanges(&env, "/link/token/create").await[0]["request"];
    assert_eq!(request["user"]["client_user_id"], env.user.id.as_str());
    assert_eq!(request["webhook"], "http://127.0.0.1:9/webhooks/plaid");
    assert_eq!(request["transactions"]["days_requested"], 730);
    assert_eq!(request["products"], json!(["transactions"]));

    let public_token = env.public_token("ins_109508", "user_good").await;
    let linked =
        link.exchange(&env.user.id, &public_token, metadata("ins_109508", "First Platypus Bank"), false).await.unwrap();
    assert_eq!(linked.item.institution_id.as_deref(), Some("ins_109508"));
    assert_eq!(linked.item.institution_name.as_deref(), Some("First Platypus Bank"));
    assert_eq!(linked.item.status, ItemStatus::Good);
    assert!(!linked.accounts.is_empty());
    assert!(linked.accounts.iter().all(|a| a.item_id == linked.item.item_id));

    first_sync_done(&env, &linked.item.id).await;
    env.assert_converged(&linked.item.item_id).await;

    // The access token is sealed: it appears nowhere in the database files or in what the service returns.
    let exchange = &exchanges(&env, "/item/public_token/exchange").await[0];
    let access_token = exchange["response"]["access_token"].as_str().unwrap().to_owned();
    assert!(!serde_json::to_string(&linked).unwrap().contains(&access_token));
    for entry in std::fs::read_dir(env_dir(&env)).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(access_token.len()).any(|w| w == access_token.as_bytes()), "plaintext token on disk");
    }

    // A used public token is refused and nothing more is stored.
    let err = link.exchange(&env.user.id, &public_token, None, false).await.unwrap_err();
    assert_eq!(err.plaid_error().map(|e| e.error_code.as_str()), Some("INVALID_PUBLIC_TOKEN"), "{err:?}");
    assert_eq!(env.store.list_items(&env.user.id).await.unwrap().len(), 1);
}

/// The SQLite database directory of an Env (the only place a token could leak to disk).
fn env_dir(env: &Env) -> std::path::PathBuf {
    env.db_dir().expect("a SQLite env")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_item_at_the_same_institution_is_refused_and_removed_at_plaid() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let link = env.link_service();
    let first = env.public_token("ins_109508", "user_good").await;
    let first = link.exchange(&env.user.id, &first, None, false).await.unwrap();

    let again = env.public_token("ins_109508", "user_good").await;
    let err = link.exchange(&env.user.id, &again, None, false).await.unwrap_err();
    let LinkError::Conflict(message) = &err else { panic!("{err:?}") };
    assert!(message.contains("already linked"), "{message}");
    assert_eq!(env.store.list_items(&env.user.id).await.unwrap().len(), 1);
    let at_plaid = env.sim_get("/sim/items").await;
    let ids: Vec<_> = at_plaid.as_array().unwrap().iter().map(|i| i["item_id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids, vec![first.item.item_id.clone()], "the refused duplicate was removed at Plaid");

    // Asked for explicitly, a second connection is allowed.
    let third = env.public_token("ins_109508", "user_good").await;
    link.exchange(&env.user.id, &third, None, true).await.unwrap();
    assert_eq!(env.store.list_items(&env.user.id).await.unwrap().len(), 2);
    // Another institution is never a duplicate.
    let other = env.public_token("ins_109509", "user_good").await;
    link.exchange(&env.user.id, &other, None, false).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_mode_repairs_a_login_required_item() {
    let env = support::sqlite(recording(), SyncOptions::default()).await;
    let link = env.link_service();
    let public_token = env.public_token("ins_109508", "user_good").await;
    let linked = link.exchange(&env.user.id, &public_token, None, false).await.unwrap();
    first_sync_done(&env, &linked.item.id).await;
    let item = linked.item;

    env.sim_post(&format!("/sim/items/{}/reset_login", item.item_id), json!({})).await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap_err();
    let broken = env.item(&item.item_id).await;
    assert_eq!(broken.status, ItemStatus::LoginRequired);
    assert!(broken.display_message.is_some());

    let token = link.create_link_token(&env.user.id, Some(&item.item_id)).await.unwrap();
    assert_eq!(token.item_id.as_ref().map(PlaidItemId::as_str), Some(item.item_id.as_str()));
    let request = exchanges(&env, "/link/token/create").await.pop().unwrap()["request"].clone();
    assert!(request.get("products").is_none(), "no products in update mode: {request}");
    assert!(request["access_token"].is_string());

    support::repair_through_link(&env, &token.link_token).await;
    link.repaired(&env.user.id, &item.item_id).await.unwrap();
    assert_eq!(env.item(&item.item_id).await.status, ItemStatus::Good);
    env.eventually("the sync after repair", Duration::from_secs(10), || async {
        let runs = env.store.list_sync_runs(&item.id, 10).await.unwrap();
        runs[0].status == SyncRunStatus::Succeeded && runs.len() == 3
    })
    .await;
    let healed = env.item(&item.item_id).await;
    assert_eq!((healed.status, healed.error_code), (ItemStatus::Good, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_users_items_are_not_found() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let link = env.link_service();
    let item = env.new_item("ins_109508", "user_good").await;
    let mallory = env.store.create_user("mallory", "$argon2id$x").await.unwrap();
    assert!(matches!(link.create_link_token(&mallory.id, Some(&item.item_id)).await, Err(LinkError::NotFound)));
    assert!(matches!(link.repaired(&mallory.id, &item.item_id).await, Err(LinkError::NotFound)));
    assert!(matches!(link.remove(&mallory.id, &item.item_id).await, Err(LinkError::NotFound)));
    assert!(matches!(link.remove(&env.user.id, &"no-such-item".into()).await, Err(LinkError::NotFound)));
    env.item(&item.item_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_deletes_at_plaid_and_locally_even_when_plaid_already_forgot_it() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let link = env.link_service();
    let item = env.new_item("ins_109508", "user_good").await;
    env.engine.sync_item(&item, SyncTrigger::Manual).await.unwrap();
    link.remove(&env.user.id, &item.item_id).await.unwrap();
    assert!(matches!(env.store.get_item(&env.user.id, &item.item_id).await, Err(StoreError::NotFound)));
    assert!(env.stored(&item.item_id).await.is_empty());
    assert!(env.accounts(&item.item_id).await.is_empty());
    assert!(env.sim_get("/sim/items").await.as_array().unwrap().is_empty());

    let gone = env.new_item("ins_109509", "user_good").await;
    env.plaid.item_remove(&ItemRemoveRequest::new(env.access_token(&gone))).await.unwrap();
    link.remove(&env.user.id, &gone.item_id).await.unwrap();
    assert!(env.store.list_items(&env.user.id).await.unwrap().is_empty());
}
