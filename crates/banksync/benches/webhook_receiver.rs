//! Benchmark of `POST /webhooks/plaid`: verified webhooks per second and latency percentiles over loopback.
//!
//! The receiver runs as in production (verification, then the delivery recorded with dedupe and the coalesced job
//! queued in one write that also finds the Item) on a fresh store (SQLite temp file, PostgreSQL schema) with
//! `BENCH_ITEMS` Items. The verification key is cached (a
//! static key source: the state after the first fetch from Plaid). Every request is a distinct, validly signed
//! SYNC_UPDATES_AVAILABLE delivery (a sequence number in the body makes each one new, so none takes the duplicate
//! shortcut). Tokens are signed before the clock starts: signing is Plaid's cost, not ours. No workers run, so the
//! numbers are the receiver's alone.
//!
//! `cargo bench -p banksync --bench webhook_receiver` (env: BENCH_WEBHOOKS=10000, BENCH_CONCURRENCY=16,
//! BENCH_ITEMS=100, BENCH_BACKENDS=sqlite,postgres). Target: >= 2,000 webhooks/s with p99 < 20 ms at 16
//! connections. Prints one markdown row per backend, with a sequential per-call breakdown: the signature check, the
//! Item lookup (the receiver's read before its write, until the write found the Item itself), and the store's part
//! done as four calls (the receiver before) and as one write (now: a transaction on SQLite, one statement on
//! PostgreSQL, each finding the Item), interleaved in rounds.

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use banksync::domain::NewItem;
use banksync::events::EventHub;
use banksync::jobs::JobQueue;
use banksync::store::Store;
use banksync::vault::{MasterKey, Vault};
use banksync::webhooks::{WebhookKeys, WebhookReceiver};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt as _;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use plaid::webhook::{Jwk, StaticKeys};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use support::{Backend, BenchStore};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> anyhow::Result<()> {
    let total = env("BENCH_WEBHOOKS", 10_000);
    let concurrency = env("BENCH_CONCURRENCY", 16);
    let items = env("BENCH_ITEMS", 100).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!(
        "webhook receipt: {total} distinct validly signed SYNC_UPDATES_AVAILABLE deliveries over loopback, \
         {concurrency} connections, {items} Items; verify + record + enqueue, no workers"
    );
    println!();
    println!(
        "| backend | webhooks/s | p50 ms | p90 ms | p99 ms | max ms | per call, sequential: verify / \
         Item lookup (before) / record + hold + enqueue + mark as 4 calls (before) / as 1 write finding the Item \
         (now) ms; `p256` signature check alone (the verifier before) ms |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    let mut met = true;
    for backend in Backend::selected() {
        let bench = runtime.block_on(BenchStore::open(backend));
        let outcome = runtime.block_on(run(&bench.store, backend, total, concurrency, items));
        runtime.block_on(bench.drop_all());
        met &= outcome?;
    }
    println!();
    println!("target: >= 2,000 webhooks/s and p99 < 20 ms: {}", if met { "met" } else { "MISSED" });
    Ok(())
}

/// Runs the load on one store; prints its row and says whether it met the target.
async fn run(
    store: &Arc<Store>,
    backend: Backend,
    total: usize,
    concurrency: usize,
    items: usize,
) -> anyhow::Result<bool> {
    let store = store.clone();
    let user = store.create_user("bench", "x").await?;
    let vault = Vault::new(MasterKey::generate());
    let mut item_ids = Vec::with_capacity(items);
    for i in 0..items {
        let item_id = banksync::domain::PlaidItemId::new(format!("bench-item-{i:05}"));
        let sealed = vault.encrypt(&format!("access-sandbox-{i}").into(), item_id.as_str())?;
        store
            .insert_item(&NewItem {
                item_id: item_id.clone(),
                user_id: user.id.clone(),
                institution_id: Some(format!("ins_{i}")),
                institution_name: None,
                access_token: sealed,
            })
            .await?;
        item_ids.push(item_id);
    }

    let signing = SigningKey::random(&mut rand::rngs::OsRng);
    let kid = "bench-key".to_owned();
    let jwk = jwk_of(&signing, &kid);
    let receiver = Arc::new(WebhookReceiver::new(
        store.clone(),
        WebhookKeys::Static(StaticKeys(vec![jwk])),
        JobQueue::new(store.clone()),
        EventHub::new(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/webhooks/plaid", listener.local_addr()?);
    let router: axum::Router = banksync::http::webhooks::router().with_state(receiver).into();
    tokio::spawn(async move { axum::serve(listener, router).await });

    let warmup = 200.min(total);
    let requests: Vec<(Vec<u8>, String)> = (0..warmup + total)
        .map(|i| {
            let body = serde_json::to_vec_pretty(&json!({
                "webhook_type": "TRANSACTIONS",
                "webhook_code": "SYNC_UPDATES_AVAILABLE",
                "item_id": item_ids[i % items],
                "initial_update_complete": true,
                "historical_update_complete": true,
                "environment": "sandbox",
                "bench_seq": i,
            }))
            .expect("serializable");
            let jwt = sign(&signing, &kid, &body);
            (body, jwt)
        })
        .collect();
    let client = reqwest::Client::builder().pool_max_idle_per_host(concurrency).build()?;

    let send = |(body, jwt): (Vec<u8>, String)| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let started = Instant::now();
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .header("Plaid-Verification", jwt)
                .body(body)
                .send()
                .await
                .expect("request sent");
            let status = response.status().as_u16();
            let outcome: serde_json::Value = response.json().await.unwrap_or_default();
            (started.elapsed(), status, outcome["status"].as_str().unwrap_or_default().to_owned())
        }
    };

    let mut requests = requests.into_iter();
    let warm: Vec<_> =
        futures::stream::iter(requests.by_ref().take(warmup)).map(send).buffer_unordered(concurrency).collect().await;
    assert!(warm.iter().all(|(_, status, _)| *status == 200), "warm-up failed");

    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(requests).map(send).buffer_unordered(concurrency).collect().await;
    let elapsed = started.elapsed();

    let failed = results.iter().filter(|(_, status, outcome)| *status != 200 || outcome != "enqueued").count();
    let mut latencies: Vec<Duration> = results.iter().map(|(latency, _, _)| *latency).collect();
    latencies.sort();
    let rate = results.len() as f64 / elapsed.as_secs_f64();
    anyhow::ensure!(failed == 0, "{failed} webhooks were not accepted (not 200 + enqueued)");
    let p99 = percentile(&latencies, 99.0);

    // Where the time goes, one call at a time: signature verification and each store call on the path.
    let n = 1000;
    let keys = StaticKeys(vec![jwk_of(&signing, &kid)]);
    let body = br#"{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE","item_id":"x"}"#;
    let jwt = sign(&signing, &kid, body);
    // The whole check as it is (ring's P-256), interleaved in rounds with the pure-Rust `p256` signature check the
    // receiver used before (the signature alone: key from its point, then verify), so noise hits both alike.
    let (signed_input, signature) = jwt.rsplit_once('.').expect("three parts");
    let signature = Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature)?)?;
    let point = signing.verifying_key().to_encoded_point(false);
    let (mut verify, mut p256_verify) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n / 5 {
            plaid::webhook::verify(body, Some(&jwt), &keys, chrono::Utc::now()).await.expect("verifies");
        }
        verify += t.elapsed();
        let t = Instant::now();
        for _ in 0..n / 5 {
            let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(point.as_bytes()).expect("a key");
            p256::ecdsa::signature::Verifier::verify(&key, signed_input.as_bytes(), &signature).expect("verifies");
        }
        p256_verify += t.elapsed();
    }
    let (verify, p256_verify) = (verify / n, p256_verify / n);
    let t = Instant::now();
    for _ in 0..n {
        store.get_item_by_plaid_id(&item_ids[0]).await?;
    }
    let lookup = t.elapsed() / n;
    // The store's part of a SYNC_UPDATES_AVAILABLE, as it was (four calls: record, the Item's hold, enqueue, mark
    // processed) and as it is (one write), interleaved in rounds so the machine's noise hits both alike.
    let item = store.get_item_by_plaid_id(&item_ids[0]).await?.expect("the Item");
    let queue = JobQueue::new(store.clone());
    let event = |i: usize| banksync::domain::NewWebhookEvent {
        dedupe_key: format!("breakdown-{i}"),
        item_id: Some(item_ids[0].clone()),
        webhook_type: "TRANSACTIONS".into(),
        webhook_code: "SYNC_UPDATES_AVAILABLE".into(),
        body: String::from_utf8_lossy(body).into_owned(),
    };
    let (rounds, per_round) = (5, 200);
    let (mut separate, mut combined) = (Duration::ZERO, Duration::ZERO);
    for round in 0..rounds {
        let t = Instant::now();
        for i in 0..per_round {
            let record = store.record_webhook_event(&event(2 * round * per_round + i)).await?;
            store.sync_state(&item.id).await?;
            queue.enqueue_sync(&item_ids[0], banksync::sync::SyncTrigger::Webhook, Duration::ZERO).await?;
            store.mark_webhook_processed(&record.id).await?;
        }
        separate += t.elapsed();
        let t = Instant::now();
        for i in 0..per_round {
            queue.record_webhook_sync(&event((2 * round + 1) * per_round + i), &item_ids[0]).await?;
        }
        combined += t.elapsed();
    }
    let calls = u32::try_from(rounds * per_round).expect("small");
    let (separate, combined) = (separate / calls, combined / calls);
    println!(
        "| {} | {rate:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.3} / {:.3} / {:.3} / {:.3}; {:.3} |",
        backend.as_str(),
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(p99),
        ms(percentile(&latencies, 100.0)),
        ms(verify),
        ms(lookup),
        ms(separate),
        ms(combined),
        ms(p256_verify)
    );
    Ok(rate >= 2_000.0 && p99 < Duration::from_millis(20))
}

fn jwk_of(signing: &SigningKey, kid: &str) -> Jwk {
    let point = signing.verifying_key().to_encoded_point(false);
    Jwk {
        alg: "ES256".into(),
        crv: "P-256".into(),
        kid: kid.to_owned(),
        kty: "EC".into(),
        key_use: "sig".into(),
        x: URL_SAFE_NO_PAD.encode(point.x().expect("uncompressed point")),
        y: URL_SAFE_NO_PAD.encode(point.y().expect("uncompressed point")),
        created_at: 0,
        expired_at: None,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
