//! Benchmark of the read API at scale: every filter shape of `GET /api/transactions` and the spending aggregates,
//! sequentially (p50/p99), then the newest page under concurrent connections (requests/s, p99), through the real
//! `Application` (auth, routing, JSON) over loopback, on SQLite or PostgreSQL.
//!
//! The history is seeded straight through the store's initial-sync path (claim, pages of 5,000 rows, commit: the
//! same statements, indexes, FTS and summary triggers a real first sync runs, without the simulator), one Item of
//! five accounts over two years, realistic rows (~1.5 KB with Plaid's raw JSON), 120 merchants, 14 categories, a few
//! pending rows.
//!
//! ```text
//! cargo bench -p banksync --bench queries                      # SQLite, 1,000,000 rows
//! BENCH_DB=postgres cargo bench -p banksync --bench queries    # PostgreSQL (BANKSYNC_TEST_POSTGRES_URL, own schema)
//! BENCH_DB=postgres BENCH_KEEP=1 cargo bench ... --bench queries # …and keep the schema afterwards, for EXPLAIN
//! BENCH_KEEP=1 cargo bench -p banksync --bench queries             # SQLite: keep the database file
//! BENCH_ROWS=100000 BENCH_REQUESTS=200 BENCH_CONCURRENCY=16 BENCH_LOAD=5000 cargo bench ... --bench queries
//! BENCH_WRITE_AB=100000 cargo bench -p banksync --bench queries  # write-path cost of each read path's upkeep
//! ```
//!
//! `BENCH_WRITE_AB=N` instead seeds N rows into fresh SQLite databases, alternating the schema as migrated with the
//! same schema minus one read path's upkeep at a time (FTS triggers, spending-summary triggers, the amount index, the
//! category indexes), with the amount index as it was before its bands, and minus all of them,
//! `BENCH_WRITE_ROUNDS` (3) rounds each, and prints the transactions/s of each: the write-path cost each read path
//! adds, interleaved so machine noise hits every variant alike. `BENCH_WRITE_VARIANTS=0,4` runs only those.

use std::time::{Duration, Instant};

use banksync::auth::token::{hash_secret, new_api_token};
use banksync::config::{Config, Settings};
use banksync::domain::{NewItem, NewTransaction, SyncPage, TransactionFields, User};
use banksync::startup::Application;
use banksync::store::Store;
use banksync::vault::{MasterKey, Vault};
use chrono::{DateTime, Duration as TimeDelta, Utc};
use futures::StreamExt as _;
use rust_decimal::Decimal;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const ACCOUNTS: usize = 5;
const BATCH: usize = 5_000;
const MERCHANT_WORDS: &[&str] = &[
    "Starbucks",
    "Blue Bottle Coffee",
    "Whole Foods Market",
    "Trader Joe's",
    "Shell",
    "Chevron",
    "Uber",
    "Lyft",
    "Amazon",
    "Target",
    "Walmart",
    "Costco",
    "Netflix",
    "Spotify",
    "Apple",
    "Delta Air Lines",
    "United Airlines",
    "Chipotle",
    "McDonald's",
    "Safeway",
    "CVS Pharmacy",
    "Walgreens",
    "Home Depot",
    "Lowe's",
];
const CATEGORIES: &[(&str, &str)] = &[
    ("FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE"),
    ("FOOD_AND_DRINK", "FOOD_AND_DRINK_RESTAURANT"),
    ("FOOD_AND_DRINK", "FOOD_AND_DRINK_GROCERIES"),
    ("GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES"),
    ("GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_SUPERSTORES"),
    ("TRANSPORTATION", "TRANSPORTATION_GAS"),
    ("TRANSPORTATION", "TRANSPORTATION_TAXIS_AND_RIDE_SHARES"),
    ("TRAVEL", "TRAVEL_FLIGHTS"),
    ("ENTERTAINMENT", "ENTERTAINMENT_TV_AND_MOVIES"),
    ("RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT"),
    ("INCOME", "INCOME_WAGES"),
    ("TRANSFER_OUT", "TRANSFER_OUT_ACCOUNT_TRANSFER"),
    ("LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"),
    ("MEDICAL", "MEDICAL_PHARMACIES_AND_SUPPLEMENTS"),
];
/// Newest transaction's time; the history goes back two years from here.
fn newest() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z").unwrap().with_timezone(&Utc)
}

fn transaction(i: usize, total: usize) -> NewTransaction {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16;
    let merchant = MERCHANT_WORDS[(h % MERCHANT_WORDS.len() as u64) as usize];
    let branch = (h >> 8) % 5;
    let (primary, detailed) = CATEGORIES[((h >> 16) % CATEGORIES.len() as u64) as usize];
    let span = 730 * 24 * 3600;
    let datetime = newest() - TimeDelta::seconds((i as i64 * span) / total.max(1) as i64);
    let amount = if primary == "INCOME" {
        -Decimal::new(250_000 + (h % 100_000) as i64, 2)
    } else {
        Decimal::new((h % 30_000) as i64 + 100, 2)
    };
    // 37 characters in random order, like Plaid's (and the simulator's) ids: a sequential id would fill the
    // primary-key index at one end, which no real history does.
    let id = format!("{:016x}{i:021}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let account = format!("bench-account-{}", i % ACCOUNTS);
    let name = format!(
        "{} #{} {}",
        merchant.to_uppercase(),
        1000 + (h >> 24) % 9000,
        ["SEATTLE WA", "PORTLAND OR", "ONLINE"][branch as usize % 3]
    );
    let fields = TransactionFields {
        account_id: account.clone().into(),
        amount,
        currency: Some("USD".into()),
        currency_is_official: true,
        datetime,
        time_unknown: false,
        date: datetime.date_naive(),
        authorized_date: Some(datetime.date_naive()),
        name: name.clone(),
        merchant_name: Some(merchant.into()),
        logo_url: Some(format!("https://plaid-merchant-logos.plaid.com/{}.png", merchant.len())),
        website: Some("example.com".into()),
        pfc_primary: Some(primary.into()),
        pfc_detailed: Some(detailed.into()),
        pfc_confidence: Some("VERY_HIGH".into()),
        pfc_icon_url: Some(format!("https://plaid-category-icons.plaid.com/PFC_{primary}.png")),
        payment_channel: Some("in store".into()),
        // The newest few are still pending (as in a real history: pending ones are recent).
        pending: i < 20,
        pending_transaction_id: None,
        counterparties: Some(format!(
            r#"[{{"name":"{merchant}","type":"merchant","logo_url":null,"website":"example.com","entity_id":"E{}","confidence_level":"VERY_HIGH"}}]"#,
            merchant.len()
        )),
        location: Some(r#"{"address":"1 Main St","city":"Seattle","region":"WA","postal_code":"98101","country":"US","lat":47.6,"lon":-122.3,"store_number":null}"#.into()),
        account_owner: None,
    };
    let raw = format!(
        r#"{{"transaction_id":"{id}","account_id":"{account}","amount":{amount},"iso_currency_code":"USD","unofficial_currency_code":null,"date":"{}","datetime":"{}","authorized_date":"{}","authorized_datetime":null,"name":"{name}","merchant_name":"{merchant}","merchant_entity_id":"E{}","logo_url":null,"website":"example.com","pending":{},"pending_transaction_id":null,"payment_channel":"in store","payment_meta":{{"by_order_of":null,"payee":null,"payer":null,"payment_method":null,"payment_processor":null,"ppd_id":null,"reason":null,"reference_number":null}},"personal_finance_category":{{"primary":"{primary}","detailed":"{detailed}","confidence_level":"VERY_HIGH"}},"transaction_code":null,"transaction_type":"place","check_number":null,"account_owner":null,"category":null,"category_id":null}}"#,
        fields.date,
        datetime.to_rfc3339(),
        fields.date,
        merchant.len(),
        fields.pending
    );
    NewTransaction { transaction_id: id.into(), fields, raw }
}

/// Writes `total` transactions into a new Item of `user` through the initial-sync path; returns txns/s.
async fn seed(store: &Store, vault: &Vault, user: &User, item_id: &str, total: usize) -> anyhow::Result<f64> {
    let item = store
        .insert_item(&NewItem {
            item_id: item_id.into(),
            user_id: user.id.clone(),
            institution_id: Some("ins_bench".into()),
            institution_name: Some("Bench Bank".into()),
            access_token: vault.encrypt(&"access-sandbox-bench".to_owned().into(), item_id)?,
        })
        .await?;
    let run = store.start_sync_run(&item.id, "bench").await?;
    anyhow::ensure!(store.claim_initial_sync(&item, &run.id).await?, "claim");
    let started = Instant::now();
    let mut i = 0;
    while i < total {
        let end = (i + BATCH).min(total);
        let page = SyncPage { added: (i..end).map(|n| transaction(n, total)).collect(), ..SyncPage::default() };
        store.write_initial_pages(&item, &run.id, std::slice::from_ref(&page)).await?;
        i = end;
    }
    store.commit_initial_sync(&item, &run.id, "bench-cursor").await?;
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Some(n) = std::env::var("BENCH_WRITE_AB").ok().and_then(|v| v.parse().ok()) {
        return runtime.block_on(write_ab(n));
    }
    runtime.block_on(run())
}

const DROP_FTS: &[&str] = &[
    "DROP TRIGGER transactions_fts_insert",
    "DROP TRIGGER transactions_fts_delete",
    "DROP TRIGGER transactions_fts_update",
];
const DROP_SPENDING: &[&str] = &[
    "DROP TRIGGER spending_insert",
    "DROP TRIGGER spending_delete",
    "DROP TRIGGER spending_update_out",
    "DROP TRIGGER spending_update_in",
];
const DROP_AMOUNT: &[&str] = &["DROP INDEX transactions_amount"];
/// The amount index before the bands (migration `amount_bands`): led by the exact amount.
const EXACT_AMOUNT_INDEX: &[&str] = &[
    "DROP INDEX transactions_amount",
    "CREATE INDEX transactions_amount ON transactions(user_id, amount_key, date, datetime, transaction_id, item_ref, \
     deleted_at) WHERE deleted_at IS NULL",
];
const DROP_CATEGORIES: &[&str] =
    &["DROP INDEX transactions_effective_category_time", "DROP INDEX transactions_detailed_category_time"];
const DROP_PENDING: &[&str] = &["DROP INDEX transactions_pending_time"];

/// The write-path comparison's variants, each with what it drops from the migrated schema: none, one read path at a
/// time, then all of them (the schema before this issue).
fn write_variants() -> Vec<(&'static str, Vec<&'static str>)> {
    let all = [DROP_FTS, DROP_SPENDING, DROP_AMOUNT, DROP_CATEGORIES, DROP_PENDING].concat();
    vec![
        ("as migrated", Vec::new()),
        ("without full-text search", DROP_FTS.to_vec()),
        ("without the spending summary", DROP_SPENDING.to_vec()),
        ("without the amount index", DROP_AMOUNT.to_vec()),
        ("with the exact amount index", EXACT_AMOUNT_INDEX.to_vec()),
        ("without the category indexes", DROP_CATEGORIES.to_vec()),
        ("without all of them", all),
    ]
}

async fn write_ab(n: usize) -> anyhow::Result<()> {
    let rounds = env("BENCH_WRITE_ROUNDS", 3);
    println!("write-path cost: initial-sync path, {n} transactions per run, SQLite (temp file), interleaved");
    // `BENCH_WRITE_VARIANTS=0,3,5`: only these (by their place in the list), for a quicker A/B.
    let only: Option<Vec<usize>> = std::env::var("BENCH_WRITE_VARIANTS")
        .ok()
        .map(|v| v.split(',').filter_map(|i| i.trim().parse().ok()).collect());
    let variants: Vec<_> = write_variants()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only.as_ref().is_none_or(|only| only.contains(i)))
        .map(|(_, v)| v)
        .collect();
    let mut results: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (variant, (name, drops)) in variants.iter().enumerate() {
            let dir = tempfile::tempdir()?;
            let path = dir.path().join("ab.db");
            {
                let store = Store::open_sqlite(&path).await?;
                store.migrate().await?;
                store.close().await;
            }
            if !drops.is_empty() {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display())).await?;
                for statement in drops {
                    sqlx::query(statement).execute(&pool).await?;
                }
                pool.close().await;
            }
            let store = Store::open_sqlite(&path).await?;
            let user = store.create_user("bench", "x").await?;
            let vault = Vault::new(MasterKey::generate());
            let rate = seed(&store, &vault, &user, "bench-item", n).await?;
            store.close().await;
            println!("  round {round}: {name:<30} {rate:>9.0} txns/s");
            results[variant].push(rate);
        }
    }
    let (first, baseline) = (variants[0].0, median(&mut results[0].clone()));
    for ((name, _), rates) in variants.iter().zip(&mut results) {
        let rate = median(rates);
        println!("  median: {name:<30} {rate:>9.0} txns/s: {:.2}x the time {first}", baseline / rate);
    }
    Ok(())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Shape {
    name: &'static str,
    path: String,
}

async fn run() -> anyhow::Result<()> {
    let rows = env("BENCH_ROWS", 1_000_000);
    let requests = env("BENCH_REQUESTS", 100);
    let concurrency = env("BENCH_CONCURRENCY", 16);
    let load = env("BENCH_LOAD", 5_000);
    let postgres = std::env::var("BENCH_DB").is_ok_and(|v| v == "postgres");

    let data_dir = tempfile::tempdir()?;
    let key = MasterKey::generate();
    key.write_file_atomic(&data_dir.path().join("master.key"))?;
    let vault = Vault::new(key);
    let (database_url, pg_schema) = if postgres {
        let base = std::env::var("BANKSYNC_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let schema = format!("bench_queries_{}", std::process::id());
        let admin = sqlx::PgPool::connect(&base).await?;
        sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&admin).await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        (format!("{base}{sep}options=-c%20search_path%3D{schema}"), Some((admin, schema)))
    } else {
        (format!("sqlite://{}", data_dir.path().join("banksync.db").display()), None)
    };

    // Seed before the server starts: no worker or scheduler may touch the Item while its history is written.
    let store = banksync::store::connect(&database_url).await?;
    store.migrate().await?;
    let user = store.create_user("bench", "not-a-password-hash").await?;
    let token = new_api_token();
    store.create_api_token(&user.id, "bench", &hash_secret(&token)).await?;
    let rate = seed(&store, &vault, &user, "bench-item", rows).await?;
    store.close().await;
    let backend = if postgres { "PostgreSQL" } else { "SQLite" };
    println!("queries benchmark: {backend}, {rows} transactions in one Item ({ACCOUNTS} accounts, two years)");
    println!("  seeded through the initial-sync path at {rate:.0} txns/s");

    let settings = Settings {
        listen: Some("127.0.0.1:0".parse()?),
        data_dir: Some(data_dir.path().to_owned()),
        database_url: Some(database_url.clone()),
        // Plaid is never called: any keys do (the simulator is not started with keys).
        plaid_client_id: Some("bench".into()),
        plaid_secret: Some("bench".into()),
        plaid_base_url: Some("http://127.0.0.1:9".into()),
        sync_interval: Some("1000d".into()),
        ..Settings::default()
    };
    let app = Application::build(Config::resolve(settings)?).await?;
    let base = app.url();
    let server = tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency.max(1)).build()?;
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        let token = token.clone();
        async move {
            let started = Instant::now();
            let response = client.get(&url).bearer_auth(&token).send().await.expect("request sent");
            let status = response.status();
            let body = response.bytes().await.expect("body");
            assert!(status.is_success(), "{url}: {status} {}", String::from_utf8_lossy(&body));
            (started.elapsed(), body)
        }
    };

    // A cursor 20,000 rows deep.
    let mut cursor = String::new();
    for _ in 0..40 {
        let suffix = if cursor.is_empty() { String::new() } else { format!("&cursor={cursor}") };
        let (_, body) = get(format!("/api/transactions?limit=500{suffix}")).await;
        let page: serde_json::Value = serde_json::from_slice(&body)?;
        cursor = page["next_cursor"].as_str().unwrap_or_default().to_owned();
    }
    let newest_month = newest().date_naive();
    let month = (newest_month - TimeDelta::days(365)).format("%Y-%m").to_string();
    let to = newest_month.format("%Y-%m").to_string();
    let from24 = (newest_month - TimeDelta::days(700)).format("%Y-%m").to_string();
    let shapes = vec![
        Shape { name: "newest page", path: "/api/transactions?limit=100".into() },
        Shape { name: "keyset page 20,000 deep", path: format!("/api/transactions?limit=100&cursor={cursor}") },
        Shape { name: "one account", path: "/api/transactions?limit=100&account_id=bench-account-3".into() },
        Shape {
            name: "one month (a year back)",
            path: format!("/api/transactions?limit=100&start={month}-01&end={month}-28"),
        },
        Shape { name: "category (primary or user's)", path: "/api/transactions?limit=100&category=TRAVEL".into() },
        Shape { name: "effective category", path: "/api/transactions?limit=100&effective_category=MEDICAL".into() },
        Shape {
            name: "detailed category",
            path: "/api/transactions?limit=100&detailed_category=TRAVEL_FLIGHTS".into(),
        },
        Shape { name: "search, common word", path: "/api/transactions?limit=100&q=coffee".into() },
        Shape { name: "search, prefix", path: "/api/transactions?limit=100&q=star".into() },
        Shape { name: "search, no match", path: "/api/transactions?limit=100&q=zzyzx".into() },
        Shape { name: "pending only", path: "/api/transactions?limit=100&pending=true".into() },
        Shape {
            name: "amount range (100-101)",
            path: "/api/transactions?limit=100&min_amount=100&max_amount=101".into(),
        },
        Shape {
            name: "amount range, 91 bands (100-1,000)",
            path: "/api/transactions?limit=100&min_amount=100&max_amount=1000".into(),
        },
        Shape {
            name: "amount range, 1 band, sparse",
            path: "/api/transactions?limit=100&min_amount=104.10&max_amount=104.20".into(),
        },
        Shape {
            name: "amount range, dense (-1,000-1,000)",
            path: "/api/transactions?limit=100&min_amount=-1000&max_amount=1000".into(),
        },
        Shape { name: "amount >= 290 (a lone bound)", path: "/api/transactions?limit=100&min_amount=290".into() },
        Shape {
            name: "account + search + keyset",
            path: format!("/api/transactions?limit=100&account_id=bench-account-3&q=shell&cursor={cursor}"),
        },
        Shape {
            name: "spending by category, 24 months",
            path: format!("/api/spending/categories?from={from24}&to={to}"),
        },
        Shape { name: "cash flow, 24 months", path: format!("/api/spending/cash-flow?from={from24}&to={to}") },
    ];
    println!("  sequential, {requests} requests per shape (after 10 warm-up requests):");
    println!("    {:<36} {:>9} {:>9} {:>9}", "shape", "p50 ms", "p99 ms", "rows");
    for shape in &shapes {
        for _ in 0..10 {
            get(shape.path.clone()).await;
        }
        let mut latencies = Vec::with_capacity(requests);
        let mut rows_returned = 0;
        for _ in 0..requests {
            let (latency, body) = get(shape.path.clone()).await;
            latencies.push(latency);
            let value: serde_json::Value = serde_json::from_slice(&body)?;
            rows_returned = value["transactions"].as_array().map_or(0, Vec::len);
        }
        latencies.sort();
        println!(
            "    {:<36} {:>9.2} {:>9.2} {:>9}",
            shape.name,
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            rows_returned
        );
    }

    let newest_page = "/api/transactions?limit=100".to_owned();
    let warm: Vec<_> =
        futures::stream::iter(0..200).map(|_| get(newest_page.clone())).buffer_unordered(concurrency).collect().await;
    drop(warm);
    let started = Instant::now();
    let results: Vec<_> =
        futures::stream::iter(0..load).map(|_| get(newest_page.clone())).buffer_unordered(concurrency).collect().await;
    let elapsed = started.elapsed();
    let mut latencies: Vec<Duration> = results.iter().map(|(l, _)| *l).collect();
    latencies.sort();
    println!(
        "  newest page under {concurrency} connections: {:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms ({load} requests)",
        load as f64 / elapsed.as_secs_f64(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
    );

    // The same page under an out-of-process load generator: the in-process client above shares the server's two
    // cores and runtime, so it understates what the server serves. `wrk` (Debian's package) is C and light.
    let secs = env("BENCH_WRK_SECS", 10);
    match wrk(&format!("{base}{newest_page}"), &token, concurrency, secs) {
        Ok(line) => println!("  newest page under {concurrency} connections, wrk for {secs} s: {line}"),
        Err(e) => println!("  newest page under wrk: not measured ({e})"),
    }

    server.abort();
    let keep = std::env::var("BENCH_KEEP").is_ok();
    match pg_schema {
        Some((admin, schema)) if !keep => {
            sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&admin).await?;
        }
        Some((_, schema)) => println!("  kept the PostgreSQL schema {schema}"),
        None if keep => println!("  kept the SQLite database {}", data_dir.keep().join("banksync.db").display()),
        None => {}
    }
    Ok(())
}

/// Runs `wrk` (one thread, `connections` connections) against `url` for `secs` seconds; "N requests/s, p50, p99".
fn wrk(url: &str, token: &str, connections: usize, secs: usize) -> anyhow::Result<String> {
    let output = std::process::Command::new("wrk")
        .args(["-t1", &format!("-c{connections}"), &format!("-d{secs}s"), "--latency"])
        .args(["-H", &format!("Authorization: Bearer {token}"), url])
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run wrk ({e}); apt install wrk"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(output.status.success(), "wrk failed: {}", String::from_utf8_lossy(&output.stderr));
    anyhow::ensure!(!text.contains("Non-2xx"), "wrk saw failed requests:\n{text}");
    // `--latency` prints "     50%    5.12ms" lines; "Requests/sec:   1234.56".
    let field = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned()))
            .ok_or_else(|| anyhow::anyhow!("no {prefix:?} in wrk's output:\n{text}"))
    };
    Ok(format!("{} requests/s, p50 {}, p99 {}", field("Requests/sec:")?, field("50%")?, field("99%")?))
}
