//! Three `banksync serve` processes on one PostgreSQL schema (one master key, one public URL), 50 Items, 30
//! simulated days in steps: the simulator's signed webhooks go to a small fan-out in the test that forwards each
//! delivery to every instance, and the instances are SIGKILLed and restarted one at a time meanwhile. At the end:
//! every Item equals the simulator's ground truth, no transaction is listed twice, and every job reached a final
//! state without running out of attempts (none was lost with the instance that held it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use secrecy::ExposeSecret as _;
use serde_json::json;

use crate::node::{Node, free_port, truth};

const INSTANCES: usize = 3;
const ITEMS: usize = 50;
const DAYS: u32 = 30;
const STEP_DAYS: u32 = 3;

/// Forwards every webhook delivery to every instance; 200 when at least one took it (Plaid retries otherwise).
async fn fan_out(targets: Arc<Vec<String>>) -> String {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let app = axum::Router::new().route(
        "/webhooks/plaid",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (http, targets) = (http.clone(), targets.clone());
            async move {
                let mut ok = false;
                for target in targets.iter() {
                    let mut request = http.post(format!("{target}/webhooks/plaid")).body(body.clone());
                    for name in ["content-type", "plaid-verification"] {
                        if let Some(value) = headers.get(name) {
                            request = request.header(name, value.as_bytes());
                        }
                    }
                    ok |= request.send().await.is_ok_and(|r| r.status().is_success());
                }
                if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn all_converged(node: &Node, items: &[String]) -> bool {
    for item in items {
        if node.visible(item).await != truth(&node.http, &node.sim_url, item).await {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_restarted_one_at_a_time_lose_nothing() {
    let Some((mut admin, schema)) = crate::pg::fresh_schema("chaos_instances", "three-instance test").await else {
        return;
    };
    let base = crate::pg::url();
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
    let seed = crate::crash::seed();
    eprintln!("chaos instances seed: {seed} (CHAOS_SEED={seed} reproduces the restart order)");
    let outcome = tokio::spawn(run(url, seed)).await;
    sqlx::query("SET lock_timeout = '20s'").execute(&mut admin).await.unwrap();
    let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    dropped.unwrap();
}

async fn run(url: String, seed: u64) {
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);
    let ports: Vec<u16> = (0..INSTANCES).map(|_| free_port()).collect();
    let targets = Arc::new(ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect::<Vec<_>>());
    let public_url = fan_out(targets).await;
    let sim = crate::start_sim(seed, |c| c.deliver_webhooks = true).await;
    let key = banksync::vault::MasterKey::generate().to_base64().expose_secret().to_owned();
    let env = vec![
        ("BANKSYNC_DATABASE_URL".to_owned(), url.clone()),
        ("BANKSYNC_MASTER_KEY".to_owned(), key),
        ("BANKSYNC_PUBLIC_URL".to_owned(), public_url),
        ("BANKSYNC_DB_POOL_SIZE".to_owned(), "5".to_owned()),
        // Longer than the harness's 2 s: three servers, PostgreSQL and the simulator share the machine here, and a
        // heartbeat that waits over 2 s for one of its 5 pooled connections lets another instance take a job that is
        // still running. Each such takeover costs the job an attempt; one failure on a loaded machine ran out of them.
        ("BANKSYNC_JOB_LEASE".to_owned(), "6s".to_owned()),
    ];
    let first = Node::new(&sim.url(), env.clone()).await;
    let mut nodes = vec![first];
    for _ in 1..INSTANCES {
        nodes.push(Node::sharing(&nodes[0], env.clone()));
    }
    for (node, port) in nodes.iter_mut().zip(&ports) {
        node.port = *port;
        node.start().await;
    }

    // 50 Items, linked through whichever instance, each one's first sync run by whichever worker claims it.
    let mut items = Vec::new();
    for i in 0..ITEMS {
        items.push(nodes[i % INSTANCES].link(i % 4, "user_good").await);
    }
    // 30 days in steps; before each step one instance (in turn, from a seeded start) is killed and restarted.
    let mut restarts = 0;
    let mut victim = rng.gen_range(0..INSTANCES);
    for step in 0..DAYS / STEP_DAYS {
        nodes[victim].kill().await;
        for item in &items {
            crate::sim::post(
                &nodes[0].http,
                &sim.url(),
                &format!("/sim/items/{item}/advance"),
                json!({"days": STEP_DAYS}),
            )
            .await;
            if item == &items[ITEMS / 2] {
                // Half the webhooks of this step went out while the instance was down.
                nodes[victim].start().await;
                restarts += 1;
            }
        }
        victim = (victim + 1) % INSTANCES;
        eprintln!("chaos instances: step {step} (day {}) sent, {:.1?}", (step + 1) * STEP_DAYS, started.elapsed());
    }

    // Every Item converges from the webhooks and the durable job queue alone (no manual sync).
    let deadline = Instant::now() + Duration::from_secs(120);
    while !all_converged(&nodes[0], &items).await {
        assert!(Instant::now() < deadline, "not every Item converged; instance 0 log:\n{}", nodes[0].log_tail());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (open, failed, done) = loop {
        let counts: (i64, i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE state IN ('queued', 'running')), count(*) FILTER (WHERE state = 'failed'), \
             count(*) FILTER (WHERE state = 'done') FROM jobs WHERE kind = 'sync'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if counts.0 == 0 || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(open, 0, "sync jobs never reached a final state");
    if failed > 0 {
        // Say why: each failed job's attempts and last error, and the instances' logs.
        let rows: Vec<(String, i64, Option<String>)> =
            sqlx::query_as("SELECT item_id, attempts, last_error FROM jobs WHERE kind = 'sync' AND state = 'failed'")
                .fetch_all(&pool)
                .await
                .unwrap();
        let logs: Vec<String> = nodes
            .iter()
            .map(|n| {
                let log = n.log();
                let problems: Vec<&str> = log.lines().filter(|l| l.contains("WARN") || l.contains("ERROR")).collect();
                problems[problems.len().saturating_sub(30)..].join("\n")
            })
            .collect();
        panic!(
            "{failed} sync jobs failed (ran out of attempts) across the restarts: {rows:#?}\nlogs:\n{}",
            logs.join("\n---\n")
        );
    }
    let transactions: i64 = sqlx::query_scalar("SELECT count(*) FROM transactions").fetch_one(&pool).await.unwrap();
    pool.close().await;
    for node in &mut nodes {
        node.kill().await;
    }
    eprintln!(
        "chaos instances: {INSTANCES} instances, {restarts} SIGKILL restarts, {ITEMS} Items × {DAYS} days: every Item \
         equals ground truth ({transactions} transactions), {done} sync jobs done, 0 failed, 0 open, in {:.1?}",
        started.elapsed()
    );
}
