//! Tests of a whole Item: sync pages converge on ground truth through `advance`, pagination
//! detects mutation, balances follow transactions, bulk Items stay lazy, written JSON matches serde.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use super::phase::At;
use super::{INITIAL_DAYS, Item, NewItem, Phase, SyncError};
use crate::assets::AssetUrls;
use crate::cursor::Cursor;
use crate::ids::{self, ID_LEN};
use crate::model::Txn;
use crate::world::institutions;

fn item(seed: u64, bulk: Option<u64>) -> Item {
    Item::new(new_item(seed, bulk))
}

fn created_at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-15T12:00:00Z").expect("valid timestamp").with_timezone(&Utc)
}

fn new_item(seed: u64, bulk: Option<u64>) -> NewItem {
    NewItem {
        seed,
        persona_seed: seed,
        item_id: ids::base62(seed, ID_LEN),
        access_token: "access-sandbox-x".into(),
        institution: institutions::find("ins_109508").expect("known institution"),
        webhook: None,
        created_at: created_at(),
        username: "user_good".into(),
        products: vec!["transactions".into()],
        days: 730,
        bulk,
        initial_ready_at: created_at(),
        historical_ready_at: created_at(),
        assets: AssetUrls::default(),
    }
}

/// Applies every page from `cursor` and returns the final cursor.
fn drain(item: &Item, state: &mut HashMap<String, Arc<Txn>>, mut cursor: String, count: u64) -> String {
    loop {
        let page = item.sync(Some(&cursor), count, None).expect("page");
        assert!((page.added.len() + page.modified.len() + page.removed.len()) as u64 <= count);
        for t in &page.added {
            assert!(state.insert(t.transaction_id.clone(), t.clone()).is_none(), "added twice: {}", t.transaction_id);
        }
        for t in &page.modified {
            assert!(
                state.insert(t.transaction_id.clone(), t.clone()).is_some(),
                "modified unknown {}",
                t.transaction_id
            );
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

fn two_phase_item(seed: u64, bulk: Option<u64>) -> Item {
    Item::new(NewItem { historical_ready_at: created_at() + Duration::hours(1), ..new_item(seed, bulk) })
}

fn oldest(txns: &[Arc<Txn>]) -> NaiveDate {
    txns.iter().map(|t| t.date).min().expect("transactions")
}

#[test]
fn the_initial_phase_holds_the_last_30_days_and_the_history_completes_from_the_same_cursor() {
    for count in [1, 7, 100, 500] {
        let mut it = two_phase_item(12, None);
        assert_eq!(it.phase(), Phase::Initial);
        let today = created_at().date_naive();
        let mut state = HashMap::new();
        let mut cursor = drain(&it, &mut state, String::new(), count);
        let first = sorted(&state);
        assert_eq!(first, truth(&it));
        assert_eq!(oldest(&first), today - Duration::days(INITIAL_DAYS - 1), "count {count}");
        assert_eq!(first.len() as u64, it.transactions_count());
        assert!(it.transactions_count() < it.transactions_count_full());

        // The bank moves on while the older history is still on its way.
        it.advance(3);
        cursor = drain(&it, &mut state, cursor, count);
        assert_eq!(sorted(&state), truth(&it));
        assert!(oldest(&sorted(&state)) >= today - Duration::days(INITIAL_DAYS - 1));

        // The full history arrives: the same cursor brings the older transactions as `added`.
        let settled = it.settle(created_at() + Duration::hours(1));
        assert!(settled.phase_changed);
        assert_eq!(it.phase(), Phase::Historical);
        let known = state.len();
        let page = it.sync(Some(&cursor), 1_000_000, None).expect("page");
        assert!(page.modified.is_empty() && page.removed.is_empty(), "only older history is new");
        assert!(page.added.iter().all(|t| t.date < today - Duration::days(INITIAL_DAYS - 1)));
        cursor = drain(&it, &mut state, cursor, count);
        assert!(state.len() > known);
        assert_eq!(sorted(&state), truth(&it));
        assert_eq!(truth(&it), it.transactions_full());
        assert_eq!(state.len() as u64, it.transactions_count());

        // And life goes on.
        it.advance(2);
        drain(&it, &mut state, cursor, count);
        assert_eq!(sorted(&state), truth(&it), "count {count}");
    }
}

#[test]
fn every_log_position_holds_one_entry_in_every_phase() {
    let mut it = two_phase_item(13, None);
    let check = |it: &Item, hidden: u64| {
        let mut virtual_seen = std::collections::HashSet::new();
        let mut mat_seen = std::collections::HashSet::new();
        for pos in 0..it.log_len() {
            match it.at(pos).expect("entry") {
                At::Virtual(i) => assert!(virtual_seen.insert(i) && it.vpos(i) == Some(pos)),
                At::Mat(j) => assert!(mat_seen.insert(j) && it.mat_pos(j) == pos),
            }
        }
        assert_eq!(virtual_seen.len() as u64, it.history.len() - hidden);
        assert_eq!(mat_seen.len(), it.log.len());
    };
    it.advance(2);
    check(&it, it.split);
    assert!(it.split > 0);
    it.settle(created_at() + Duration::hours(2));
    it.advance(1);
    check(&it, 0);
}

#[test]
fn data_arriving_in_one_step_keeps_the_plain_layout() {
    let mut it = Item::new(NewItem {
        initial_ready_at: created_at() + Duration::minutes(5),
        historical_ready_at: created_at() + Duration::minutes(5),
        ..new_item(14, None)
    });
    assert_eq!(it.phase(), Phase::NotReady);
    assert!(it.transactions().is_empty());
    assert_eq!(it.transactions_count(), 0);
    it.settle(created_at() + Duration::minutes(5));
    assert_eq!(it.phase(), Phase::Historical);
    assert_eq!(it.split, 0);
    // The initial sync is the history in order, from the oldest day.
    let page = it.sync(None, 10, None).expect("page");
    let expected: Vec<Arc<Txn>> = (0..10).map(|i| Arc::new(it.generate(i))).collect();
    assert_eq!(page.added, expected);
}

#[test]
fn the_full_history_arriving_mid_pagination_restarts_it() {
    let mut it = two_phase_item(15, None);
    let first = it.sync(None, 10, None).expect("page");
    assert!(first.has_more);
    it.settle(created_at() + Duration::hours(1));
    assert_eq!(it.sync(Some(&first.next_cursor), 10, None).err(), Some(SyncError::MutationDuringPagination));
    // Restarting from the last final cursor (the beginning) reaches everything.
    let mut state = HashMap::new();
    drain(&it, &mut state, String::new(), 100);
    assert_eq!(sorted(&state), truth(&it));
}

#[test]
fn bulk_items_arrive_in_two_phases_too() {
    let mut it = two_phase_item(16, Some(20_000));
    let mut state = HashMap::new();
    let cursor = drain(&it, &mut state, String::new(), 500);
    assert!(!state.is_empty() && (state.len() as u64) < 20_000);
    assert_eq!(state.len() as u64, it.transactions_count());
    it.settle(created_at() + Duration::hours(1));
    drain(&it, &mut state, cursor, 500);
    assert_eq!(state.len(), 20_000);
    assert_eq!(sorted(&state), truth(&it));
}

#[test]
fn unpulled_activity_stays_at_the_bank_until_a_pull_is_due() {
    let mut it = item(17, None);
    let mut state = HashMap::new();
    let cursor = drain(&it, &mut state, String::new(), 500);
    let before = truth(&it);
    assert_eq!(it.advance_unpulled(2), 2);
    assert_eq!(truth(&it), before, "invisible before Plaid pulls");
    assert!(it.sync(Some(&cursor), 500, None).expect("page").added.is_empty());

    let asked = created_at() + Duration::minutes(1);
    it.request_pull(asked + Duration::seconds(5));
    assert_eq!(it.settle(asked).pulled, None);
    assert_eq!(it.last_successful_update, created_at());
    let settled = it.settle(asked + Duration::seconds(5));
    let report = settled.pulled.expect("pulled");
    assert!(report.added > 0);
    assert_eq!(it.last_successful_update, asked + Duration::seconds(5));
    assert_eq!((it.unpulled_days, it.pull_due), (0, None));
    assert_eq!(it.today, created_at().date_naive() + Duration::days(2));
    drain(&it, &mut state, cursor, 500);
    assert_eq!(sorted(&state), truth(&it));
    assert_ne!(truth(&it), before);
}
