//! Throughput measurement (not a timing assertion): `cargo test --release -p banksync --test store_contract --
//! --ignored --nocapture apply_throughput`. Stages 100,000 transactions in pages of 500, then commits, the way the sync
//! engine does, and prints transactions per second per backend.

use super::*;

fn realistic_txn(i: usize) -> NewTransaction {
    let mut t = txn(&format!("txn-{i:07}-abcdefghijklmnop"), &format!("acc-{}", i % 4), "0", "2024-01-01T00:00:00Z");
    t.fields.amount = Decimal::new(i as i64 * 37 % 100_000 - 20_000, 2);
    t.fields.datetime = at("2024-01-01T00:00:00Z") + chrono::Duration::minutes(i as i64 * 7);
    t.fields.date = t.fields.datetime.date_naive();
    t.fields.merchant_name = Some(format!("Merchant {}", i % 500));
    t.fields.logo_url = Some(format!("https://plaid-merchant-logos.plaid.com/m{}.png", i % 500));
    t.fields.website = Some("example.com".into());
    t.fields.counterparties = Some(format!(
        r#"[{{"name":"Merchant {}","type":"merchant","logo_url":null,"website":"example.com","entity_id":"E{}","confidence_level":"HIGH"}}]"#,
        i % 500,
        i % 500
    ));
    t.fields.location = Some(r#"{"address":null,"city":"Springfield","region":"IL","postal_code":null,"country":"US","lat":null,"lon":null,"store_number":null}"#.into());
    t.raw = format!(
        r#"{{"transaction_id":"{}","account_id":"{}","amount":{},"iso_currency_code":"USD","unofficial_currency_code":null,"date":"{}","datetime":"{}","name":"{}","merchant_name":"{}","pending":false,"payment_channel":"in store","personal_finance_category":{{"primary":"GENERAL_MERCHANDISE","detailed":"GENERAL_MERCHANDISE_OTHER","confidence_level":"HIGH"}}}}"#,
        t.transaction_id,
        t.fields.account_id,
        t.fields.amount,
        t.fields.date,
        t.fields.datetime.to_rfc3339(),
        t.fields.name,
        t.fields.merchant_name.as_deref().unwrap_or("")
    );
    t
}

async fn measure_apply(s: S) {
    const TOTAL: usize = 100_000;
    const PAGE: usize = 500;
    let alice = user(&s, "alice").await;
    let a = item(&s, &alice, "item-bench", "ins_1").await;
    let run = s.start_sync_run(&a.id, "bench").await.unwrap();
    let started = std::time::Instant::now();
    for p in 0..TOTAL / PAGE {
        let added = (p * PAGE..(p + 1) * PAGE).map(realistic_txn).collect();
        s.stage_sync_page(&run.id, &SyncPage { added, ..Default::default() }).await.unwrap();
    }
    let staged = started.elapsed();
    let stats = s.commit_sync(&a, &run.id, "cursor-bench").await.unwrap();
    let total = started.elapsed();
    assert_eq!(stats.upserted, TOTAL as u64);
    eprintln!(
        "{:?}: staged {TOTAL} in {:.2?}, committed in {:.2?}, total {:.2?} = {:.0} txns/s",
        s.backend(),
        staged,
        total - staged,
        total,
        TOTAL as f64 / total.as_secs_f64()
    );
    // A second full sync over the same rows (all updates) for the modify path.
    let a = fresh(&s, &a).await;
    let started = std::time::Instant::now();
    for chunk in (0..TOTAL).collect::<Vec<_>>().chunks(10_000) {
        let modified = chunk.iter().map(|&i| realistic_txn(i)).collect();
        let batch = SyncBatch { page: SyncPage { modified, ..Default::default() }, next_cursor: None };
        s.apply_sync(&a, &batch).await.unwrap();
    }
    let total = started.elapsed();
    eprintln!(
        "{:?}: apply_sync of {TOTAL} updates in batches of 10,000: {:.2?} = {:.0} txns/s",
        s.backend(),
        total,
        TOTAL as f64 / total.as_secs_f64()
    );
    let page = s.list_transactions(&alice.id, &TransactionFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(page.items.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run with --release --ignored --nocapture"]
async fn apply_throughput_sqlite() {
    run_sqlite(measure_apply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "throughput measurement; run with --release --ignored --nocapture"]
async fn apply_throughput_postgres() {
    run_postgres(measure_apply).await;
}
