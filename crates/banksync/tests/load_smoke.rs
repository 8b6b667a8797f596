//! The load benchmark's harness (`benches/load.rs`) run small in CI: 100,000 seeded transactions, queries and signed
//! webhooks together for 10 s. No request may fail, memory must stay flat (the harness's rule), and the webhooks must
//! have led to real syncs. The figures are printed (`--nocapture`); the benchmark runs the same code at 1,000,000.

#[path = "../benches/load.rs"]
mod load;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_webhooks_together_on_100k_transactions_fail_nothing_and_hold_memory_flat() {
    let report = load::run(load::LoadConfig { rows: 100_000, secs: 10, query_clients: 4, webhooks_per_sec: 20 }).await;
    println!("{}", report.render());
    assert!(
        report.errors.is_empty(),
        "{} requests failed, e.g. {:?}",
        report.errors.len(),
        &report.errors[..report.errors.len().min(5)]
    );
    assert!(report.stored_transactions >= 100_000, "seeded: {}", report.stored_transactions);
    assert!(report.queries.latencies.len() >= 20, "queries ran: {}", report.queries.latencies.len());
    assert!(report.webhooks.latencies.len() >= 20, "webhooks ran: {}", report.webhooks.latencies.len());
    assert!(report.syncs_after_webhooks >= 1, "the webhooks led to no sync");
    let (flat, first, last) = report.memory_flat();
    assert!(flat, "memory grew: {} MiB → {} MiB", first / 1024, last / 1024);
}
