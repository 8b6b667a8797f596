//! Full-text search, the spending summary and the query plans of `list_transactions` (issue 12).

use std::collections::BTreeMap;

use super::*;

fn named(id: &str, name: &str, merchant: Option<&str>, datetime: &str) -> NewTransaction {
    let mut t = txn(id, "acc-1", "1.00", datetime);
    t.fields.name = name.into();
    t.fields.merchant_name = merchant.map(Into::into);
    t
}

async fn search(s: &S, u: &User, q: &str) -> Vec<String> {
    let f = TransactionFilter { q: Some(q.into()), ..Default::default() };
    all_txns(s, u, f).await.into_iter().map(|t| t.transaction_id.into_string()).collect()
}

/// Both backends must give these same answers (FTS5 on SQLite, a GIN `tsvector` index on PostgreSQL).
pub(crate) async fn full_text_search_finds_words_and_last_word_prefixes(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &bob, "item-b", "ins_1").await;
    let rows = vec![
        named("sb", "STARBUCKS STORE #1234", Some("Starbucks"), "2026-01-01T08:00:00Z"),
        named("amz", "AMAZON.COM*MK1234 AMZN.COM/BILL", Some("Amazon"), "2026-01-02T08:00:00Z"),
        named("mcd", "McDonald's F1234", Some("McDonald's"), "2026-01-03T08:00:00Z"),
        named("cafe", "Café Rouge", None, "2026-01-04T08:00:00Z"),
        named("uber", "UBER   *TRIP HELP.UBER.COM", Some("Uber"), "2026-01-05T08:00:00Z"),
        named("juice", "100% Pure_Juice", None, "2026-01-06T08:00:00Z"),
        named("near", "NEAR EAST MARKET", None, "2026-01-07T08:00:00Z"),
    ];
    s.apply_sync(&a, &batch(rows, vec![], &[], "c1")).await.unwrap();
    s.apply_sync(&b, &batch(vec![named("bob-sb", "STARBUCKS", None, "2026-01-01T09:00:00Z")], vec![], &[], "c1"))
        .await
        .unwrap();

    for (q, expected) in [
        ("star", &["sb"][..]),
        ("STARBUCKS", &["sb"]),
        ("bucks", &[]),
        ("store star", &["sb"]),
        ("amazon com", &["amz"]),
        ("com", &["uber", "amz"]),
        ("mcdonald", &["mcd"]),
        ("mcdonald's", &["mcd"]),
        ("caf", &["cafe"]),
        ("café", &["cafe"]),
        ("pure_juice", &["juice"]),
        ("100%", &["juice"]),
        ("1234", &["sb"]),
        ("f1234", &["mcd"]),
        ("nomatchword", &[]),
        // Query syntax of either engine is only a separator: no error, no operator.
        ("NEAR", &["near"]),
        ("near(east market)", &["near"]),
        ("\"star", &["sb"]),
        ("star*", &["sb"]),
        ("star\"*", &["sb"]),
        ("-star", &["sb"]),
        ("name:star", &[]),
        ("merchant_name:starbucks", &[]),
        ("star OR amazon", &[]),
        ("uber & !trip", &["uber"]),
        ("east <-> market", &["near"]),
        ("\"", &[]),
        ("*", &[]),
        ("()", &[]),
    ] {
        assert_eq!(search(&s, &alice, q).await, expected, "q={q:?}");
    }
    assert_eq!(search(&s, &bob, "star").await, ["bob-sb"], "scoped to the user");

    // The user's note is searchable, from its edit on.
    let note = |text: Option<&str>| UserFieldsPatch { note: Some(text.map(Into::into)), category: None };
    s.update_transaction_user_fields(&alice.id, &"near".into(), &note(Some("birthday gift for Ann"))).await.unwrap();
    assert_eq!(search(&s, &alice, "birthday gi").await, ["near"]);
    s.update_transaction_user_fields(&alice.id, &"near".into(), &note(None)).await.unwrap();
    assert!(search(&s, &alice, "birthday").await.is_empty());

    // Plaid's changes: a new name replaces the old words; a removal hides; a re-add restores.
    let a = fresh(&s, &a).await;
    let renamed = named("sb", "STARBUCKS RESERVE", Some("Starbucks"), "2026-01-01T08:00:00Z");
    s.apply_sync(&a, &batch(vec![], vec![renamed], &["uber"], "c2")).await.unwrap();
    assert!(search(&s, &alice, "store").await.is_empty());
    assert_eq!(search(&s, &alice, "reserve").await, ["sb"]);
    assert_eq!(search(&s, &alice, "com").await, ["amz"]);
    let a = fresh(&s, &a).await;
    let back = named("uber", "UBER   *TRIP HELP.UBER.COM", Some("Uber"), "2026-01-05T08:00:00Z");
    s.apply_sync(&a, &batch(vec![back], vec![], &[], "c3")).await.unwrap();
    assert_eq!(search(&s, &alice, "uber trip").await, ["uber"]);

    // With other filters and the keyset cursor.
    let f = TransactionFilter { q: Some("m".into()), limit: 2, ..Default::default() };
    let first = s.list_transactions(&alice.id, &f).await.unwrap();
    assert_eq!(ids(&first.items), ["near", "mcd"]);
    let next = TransactionFilter { after: first.next_cursor, ..f };
    assert_eq!(ids(&s.list_transactions(&alice.id, &next).await.unwrap().items), ["amz"]);
    let f = TransactionFilter { q: Some("m".into()), min_amount: Some(dec("2")), ..Default::default() };
    assert!(all_txns(&s, &alice, f).await.is_empty());
}

/// xorshift64*: a reproducible sequence without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn pick_text(&mut self, items: &[Option<&str>]) -> Option<String> {
        self.pick(items).map(String::from)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

type Groups = BTreeMap<(String, String, String), (Decimal, Decimal, i64)>;

/// The contract's definition, computed from the visible transactions.
async fn direct_groups(s: &S, u: &User, account: Option<&str>) -> Groups {
    let f = TransactionFilter { account_id: account.map(Into::into), ..Default::default() };
    let mut groups = Groups::new();
    for t in all_txns(s, u, f).await {
        let f = &t.fields;
        let category = t.user_category.clone().or_else(|| f.pfc_primary.clone()).unwrap_or("UNCATEGORIZED".into());
        if f.pending
            || category == "TRANSFER_IN"
            || category == "TRANSFER_OUT"
            || f.pfc_detailed.as_deref() == Some("LOAN_PAYMENTS_CREDIT_CARD_PAYMENT")
        {
            continue;
        }
        let key = (f.currency.clone().unwrap_or("XXX".into()), f.date.format("%Y-%m").to_string(), category);
        let g = groups.entry(key).or_default();
        if f.amount > Decimal::ZERO {
            g.0 += f.amount;
        } else {
            g.1 -= f.amount;
        }
        g.2 += 1;
    }
    groups
}

async fn summary_groups(s: &S, u: &User, account: Option<&str>) -> Groups {
    let scope = SpendingScope {
        from: Month::parse("2020-01").unwrap(),
        to: Month::parse("2022-12").unwrap(),
        account_id: account.map(Into::into),
    };
    let groups = s.spending_groups(&u.id, &scope).await.unwrap();
    groups
        .into_iter()
        .map(|g| {
            ((g.currency, g.month.to_string(), g.category), (g.spending.normalize(), g.income.normalize(), g.count))
        })
        .collect()
}

async fn assert_summary_matches(s: &S, users: &[&User], step: &str) {
    for u in users {
        for account in [None, Some("acc-1")] {
            let mut direct = direct_groups(s, u, account).await;
            for v in direct.values_mut() {
                *v = (v.0.normalize(), v.1.normalize(), v.2);
            }
            assert_eq!(summary_groups(s, u, account).await, direct, "{step}: user {} account {account:?}", u.username);
        }
    }
}

fn random_txn(rng: &mut Rng, id: &str) -> NewTransaction {
    let month = *rng.pick(&["2021-11", "2021-12", "2022-01", "2022-02"]);
    let mut t = txn(
        id,
        rng.pick::<&str>(&["acc-1", "acc-2"]),
        rng.pick::<&str>(&["12.34", "-100.00", "0.01", "7", "-0.5", "250.10", "0"]),
        &format!("{month}-{:02}T10:00:00Z", 1 + rng.below(28)),
    );
    t.fields.currency = rng.pick_text(&[Some("USD"), Some("USD"), Some("EUR"), None]);
    t.fields.pfc_primary = rng.pick_text(&[
        Some("FOOD_AND_DRINK"),
        Some("RENT_AND_UTILITIES"),
        Some("TRANSFER_IN"),
        Some("TRANSFER_OUT"),
        None,
    ]);
    t.fields.pfc_detailed =
        rng.pick_text(&[None, Some("FOOD_AND_DRINK_COFFEE"), Some("LOAN_PAYMENTS_CREDIT_CARD_PAYMENT")]);
    t.fields.pending = rng.chance(25);
    t
}

/// The summary the charts read always equals a GROUP BY over the visible transactions, after any sequence of
/// writes: batches and staged commits (adds, Plaid's changes, removals, restores, pending→posted), the user's
/// category edits, an initial sync while hidden, abandoned and committed, and an Item's deletion.
pub(crate) async fn spending_summary_equals_a_group_by_after_random_writes(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let bo = item(&s, &bob, "item-bob", "ins_1").await;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let id = |rng: &mut Rng, prefix: &str| format!("{prefix}-{}", rng.below(30));
    for step in 0..40 {
        let target = if step % 5 == 4 { &bo } else { &a };
        let owner = if step % 5 == 4 { &bob } else { &alice };
        let prefix = target.item_id.as_str().to_owned();
        let current = fresh(&s, target).await;
        match rng.below(5) {
            0 | 1 => {
                let mut added: Vec<NewTransaction> = (0..1 + rng.below(8))
                    .map(|_| {
                        let tid = id(&mut rng, &prefix);
                        random_txn(&mut rng, &tid)
                    })
                    .collect();
                added.sort_by(|x, y| x.transaction_id.cmp(&y.transaction_id));
                added.dedup_by(|x, y| x.transaction_id == y.transaction_id);
                // A posted transaction naming an earlier pending one replaces it.
                if rng.chance(50) {
                    let mut posted = random_txn(&mut rng, &format!("{prefix}-posted-{step}"));
                    posted.fields.pending = false;
                    posted.fields.pending_transaction_id = Some(id(&mut rng, &prefix).into());
                    added.push(posted);
                }
                let removed: Vec<String> = (0..rng.below(3)).map(|_| id(&mut rng, &prefix)).collect();
                let removed: Vec<&str> = removed
                    .iter()
                    .map(String::as_str)
                    .filter(|r| !added.iter().any(|t| t.transaction_id == *r))
                    .collect();
                s.apply_sync(&current, &batch(added, vec![], &removed, &format!("c{step}"))).await.unwrap();
            }
            2 => {
                let run = format!("run-{step}");
                let pages: Vec<SyncPage> = (0..2)
                    .map(|p| {
                        let added = vec![random_txn(&mut rng, &format!("{prefix}-s{step}-{p}"))];
                        let tid = id(&mut rng, &prefix);
                        let modified = vec![random_txn(&mut rng, &tid)];
                        let removed = [id(&mut rng, &prefix)];
                        let removed: Vec<&str> = removed
                            .iter()
                            .map(String::as_str)
                            .filter(|r| *r != modified[0].transaction_id.as_str())
                            .collect();
                        page(added, modified, &removed)
                    })
                    .collect();
                for p in &pages {
                    s.stage_sync_page(&run, p).await.unwrap();
                }
                s.commit_sync(&current, &run, &format!("c{step}")).await.unwrap();
            }
            _ => {
                // The user's category (or its removal) on a random transaction, visible or not.
                let category = rng.pick_text(&[Some("GIFTS"), Some("TRANSFER_OUT"), Some("FOOD_AND_DRINK"), None]);
                let patch = UserFieldsPatch { note: None, category: Some(category) };
                let edited = s.update_transaction_user_fields(&owner.id, &id(&mut rng, &prefix).into(), &patch).await;
                assert!(edited.is_ok() || is_not_found(edited), "edit");
            }
        }
        assert_summary_matches(&s, &[&alice, &bob], &format!("step {step}")).await;
    }

    // An initial sync: hidden while claimed, gone when abandoned, counted once committed.
    let c = item(&s, &alice, "item-c", "ins_2").await;
    for commit in [false, true] {
        let run = s.start_sync_run(&c.id, "link").await.unwrap();
        assert!(s.claim_initial_sync(&c, &run.id).await.unwrap());
        let history: Vec<NewTransaction> = (0..20).map(|i| random_txn(&mut rng, &format!("c-{i}"))).collect();
        s.write_initial_pages(&c, &run.id, &[page(history, vec![], &[])]).await.unwrap();
        assert_summary_matches(&s, &[&alice], "initial sync written, not committed").await;
        if commit {
            s.commit_initial_sync(&c, &run.id, "c-done").await.unwrap();
        } else {
            s.release_initial_sync(&c, &run.id).await.unwrap();
        }
        assert_summary_matches(&s, &[&alice], &format!("initial sync committed: {commit}")).await;
    }
    assert!(!summary_groups(&s, &alice, None).await.is_empty());

    // Deleting an Item takes its transactions out.
    s.delete_item(&alice.id, &c.item_id).await.unwrap();
    s.delete_item(&alice.id, &a.item_id).await.unwrap();
    assert_summary_matches(&s, &[&alice, &bob], "Items deleted").await;
    assert!(summary_groups(&s, &alice, None).await.is_empty());
}

/// A search matching many rows (SQLite reads a few pages' worth of its newest matches, cut at a day whose matches it
/// may not all have read) and one matching few (SQLite reads them all) both return exactly the matching rows, in the
/// list's order, across pages of 250 and of 7; PostgreSQL gives the same.
pub(crate) async fn dense_and_sparse_searches_list_the_same_rows_in_order(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    // 3,200 rows over 97 days, three in four a coffee shop's (more than SQLite's dense threshold of 2,000); every
    // seventh posted a day after its time.
    let mut added = Vec::new();
    for i in 0..3_200u32 {
        // A few say "coffeehouse": a search for "coffee" still matches its last word as a prefix.
        let name = match i {
            _ if i % 4 == 0 => format!("HARDWARE STORE {i}"),
            _ if i % 50 == 1 => format!("BLUE BOTTLE COFFEEHOUSE {i}"),
            _ => format!("BLUE BOTTLE COFFEE {i}"),
        };
        let mut t = named(&format!("t{i:05}"), &name, None, "2026-01-01T00:00:00Z");
        t.fields.datetime += chrono::Duration::minutes(i64::from(i % 97) * 60 * 24 + i64::from(i));
        t.fields.date = t.fields.datetime.date_naive();
        if i % 7 == 0 {
            t.fields.date = t.fields.date.succ_opt().unwrap();
        }
        if i % 10 == 3 {
            t.fields.account_id = "acc-2".into();
        }
        added.push(t);
    }
    for chunk in added.chunks(500) {
        s.apply_sync(&fresh(&s, &a).await, &batch(chunk.to_vec(), vec![], &[], "c")).await.unwrap();
    }
    let key = |t: &NewTransaction| (t.fields.date, t.fields.datetime, t.transaction_id.to_string());
    // Within a day the full-text index holds rows by rowid, not in the list's order (every seventh is posted a day
    // after its time): one account's rows of a day whose matches were not all read are read again, not listed.
    for (q, word, account) in
        [("coffee", "COFFEE", None), ("coffee", "COFFEE", Some("acc-2")), ("hardware 12", "HARDWARE STORE 12", None)]
    {
        let mut expected: Vec<&NewTransaction> = added
            .iter()
            .filter(|t| t.fields.name.contains(word))
            .filter(|t| account.is_none_or(|a| t.fields.account_id.as_str() == a))
            .collect();
        expected.sort_by_key(|t| std::cmp::Reverse(key(t)));
        let expected: Vec<&str> = expected.iter().map(|t| t.transaction_id.as_str()).collect();
        // Pages of 7 read 80 matches each, ~3 days of them: the last day's are cut off and read again.
        for limit in [250, 7] {
            let account_id = account.map(Into::into);
            let filter = TransactionFilter { q: Some(q.into()), account_id, ..Default::default() };
            let listed = all_txns_in_pages_of(&s, &alice, filter, limit).await;
            assert_eq!(ids(&listed), expected, "q={q:?}, {account:?}, pages of {limit}");
        }
    }
    if s.backend() == Backend::Sqlite {
        // Both are read from the full-text index's newest matches, each row looked up by its rowid.
        for q in ["coffee", "hardware 12"] {
            let f = TransactionFilter { q: Some(q.into()), ..Default::default() };
            let plan = s.explain_list_transactions(&alice.id, &f).await.unwrap().join("\n");
            assert!(plan.contains("SCAN transactions_fts VIRTUAL TABLE"), "q={q:?}:\n{plan}");
            assert!(plan.contains("SEARCH t USING INTEGER PRIMARY KEY"), "q={q:?}:\n{plan}");
        }
    }
}

/// A bounded amount range (a deferred join: the page's keys from the amount index, band by band or over a range of
/// bands, then the page's rows) lists exactly the user's visible rows in the range, in the list's order, across
/// pages and with a search or an account narrowing it too; removed rows and another user's rows in the same range
/// stay out.
pub(crate) async fn amount_ranges_list_exactly_the_visible_rows_in_order(s: S) {
    let alice = user(&s, "alice").await;
    let bob = user(&s, "bob").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let b = item(&s, &bob, "item-b", "ins_1").await;
    let mut added = Vec::new();
    for i in 0..400u32 {
        let account = if i % 3 == 0 { "acc-2" } else { "acc-1" };
        let sign = if i % 4 == 1 { "-" } else { "" };
        let amount = format!("{sign}{}.{:02}", i % 40, i % 7);
        let mut t = txn(&format!("t{i:04}"), account, &amount, "2026-01-01T00:00:00Z");
        t.fields.name = if i % 2 == 0 { format!("COFFEE {i}") } else { format!("GROCER {i}") };
        t.fields.datetime += chrono::Duration::minutes(i64::from(i % 53) * 60 * 24 + i64::from(i));
        t.fields.date = t.fields.datetime.date_naive();
        if i % 5 == 0 {
            t.fields.date = t.fields.date.succ_opt().unwrap();
        }
        added.push(t);
    }
    s.apply_sync(&a, &batch(added.clone(), vec![], &[], "c1")).await.unwrap();
    let removed: Vec<String> = added.iter().step_by(9).map(|t| t.transaction_id.to_string()).collect();
    let removed_refs: Vec<&str> = removed.iter().map(String::as_str).collect();
    s.apply_sync(&fresh(&s, &a).await, &batch(vec![], vec![], &removed_refs, "c2")).await.unwrap();
    let bobs = (0..50).map(|i| txn(&format!("b{i}"), "acc-b", "15", "2026-01-05T00:00:00Z")).collect();
    s.apply_sync(&b, &batch(bobs, vec![], &[], "c1")).await.unwrap();

    let key = |t: &NewTransaction| (t.fields.date, t.fields.datetime, t.transaction_id.to_string());
    // 10 to 20.03 is 11 bands, read one by one; -25 to 35 crosses zero and every band of the tiny amounts between
    // (thousands): read as one range of bands; 9.5 to 13.5 cuts through its first and last band.
    // (name, min, max, search, account); "" is no bound.
    type Shape = (&'static str, &'static str, &'static str, Option<&'static str>, Option<&'static str>);
    let shapes: [Shape; 7] = [
        ("range alone", "10", "20.03", None, None),
        ("with a search", "10", "20.03", Some("coffee"), None),
        ("a lone minimum with a search", "30", "", Some("coffee"), None),
        ("in one account", "10", "20.03", None, Some("acc-2")),
        ("across zero", "-25", "35", None, None),
        ("across zero, in one account", "-25", "35", None, Some("acc-2")),
        ("cutting its bands", "9.5", "13.5", None, None),
    ];
    for (name, min, max, q, account) in shapes {
        let (min, max) = ((!min.is_empty()).then(|| dec(min)), (!max.is_empty()).then(|| dec(max)));
        let mut expected: Vec<&NewTransaction> = added
            .iter()
            .filter(|t| !removed.contains(&t.transaction_id.to_string()))
            .filter(|t| min.is_none_or(|m| t.fields.amount >= m) && max.is_none_or(|m| t.fields.amount <= m))
            .filter(|t| q.is_none_or(|_| t.fields.name.starts_with("COFFEE")))
            .filter(|t| account.is_none_or(|acc| t.fields.account_id.as_str() == acc))
            .collect();
        expected.sort_by_key(|t| std::cmp::Reverse(key(t)));
        let expected: Vec<String> = expected.iter().map(|t| t.transaction_id.to_string()).collect();
        // At least three pages of 7.
        assert!(expected.len() > 14, "{name}: {} rows", expected.len());
        let mut filter = TransactionFilter {
            min_amount: min,
            max_amount: max,
            q: q.map(Into::into),
            account_id: account.map(Into::into),
            limit: 7,
            ..Default::default()
        };
        let mut seen = Vec::new();
        loop {
            let page = s.list_transactions(&alice.id, &filter).await.unwrap();
            assert!(page.items.len() <= 7);
            seen.extend(page.items.into_iter().map(|t| t.transaction_id.into_string()));
            match page.next_cursor {
                Some(c) => filter.after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{name}");
    }
}

/// Amount ranges over more bands than are read one by one: where the user's rows are in few of them, those are read
/// one by one; else a range holding many rows (more than SQLite's 20,000) walks the time index and tests each row's
/// amount, and one holding few sorts its entries of the amount index. A lone bound is a range to the end of all
/// bands. Each lists exactly its rows in order, across pages.
pub(crate) async fn wide_amount_ranges_list_exactly_their_rows_dense_or_sparse(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let mut added = Vec::new();
    for i in 0..21_000u32 {
        // Mostly -99.99 to 199.99; one in 500 is 2,000 or more.
        let cents = if i % 500 == 7 { 200_000 + i64::from(i) } else { i64::from(i * 7919 % 30_000) - 10_000 };
        let amount = rust_decimal::Decimal::new(cents, 2).to_string();
        let mut t = txn(&format!("t{i:05}"), "acc-1", &amount, "2026-01-01T00:00:00Z");
        t.fields.datetime += chrono::Duration::minutes(i64::from(i % 401) * 60 + i64::from(i));
        t.fields.date = t.fields.datetime.date_naive();
        added.push(t);
    }
    s.apply_sync(&a, &batch(added.clone(), vec![], &[], "c1")).await.unwrap();
    // Bob's 300 rows are in 300 bands: 1.00, 1.05, 1.10, … times 1.05 each.
    let bob = user(&s, "bob").await;
    let b = item(&s, &bob, "item-b", "ins_1").await;
    let mut bobs = Vec::new();
    let mut cents = 100i64;
    for i in 0..300u32 {
        let amount = rust_decimal::Decimal::new(cents, 2).to_string();
        let mut t = txn(&format!("b{i:03}"), "acc-b", &amount, "2026-01-01T00:00:00Z");
        t.fields.datetime += chrono::Duration::minutes(i64::from(i * 37 % 300));
        t.fields.date = t.fields.datetime.date_naive();
        bobs.push(t);
        cents = cents * 105 / 100 + 1;
    }
    s.apply_sync(&b, &batch(bobs.clone(), vec![], &[], "c1")).await.unwrap();
    let key = |t: &NewTransaction| (t.fields.date, t.fields.datetime, t.transaction_id.to_string());
    // (name, whose, min, max, the plan SQLite reads the amounts with)
    let (each, range, walk) = ("amount_band=?", "amount_band>? AND amount_band<?", "transactions_user_time");
    let shapes = [
        ("dense, across zero", &alice, &added, Some("-1000"), Some("1000"), walk),
        ("dense, a lone minimum", &alice, &added, Some("-99"), None, walk),
        ("sparse, a lone minimum, few bands", &alice, &added, Some("2000"), None, each),
        ("sparse, far apart, few bands", &alice, &added, Some("1500"), Some("1000000"), each),
        ("sparse, many bands", &bob, &bobs, Some("2"), Some("10000000000000000000000000000"), range),
        ("sparse, a lone maximum, many bands", &bob, &bobs, None, Some("100000000000000000000000000"), range),
    ];
    for (name, whose, added, min, max, reads) in shapes {
        let (min, max) = (min.map(dec), max.map(dec));
        let mut expected: Vec<&NewTransaction> = added
            .iter()
            .filter(|t| min.is_none_or(|m| t.fields.amount >= m) && max.is_none_or(|m| t.fields.amount <= m))
            .collect();
        expected.sort_by_key(|t| std::cmp::Reverse(key(t)));
        // The first three pages of 50 (the dense ones hold thousands of rows), or every row of the sparse ones.
        let expected: Vec<String> = expected.iter().take(150).map(|t| t.transaction_id.to_string()).collect();
        assert!(expected.len() >= 40, "{name}: {} rows", expected.len());
        let mut filter = TransactionFilter { min_amount: min, max_amount: max, limit: 50, ..Default::default() };
        if s.backend() == Backend::Sqlite {
            let plan = s.explain_list_transactions(&whose.id, &filter).await.unwrap().join("\n");
            assert!(plan.contains(reads), "{name} does not read {reads}:\n{plan}");
            assert_eq!(plan.contains("COVERING INDEX transactions_amount"), reads != walk, "{name}:\n{plan}");
        } else if reads == each {
            // PostgreSQL runs one arm per band (a lateral join), not a union it would plan arm by arm on every call.
            let plan = s.explain_list_transactions(&whose.id, &filter).await.unwrap().join("\n");
            assert!(plan.contains("Function Scan on unnest") && !plan.contains("Append"), "{name}:\n{plan}");
        }
        let mut seen = Vec::new();
        while seen.len() < 150 {
            let page = s.list_transactions(&whose.id, &filter).await.unwrap();
            seen.extend(page.items.into_iter().map(|t| t.transaction_id.into_string()));
            match page.next_cursor {
                Some(c) => filter.after = Some(c),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{name}");
    }
}

/// Every filter shape of `GET /api/transactions`, alone and after a keyset cursor, has an index path on SQLite:
/// no plan scans the transactions table, and the selective shapes use their own index.
pub(crate) async fn every_filter_shape_has_an_index_path(s: S) {
    if s.backend() != Backend::Sqlite {
        return; // PostgreSQL's plans depend on its statistics; the benchmark measures them.
    }
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    s.apply_sync(
        &a,
        &batch(
            vec![txn("t1", "acc-1", "5", "2026-01-01T00:00:00Z"), txn("t2", "acc-1", "6", "2026-01-02T00:00:00Z")],
            vec![],
            &[],
            "c",
        ),
    )
    .await
    .unwrap();
    let page = s.list_transactions(&alice.id, &TransactionFilter { limit: 1, ..Default::default() }).await.unwrap();
    let cursor = page.next_cursor.unwrap();
    let shapes: Vec<(&str, TransactionFilter, &str)> = vec![
        ("newest", TransactionFilter::default(), "transactions_user_time"),
        (
            "account",
            TransactionFilter { account_id: Some("acc-1".into()), ..Default::default() },
            "transactions_account_time",
        ),
        ("item", TransactionFilter { item_id: Some("item-a".into()), ..Default::default() }, "transactions_item_time"),
        ("pending", TransactionFilter { pending: Some(true), ..Default::default() }, "transactions_pending_time"),
        (
            "effective category",
            TransactionFilter { effective_category: Some("FOOD_AND_DRINK".into()), ..Default::default() },
            "transactions_effective_category_time",
        ),
        (
            "detailed category",
            TransactionFilter { detailed_category: Some("FOOD_AND_DRINK_COFFEE".into()), ..Default::default() },
            "transactions_detailed_category_time",
        ),
        (
            "amount range",
            TransactionFilter { min_amount: Some(dec("100")), max_amount: Some(dec("101")), ..Default::default() },
            // The page's keys from the index alone; only the page's rows are read (the deferred join).
            "COVERING INDEX transactions_amount (user_id=? AND amount_band=?",
        ),
        (
            "a lone amount bound",
            TransactionFilter { min_amount: Some(dec("25")), ..Default::default() },
            "COVERING INDEX transactions_amount (user_id=? AND amount_band>? AND amount_band<?)",
        ),
        (
            // Thousands of bands, two of them the user's: read one by one.
            "amount range over thousands of bands",
            TransactionFilter { min_amount: Some(dec("-25")), max_amount: Some(dec("35")), ..Default::default() },
            "COVERING INDEX transactions_amount (user_id=? AND amount_band=?",
        ),
        ("search", TransactionFilter { q: Some("coffee".into()), ..Default::default() }, "transactions_fts"),
        (
            "date range",
            TransactionFilter { start: Some(day("2026-01-01")), end: Some(day("2026-01-31")), ..Default::default() },
            "transactions_user_time (user_id=? AND date>? AND date<?)",
        ),
    ];
    for (name, filter, index) in shapes {
        for after in [None, Some(cursor.clone())] {
            let f = TransactionFilter { after: after.clone(), ..filter.clone() };
            let plan = s.explain_list_transactions(&alice.id, &f).await.unwrap();
            let text = plan.join("\n");
            assert!(text.contains(index), "{name} (cursor: {}) does not use {index}:\n{text}", after.is_some());
            // The time indexes hand rows over in the list's order: nothing is sorted after the fact.
            if index.contains("_time") {
                assert!(!text.contains("TEMP B-TREE"), "{name} (cursor: {}) sorts:\n{text}", after.is_some());
            }
            for line in &plan {
                let scans_table =
                    line.starts_with("SCAN t") && !line.contains("USING") && !line.contains("VIRTUAL TABLE");
                assert!(!scans_table, "{name} scans the table:\n{text}");
            }
        }
    }
}

/// A search matching thousands of rows (SQLite reads it window by window of days, newest first) lists exactly its
/// rows in order across pages, whatever their days: future-dated, today, years back, before 1970; after a row's
/// date, text or existence changes; within a date range; and for one account.
pub(crate) async fn dense_searches_list_exactly_their_rows_across_the_years(s: S) {
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-a", "ins_1").await;
    let today = chrono::Utc::now().date_naive();
    let mut added = Vec::new();
    for i in 0..4_000i64 {
        // Three in four say "coffee" (more than SQLite fetches one by one); a day in ~three over 12 years back, one
        // ahead, one in 1969.
        let days_back = match i {
            0 => -3,
            1 => 21_000,
            _ => i * 37 % 4_400,
        };
        let when = (today - chrono::Duration::days(days_back)).and_hms_opt(12, 0, 0).unwrap().and_utc();
        let account = match i {
            _ if i % 3 == 0 => "acc-2",
            _ if i % 50 == 1 => "acc-3",
            _ => "acc-1",
        };
        let mut t = txn(&format!("t{i:05}"), account, "5", "2026-01-01T00:00:00Z");
        t.fields.datetime = when + chrono::Duration::seconds(i % 97);
        t.fields.date = t.fields.datetime.date_naive();
        t.fields.name = if i % 4 == 3 { format!("Tea house {i}") } else { format!("Coffee bar {i}") };
        added.push(t);
    }
    s.apply_sync(&a, &batch(added.clone(), vec![], &[], "c1")).await.unwrap();
    // A row moves to another day, one stops matching, one is removed.
    let mut moved = added[10].clone();
    moved.fields.date = today - chrono::Duration::days(3_000);
    moved.fields.datetime = moved.fields.date.and_hms_opt(8, 0, 0).unwrap().and_utc();
    let mut renamed = added[4].clone();
    renamed.fields.name = "Bakery".into();
    let a = fresh(&s, &a).await;
    s.apply_sync(&a, &batch(vec![], vec![moved.clone(), renamed.clone()], &["t00007"], "c2")).await.unwrap();
    let mut rows = added;
    rows[10] = moved;
    rows[4] = renamed;
    rows.retain(|t| t.transaction_id.as_str() != "t00007");

    let key = |t: &NewTransaction| (t.fields.date, t.fields.datetime, t.transaction_id.to_string());
    let start = today - chrono::Duration::days(1_000);
    let filters = [
        ("every day", TransactionFilter { q: Some("coffee".into()), ..Default::default() }),
        (
            "a prefix, one account",
            TransactionFilter { q: Some("cof".into()), account_id: Some("acc-1".into()), ..Default::default() },
        ),
        (
            "a date range",
            TransactionFilter {
                q: Some("coffee bar".into()),
                start: Some(start),
                end: Some(today - chrono::Duration::days(40)),
                ..Default::default()
            },
        ),
    ];
    // A rare account in pages of 5: the newest 60 matches hold about one of its rows, so the rest are walked window
    // by window from the oldest one's day.
    let rare =
        ("a rare account, small pages", TransactionFilter { account_id: Some("acc-3".into()), ..filters[0].1.clone() });
    for (name, filter) in filters.into_iter().chain([rare]) {
        let mut expected: Vec<&NewTransaction> = rows
            .iter()
            .filter(|t| t.fields.name.starts_with("Coffee"))
            .filter(|t| filter.account_id.as_ref().is_none_or(|acc| t.fields.account_id.as_str() == acc.as_str()))
            .filter(|t| {
                filter.start.is_none_or(|d| t.fields.date >= d) && filter.end.is_none_or(|d| t.fields.date <= d)
            })
            .collect();
        expected.sort_by_key(|t| std::cmp::Reverse(key(t)));
        let expected: Vec<String> = expected.iter().map(|t| t.transaction_id.to_string()).collect();
        let rare = filter.account_id.as_ref().is_some_and(|a| a.as_str() == "acc-3");
        assert!(expected.len() > if rare { 20 } else { 500 }, "{name}: {} rows", expected.len());
        if name == "every day" {
            assert!(expected.len() > 2_000, "{name}: dense enough to be walked");
        }
        // Pages of 500 read every match at once; the rare account's pages of 5 walk windows after the matches read.
        let listed = all_txns_in_pages_of(&s, &alice, filter, if rare { 5 } else { 500 }).await;
        let seen = ids(&listed);
        assert_eq!(seen.len(), expected.len(), "{name}");
        assert!(seen == expected, "{name}: not the expected rows in order");
    }
}
