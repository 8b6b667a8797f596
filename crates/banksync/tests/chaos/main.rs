//! Reliability under hostile conditions, against the real `banksync` binary or the real `Application`:
//! - `crash`: SIGKILL at seeded random moments during syncs, balance refreshes and key rotation;
//! - `faults`: the simulator's error bursts, 429 storms, unresponsive banks, hung connections and mutation on every
//!   other page, through whole syncs and refreshes;
//! - `outages`: SQLite on a full disk and read-only, a private PostgreSQL cluster restarted mid-sync;
//! - `instances`: three servers on one PostgreSQL, restarted one at a time while 50 Items move through 30 days.
//!
//! Each test prints its figures (kills survived, faults injected, outage results) on stderr
//! (`cargo test -p banksync --test chaos -- --nocapture`).

// `support` includes these two privately for its own helpers; the chaos tests need them directly too.
#![allow(clippy::duplicate_mod)]

#[path = "../common/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../common/sim.rs"]
#[allow(dead_code)]
mod sim;
#[path = "../support/mod.rs"]
mod support;

mod crash;
mod faults;
mod instances;
mod node;
mod outages;

use std::time::Duration;

/// The simulator for these tests, in the test process (it outlives every kill of the server): the tests'
/// credentials, no rate limits unless a test sets them, no webhooks unless a test delivers them.
pub async fn start_sim(seed: u64, change: impl FnOnce(&mut plaid_sim::SimConfig)) -> plaid_sim::RunningSim {
    let mut config = plaid_sim::SimConfig { seed, ..sim::sim_config() };
    change(&mut config);
    plaid_sim::Simulator::new(config).spawn("127.0.0.1:0".parse().unwrap()).await.unwrap()
}

/// Waits until no job of the node is queued to run now or running: every job reached a final state.
pub async fn eventually_jobs_final(node: &node::Node) {
    node::eventually("every job reaches a final state", Duration::from_secs(60), || async {
        let pool = node::sqlite(&node.db_path()).await;
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        open == 0
    })
    .await;
}
