//! Load: transaction queries and signed webhooks together against one banksync holding many transactions.
//!
//! The harness starts the real application (the tests' harness, `tests/common/app.rs`: SQLite in a temp dir, its
//! own Plaid simulator behind the key proxy so webhooks can be signed), links one simulated Item through the API,
//! seeds `rows` more transactions into that Item through the store (Plaid-shaped JSON → the real decoder and
//! normalizer → `Store::apply_sync`, 5,000 per batch), then for `secs` seconds runs query clients (lists, account,
//! date and amount filters, full-text search, three-page cursor walks, accounts and Items) beside a webhook sender
//! (distinct signed SYNC_UPDATES_AVAILABLE deliveries for the Item, each one queueing a real sync against the
//! simulator). It reports requests, errors and latency percentiles per kind, and the process's resident memory
//! sampled every 250 ms (the server runs in this process).
//!
//! Pass/fail: no request may fail, and memory must stay flat: the mean RSS of the last third of the run may exceed
//! the first third's by at most 25 % + 64 MiB (allocator noise; a leak per request grows without bound).
//!
//! Benchmark (release): `cargo bench -p banksync --bench load -- 1000000 60` (rows, seconds; also BENCH_QUERY_CLIENTS,
//! BENCH_WEBHOOKS_PER_SEC). CI runs the same harness at 100,000 rows for 10 s: `tests/load_smoke.rs`.

#![allow(dead_code)]

#[path = "../tests/common/app.rs"]
mod app;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use banksync::domain::{AccountFilter, SyncBatch, SyncPage};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use rand::{Rng as _, SeedableRng as _};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use app::TestApp;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Transactions seeded on top of the simulated Item's own history.
    pub rows: usize,
    /// How long queries and webhooks run together.
    pub secs: u64,
    pub query_clients: usize,
    pub webhooks_per_sec: u64,
}

/// Latencies of one kind of request.
#[derive(Debug, Default)]
pub struct Stats {
    pub latencies: Vec<Duration>,
}

impl Stats {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
    fn line(&self, name: &str, secs: f64) -> String {
        format!(
            "{name:<9} {:>7} requests ({:>7.1}/s)  p50 {:>8.2?}  p95 {:>8.2?}  p99 {:>8.2?}  max {:>8.2?}",
            self.latencies.len(),
            self.latencies.len() as f64 / secs,
            self.percentile(50.0),
            self.percentile(95.0),
            self.percentile(99.0),
            self.percentile(100.0)
        )
    }
}

#[derive(Debug)]
pub struct LoadReport {
    pub stored_transactions: i64,
    pub seed_time: Duration,
    pub run_time: Duration,
    /// Every query, and the same latencies split by kind (the slow shape is named, not averaged away).
    pub queries: Stats,
    pub queries_by_kind: BTreeMap<&'static str, Stats>,
    pub webhooks: Stats,
    pub errors: Vec<String>,
    /// Resident set size in KiB, every 250 ms during the run.
    pub rss_kib: Vec<u64>,
    pub syncs_after_webhooks: i64,
}

impl LoadReport {
    fn third_means(&self) -> (u64, u64) {
        let n = self.rss_kib.len().max(3);
        let third = n / 3;
        let mean = |s: &[u64]| s.iter().sum::<u64>() / s.len().max(1) as u64;
        (
            mean(&self.rss_kib[..third.min(self.rss_kib.len())]),
            mean(&self.rss_kib[self.rss_kib.len().saturating_sub(third)..]),
        )
    }

    /// Whether memory stayed flat (see the header), with the means compared.
    pub fn memory_flat(&self) -> (bool, u64, u64) {
        let (first, last) = self.third_means();
        (last <= first + first / 4 + 64 * 1024, first, last)
    }

    pub fn render(&self) -> String {
        let secs = self.run_time.as_secs_f64();
        let (flat, first, last) = self.memory_flat();
        let kinds: String =
            self.queries_by_kind.iter().map(|(kind, stats)| format!("  {}\n", stats.line(kind, secs))).collect();
        format!(
            "load: {} transactions stored (seeded in {:.1?}), {:.1?} of queries + webhooks\n{}\n{kinds}{}\nerrors: {}\n\
             RSS: first third {} MiB, last third {} MiB, max {} MiB ({})\nsync runs after the webhooks: {}",
            self.stored_transactions,
            self.seed_time,
            self.run_time,
            self.queries.line("queries", secs),
            self.webhooks.line("webhooks", secs),
            self.errors.len(),
            first / 1024,
            last / 1024,
            self.rss_kib.iter().max().copied().unwrap_or(0) / 1024,
            if flat { "flat" } else { "GROWING" },
            self.syncs_after_webhooks,
        )
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

const WORDS: [&str; 12] = [
    "Coffee", "Grocery", "Payroll", "Rent", "Transit", "Pharmacy", "Bookshop", "Cinema", "Bakery", "Hardware",
    "Airline", "Utility",
];

/// Seeds `rows` Plaid-shaped transactions into the Item's accounts through the real decoder, normalizer and store.
async fn seed(app: &TestApp, item_id: &str, rows: usize) -> Vec<String> {
    let item = app.store.get_item_by_plaid_id(&item_id.to_owned().into()).await.unwrap().unwrap();
    let user = app.store.find_user_by_username(&app.user.username).await.unwrap().unwrap();
    let accounts: Vec<String> = app
        .store
        .list_accounts(&user.id, &AccountFilter { item_id: Some(item.item_id.clone()), include_removed: false })
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.account_id.as_str().to_owned())
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    let mut done = 0;
    while done < rows {
        let batch = (rows - done).min(5_000);
        let added = (done..done + batch)
            .map(|i| {
                let word = WORDS[rng.gen_range(0..WORDS.len())];
                let cents: i64 = rng.gen_range(-500_000..500_000);
                let date = start + chrono::Duration::days(rng.gen_range(0..700));
                let raw = json!({
                    "transaction_id": format!("load-{i:08}"),
                    "account_id": accounts[i % accounts.len()],
                    "amount": serde_json::Number::from_string_unchecked(format!("{}.{:02}", cents / 100, (cents % 100).abs())),
                    "iso_currency_code": "USD",
                    "date": date.to_string(),
                    "name": format!("{word} {} #{}", WORDS[i % WORDS.len()], i % 997),
                    "merchant_name": word,
                    "pending": false,
                    "payment_channel": "in store",
                    "personal_finance_category": {"primary": "GENERAL_MERCHANDISE", "detailed": "GENERAL_MERCHANDISE_OTHER", "confidence_level": "HIGH"},
                });
                banksync::normalize::transaction(&plaid::Transaction::from_value(raw).unwrap()).unwrap()
            })
            .collect();
        let batch_write =
            SyncBatch { page: SyncPage { added, modified: Vec::new(), removed: Vec::new() }, next_cursor: None };
        app.store.apply_sync(&item, &batch_write).await.unwrap();
        done += batch;
    }
    accounts
}

fn sign(key: &SigningKey, kid: &str, body: &[u8]) -> String {
    let header = json!({"alg": "ES256", "kid": kid, "typ": "JWT"});
    let claims =
        json!({"iat": chrono::Utc::now().timestamp(), "request_body_sha256": hex::encode(Sha256::digest(body))});
    let input =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature: Signature = key.sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// One query client's request `n`: its kind, a path and whether it walks pages.
fn query(n: usize, rng: &mut rand::rngs::StdRng, accounts: &[String]) -> (&'static str, String, bool) {
    match n % 8 {
        0 => ("newest", "/api/transactions?limit=100".into(), false),
        1 => {
            let account = &accounts[rng.gen_range(0..accounts.len())];
            ("account", format!("/api/transactions?limit=100&account_id={account}"), false)
        }
        2 => {
            let day = rng.gen_range(0..650);
            let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap() + chrono::Duration::days(day);
            let end = start + chrono::Duration::days(30);
            ("month", format!("/api/transactions?limit=100&start={start}&end={end}"), false)
        }
        3 => {
            let low = rng.gen_range(0..4000);
            ("amount", format!("/api/transactions?limit=100&min_amount={low}&max_amount={}", low + 25), false)
        }
        4 => ("search", format!("/api/transactions?limit=50&q={}", WORDS[rng.gen_range(0..WORDS.len())]), false),
        5 => ("walk", "/api/transactions?limit=200".into(), true),
        6 => ("accounts", "/api/accounts".into(), false),
        _ => ("items", "/api/items".into(), false),
    }
}

pub async fn run(cfg: LoadConfig) -> LoadReport {
    let app = Arc::new(TestApp::builder().webhooks().spawn().await);
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !app.get_item(&item_id).await.body["last_successful_sync_at"].is_string() {
        assert!(Instant::now() < deadline, "the first sync did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let seeding = Instant::now();
    let accounts = seed(&app, &item_id, cfg.rows).await;
    let seed_time = seeding.elapsed();
    let stored_transactions = app.count("SELECT count(*) FROM transactions", &[]).await;
    let runs_before = app.count("SELECT count(*) FROM sync_runs", &[]).await;

    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let point = key.verifying_key().to_encoded_point(false);
    app.serve_webhook_key(
        "load-key",
        json!({"alg": "ES256", "crv": "P-256", "kid": "load-key", "kty": "EC", "use": "sig",
               "x": URL_SAFE_NO_PAD.encode(point.x().unwrap()), "y": URL_SAFE_NO_PAD.encode(point.y().unwrap()),
               "created_at": chrono::Utc::now().timestamp() - 60, "expired_at": null}),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let sampler = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                samples.push(rss_kib());
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            samples
        })
    };
    let mut clients = Vec::new();
    for client in 0..cfg.query_clients {
        let (app, stop, accounts) = (app.clone(), stop.clone(), accounts.clone());
        clients.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(client as u64);
            let (mut stats, mut errors) = (BTreeMap::<&'static str, Stats>::new(), Vec::new());
            let mut n = client;
            while !stop.load(Ordering::Relaxed) {
                let (kind, path, walk) = query(n, &mut rng, &accounts);
                n += 1;
                let mut next = Some(path.clone());
                for _ in 0..if walk { 3 } else { 1 } {
                    let Some(url) = next.take() else { break };
                    let begun = Instant::now();
                    let response = app.http.get(app.url(&url)).bearer_auth(&app.user.token).send().await;
                    match response {
                        Ok(r) if r.status() == 200 => {
                            let body: Value = r.json().await.unwrap_or(Value::Null);
                            stats.entry(kind).or_default().latencies.push(begun.elapsed());
                            if let Some(c) = body["next_cursor"].as_str() {
                                next = Some(format!("{path}&cursor={}", app::client::urlencode(c)));
                            }
                        }
                        Ok(r) => errors.push(format!("GET {url}: {}", r.status())),
                        Err(e) => errors.push(format!("GET {url}: {e}")),
                    }
                }
            }
            (stats, errors)
        }));
    }
    let sender = {
        let (app, stop, item_id) = (app.clone(), stop.clone(), item_id.clone());
        let period = Duration::from_micros(1_000_000 / cfg.webhooks_per_sec.max(1));
        tokio::spawn(async move {
            let (mut stats, mut errors) = (Stats::default(), Vec::new());
            let mut ticker = tokio::time::interval(period);
            let mut seq = 0u64;
            while !stop.load(Ordering::Relaxed) {
                ticker.tick().await;
                seq += 1;
                // A distinct body each time (Plaid's own bodies differ in their request id), so none is a duplicate.
                let body = serde_json::to_vec(
                    &json!({"webhook_type": "TRANSACTIONS", "webhook_code": "SYNC_UPDATES_AVAILABLE",
                    "item_id": item_id, "initial_update_complete": true, "historical_update_complete": true,
                    "environment": "sandbox", "load_seq": seq}),
                )
                .unwrap();
                let jwt = sign(&key, "load-key", &body);
                let begun = Instant::now();
                let response = app
                    .http
                    .post(app.url("/webhooks/plaid"))
                    .header("content-type", "application/json")
                    .header("plaid-verification", jwt)
                    .body(body)
                    .send()
                    .await;
                match response {
                    Ok(r) if r.status() == 200 => stats.latencies.push(begun.elapsed()),
                    Ok(r) => {
                        errors.push(format!("webhook {seq}: {} {}", r.status(), r.text().await.unwrap_or_default()))
                    }
                    Err(e) => errors.push(format!("webhook {seq}: {e}")),
                }
            }
            (stats, errors)
        })
    };

    tokio::time::sleep(Duration::from_secs(cfg.secs)).await;
    stop.store(true, Ordering::Relaxed);
    let run_time = started.elapsed();
    let (mut queries, mut queries_by_kind, mut errors) = (Stats::default(), BTreeMap::new(), Vec::new());
    for client in clients {
        let (by_kind, errs) = client.await.unwrap();
        for (kind, stats) in by_kind {
            queries.latencies.extend_from_slice(&stats.latencies);
            queries_by_kind.entry(kind).or_insert_with(Stats::default).latencies.extend(stats.latencies);
        }
        errors.extend(errs);
    }
    let (webhooks, errs) = sender.await.unwrap();
    errors.extend(errs);
    let rss_kib = sampler.await.unwrap();
    let syncs_after_webhooks = app.count("SELECT count(*) FROM sync_runs", &[]).await - runs_before;
    LoadReport {
        stored_transactions,
        seed_time,
        run_time,
        queries,
        queries_by_kind,
        webhooks,
        errors,
        rss_kib,
        syncs_after_webhooks,
    }
}

fn main() {
    // `cargo bench` adds `--bench`; the positional arguments are rows and seconds.
    let args: Vec<usize> =
        std::env::args().skip(1).filter(|a| !a.starts_with("--")).filter_map(|a| a.parse().ok()).collect();
    let env = |name: &str, default: usize| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let cfg = LoadConfig {
        rows: args.first().copied().unwrap_or(1_000_000),
        secs: args.get(1).copied().unwrap_or(60) as u64,
        query_clients: env("BENCH_QUERY_CLIENTS", 4),
        webhooks_per_sec: env("BENCH_WEBHOOKS_PER_SEC", 20) as u64,
    };
    println!("load: {cfg:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let report = runtime.block_on(run(cfg));
    println!("{}", report.render());
    for error in report.errors.iter().take(10) {
        println!("  error: {error}");
    }
    let (flat, _, _) = report.memory_flat();
    if !report.errors.is_empty() || !flat {
        std::process::exit(1);
    }
}
