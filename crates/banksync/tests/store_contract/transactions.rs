//! Reading and editing transactions: paging, filters, exact amounts, user fields.

use super::*;

pub(crate) async fn keyset_pagination_is_stable_across_pages(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    // 57 transactions over 12 distinct datetimes, so ties are broken by transaction_id; every fifth posted a day
    // after its time (Plaid's `datetime` may be the authorization's), so the posted date orders before the time.
    let mut added = Vec::new();
    for i in 0..57u32 {
        let hour = i % 12;
        let acct = if i % 3 == 0 { "acc-x" } else { "acc-y" };
        let mut t = txn(&format!("tx{i:02}"), acct, &format!("{i}.25"), &format!("2026-02-01T{hour:02}:00:00Z"));
        if i % 5 == 0 {
            t.fields.date = t.fields.date.succ_opt().unwrap();
        }
        added.push(t);
    }
    s.apply_sync(&a, &batch(added.clone(), vec![], &[], "c1")).await.unwrap();
    let mut expected = added.clone();
    let key = |t: &NewTransaction| (t.fields.date, t.fields.datetime, t.transaction_id.clone());
    expected.sort_by_key(|t| std::cmp::Reverse(key(t)));
    let expected: Vec<&str> = expected.iter().map(|t| t.transaction_id.as_str()).collect();

    let mut filter = TransactionFilter { limit: 10, ..Default::default() };
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut inserted_between_pages = false;
    loop {
        let page = s.list_transactions(&alice.id, &filter).await.unwrap();
        pages += 1;
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|t| t.transaction_id.clone()));
        if !inserted_between_pages {
            // New rows arriving between pages (newer ones and one equal to the cursor position) neither shift
            // nor repeat the following pages.
            inserted_between_pages = true;
            let a = fresh(&s, &a).await;
            let newer = txn("zz-new", "acc-x", "1", "2026-03-01T00:00:00Z");
            s.apply_sync(&a, &batch(vec![newer], vec![], &[], "c2")).await.unwrap();
        }
        match page.next_cursor {
            Some(c) => filter.after = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    assert_eq!(seen, expected);

    // With a filter, pages continue within the filter.
    let mut filter = TransactionFilter { account_id: Some("acc-x".into()), limit: 4, ..Default::default() };
    let mut seen = Vec::new();
    loop {
        let page = s.list_transactions(&alice.id, &filter).await.unwrap();
        seen.extend(page.items.iter().map(|t| t.transaction_id.clone()));
        match page.next_cursor {
            Some(c) => filter.after = Some(c),
            None => break,
        }
    }
    let mut want: Vec<&str> = expected.iter().copied().filter(|id| id[2..].parse::<u32>().unwrap() % 3 == 0).collect();
    want.insert(0, "zz-new");
    assert_eq!(seen, want);

    let bad = TransactionFilter { after: Some("garbage".into()), ..Default::default() };
    assert!(matches!(s.list_transactions(&alice.id, &bad).await, Err(StoreError::InvalidInput(_))));
    // limit 0 means the default; limits above the maximum are capped.
    let page = s.list_transactions(&alice.id, &TransactionFilter::default()).await.unwrap();
    assert_eq!((page.items.len(), page.next_cursor), (58, None));
}

pub(crate) async fn filters_narrow_the_list(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &alice, "item-b", "ins_2").await;
    let mut coffee = txn("coffee", "acc-1", "4.50", "2026-01-10T08:00:00Z");
    coffee.fields.merchant_name = Some("Blue Bottle Coffee".into());
    coffee.fields.pfc_primary = Some("FOOD_AND_DRINK".into());
    coffee.fields.pfc_detailed = Some("FOOD_AND_DRINK_COFFEE".into());
    let mut pct = txn("pct", "acc-1", "10.00", "2026-01-11T08:00:00Z");
    pct.fields.name = "100% Pure_Juice".into();
    let mut refund = txn("refund", "acc-2", "-25.00", "2026-01-12T08:00:00Z");
    refund.fields.pending = true;
    let mut unknown_time = txn("dated", "acc-1", "99.99", "2026-01-13T00:00:00Z");
    unknown_time.fields.time_unknown = true;
    unknown_time.fields.date = day("2026-01-13");
    s.apply_sync(&a, &batch(vec![coffee, pct, refund, unknown_time], vec![], &[], "c1")).await.unwrap();
    s.apply_sync(&b, &batch(vec![txn("other", "acc-9", "1000", "2026-01-20T00:00:00Z")], vec![], &[], "c1"))
        .await
        .unwrap();

    let q = |f: TransactionFilter| {
        let s = s.clone();
        let alice = alice.clone();
        async move { all_txns(&s, &alice, f).await.iter().map(|t| t.transaction_id.clone()).collect::<Vec<_>>() }
    };
    assert_eq!(q(TransactionFilter { account_id: Some("acc-2".into()), ..Default::default() }).await, ["refund"]);
    assert_eq!(q(TransactionFilter { item_id: Some("item-b".into()), ..Default::default() }).await, ["other"]);
    assert_eq!(
        q(TransactionFilter { start: Some(day("2026-01-11")), end: Some(day("2026-01-12")), ..Default::default() })
            .await,
        ["refund", "pct"]
    );
    assert_eq!(
        q(TransactionFilter { category: Some("FOOD_AND_DRINK".into()), ..Default::default() }).await,
        ["coffee"]
    );
    assert_eq!(
        q(TransactionFilter { category: Some("FOOD_AND_DRINK_COFFEE".into()), ..Default::default() }).await,
        ["coffee"]
    );
    assert_eq!(q(TransactionFilter { pending: Some(true), ..Default::default() }).await, ["refund"]);
    assert_eq!(q(TransactionFilter { pending: Some(false), ..Default::default() }).await.len(), 4);
    assert_eq!(q(TransactionFilter { q: Some("bottle".into()), ..Default::default() }).await, ["coffee"]);
    assert_eq!(q(TransactionFilter { q: Some("COFFEE".into()), ..Default::default() }).await, ["coffee"]);
    // Full-text: words, the last one a prefix; punctuation only separates words.
    assert_eq!(q(TransactionFilter { q: Some("100% p".into()), ..Default::default() }).await, ["pct"]);
    assert_eq!(q(TransactionFilter { q: Some("pure_j".into()), ..Default::default() }).await, ["pct"]);
    assert!(q(TransactionFilter { q: Some("_".into()), ..Default::default() }).await.is_empty());
    assert!(q(TransactionFilter { q: Some("%".into()), ..Default::default() }).await.is_empty());
    assert!(q(TransactionFilter { q: Some("ottle".into()), ..Default::default() }).await.is_empty(), "no infix");
    assert_eq!(
        q(TransactionFilter { min_amount: Some(dec("4.5")), max_amount: Some(dec("10")), ..Default::default() }).await,
        ["pct", "coffee"]
    );
    assert_eq!(q(TransactionFilter { max_amount: Some(dec("0")), ..Default::default() }).await, ["refund"]);
    assert_eq!(
        q(TransactionFilter {
            account_id: Some("acc-1".into()),
            min_amount: Some(dec("5")),
            q: Some("name".into()),
            ..Default::default()
        })
        .await,
        ["dated"]
    );
    let dated = s.get_transaction(&alice.id, &"dated".into()).await.unwrap();
    assert!(dated.fields.time_unknown);
}

pub(crate) async fn amounts_are_exact(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let amounts = [
        "0.1",
        "1234567.891234",
        "1234567.991234",
        "-0.10",
        "0.10000001",
        "79228162514264337593543950335",
        "-0.0000000000000000000000000001",
        "100.00",
    ];
    let added: Vec<_> = amounts
        .iter()
        .enumerate()
        .map(|(i, amt)| txn(&format!("m{i}"), "acc", amt, &format!("2026-01-01T00:00:{i:02}Z")))
        .collect();
    s.apply_sync(&a, &batch(added, vec![], &[], "c1")).await.unwrap();
    for (i, amt) in amounts.iter().enumerate() {
        let t = s.get_transaction(&alice.id, &format!("m{i}").into()).await.unwrap();
        assert_eq!(t.fields.amount.to_string(), *amt, "exact, scale included");
    }
    let sum = s.get_transaction(&alice.id, &"m0".into()).await.unwrap().fields.amount
        + s.get_transaction(&alice.id, &"m1".into()).await.unwrap().fields.amount;
    assert_eq!(sum, dec("1234567.991234"));
    let between = |min: &str, max: &str| TransactionFilter {
        min_amount: Some(dec(min)),
        max_amount: Some(dec(max)),
        ..Default::default()
    };
    let got = all_txns(&s, &alice, between("0.1", "0.1")).await;
    assert_eq!(ids(&got), ["m0"], "0.1 matches exactly, 0.10000001 does not");
    let got = all_txns(&s, &alice, between("1234567.991234", "1234567.991234")).await;
    assert_eq!(ids(&got), ["m2"]);
    let got = all_txns(&s, &alice, between("-0.1", "-0.1")).await;
    assert_eq!(ids(&got), ["m3"], "-0.10 equals -0.1");
    let got = all_txns(&s, &alice, between("100", "100")).await;
    assert_eq!(ids(&got), ["m7"]);
    let negative = all_txns(
        &s,
        &alice,
        TransactionFilter { max_amount: Some(dec("-0.0000000000000000000000000001")), ..Default::default() },
    )
    .await;
    assert_eq!(ids(&negative), ["m6", "m3"]);
}

pub(crate) async fn user_field_patches(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    s.apply_sync(&a, &batch(vec![txn("t1", "acc", "1", "2026-01-01T00:00:00Z")], vec![], &[], "c1")).await.unwrap();
    let t = s
        .update_transaction_user_fields(
            &alice.id,
            &"t1".into(),
            &UserFieldsPatch { note: Some(Some("n1".into())), category: Some(Some("Cat".into())) },
        )
        .await
        .unwrap();
    assert_eq!((t.user_note.as_deref(), t.user_category.as_deref()), (Some("n1"), Some("Cat")));
    let t = s
        .update_transaction_user_fields(&alice.id, &"t1".into(), &UserFieldsPatch { note: Some(None), category: None })
        .await
        .unwrap();
    assert_eq!((t.user_note, t.user_category.as_deref()), (None, Some("Cat")), "absent field untouched");
    // A sync update of the row does not overwrite user fields.
    let a = fresh(&s, &a).await;
    s.apply_sync(&a, &batch(vec![], vec![txn("t1", "acc", "2", "2026-01-01T00:00:00Z")], &[], "c2")).await.unwrap();
    assert_eq!(s.get_transaction(&alice.id, &"t1".into()).await.unwrap().user_category.as_deref(), Some("Cat"));
    let other = s.update_transaction_user_fields(&bob.id, &"t1".into(), &UserFieldsPatch::default()).await;
    assert!(is_not_found(other), "another user's transaction");
    assert!(is_not_found(
        s.update_transaction_user_fields(&alice.id, &"nope".into(), &UserFieldsPatch::default()).await
    ));
}

/// Every field reads back exactly as it was written, through each reader (a listing, one transaction, an edit's
/// answer, an export's pages): on SQLite a row comes back as one JSON array SQLite builds, so text that needs
/// escaping, text that looks like JSON, absent values and both values of every flag must survive it.
pub(crate) async fn every_field_reads_back_as_written_whatever_its_text(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let awkward = "quote \" backslash \\ slash / newline \n tab \t bell \u{7} nul-free \u{1f} é 漢字 🦀 \u{2028}";
    let mut full = txn("tx-full", "acc-\"x\"", "-1234.5678", "2026-02-01T10:11:12Z");
    let f = &mut full.fields;
    f.currency = Some("null".into());
    f.time_unknown = true;
    f.authorized_date = Some(day("2026-01-31"));
    f.name = awkward.into();
    f.merchant_name = Some("[1, 2]".into());
    f.logo_url = Some("https://example.com/logo.png?a=1&b=\"2\"".into());
    f.website = Some("true".into());
    f.pfc_icon_url = Some("42".into());
    f.pending = true;
    f.pending_transaction_id = Some("tx-pending".into());
    f.counterparties = Some(r#"[{"name":"A \"B\"","type":"merchant"}]"#.into());
    f.location = Some(r#"{"city":"Zürich\n"}"#.into());
    f.account_owner = Some(String::new());
    let mut bare = txn("tx-bare", "acc-y", "0", "2026-02-02T00:00:00Z");
    let f = &mut bare.fields;
    f.currency = None;
    f.currency_is_official = false;
    f.pfc_primary = None;
    f.pfc_detailed = None;
    f.pfc_confidence = None;
    f.payment_channel = None;
    f.counterparties = None;
    f.location = None;
    s.apply_sync(&a, &batch(vec![full.clone(), bare.clone()], vec![], &[], "c1")).await.unwrap();

    let listed = all_txns(&s, &alice, TransactionFilter::default()).await;
    assert_eq!(ids(&listed), ["tx-bare", "tx-full"]);
    for (read, written) in listed.iter().zip([&bare, &full]) {
        assert_eq!(read.fields, written.fields, "{}", written.transaction_id.as_str());
        assert_eq!(read.item_id.as_str(), "item-a");
        assert_eq!((read.user_note.as_deref(), read.user_category.as_deref()), (None, None));
    }
    let one = s.get_transaction(&alice.id, &full.transaction_id).await.unwrap();
    assert_eq!(one.fields, full.fields);

    let patch = UserFieldsPatch { note: Some(Some(awkward.into())), category: Some(Some("{\"x\": 1}".into())) };
    let edited = s.update_transaction_user_fields(&alice.id, &full.transaction_id, &patch).await.unwrap();
    assert_eq!(edited.fields, full.fields);
    assert_eq!(edited.user_note.as_deref(), Some(awkward));
    assert_eq!(edited.user_category.as_deref(), Some("{\"x\": 1}"));
    let search = TransactionFilter { q: Some("backslash".into()), ..Default::default() };
    let listed = s.list_transactions(&alice.id, &search).await.unwrap();
    assert_eq!(ids(&listed.items), ["tx-full"]);
    assert_eq!(listed.items[0].user_note.as_deref(), Some(awkward));

    let (exported, next) = s
        .transactions_oldest_first(&alice.id, &TransactionFilter { limit: 10, ..Default::default() }, None)
        .await
        .unwrap();
    assert!(next.is_none());
    assert_eq!(ids(&exported), ["tx-full", "tx-bare"]);
    assert_eq!((&exported[0].fields, &exported[1].fields), (&full.fields, &bare.fields));
    assert_eq!(exported[0].user_note.as_deref(), Some(awkward));
}
