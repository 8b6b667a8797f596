//! Applying syncs: batches, staged runs, the initial sync, pending to posted, removals.

use super::*;

pub(crate) async fn apply_sync_upserts_removes_and_stores_cursor(s: S) {
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
    let raw = s.get_transaction_raw(&alice.id, &"t2".into()).await.unwrap();
    assert_eq!(raw, r#"{"transaction_id":"t2","amount":21.50}"#, "Plaid's object, byte for byte");
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

pub(crate) async fn failed_apply_leaves_old_cursor_and_no_rows(s: S) {
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

pub(crate) async fn staged_pages_commit_atomically(s: S) {
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

pub(crate) fn page(added: Vec<NewTransaction>, modified: Vec<NewTransaction>, removed: &[&str]) -> SyncPage {
    SyncPage { added, modified, removed: removed.iter().map(|s| (*s).into()).collect() }
}

pub(crate) fn pending(mut t: NewTransaction) -> NewTransaction {
    t.fields.pending = true;
    t
}

pub(crate) fn posted_from(mut t: NewTransaction, pending_id: &str) -> NewTransaction {
    t.fields.pending_transaction_id = Some(pending_id.into());
    t
}

pub(crate) async fn initial_sync_is_hidden_until_its_commit(s: S) {
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

/// A write of the size the sync engine makes (an initial sync's batch of 5,000 transactions, then 2,000 removals, a
/// staged page of 3,000) lands whole: the inserts are split into several statements within the engines'
/// bind-parameter limits (`rows_per_statement`), and every row of every statement arrives.
pub(crate) async fn sync_sized_writes_land_whole(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let run = s.start_sync_run(&a.id, "link").await.unwrap();
    assert!(s.claim_initial_sync(&a, &run.id).await.unwrap());
    let day = |i: usize| format!("2025-{:02}-{:02}T12:00:00Z", 1 + i % 12, 1 + i % 28);
    let history: Vec<_> = (0..5_000).map(|i| txn(&format!("h{i:05}"), "acc", "1.25", &day(i))).collect();
    let stats = s.write_initial_pages(&a, &run.id, &[page(history, vec![], &[])]).await.unwrap();
    assert_eq!(stats.upserted, 5_000);
    let removed: Vec<String> = (0..2_000).map(|i| format!("h{i:05}")).collect();
    let removed: Vec<&str> = removed.iter().map(String::as_str).collect();
    let stats = s.write_initial_pages(&a, &run.id, &[page(vec![], vec![], &removed)]).await.unwrap();
    assert_eq!(stats.removed, 2_000);
    s.commit_initial_sync(&a, &run.id, "c1").await.unwrap();
    assert_eq!(all_txns(&s, &alice, TransactionFilter::default()).await.len(), 3_000);

    let a = fresh(&s, &a).await;
    let more: Vec<_> = (0..3_000).map(|i| txn(&format!("m{i:05}"), "acc", "2.50", &day(i))).collect();
    s.apply_sync(&a, &batch(more, vec![], &[], "c2")).await.unwrap();
    assert_eq!(all_txns(&s, &alice, TransactionFilter::default()).await.len(), 6_000);
}

pub(crate) async fn initial_sync_claims_only_fresh_items_and_can_be_taken_over(s: S) {
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

pub(crate) async fn pending_to_posted_keeps_user_edits_without_duplicates(s: S) {
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

pub(crate) async fn removed_then_readded_is_restored(s: S) {
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
