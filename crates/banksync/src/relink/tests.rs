//! The merge's decisions, on hand-made rows (the store and the simulator are exercised in `tests/relink.rs` and
//! the store contract).

use chrono::{DateTime, NaiveDate, Utc};

use super::plan;
use crate::domain::{
    AccountId, AccountMatchedBy, Item, ItemFingerprint, ItemStatus, RelinkAccount, RelinkGuard, RelinkSnapshot,
    RelinkTransaction,
};
use crate::vault::Sealed;

fn item(id: &str) -> Item {
    let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
    Item {
        id: format!("ref-{id}").into(),
        item_id: id.into(),
        user_id: "u".into(),
        institution_id: Some("ins_1".into()),
        institution_name: None,
        access_token: Sealed { key_id: "k".into(), nonce: vec![0; 12], ciphertext: vec![1] },
        cursor: Some("c".into()),
        status: ItemStatus::Good,
        error_code: None,
        error_message: None,
        display_message: None,
        consent_expires_at: None,
        disconnect_at: None,
        new_accounts_available: false,
        last_sync_at: None,
        last_successful_sync_at: None,
        created_at: at,
        updated_at: at,
        replaces_item_id: None,
        relink_report: None,
    }
}

fn account(id: &str, pid: Option<&str>, mask: &str, subtype: &str) -> RelinkAccount {
    RelinkAccount {
        account_id: id.into(),
        persistent_account_id: pid.map(Into::into),
        mask: Some(mask.into()),
        account_type: "depository".into(),
        subtype: Some(subtype.into()),
        removed: false,
    }
}

fn txn(id: &str, account: &str, day: u32, amount: &str, name: &str) -> RelinkTransaction {
    let date = NaiveDate::from_ymd_opt(2026, 1, day).unwrap();
    RelinkTransaction {
        transaction_id: id.into(),
        account_id: account.into(),
        date,
        datetime: date.and_hms_opt(12, 0, 0).unwrap().and_utc(),
        amount: amount.into(),
        name: name.into(),
        user_note: None,
        user_category: None,
    }
}

fn noted(mut t: RelinkTransaction, note: &str) -> RelinkTransaction {
    t.user_note = Some(note.into());
    t
}

fn snapshot(
    old_accounts: Vec<RelinkAccount>,
    new_accounts: Vec<RelinkAccount>,
    old_transactions: Vec<RelinkTransaction>,
    new_transactions: Vec<RelinkTransaction>,
) -> RelinkSnapshot {
    let fp = ItemFingerprint { cursor: Some("c".into()), rows: 0, last_update: None };
    RelinkSnapshot {
        old_accounts,
        new_accounts,
        old_transactions,
        new_transactions,
        guard: RelinkGuard { new: fp.clone(), old: fp },
    }
}

#[test]
fn accounts_pair_by_persistent_id_then_by_mask_and_unpaired_ones_are_kept() {
    let olds = vec![
        account("o-check", Some("P1"), "0000", "checking"),
        account("o-save", None, "1111", "savings"),
        account("o-gone", None, "9999", "checking"),
        // Same mask, but both carry persistent ids and they differ: another account.
        account("o-other", Some("P7"), "2222", "checking"),
    ];
    let news = vec![
        account("n-check", Some("P1"), "0001", "checking"),
        account("n-save", Some("P2"), "1111", "savings"),
        account("n-other", Some("P8"), "2222", "checking"),
    ];
    let p = plan(&item("new"), &item("old"), snapshot(olds, news, vec![], vec![]), Utc::now());
    let pairs: Vec<_> = p
        .report
        .accounts_matched
        .iter()
        .map(|m| (m.old_account_id.as_str(), m.new_account_id.as_str(), m.matched_by))
        .collect();
    assert_eq!(
        pairs,
        [
            ("o-check", "n-check", AccountMatchedBy::PersistentAccountId),
            ("o-save", "n-save", AccountMatchedBy::MaskAndSubtype)
        ]
    );
    assert_eq!(p.kept_accounts, [AccountId::from("o-gone"), "o-other".into()]);
    assert!(p.report.ambiguous.is_empty());
}

#[test]
fn accounts_that_cannot_be_told_apart_are_refused_and_kept() {
    let olds = vec![account("o-a", None, "0000", "checking"), account("o-b", None, "0000", "checking")];
    let news = vec![account("n-a", None, "0000", "checking")];
    let p = plan(&item("new"), &item("old"), snapshot(olds, news, vec![], vec![]), Utc::now());
    assert!(p.report.accounts_matched.is_empty());
    assert_eq!(p.kept_accounts.len(), 2);
    assert_eq!(p.report.ambiguous.len(), 2);
    assert_eq!((p.report.ambiguous[0].old_count, p.report.ambiguous[0].new_count), (2, 1));
}

#[test]
fn transactions_pair_as_multisets_and_refuse_different_counts() {
    let olds = vec![account("o", Some("P"), "0000", "checking")];
    let news = vec![account("n", Some("P"), "0000", "checking")];
    let old_txns = vec![
        txn("o-old", "o", 1, "5", "Before the new history"),
        noted(txn("o-1", "o", 3, "12.5", "Coffee"), "with Ann"),
        txn("o-2", "o", 3, "12.5", "Coffee"),
        noted(txn("o-3", "o", 4, "40", "Gas"), "road trip"),
        txn("o-4", "o", 4, "40", "Gas"),
        noted(txn("o-5", "o", 5, "7", "Gone from Plaid"), "keep me"),
        txn("o-6", "o", 6, "1", "Unique"),
    ];
    let new_txns = vec![
        txn("n-1", "n", 3, "12.5", "Coffee"),
        txn("n-2", "n", 3, "12.5", "Coffee"),
        txn("n-3", "n", 4, "40", "Gas"),
        noted(txn("n-6", "n", 6, "1", "Unique"), "own note"),
        txn("n-first", "n", 2, "3", "First of the new history"),
    ];
    let mut six = noted(txn("o-6b", "o", 6, "2", "Unique too"), "old");
    six.user_category = Some("FOOD".into());
    let mut new_six = txn("n-6b", "n", 6, "2", "Unique too");
    new_six.user_note = Some("own".into());
    let old_txns: Vec<_> = old_txns.into_iter().chain([six]).collect();
    let new_txns: Vec<_> = new_txns.into_iter().chain([new_six]).collect();
    let p = plan(&item("new"), &item("old"), snapshot(olds, news, old_txns, new_txns), Utc::now());
    let r = &p.report;

    // Kept: the one before the new account's first date (Jan 2).
    assert_eq!(r.kept_old, 1);
    assert_eq!(p.account_moves[0].keep_before, NaiveDate::from_ymd_opt(2026, 1, 2));
    // Paired: two coffees (in order of time, then id), o-6 and o-6b.
    assert_eq!(r.transactions_matched, 4);
    // Gas: two old, one new: refused, reported, the old ones dropped; o-5 has no counterpart.
    assert_eq!(r.ambiguous.len(), 1);
    assert_eq!(
        (r.ambiguous[0].name.as_deref(), r.ambiguous[0].old_count, r.ambiguous[0].new_count),
        (Some("Gas"), 2, 1)
    );
    assert_eq!(r.dropped_old, 3);
    // The coffee note goes to n-1 (first in order); o-6b's category is carried, its note is not (n-6b has one).
    let carries: Vec<_> =
        p.carries.iter().map(|c| (c.new.as_str(), c.user_note.as_deref(), c.user_category.as_deref())).collect();
    assert_eq!(carries, [("n-1", Some("with Ann"), None), ("n-6b", None, Some("FOOD"))]);
    assert_eq!(r.notes_carried, 2);
    let lost: Vec<_> = r
        .edits_not_carried
        .iter()
        .map(|e| (e.transaction_id.as_str(), e.user_note.as_deref(), e.user_category.as_deref()))
        .collect();
    assert_eq!(lost, [("o-3", Some("road trip"), None), ("o-5", Some("keep me"), None), ("o-6b", Some("old"), None)]);
}

#[test]
fn an_account_without_new_history_keeps_all_its_old_transactions() {
    let olds = vec![account("o", None, "0000", "checking"), account("o-closed", None, "5555", "savings")];
    let news = vec![account("n", None, "0000", "checking")];
    let old_txns = vec![txn("a", "o", 3, "1", "A"), txn("b", "o", 4, "2", "B"), txn("c", "o-closed", 4, "2", "C")];
    let p = plan(&item("new"), &item("old"), snapshot(olds, news, old_txns, vec![]), Utc::now());
    assert_eq!(p.account_moves[0].keep_before, None);
    assert_eq!(p.kept_accounts, [AccountId::from("o-closed")]);
    assert_eq!((p.report.kept_old, p.report.dropped_old, p.report.transactions_matched), (3, 0, 0));
}
