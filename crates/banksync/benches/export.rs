//! Benchmark: `banksync export` of an Item with N transactions (`user_bulk_N`, default 1,000,000) in every format,
//! from SQLite (a temp file) and PostgreSQL (a fresh schema; `BENCH_BACKENDS=sqlite` for one) to a sink, reporting
//! time, transactions/second and peak RSS per format.
//!
//! Run: `cargo bench -p banksync --bench export` (or `-- 200000` for another size). Target: peak RSS < 100 MB for
//! 1M transactions in every format (the export streams pages of 500; memory must not grow with history).
//!
//! Measured (2-core dev machine, 1M transactions, release): csv 22.5 s / 34.8 MB peak, json 27.0 s / 36.6 MB, ofx
//! 29.1 s / 47.4 MB, beancount 22.8 s / 35.0 MB, ledger 21.6 s / 36.3 MB (about 40,000 transactions/s).
//!
//! Each export runs in its own process, since a process's peak RSS (`VmHWM`) never goes down; so do the simulator
//! and the sync that fills the database, so neither's memory is counted. `export [N]` orchestrates, per backend:
//! `export --sim` (prints its URL), `export --fill URL N BACKEND LOCATION` (syncs, prints the user id), then
//! `export --export BACKEND LOCATION USER FORMAT` per format (prints one markdown row).

#[path = "support/mod.rs"]
mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use banksync::domain::UserId;
use banksync::export::{self, ExportOptions, Format, Pending};
use banksync::sync::{SyncEngine, SyncOptions, SyncTrigger};
use banksync::vault::{MasterKey, Vault};
use plaid::{ClientConfig, Environment, PlaidClient};
use secrecy::SecretString;
use support::{Backend, BenchStore};

const DEFAULT_SIZE: u64 = 1_000_000;
const FORMATS: [&str; 5] = ["csv", "json", "ofx", "beancount", "ledger"];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = || tokio::runtime::Runtime::new().expect("runtime");
    match args.first().map(String::as_str) {
        Some("--sim") => runtime().block_on(run_sim()),
        Some("--fill") => {
            runtime().block_on(fill(&args[1], args[2].parse().expect("N"), Backend::parse(&args[3]), &args[4]))
        }
        Some("--export") => runtime().block_on(run_export(Backend::parse(&args[1]), &args[2], &args[3], &args[4])),
        size => orchestrate(size.map_or(DEFAULT_SIZE, |s| s.parse().expect("a size like 1000000"))),
    }
}

fn orchestrate(n: u64) {
    let exe = std::env::current_exe().expect("own path");
    println!(
        "export of {n} transactions (user_bulk_{n}): store -> export -> sink, pending included, each in its own process"
    );
    println!();
    println!("| backend | format | txns | seconds | txns/s | peak RSS MB | MB out |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for backend in Backend::selected() {
        let dir = tempfile::tempdir().expect("temp dir");
        let location = match backend {
            Backend::Sqlite => dir.path().join("bench.db").display().to_string(),
            Backend::Postgres => runtime_block_on(support::create_schema()),
        };
        let (mut sim, url) = support::spawn_sim(&exe, &[]);
        let filled = Command::new(&exe)
            .args(["--fill", &url, &n.to_string(), backend.as_str(), &location])
            .output()
            .expect("fill");
        // The simulator child is ours; it is not needed once the database is filled.
        let _ = sim.kill();
        let _ = sim.wait();
        assert!(filled.status.success(), "filling the database failed: {}", String::from_utf8_lossy(&filled.stderr));
        let user = String::from_utf8_lossy(&filled.stdout).trim().to_owned();
        for format in FORMATS {
            let out = Command::new(&exe)
                .args(["--export", backend.as_str(), &location, &user, format])
                .stderr(Stdio::inherit())
                .output()
                .expect("export");
            assert!(out.status.success(), "export as {format} failed");
            print!("| {} {}", backend.as_str(), String::from_utf8_lossy(&out.stdout));
            std::io::stdout().flush().ok();
        }
        if backend == Backend::Postgres {
            runtime_block_on(support::drop_schema(&location));
        }
    }
}

fn runtime_block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().expect("runtime").block_on(f)
}

async fn run_sim() {
    let config =
        plaid_sim::SimConfig { rate_limits: false, deliver_webhooks: false, ..plaid_sim::SimConfig::default() };
    let running = plaid_sim::Simulator::new(config).spawn("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    println!("{}", running.url());
    std::io::stdout().flush().ok();
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

/// Links `user_bulk_N` and syncs it into the store at `location`; prints the user id.
async fn fill(url: &str, n: u64, backend: Backend, location: &str) {
    let bench = BenchStore::at(backend, location).await;
    let store = bench.store.clone();
    let defaults = plaid_sim::SimConfig::default();
    let plaid = PlaidClient::new(ClientConfig::new(
        Environment::Custom(url::Url::parse(url).unwrap()),
        defaults.client_id.clone(),
        SecretString::from(defaults.secret.clone()),
    ))
    .unwrap();
    let vault = std::sync::Arc::new(Vault::new(MasterKey::generate()));
    let user = store.create_user("bench", "$argon2id$unused").await.unwrap();
    let item = support::link_item(&store, &plaid, &vault, &user, &format!("user_bulk_{n}"), "pass").await;
    let engine = SyncEngine::new(store.clone(), plaid, vault, SyncOptions::default());
    let summary = engine.sync_item(&item, SyncTrigger::Link).await.unwrap();
    assert_eq!(summary.added, n, "every transaction arrived");
    println!("{}", user.id.as_str());
    store.close().await;
}

/// Bytes written, discarded.
struct CountingSink(u64);

impl Write for CountingSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn run_export(backend: Backend, location: &str, user: &str, format: &str) {
    let store = BenchStore::at(backend, location).await.store;
    let format: Format = format.parse().unwrap();
    let opts = ExportOptions { pending: Pending::Include, ..ExportOptions::new(format) };
    let mut sink = CountingSink(0);
    let started = Instant::now();
    let summary = export::export(&store, &UserId::new(user), &opts, &mut sink).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    let peak = support::proc_status_kb("VmHWM");
    println!(
        "| {} | {} | {:.2} | {:.0} | {:.1} | {:.1} |",
        format,
        summary.transactions,
        secs,
        summary.transactions as f64 / secs,
        peak as f64 / 1024.0,
        sink.0 as f64 / 1e6
    );
}
