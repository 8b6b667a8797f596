//! Benchmark: the initial sync of one Item with N transactions (`user_bulk_N`) from the simulator over loopback
//! into SQLite (a temp file) through `SyncEngine`, reporting transactions/second and peak RSS.
//!
//! Run: `cargo bench -p banksync --bench initial_sync` (sizes 10000,100000,200000 by default; override with
//! `-- 5000,50000`). Targets: >= 50,000 transactions/s end to end, peak RSS < 150 MB, and a peak that does not
//! grow with history.
//!
//! Each measurement runs in its own process, since the peak RSS (`VmHWM`) of a process never goes down; the
//! simulator runs in another process too, so its memory (it holds the generated history) is not counted as ours.
//! The parent process only orchestrates: `initial_sync [SIZES]` → for each size, `initial_sync --sim` (prints its
//! URL) and `initial_sync --sync URL N` (prints one result line).

#[path = "support/mod.rs"]
mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banksync::store;
use banksync::sync::{SyncEngine, SyncOptions, SyncTrigger};
use banksync::vault::{MasterKey, Vault};
use plaid::{ClientConfig, Environment, PlaidClient, Product, SandboxPublicTokenCreateRequest};
use secrecy::SecretString;

const DEFAULT_SIZES: &[u64] = &[10_000, 100_000, 200_000];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("--sim") => run_sim(),
        Some("--sync") => {
            let url = args.get(1).expect("--sync URL N");
            let n: u64 = args.get(2).and_then(|n| n.parse().ok()).expect("--sync URL N");
            run_sync(url, n);
        }
        // Diagnostics: the simulator and the client alone, no store.
        Some("--fetch-only") => {
            let runtime = tokio::runtime::Runtime::new().expect("runtime");
            runtime.block_on(fetch_only(&args[1], args[2].parse().expect("N")));
        }
        sizes => orchestrate(sizes),
    }
}

fn orchestrate(sizes: Option<&str>) {
    let sizes: Vec<u64> = match sizes {
        Some(list) => list.split(',').map(|s| s.trim().parse().expect("sizes like 10000,100000")).collect(),
        None => DEFAULT_SIZES.to_vec(),
    };
    let exe = std::env::current_exe().expect("own path");
    println!("initial sync: simulator over loopback -> SyncEngine -> SQLite (temp file), page size 500");
    println!(
        "{:>9} {:>9} {:>12} {:>13} {:>13} {:>6} {:>9} {:>9}",
        "txns", "seconds", "txns/s", "peak RSS MB", "base RSS MB", "pages", "CPU s", "db CPU s"
    );
    for n in sizes {
        let mut sim = Command::new(&exe).arg("--sim").stdout(Stdio::piped()).spawn().expect("start simulator");
        let mut line = String::new();
        BufReader::new(sim.stdout.as_mut().expect("piped")).read_line(&mut line).expect("simulator URL");
        let url = line.trim().to_owned();
        let out = Command::new(&exe)
            .args(["--sync", &url, &n.to_string()])
            .stderr(Stdio::inherit())
            .output()
            .expect("run sync");
        // The simulator child is ours; stop it before the next size.
        let _ = sim.kill();
        let _ = sim.wait();
        if !out.status.success() {
            panic!("sync of {n} transactions failed");
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
        std::io::stdout().flush().ok();
    }
}

/// Serves the simulator on a loopback port, prints its URL, and runs until killed.
fn run_sim() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = plaid_sim::SimConfig {
            // Plaid's per-Item limit (50 pages a minute) would make this a benchmark of the rate limiter.
            rate_limits: false,
            deliver_webhooks: false,
            ..plaid_sim::SimConfig::default()
        };
        let running =
            plaid_sim::Simulator::new(config).spawn("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
        println!("{}", running.url());
        std::io::stdout().flush().ok();
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
}

fn run_sync(url: &str, n: u64) {
    // BANKSYNC_BENCH_LOG=info shows the engine's "sync finished" line with where the time went.
    if let Ok(filter) = std::env::var("BANKSYNC_BENCH_LOG") {
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("bench.db");
        // Experiment knob: BANKSYNC_BENCH_SQLITE_CACHE_MB sets SQLite's page cache (default: the store's own setting).
        let store: Arc<store::Store> = match std::env::var("BANKSYNC_BENCH_SQLITE_CACHE_MB") {
            Ok(mb) => {
                let kib: i64 = mb.parse::<i64>().expect("MB") * 1024;
                let options =
                    sqlx::sqlite::SqliteConnectOptions::new().filename(&path).pragma("cache_size", format!("-{kib}"));
                Arc::new(store::Store::connect_sqlite(options).await.unwrap())
            }
            Err(_) => store::connect(&format!("sqlite://{}", path.display())).await.unwrap(),
        };
        store.migrate().await.unwrap();
        let defaults = plaid_sim::SimConfig::default();
        let plaid = PlaidClient::new(ClientConfig::new(
            Environment::Custom(url::Url::parse(url).unwrap()),
            defaults.client_id.clone(),
            SecretString::from(defaults.secret.clone()),
        ))
        .unwrap();
        let plaid = plaid.with_observer(banksync::audit::observer(store.clone()));
        let vault = Arc::new(Vault::new(MasterKey::generate()));
        let user = store.create_user("bench", "$argon2id$unused").await.unwrap();

        let item = support::link_item(&store, &plaid, &vault, &user, &format!("user_bulk_{n}"), "pass").await;

        let engine = SyncEngine::new(store.clone(), plaid, vault, SyncOptions::default());
        let base_rss = proc_status_kb("VmRSS");
        let started = Instant::now();
        let cpu_before = cpu_seconds();
        let db_cpu_before = sqlite_threads_cpu_seconds();
        let summary = engine.sync_item(&item, SyncTrigger::Link).await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds() - cpu_before;
        let db_cpu = sqlite_threads_cpu_seconds() - db_cpu_before;
        let peak = proc_status_kb("VmHWM");
        assert_eq!(summary.added, n, "every transaction arrived");
        assert_eq!(summary.restarts, 0);
        let page = store
            .list_transactions(&user.id, &banksync::domain::TransactionFilter { limit: 1, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1, "the transactions are visible");
        println!(
            "{:>9} {:>9.2} {:>12.0} {:>13.1} {:>13.1} {:>6} {:>9.2} {:>9.2}",
            n,
            secs,
            n as f64 / secs,
            peak as f64 / 1024.0,
            base_rss as f64 / 1024.0,
            summary.pages,
            cpu,
            db_cpu
        );
    });
}

/// User + system CPU time of this process so far (Linux), all threads: the cost of a sync independent of what else
/// the machine runs (wall time on a shared 2-core machine is not).
fn cpu_seconds() -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat (Linux only)"))
}

/// CPU time of the threads that run SQLite (sqlx gives each connection one; the writer's is the sync's critical
/// path), so far.
fn sqlite_threads_cpu_seconds() -> f64 {
    let mut total = 0.0;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task").flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.starts_with("sqlx-sqlite") {
            total += stat_cpu_seconds(&std::fs::read_to_string(task.path().join("stat")).unwrap_or_default());
        }
    }
    total
}

fn stat_cpu_seconds(stat: &str) -> f64 {
    // Fields after the parenthesized command name; utime and stime are fields 14 and 15 (1-based), in clock ticks.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // USER_HZ, which /proc reports in, is 100 on every Linux architecture in use.
    ticks as f64 / 100.0
}

/// A `kB` field of /proc/self/status (Linux).
fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|rest| rest.trim_start_matches(':').split_whitespace().next()))
        .and_then(|v| v.parse().ok())
        .expect("field present")
}

async fn fetch_only(url: &str, n: u64) {
    let defaults = plaid_sim::SimConfig::default();
    let plaid = PlaidClient::new(ClientConfig::new(
        Environment::Custom(url::Url::parse(url).unwrap()),
        defaults.client_id.clone(),
        SecretString::from(defaults.secret.clone()),
    ))
    .unwrap();
    let request = SandboxPublicTokenCreateRequest::new("ins_109508", [Product::Transactions])
        .credentials(format!("user_bulk_{n}"), "pass")
        .days_requested(730);
    let public_token = plaid.sandbox_public_token_create(&request).await.unwrap().public_token;
    let token = plaid.item_public_token_exchange(&public_token).await.unwrap().access_token;
    let started = Instant::now();
    let mut cursor = String::new();
    let mut count = 0;
    let mut normalize_time = Duration::ZERO;
    loop {
        let page = plaid
            .transactions_sync(&plaid::TransactionsSyncRequest::new(token.clone()).cursor(cursor.clone()).count(500))
            .await
            .unwrap();
        count += page.added.len();
        let t = Instant::now();
        for tx in &page.added {
            std::hint::black_box(banksync::normalize::transaction(tx).unwrap());
        }
        normalize_time += t.elapsed();
        cursor = page.next_cursor;
        if !page.has_more {
            break;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "fetch only: {count} txns in {secs:.2} s ({:.0}/s), normalize {:.2} s",
        count as f64 / secs,
        normalize_time.as_secs_f64()
    );
}
