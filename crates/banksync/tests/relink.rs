//! Relink without duplicates, against the simulator: a broken Item is replaced by a new Item for the same login
//! and bank; the merge leaves exactly the simulator's new history plus the old history it does not cover, with the
//! user's notes and categories on the right transactions, the old Item gone here and at Plaid, an ambiguous match
//! refused and reported, and a second merge doing nothing. On SQLite and PostgreSQL.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::time::Duration;

use banksync::domain::{
    AccountMatchedBy, ItemRef, ItemStatus, MergeOutcome, NewTransaction, PlaidItemId, SyncBatch, SyncPage,
    SyncRunStatus, UserFieldsPatch,
};
use banksync::link::{LinkError, SameInstitution};
use banksync::relink::{RelinkError, Relinker};
use banksync::store::StoreError;
use banksync::sync::{SyncOptions, SyncTrigger};
use chrono::{Duration as Days, NaiveDate, Utc};
use plaid::{Product, SandboxPublicTokenCreateRequest};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use support::Env;

const BANK: &str = "ins_109508";

/// A transaction's identity across Items: (account, date, amount, name), the account given by its persistent id.
type Key = (String, NaiveDate, Decimal, String);

async fn public_token(env: &Env, institution: &str, days: u32) -> String {
    let request = SandboxPublicTokenCreateRequest::new(institution, [Product::Transactions])
        .credentials("user_good", "pass_good")
        .days_requested(days);
    env.plaid.sandbox_public_token_create(&request).await.unwrap().public_token.expose_secret().to_owned()
}

async fn first_sync_done(env: &Env, item_ref: &ItemRef) {
    env.eventually("the first sync", Duration::from_secs(30), || async {
        let runs = env.store.list_sync_runs(item_ref, 10).await.unwrap();
        runs.iter().any(|r| r.triggered_by == "link" && r.status == SyncRunStatus::Succeeded)
            && !env.engine.is_syncing(item_ref)
    })
    .await;
}

/// account_id → persistent_account_id of the Item's accounts.
async fn persistent_ids(env: &Env, item_id: &PlaidItemId) -> HashMap<String, String> {
    env.accounts(item_id)
        .await
        .into_iter()
        .map(|a| (a.account_id.to_string(), a.persistent_account_id.expect("the simulator sends one")))
        .collect()
}

fn note(text: &str) -> UserFieldsPatch {
    UserFieldsPatch { note: Some(Some(text.into())), category: None }
}

fn category(text: &str) -> UserFieldsPatch {
    UserFieldsPatch { note: None, category: Some(Some(text.into())) }
}

async fn relink_merges_exactly(env: Env) {
    let link = env.link_service();
    let relinker = Relinker::new(env.store.clone(), env.plaid.clone(), env.vault.clone());

    // The old Item: two years of history, synced.
    let old = env.new_item(BANK, "user_good").await;
    env.engine.sync_item(&old, SyncTrigger::Manual).await.unwrap();
    assert_eq!(relinker.merge_replaced(&old).await.unwrap(), None, "an Item that replaces nothing");
    let old_pids = persistent_ids(&env, &old.item_id).await;
    let old_txns = env.stored(&old.item_id).await;
    let key = |t: &banksync::domain::Transaction| -> Key {
        (old_pids[t.fields.account_id.as_str()].clone(), t.fields.date, t.fields.amount, t.fields.name.clone())
    };
    let mut key_counts: HashMap<Key, usize> = HashMap::new();
    for t in old_txns.values() {
        *key_counts.entry(key(t)).or_default() += 1;
    }
    // The user's edits: on transactions whose key is unique, posted, in the last month (inside the new Item's
    // 90 days) or from over a year ago (outside them).
    let today = Utc::now().date_naive();
    let pick = |from: i64, to: i64, skip: usize| {
        old_txns
            .values()
            .filter(|t| !t.fields.pending && key_counts[&key(t)] == 1)
            .filter(|t| t.fields.date >= today - Days::days(from) && t.fields.date <= today - Days::days(to))
            .nth(skip)
            .unwrap_or_else(|| panic!("a transaction {from}..{to} days ago"))
            .clone()
    };
    let (noted, categorized, ambiguous, ancient) = (pick(30, 5, 0), pick(30, 5, 1), pick(30, 5, 2), pick(600, 400, 0));
    let store = &env.store;
    let user = &env.user.id;
    store.update_transaction_user_fields(user, &noted.transaction_id, &note("lunch with Ann")).await.unwrap();
    store.update_transaction_user_fields(user, &noted.transaction_id, &category("Friends")).await.unwrap();
    store.update_transaction_user_fields(user, &categorized.transaction_id, &category("Travel")).await.unwrap();
    store.update_transaction_user_fields(user, &ancient.transaction_id, &note("from the old days")).await.unwrap();
    store.update_transaction_user_fields(user, &ambiguous.transaction_id, &note("which one?")).await.unwrap();
    // A second, identical copy of `ambiguous` on the old side: two old, one new → refused, not guessed.
    let copy = NewTransaction {
        transaction_id: "crafted-copy".into(),
        fields: ambiguous.fields.clone(),
        raw: store.get_transaction_raw(user, &ambiguous.transaction_id).await.unwrap(),
    };
    let batch = SyncBatch { page: SyncPage { added: vec![copy], ..SyncPage::default() }, next_cursor: None };
    store.apply_sync(&env.item(&old.item_id).await, &batch).await.unwrap();
    store.update_transaction_user_fields(user, &"crafted-copy".into(), &note("or this one?")).await.unwrap();
    let old_txns = env.stored(&old.item_id).await;

    // The bank connection breaks.
    env.sim_post(&format!("/sim/items/{}/reset_login", old.item_id), json!({})).await;
    env.engine.sync_item(&old, SyncTrigger::Manual).await.unwrap_err();
    assert_eq!(env.item(&old.item_id).await.status, ItemStatus::LoginRequired);

    // Linking the bank again is refused with the way to replace the old Item...
    let again = public_token(&env, BANK, 90).await;
    let err = link.exchange(user, &again, None, false).await.unwrap_err();
    let LinkError::Conflict(message) = &err else { panic!("{err:?}") };
    assert!(message.contains(old.item_id.as_str()) && message.contains("replaces_item_id"), "{message}");
    // ...which cannot point at another bank's Item or at nothing.
    let other = env.new_item("ins_109509", "user_good").await;
    let token = public_token(&env, BANK, 90).await;
    let wrong = link.exchange_with(user, &token, None, SameInstitution::Replace(other.item_id.clone())).await;
    assert!(matches!(wrong, Err(LinkError::InvalidReplace(_))), "{wrong:?}");
    let token = public_token(&env, BANK, 90).await;
    let missing = link.exchange_with(user, &token, None, SameInstitution::Replace("nope".into())).await;
    assert!(matches!(missing, Err(LinkError::ReplacedNotFound)), "{missing:?}");

    // The replacement: same login, same bank, 90 days of history.
    let token = public_token(&env, BANK, 90).await;
    let linked = link.exchange_with(user, &token, None, SameInstitution::Replace(old.item_id.clone())).await.unwrap();
    let new = linked.item;
    assert_eq!(new.replaces_item_id.as_ref(), Some(&old.item_id));
    let token = public_token(&env, BANK, 90).await;
    let twice = link.exchange_with(user, &token, None, SameInstitution::Replace(old.item_id.clone())).await;
    // A second replacement is refused while the first is pending, or because the old Item is already merged away
    // (the new Item's first sync runs at once; tests/api/relink.rs holds it back to see the pending case).
    assert!(matches!(twice, Err(LinkError::ReplaceConflict(_) | LinkError::ReplacedNotFound)), "{twice:?}");
    first_sync_done(&env, &new.id).await;

    // The sync job merges the old Item as soon as the new one's history is complete (the report is stored with the
    // merge, then again once Plaid answered the old Item's removal).
    env.eventually("the merge and the removal at Plaid", Duration::from_secs(30), || async {
        env.item(&new.item_id).await.relink_report.is_some_and(|r| r.removed_at_plaid || r.plaid_error.is_some())
    })
    .await;
    let report = env.item(&new.item_id).await.relink_report.expect("a merge");

    // The new Item holds exactly the simulator's history for it, plus the old history it does not cover.
    let truth = env.ground_truth(&new.item_id).await;
    let new_pids = persistent_ids(&env, &new.item_id).await;
    let account_by_pid: HashMap<&String, &String> = new_pids.iter().map(|(a, p)| (p, a)).collect();
    let mut first_date: HashMap<&str, NaiveDate> = HashMap::new();
    for t in truth.values() {
        let date = NaiveDate::from_str(t["date"].as_str().unwrap()).unwrap();
        let first = first_date.entry(t["account_id"].as_str().unwrap()).or_insert(date);
        *first = (*first).min(date);
    }
    let kept: BTreeMap<_, _> = old_txns
        .iter()
        .filter(|(_, t)| {
            let account = account_by_pid[&old_pids[t.fields.account_id.as_str()]];
            first_date.get(account.as_str()).is_none_or(|first| t.fields.date < *first)
        })
        .collect();
    let stored = env.stored(&new.item_id).await;
    let expected: std::collections::BTreeSet<&str> =
        truth.keys().chain(kept.keys().copied()).map(String::as_str).collect();
    let missing: Vec<_> = expected.iter().filter(|id| !stored.contains_key(**id)).take(5).collect();
    let extra: Vec<_> = stored.keys().filter(|id| !expected.contains(id.as_str())).take(5).collect();
    assert!(
        missing.is_empty() && extra.is_empty() && stored.len() == expected.len(),
        "the Plaid history once, plus the old days: {} stored, {} expected; missing e.g. {missing:?}, extra e.g. {extra:?}",
        stored.len(),
        expected.len()
    );
    for (id, t) in &truth {
        let s = &stored[id];
        assert_eq!(s.fields.amount, Decimal::from_str(&t["amount"].to_string()).unwrap(), "{id}");
        assert_eq!(
            (s.fields.name.as_str(), s.fields.account_id.as_str()),
            (t["name"].as_str().unwrap(), t["account_id"].as_str().unwrap())
        );
    }
    for (id, t) in &kept {
        let s = &stored[*id];
        assert_eq!((s.fields.date, s.fields.amount, &s.fields.name), (t.fields.date, t.fields.amount, &t.fields.name));
        assert_eq!(&new_pids[s.fields.account_id.as_str()], &old_pids[t.fields.account_id.as_str()], "moved over");
    }
    assert!(kept.len() > 1000, "two years minus 90 days are kept: {}", kept.len());

    // Edits: on the new counterparts, or kept with the old transaction, or reported.
    let counterpart = |old: &banksync::domain::Transaction| {
        let k = key(old);
        let found: Vec<_> = stored
            .values()
            .filter(|s| truth.contains_key(s.transaction_id.as_str()))
            .filter(|s| {
                (new_pids[s.fields.account_id.as_str()].clone(), s.fields.date, s.fields.amount, s.fields.name.clone())
                    == k
            })
            .collect();
        assert_eq!(found.len(), 1, "one counterpart of {}", old.transaction_id);
        found[0].clone()
    };
    let n = counterpart(&noted);
    assert_eq!((n.user_note.as_deref(), n.user_category.as_deref()), (Some("lunch with Ann"), Some("Friends")));
    let c = counterpart(&categorized);
    assert_eq!((c.user_note.as_deref(), c.user_category.as_deref()), (None, Some("Travel")));
    assert_eq!(stored[ancient.transaction_id.as_str()].user_note.as_deref(), Some("from the old days"));
    let a = counterpart(&ambiguous);
    assert_eq!(a.user_note, None, "an ambiguous match carries nothing");
    let edited = stored.values().filter(|s| s.user_note.is_some() || s.user_category.is_some()).count();
    assert_eq!(edited, 3);

    // The report says all of it.
    assert_eq!(report.outcome, MergeOutcome::Merged);
    assert_eq!(report.replaced_item_id, old.item_id);
    assert_eq!(report.accounts_matched.len(), old_pids.len());
    assert!(report.accounts_matched.iter().all(|m| m.matched_by == AccountMatchedBy::PersistentAccountId));
    assert!(report.accounts_kept.is_empty());
    assert_eq!(report.transactions_matched, truth.len() as u64 - 1);
    assert_eq!(report.notes_carried, 2);
    assert_eq!(report.kept_old, kept.len() as u64);
    assert_eq!(report.dropped_old, 2);
    assert_eq!(report.ambiguous.len(), 1, "{:?}", report.ambiguous);
    let amb = &report.ambiguous[0];
    assert_eq!((amb.old_count, amb.new_count, amb.date), (2, 1, Some(ambiguous.fields.date)));
    assert_eq!(amb.name.as_deref(), Some(ambiguous.fields.name.as_str()));
    let mut lost: Vec<_> = report.edits_not_carried.iter().map(|e| e.user_note.clone().unwrap()).collect();
    lost.sort();
    assert_eq!(lost, ["or this one?", "which one?"]);
    assert!(report.removed_at_plaid, "{:?}", report.plaid_error);

    // The old Item is gone here and at Plaid; the report is stored with the new Item.
    assert!(matches!(env.store.get_item(user, &old.item_id).await, Err(StoreError::NotFound)));
    assert!(env.accounts(&old.item_id).await.is_empty());
    let at_plaid: Vec<Value> = env.sim_get("/sim/items").await.as_array().unwrap().clone();
    assert!(at_plaid.iter().all(|i| i["item_id"] != old.item_id.as_str()), "removed at Plaid");
    let merged = env.item(&new.item_id).await;
    assert_eq!(merged.relink_report.as_ref(), Some(&report));
    assert_eq!(merged.replaces_item_id.as_ref(), Some(&old.item_id));

    // Merging again does nothing; later syncs keep the merged state.
    assert_eq!(relinker.merge_replaced(&merged).await.unwrap(), None);
    env.engine.sync_item(&merged, SyncTrigger::Manual).await.unwrap();
    assert_eq!(env.stored(&new.item_id).await.len(), stored.len());
    env.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relink_merges_exactly_on_sqlite() {
    relink_merges_exactly(support::sqlite(support::sim_config(), SyncOptions::default()).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relink_merges_exactly_on_postgres() {
    if let Some(env) = support::postgres(support::sim_config(), SyncOptions::default()).await {
        relink_merges_exactly(env).await;
    }
}

/// Before the new Item's history is synced there is nothing to merge into; after the replaced Item was removed by
/// the user there is nothing to merge from (recorded once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_waits_for_the_history_and_records_a_vanished_old_item() {
    let env = support::sqlite(support::sim_config(), SyncOptions::default()).await;
    let link = env.link_service();
    let relinker = Relinker::new(env.store.clone(), env.plaid.clone(), env.vault.clone());
    let old = env.new_item(BANK, "user_good").await;
    let new = env.new_item(BANK, "user_good").await;
    env.store.set_item_replaces(&new.id, &old.item_id).await.unwrap();
    let new = env.item(&new.item_id).await;
    assert!(matches!(relinker.merge_replaced(&new).await, Err(RelinkError::NotReady)));

    env.engine.sync_item(&new, SyncTrigger::Manual).await.unwrap();
    link.remove(&env.user.id, &old.item_id).await.unwrap();
    let report = relinker.merge_replaced(&new).await.unwrap().expect("a report");
    assert_eq!(report.outcome, MergeOutcome::ReplacedItemGone);
    assert_eq!(env.item(&new.item_id).await.relink_report, Some(report));
    assert_eq!(relinker.merge_replaced(&new).await.unwrap(), None);
    assert_eq!(env.assert_converged(&new.item_id).await, env.ground_truth(&new.item_id).await.len());
}
