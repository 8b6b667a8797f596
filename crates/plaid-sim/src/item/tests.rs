//! Tests of a whole Item: sync pages converge on ground truth through `advance`, pagination
//! detects mutation, balances follow transactions, bulk Items stay lazy, written JSON matches serde.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Item, NewItem, SyncError};
use crate::cursor::Cursor;
use crate::ids::{self, ID_LEN};
use crate::model::Txn;
use crate::world::institutions;

fn item(seed: u64, bulk: Option<u64>) -> Item {
    Item::new(new_item(seed, bulk))
}

fn new_item(seed: u64, bulk: Option<u64>) -> NewItem {
    NewItem {
        seed,
        persona_seed: seed,
        item_id: ids::base62(seed, ID_LEN),
        access_token: "access-sandbox-x".into(),
        institution: institutions::find("ins_109508").expect("known institution"),
        webhook: None,
        created_at: DateTime::parse_from_rfc3339("2025-06-15T12:00:00Z").expect("valid timestamp").with_timezone(&Utc),
        username: "user_good".into(),
        products: vec!["transactions".into()],
        days: 730,
        bulk,
    }
}

/// Applies every page from `cursor` and returns the final cursor.
fn drain(item: &Item, state: &mut HashMap<String, Arc<Txn>>, mut cursor: String, count: u64) -> String {
    loop {
        let page = item.sync(Some(&cursor), count, None).expect("page");
        assert!((page.added.len() + page.modified.len() + page.removed.len()) as u64 <= count);
        for t in page.added.iter().chain(page.modified.iter()) {
            state.insert(t.transaction_id.clone(), t.clone());
        }
        for (id, _) in &page.removed {
            assert!(state.remove(id).is_some(), "removed unknown {id}");
        }
        cursor = page.next_cursor;
        if !page.has_more {
            return cursor;
        }
    }
}

fn truth(item: &Item) -> Vec<Arc<Txn>> {
    item.transactions()
}

fn sorted(state: &HashMap<String, Arc<Txn>>) -> Vec<Arc<Txn>> {
    let mut v: Vec<_> = state.values().cloned().collect();
    v.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
    v
}

#[test]
fn sync_converges_through_advances_for_any_page_size() {
    for count in [1, 7, 100, 500] {
        let mut it = item(5, None);
        let mut state = HashMap::new();
        let mut cursor = drain(&it, &mut state, String::new(), count);
        assert_eq!(sorted(&state), truth(&it));
        for days in [1, 3, 10] {
            let r = it.advance(days);
            assert!(r.added > 0);
            cursor = drain(&it, &mut state, cursor, count);
            assert_eq!(sorted(&state), truth(&it), "count {count}");
        }
    }
}

#[test]
fn a_late_first_sync_sees_only_the_net_effect() {
    let mut it = item(6, None);
    it.advance(20);
    let page = it.sync(None, 1_000_000, None).expect("page");
    assert!(page.modified.is_empty() && page.removed.is_empty());
    assert_eq!(page.added.len() as u64, it.transactions_count());
}

#[test]
fn mutation_mid_pagination_is_detected() {
    let mut it = item(7, None);
    let first = it.sync(None, 10, None).expect("page");
    assert!(first.has_more);
    it.advance(1);
    assert_eq!(it.sync(Some(&first.next_cursor), 10, None).err(), Some(SyncError::MutationDuringPagination));
}

#[test]
fn balances_follow_transactions() {
    let mut it = item(8, None);
    let before = it.live_balances();
    let r = it.advance(5);
    assert!(r.posted > 0);
    let after = it.live_balances();
    assert_ne!(before, after);
    // Checking: current = base − Σ posted changes.
    let a = &it.accounts[0];
    assert_eq!(after[0].current, Some(a.base - a.posted_delta));
    assert_eq!(after[0].available, Some(a.base - a.posted_delta - a.pending_sum));
}

#[test]
fn bulk_items_converge_after_advance() {
    let mut it = item(10, Some(5_000));
    let mut state = HashMap::new();
    let cursor = drain(&it, &mut state, String::new(), 500);
    assert_eq!(state.len(), 5_000);
    let r = it.advance(3);
    assert!(r.modified + r.removed > 0 && r.modified <= 30 && r.removed <= 15 + r.posted);
    drain(&it, &mut state, cursor, 500);
    assert_eq!(sorted(&state), truth(&it));
}

/// Sync pages and ground truth use `Txn::write_json`; it must give serde's exact bytes for
/// everything the world generates (every slot, pending, posted, modified, crypto, both datetime
/// styles of institutions).
#[test]
fn written_json_matches_serde_for_generated_transactions() {
    for institution in ["ins_109508", "ins_109511"] {
        let mut it = Item::new(NewItem {
            institution: institutions::find(institution).expect("known institution"),
            days: 400,
            ..new_item(11, None)
        });
        it.advance(12);
        let page = it.sync(None, 1_000_000, None).expect("page");
        let all: Vec<Arc<Txn>> = truth(&it).into_iter().chain(page.added).collect();
        assert!(all.iter().any(|t| t.pending) && all.iter().any(|t| t.pending_transaction_id.is_some()));
        for t in &all {
            for original in [false, true] {
                let mut out = Vec::new();
                t.write_json(&mut out, original);
                let expected = serde_json::to_vec(&t.json(original)).expect("json");
                assert_eq!(out, expected, "{}", String::from_utf8_lossy(&expected));
            }
        }
    }
}

#[test]
fn bulk_items_are_lazy() {
    let it = item(9, Some(1_000_000));
    assert_eq!(it.transactions_count(), 1_000_000);
    let page = it.sync(None, 500, None).expect("page");
    assert_eq!(page.added.len(), 500);
    assert!(page.has_more);
    let mut c = Cursor::decode(&page.next_cursor).expect("cursor");
    c.pos = 999_900;
    let last = it.sync(Some(&c.encode()), 500, None).expect("page");
    assert_eq!(last.added.len(), 100);
    assert!(!last.has_more);
}
