//! Benchmark: one live balance refresh of N Items whose banks answer in 1–3 s, against the simulator with Plaid's
//! sandbox rate limits (100 `/accounts/balance/get` per client per minute, 25 per Item), through `BalanceRefresher`
//! and the shared rate budget, on SQLite (a temp file) and PostgreSQL (a fresh schema; `BENCH_BACKENDS=sqlite` for
//! one backend).
//!
//! Run: `cargo bench -p banksync --bench balance_fanout` (sizes 100,150 by default; override with `-- 150` or
//! `-- 50,100,250`). The ideal is the slowest bank of each window's batch: ~3 s for up to 100 Items; for 150, 100 in
//! the first minute and the rest when the window reopens, ~63 s. Target: within 1.1x of the ideal, every Item
//! refreshed (none failing with a rate limit).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use banksync::balances::{BalanceOptions, BalanceRefresher, ItemRefreshState, RefreshState};
use banksync::budget::{Budget, RateLimits};
use banksync::domain::BalanceSource;
use banksync::vault::{MasterKey, Vault};
use futures::StreamExt;
use plaid::{ClientConfig, Environment, PlaidClient};
use secrecy::SecretString;

const DEFAULT_SIZES: &[usize] = &[100, 150];
/// The simulator's (Plaid sandbox's) per-client limit and window, and its slowest bank.
const PER_WINDOW: usize = 100;
const WINDOW: f64 = 60.0;
const SLOWEST_BANK: f64 = 3.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let sizes: Vec<usize> = match args.first() {
        Some(list) => list.split(',').map(|s| s.trim().parse().expect("sizes like 100,150")).collect(),
        None => DEFAULT_SIZES.to_vec(),
    };
    if let Ok(filter) = std::env::var("BANKSYNC_BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "balance fan-out: simulator (sandbox rate limits, banks 1-3 s) -> BalanceRefresher + rate budget -> SQLite"
    );
    println!();
    println!("| backend | Items | seconds | ideal s | ratio | ok | failed |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut all_within = true;
    for backend in support::Backend::selected() {
        for &n in &sizes {
            let (secs, ok, failed) = runtime.block_on(refresh_once(n, backend));
            let rounds = n.div_ceil(PER_WINDOW).max(1);
            let ideal = (rounds - 1) as f64 * WINDOW + SLOWEST_BANK;
            let ratio = secs / ideal;
            all_within &= ratio <= 1.1 && failed == 0;
            println!("| {} | {n} | {secs:.2} | {ideal:.1} | {ratio:.3} | {ok} | {failed} |", backend.as_str());
        }
    }
    println!();
    println!("target: every Item ok, within 1.1x of the ideal: {}", if all_within { "met" } else { "MISSED" });
}

/// Links `n` Items on a fresh simulator and store, then times one refresh of all of them.
async fn refresh_once(n: usize, backend: support::Backend) -> (f64, usize, usize) {
    let config = plaid_sim::SimConfig {
        balance_latency: Duration::from_secs(1)..=Duration::from_secs(3),
        deliver_webhooks: false,
        ..plaid_sim::SimConfig::default()
    };
    let (client_id, secret) = (config.client_id.clone(), config.secret.clone());
    let sim = plaid_sim::Simulator::new(config).spawn("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let bench = support::BenchStore::open(backend).await;
    let store = bench.store.clone();
    let plaid = PlaidClient::new(ClientConfig::new(
        Environment::Custom(url::Url::parse(&sim.url()).unwrap()),
        client_id,
        SecretString::from(secret),
    ))
    .unwrap();
    let vault = Arc::new(Vault::new(MasterKey::generate()));
    let user = store.create_user("bench", "$argon2id$unused").await.unwrap();
    futures::stream::iter(0..n)
        .map(|_| support::link_item(&store, &plaid, &vault, &user, "user_good", "pass_good"))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;

    let refresher = BalanceRefresher::new(store.clone(), plaid, vault, BalanceOptions::default());
    refresher.set_budget(Budget::new(store.clone(), RateLimits::sandbox()));
    let started = Instant::now();
    let job_id = refresher.start(&user.id, None).await.unwrap();
    let job = loop {
        let job = refresher.status(&user.id, &job_id, Duration::from_secs(30)).await.unwrap().expect("the job");
        if job.state == RefreshState::Done {
            break job;
        }
    };
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(job.items.len(), n, "every Item in the job");
    let ok = job.items.iter().filter(|i| i.state == ItemRefreshState::Ok && i.accounts_updated > 0).count();
    for failed in job.items.iter().filter(|i| i.state != ItemRefreshState::Ok) {
        eprintln!("not refreshed: {} {:?}", failed.item_id, failed.error);
    }
    let accounts = store.list_accounts(&user.id, &Default::default()).await.unwrap();
    let live = accounts.iter().filter(|a| a.balance_source == BalanceSource::Live).count();
    if live != accounts.len() {
        eprintln!("{} of {} accounts have no live balance", accounts.len() - live, accounts.len());
    }
    bench.drop_all().await;
    sim.shutdown().await;
    (secs, ok, n - ok)
}
