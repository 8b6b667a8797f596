//! Benchmark: the simulator's CPU cost of serving an initial sync, in-process through the router
//! (no sockets): a `user_bulk_N` Item (default 100,000) pulled as `/transactions/sync` pages of 500.
//!
//! `cargo bench -p plaid-sim --bench page_serve [-- N [ROUNDS]]` prints the CPU seconds of each round
//! (the runtime is single-threaded, so that is all the simulator's work plus a byte scan per page).
//!
//! `cargo bench -p plaid-sim --bench page_serve -- --dump DIR` instead writes the response bodies of a
//! fixed set of requests (sync pages of several Items, before and after `advance`, ground truth,
//! accounts) to DIR, with request ids blanked, so two builds can be compared byte for byte (on the same
//! day: dates anchor to the real one).

use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use plaid_sim::{SimConfig, Simulator};
use serde_json::{Value, json};
use tower::ServiceExt;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    if let Some(i) = args.iter().position(|a| a == "--dump") {
        let dir = args.get(i + 1).expect("--dump DIR");
        runtime.block_on(dump(std::path::Path::new(dir)));
        return;
    }
    let n: u64 = args.first().map_or(100_000, |s| s.parse().expect("N"));
    let rounds: usize = args.get(1).map_or(5, |s| s.parse().expect("ROUNDS"));
    runtime.block_on(bench(n, rounds));
}

fn config() -> SimConfig {
    SimConfig { rate_limits: false, deliver_webhooks: false, ..SimConfig::default() }
}

async fn call(app: &Router, method: &str, path: &str, body: Option<&Value>) -> (StatusCode, Bytes) {
    let defaults = SimConfig::default();
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("PLAID-CLIENT-ID", &defaults.client_id)
        .header("PLAID-SECRET", &defaults.secret)
        .header("content-type", "application/json");
    if body.is_none() {
        req = req.header("content-length", "0");
    }
    let req =
        req.body(body.map_or_else(Body::empty, |b| Body::from(serde_json::to_vec(b).expect("json")))).expect("request");
    let res = app.clone().oneshot(req).await.expect("infallible");
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX).await.expect("body");
    (status, bytes)
}

/// Creates an Item through the sandbox endpoints; returns (access_token, item_id).
async fn item(app: &Router, institution: &str, username: &str, days: u32) -> (String, String) {
    let body = json!({
        "institution_id": institution,
        "initial_products": ["transactions"],
        "options": {"override_username": username, "override_password": "pass_good",
                    "transactions": {"days_requested": days}},
    });
    let (status, created) = call(app, "POST", "/sandbox/public_token/create", Some(&body)).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&created));
    let created: Value = serde_json::from_slice(&created).expect("json");
    let body = json!({"public_token": created["public_token"]});
    let (status, exchanged) = call(app, "POST", "/item/public_token/exchange", Some(&body)).await;
    assert_eq!(status, StatusCode::OK);
    let exchanged: Value = serde_json::from_slice(&exchanged).expect("json");
    (
        exchanged["access_token"].as_str().expect("access_token").to_owned(),
        exchanged["item_id"].as_str().expect("item_id").to_owned(),
    )
}

/// The end of a sync body, where `next_cursor`, `has_more` and `request_id` are (a page of 500 is
/// ~750 kB: scanning it all would be a noticeable share of the measurement).
fn tail(body: &[u8]) -> &[u8] {
    &body[body.len().saturating_sub(512)..]
}

/// The string value of `"key":"..."` in a JSON body (no escapes expected), by a byte scan.
fn string_field<'a>(body: &'a [u8], key: &str) -> Option<&'a str> {
    let body = tail(body);
    let pat = format!("\"{key}\":\"");
    let start = body.windows(pat.len()).rposition(|w| w == pat.as_bytes())? + pat.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&body[start..start + len]).ok()
}

fn has_more(body: &[u8]) -> bool {
    let pat = b"\"has_more\":true";
    tail(body).windows(pat.len()).any(|w| w == pat)
}

/// Thread CPU time in seconds (the runtime is single-threaded).
fn thread_cpu_seconds() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").expect("/proc/thread-self/schedstat (Linux)");
    let ns: u64 = s.split_whitespace().next().expect("field").parse().expect("ns");
    ns as f64 / 1e9
}

async fn bench(n: u64, rounds: usize) {
    let app = Simulator::new(config()).router();
    let (token, _) = item(&app, "ins_109508", &format!("user_bulk_{n}"), 730).await;
    let mut results = Vec::new();
    for round in 0..rounds {
        let (cpu0, wall0) = (thread_cpu_seconds(), Instant::now());
        let (mut cursor, mut pages, mut bytes) = (String::new(), 0usize, 0usize);
        loop {
            let body = json!({"access_token": token, "cursor": cursor, "count": 500});
            let (status, page) = call(&app, "POST", "/transactions/sync", Some(&body)).await;
            assert_eq!(status, StatusCode::OK);
            pages += 1;
            bytes += page.len();
            cursor = string_field(&page, "next_cursor").expect("next_cursor").to_owned();
            if !has_more(&page) {
                break;
            }
        }
        let cpu = thread_cpu_seconds() - cpu0;
        let wall = wall0.elapsed().as_secs_f64();
        println!(
            "round {round}: {n} transactions, {pages} pages, {:.1} MB: cpu {cpu:.3} s ({:.2} µs/txn), wall {wall:.3} s",
            bytes as f64 / 1e6,
            cpu * 1e6 / n as f64
        );
        results.push(cpu);
    }
    results.sort_by(f64::total_cmp);
    println!("cpu seconds per {n} transactions: best {:.3}, median {:.3}", results[0], results[results.len() / 2]);
}

/// Blanks `"request_id":"…"` values (random per response).
fn blank_request_ids(body: &[u8]) -> Vec<u8> {
    let pat = b"\"request_id\":\"";
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(pat) {
            out.extend_from_slice(pat);
            i += pat.len();
            while i < body.len() && body[i] != b'"' {
                i += 1;
            }
            out.extend_from_slice(b"RID");
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

async fn dump(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).expect("dir");
    let app = Simulator::new(config()).router();
    let cases = [
        ("ins_109508", "user_good", 730u32),
        ("ins_109511", "user_good", 730),
        ("ins_109510", "user_transactions_dynamic", 90),
        ("ins_109509", "user_good", 30),
        ("ins_109508", "user_bulk_3000", 730),
        ("ins_109511", "user_bulk_1200", 20),
    ];
    for (k, (institution, username, days)) in cases.into_iter().enumerate() {
        let (token, item_id) = item(&app, institution, username, days).await;
        let mut out = Vec::new();
        let mut record = |label: &str, status: StatusCode, body: &[u8]| {
            out.extend_from_slice(format!("== {label} {status}\n").as_bytes());
            out.extend_from_slice(&blank_request_ids(body));
            out.push(b'\n');
        };
        let (s, b) = call(&app, "POST", "/accounts/get", Some(&json!({"access_token": token}))).await;
        record("accounts", s, &b);
        let mut cursor = String::new();
        for (phase, count, original) in
            [(0, 500, false), (1, 137, true), (2, 3, false), (3, 500, true), (4, 250, false)]
        {
            if phase > 0 {
                let path = format!("/sim/items/{item_id}/advance");
                let (s, b) = call(&app, "POST", &path, Some(&json!({"days": phase * 2 - 1}))).await;
                record("advance", s, &b);
            }
            let mut pages = 0;
            loop {
                let body = json!({"access_token": token, "cursor": cursor, "count": count,
                                  "options": {"include_original_description": original}});
                let (s, b) = call(&app, "POST", "/transactions/sync", Some(&body)).await;
                record(&format!("sync phase {phase} page {pages}"), s, &b);
                assert_eq!(s, StatusCode::OK);
                cursor = string_field(&b, "next_cursor").expect("next_cursor").to_owned();
                pages += 1;
                if !has_more(&b) || pages > 400 {
                    break;
                }
            }
        }
        let (s, b) = call(&app, "GET", &format!("/sim/items/{item_id}/transactions"), None).await;
        record("ground truth", s, &b);
        std::fs::write(dir.join(format!("{k}-{institution}-{username}.txt")), out).expect("write");
    }
    println!("wrote {}", dir.display());
}
