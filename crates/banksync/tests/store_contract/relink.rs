//! The relink merge's store side: one guarded database transaction that carries edits, moves kept history and
//! accounts, deletes the old Item and stores the report, or changes nothing.

use super::*;

fn account(id: &str, pid: Option<&str>, mask: &str, subtype: &str) -> NewAccount {
    NewAccount {
        account_id: id.into(),
        persistent_account_id: pid.map(Into::into),
        name: format!("Account {id}"),
        official_name: None,
        mask: Some(mask.into()),
        account_type: "depository".into(),
        subtype: Some(subtype.into()),
        balances: Balances::default(),
        balance_as_of: None,
        balance_source: BalanceSource::Cached,
    }
}

/// Same content (account aside) under another id: what a relinked Item's copy of a transaction looks like.
fn twin(t: &NewTransaction, id: &str, account: &str) -> NewTransaction {
    let mut copy = t.clone();
    copy.transaction_id = id.into();
    copy.fields.account_id = account.into();
    copy
}

fn note(text: &str) -> UserFieldsPatch {
    UserFieldsPatch { note: Some(Some(text.into())), category: None }
}

pub(crate) async fn relink_merge_is_atomic_and_guarded(s: S) {
    let alice = user(&s, "alice").await;
    let old = item(&s, &alice, "item-old", "ins_1").await;
    let new = item(&s, &alice, "item-new", "ins_1").await;
    s.set_item_replaces(&new.id, &old.item_id).await.unwrap();
    assert_eq!(s.pending_replacement_of(&alice.id, &old.item_id).await.unwrap(), Some(new.item_id.clone()));
    s.upsert_accounts(
        &old,
        &[
            account("o-chk", Some("P1"), "0000", "checking"),
            account("o-sav", None, "1111", "savings"),
            account("o-closed", None, "9999", "savings"),
        ],
        true,
    )
    .await
    .unwrap();
    s.upsert_accounts(
        &new,
        &[account("n-chk", Some("P1"), "0000", "checking"), account("n-sav", Some("P2"), "1111", "savings")],
        true,
    )
    .await
    .unwrap();
    let stored = s
        .list_accounts(&alice.id, &AccountFilter { item_id: Some(new.item_id.clone()), include_removed: false })
        .await
        .unwrap();
    assert_eq!(stored[0].persistent_account_id.as_deref(), Some("P1"), "persistent ids are stored");

    let ancient = txn("o-ancient", "o-chk", "3.00", "2025-06-01T10:00:00Z");
    let lunch = txn("o-lunch", "o-chk", "12.30", "2026-01-05T12:00:00Z");
    let rent = txn("o-rent", "o-sav", "-100", "2026-01-06T09:00:00Z");
    let closed = txn("o-closed-1", "o-closed", "7", "2025-01-01T09:00:00Z");
    s.apply_sync(
        &old,
        &batch(vec![ancient.clone(), lunch.clone(), rent.clone(), closed.clone()], vec![], &[], "old-c1"),
    )
    .await
    .unwrap();
    let new_lunch = twin(&lunch, "n-lunch", "n-chk");
    let new_rent = twin(&rent, "n-rent", "n-sav");
    let first = txn("n-first", "n-chk", "1", "2026-01-01T08:00:00Z");
    s.apply_sync(&new, &batch(vec![new_lunch, new_rent, first], vec![], &[], "new-c1")).await.unwrap();
    for (id, text) in [("o-lunch", "lunch"), ("o-ancient", "ancient"), ("o-closed-1", "closed")] {
        s.update_transaction_user_fields(&alice.id, &id.into(), &note(text)).await.unwrap();
    }

    let (old, new) = (fresh(&s, &old).await, fresh(&s, &new).await);
    let stale = banksync::relink::plan(&new, &old, s.relink_snapshot(&new, &old).await.unwrap(), Utc::now());
    // An edit after the plan was read: the plan is refused and nothing changes.
    s.update_transaction_user_fields(&alice.id, &"o-rent".into(), &note("rent")).await.unwrap();
    assert_eq!(s.apply_relink(&stale).await.unwrap(), None);
    assert!(fresh(&s, &new).await.relink_report.is_none());
    assert_eq!(
        all_txns(&s, &alice, TransactionFilter { item_id: Some(old.item_id.clone()), ..Default::default() })
            .await
            .len(),
        4
    );

    let plan = banksync::relink::plan(&new, &old, s.relink_snapshot(&new, &old).await.unwrap(), Utc::now());
    assert_eq!(plan.report.transactions_matched, 2);
    assert_eq!((plan.report.kept_old, plan.report.notes_carried), (2, 2));
    let applied = s.apply_relink(&plan).await.unwrap().expect("applied");
    assert_eq!((applied.moved, applied.carried), (2, 2));

    // The old Item is gone with what was not moved; the new one has everything once.
    assert!(is_not_found(s.get_item(&alice.id, &old.item_id).await));
    let txns = all_txns(&s, &alice, TransactionFilter::default()).await;
    let mut got: Vec<_> = txns
        .iter()
        .map(|t| (t.transaction_id.as_str(), t.item_id.as_str(), t.fields.account_id.as_str(), t.user_note.as_deref()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("n-first", "item-new", "n-chk", None),
            ("n-lunch", "item-new", "n-chk", Some("lunch")),
            ("n-rent", "item-new", "n-sav", Some("rent")),
            ("o-ancient", "item-new", "n-chk", Some("ancient")),
            ("o-closed-1", "item-new", "o-closed", Some("closed")),
        ]
    );
    let accounts = s.list_accounts(&alice.id, &AccountFilter { item_id: None, include_removed: true }).await.unwrap();
    let mut accounts: Vec<_> =
        accounts.iter().map(|a| (a.account_id.as_str(), a.item_id.as_str(), a.removed)).collect();
    accounts.sort();
    assert_eq!(accounts, [("n-chk", "item-new", false), ("n-sav", "item-new", false), ("o-closed", "item-new", true)]);
    let merged = fresh(&s, &new).await;
    assert_eq!(merged.relink_report.as_ref(), Some(&plan.report));
    assert_eq!(s.pending_replacement_of(&alice.id, &old.item_id).await.unwrap(), None);

    // Applying again (or any plan for a merged Item) changes nothing; the report can still be completed.
    assert_eq!(s.apply_relink(&plan).await.unwrap(), None);
    let mut report = plan.report.clone();
    report.removed_at_plaid = true;
    s.update_relink_report(&new.id, &report).await.unwrap();
    assert!(fresh(&s, &new).await.relink_report.unwrap().removed_at_plaid);
    assert!(!s.record_relink_report(&new.id, &report).await.unwrap(), "a report is never recorded twice");
}
