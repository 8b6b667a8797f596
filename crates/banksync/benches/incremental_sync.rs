//! Benchmark: incremental sync after `advance 1 day` across N Items (default 1,000), from the webhooks to
//! convergence, on SQLite and PostgreSQL.
//!
//! The simulator runs in its own process with its defaults: Plaid's sandbox rate limits and real signed webhooks.
//! banksync's side is wired as `startup` wires it: the webhook receiver (keys fetched from the simulator) behind its
//! route on a loopback port, the durable job queue, the worker pool (`BANKSYNC_WORKERS`, default as the service's),
//! and the sync engine under the shared rate budget. N Items (`user_bulk_200`, one page of history each) are linked
//! and synced once; then every Item's bank moves one day on (`POST /sim/items/{id}/advance {"days":1}`), the
//! simulator sends each Item's SYNC_UPDATES_AVAILABLE, and banksync does the rest.
//!
//! Measured: the time from the first advance until every Item has a finished webhook-triggered sync and no sync job
//! is queued or running; then every Item's stored transactions are compared with the simulator's ground truth
//! (transaction id, amount, pending), and a mismatch fails the benchmark. The ideal is what the rate budget allows:
//! one `/transactions/sync` call per Item at Plaid's per-client limit (sandbox: 1,000 a minute), N × 60 s / 1,000.
//! Target: within 2× of it.
//!
//! Run: `cargo bench -p banksync --bench incremental_sync -- 1000` (`BENCH_BACKENDS=sqlite` for one backend).
//! `initial_sync`-style orchestration: `incremental_sync --sim` (prints its URL) and
//! `incremental_sync --run URL N BACKEND` (prints one result line) per backend.

#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use banksync::budget::{Budget, RateLimits};
use banksync::domain::{Item, TransactionFilter};
use banksync::events::EventHub;
use banksync::jobs::{JobQueue, WorkerOptions, WorkerPool};
use banksync::sync::{SyncEngine, SyncOptions, SyncTrigger};
use banksync::vault::{MasterKey, Vault};
use banksync::webhooks::{WebhookKeys, WebhookReceiver};
use futures::StreamExt as _;
use plaid::{ClientConfig, Environment, PlaidClient};
use rust_decimal::Decimal;
use secrecy::SecretString;
use support::{Backend, BenchStore};

const DEFAULT_ITEMS: usize = 1_000;
/// One page of history per Item, so the initial syncs cost one call each.
const USERNAME: &str = "user_bulk_200";
/// Give up waiting for convergence after this.
const TIMEOUT: Duration = Duration::from_secs(900);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("--sim") => run_sim(),
        Some("--run") => {
            let n: usize = args[2].parse().expect("--run URL N BACKEND");
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(run(&args[1], n, Backend::parse(&args[3])));
        }
        n => orchestrate(n.map_or(DEFAULT_ITEMS, |n| n.parse().expect("a number of Items"))),
    }
}

fn orchestrate(n: usize) {
    let exe = std::env::current_exe().expect("own path");
    let limits = RateLimits::sandbox().limit(plaid::Endpoint::TransactionsSync).expect("a sync limit");
    println!(
        "incremental sync: advance 1 day on {n} Items -> simulator webhooks (sandbox rate limits) -> receiver -> \
         job queue ({} workers) -> sync engine + rate budget; ideal = one /transactions/sync per Item at {} per \
         client per minute",
        workers(),
        limits.per_client
    );
    println!();
    println!("| backend | Items | seconds | ideal s | ratio | syncs | webhooks | converged |");
    println!("|---|---:|---:|---:|---:|---:|---:|---|");
    let mut all_within = true;
    for backend in Backend::selected() {
        let (mut sim, url) = support::spawn_sim(&exe, &[]);
        let out = std::process::Command::new(&exe)
            .args(["--run", &url, &n.to_string(), backend.as_str()])
            .stderr(Stdio::inherit())
            .output()
            .expect("run");
        // The simulator child is ours; stop it before the next backend.
        let _ = sim.kill();
        let _ = sim.wait();
        let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || line.is_empty() {
            println!("| {} | {n} | FAILED | | | | | no |", backend.as_str());
            all_within = false;
            continue;
        }
        // `SECONDS SYNCS WEBHOOKS`
        let fields: Vec<f64> = line.split_whitespace().map(|f| f.parse().expect("a number")).collect();
        let (secs, syncs, webhooks) = (fields[0], fields[1], fields[2]);
        let ideal = n as f64 * 60.0 / f64::from(limits.per_client);
        let ratio = secs / ideal;
        all_within &= ratio <= 2.0;
        println!(
            "| {} | {n} | {secs:.2} | {ideal:.1} | {ratio:.2} | {syncs:.0} | {webhooks:.0} | yes |",
            backend.as_str()
        );
        std::io::stdout().flush().ok();
    }
    println!();
    println!("target: within 2x of the budget's ideal: {}", if all_within { "met" } else { "MISSED" });
}

fn workers() -> usize {
    std::env::var("BANKSYNC_WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(WorkerOptions::default().concurrency)
}

/// Serves the simulator with its defaults (rate limits, webhook delivery) on a loopback port until killed.
fn run_sim() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let running = plaid_sim::Simulator::new(plaid_sim::SimConfig::default())
            .spawn("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        println!("{}", running.url());
        std::io::stdout().flush().ok();
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

async fn run(url: &str, n: usize, backend: Backend) {
    if let Ok(filter) = std::env::var("BANKSYNC_BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let bench = BenchStore::open(backend).await;
    let store = bench.store.clone();
    let defaults = plaid_sim::SimConfig::default();
    let audit = banksync::audit::AuditTrail::start(store.clone());
    let plaid = PlaidClient::new(ClientConfig::new(
        Environment::Custom(url::Url::parse(url).unwrap()),
        defaults.client_id.clone(),
        SecretString::from(defaults.secret.clone()),
    ))
    .unwrap()
    .with_observer(audit.observer());
    let vault = Arc::new(Vault::new(MasterKey::generate()));
    let user = store.create_user("bench", "$argon2id$unused").await.unwrap();

    // As `startup` wires them.
    let budget = Budget::new(store.clone(), RateLimits::sandbox());
    let engine = SyncEngine::new(store.clone(), plaid.clone(), vault.clone(), SyncOptions::default());
    engine.set_budget(budget);
    let events = EventHub::new();
    engine.set_events(events.clone());
    let queue = JobQueue::new(store.clone());
    let receiver =
        Arc::new(WebhookReceiver::new(store.clone(), WebhookKeys::plaid(plaid.clone()), queue.clone(), events));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}{}", listener.local_addr().unwrap(), banksync::webhooks::PATH);
    let router: axum::Router = banksync::http::webhooks::router().with_state(receiver).into();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let items: Vec<Item> = futures::stream::iter(0..n)
        .map(|_| support::link_item_with_webhook(&store, &plaid, &vault, &user, USERNAME, "pass", Some(&hook)))
        .buffer_unordered(16)
        .collect()
        .await;
    let initial: Vec<_> = futures::stream::iter(&items)
        .map(|item| engine.sync_item(item, SyncTrigger::Link))
        .buffer_unordered(8)
        .collect()
        .await;
    for result in initial {
        assert!(result.expect("initial sync").added > 0, "the initial sync brought the history");
    }
    let workers = WorkerPool::start(queue, engine, WorkerOptions { concurrency: workers(), ..Default::default() });

    let http = reqwest::Client::new();
    let started = Instant::now();
    let advanced: Vec<_> = futures::stream::iter(&items)
        .map(|item| {
            let http = http.clone();
            async move {
                http.post(format!("{url}/sim/items/{}/advance", item.item_id))
                    .json(&serde_json::json!({"days": 1}))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for a in advanced {
        a.expect("advance");
    }
    let advance_secs = started.elapsed().as_secs_f64();

    // Every Item synced from its webhook, and nothing left in the queue (a webhook during a sync queues another).
    let converged = loop {
        let synced = bench
            .scalar(
                "SELECT COUNT(DISTINCT item_ref) FROM sync_runs WHERE triggered_by = 'webhook' AND status = 'succeeded'",
            )
            .await;
        let pending =
            bench.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'sync' AND state IN ('queued', 'running')").await;
        if synced as usize == n && pending == 0 {
            break started.elapsed();
        }
        assert!(started.elapsed() < TIMEOUT, "no convergence after {TIMEOUT:?}: {synced} of {n} Items synced");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    workers.shutdown().await;

    let syncs = bench.scalar("SELECT COUNT(*) FROM sync_runs WHERE triggered_by = 'webhook'").await;
    let webhooks = bench.scalar("SELECT COUNT(*) FROM webhook_events").await;
    let mismatched = futures::stream::iter(&items)
        .map(|item| {
            let (store, http, user) = (store.clone(), http.clone(), user.id.clone());
            async move {
                let truth: serde_json::Value = http
                    .get(format!("{url}/sim/items/{}/transactions", item.item_id))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                let truth: BTreeMap<String, (Decimal, bool)> = truth["transactions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| {
                        let amount = t["amount"].to_string().parse().expect("amount");
                        (t["transaction_id"].as_str().unwrap().to_owned(), (amount, t["pending"].as_bool().unwrap()))
                    })
                    .collect();
                let mut ours = BTreeMap::new();
                let mut filter =
                    TransactionFilter { item_id: Some(item.item_id.clone()), limit: 500, ..Default::default() };
                loop {
                    let page = store.list_transactions(&user, &filter).await.unwrap();
                    for t in page.items {
                        ours.insert(t.transaction_id.to_string(), (t.fields.amount, t.fields.pending));
                    }
                    match page.next_cursor {
                        Some(next) => filter.after = Some(next),
                        None => break,
                    }
                }
                ours != truth
            }
        })
        .buffer_unordered(8)
        .filter(|mismatch| std::future::ready(*mismatch))
        .count()
        .await;
    eprintln!(
        "{}: advanced {n} Items in {advance_secs:.2} s; converged after {:.2} s; {mismatched} Items differ",
        backend.as_str(),
        converged.as_secs_f64()
    );
    assert_eq!(mismatched, 0, "every Item matches the simulator's ground truth");
    println!("{:.3} {syncs} {webhooks}", converged.as_secs_f64());
    audit.flush().await;
    bench.drop_all().await;
}
