//! Faults through whole syncs and balance refreshes: the simulator's API_ERROR bursts, 429 storms,
//! INSTITUTION_NOT_RESPONDING, hung connections (the client's per-endpoint timeout fires) and mutation during
//! pagination on every other page, bound to one faulty Item beside a healthy one. While faults last: retries are
//! bounded (at most the policy's attempts per call, counted in the `plaid_calls` audit), restarts are bounded, the
//! call rate stays far from a busy loop, and the healthy Item syncs and refreshes while the faulty one is still
//! stuck. Once faults stop: the faulty Item converges to the simulator's ground truth, each transaction stored once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use banksync::balances::{BalanceOptions, BalanceRefresher, ItemRefreshState};
use banksync::sync::{SyncEngine, SyncError, SyncOptions, SyncTrigger};
use parking_lot::Mutex;
use plaid::{CallObserver, CallRecord, RetryPolicy, Timeouts};
use serde_json::{Value, json};

use crate::support::{self, Env};

/// Every attempt the faulty client made, with when (to measure the call rate).
#[derive(Default)]
struct Calls {
    at: Mutex<Vec<(Instant, CallRecord)>>,
    audit: Mutex<Option<Arc<dyn CallObserver>>>,
}

impl CallObserver for Calls {
    fn on_call(&self, call: &CallRecord) {
        self.at.lock().push((Instant::now(), call.clone()));
        if let Some(audit) = &*self.audit.lock() {
            audit.on_call(call);
        }
    }
}

impl Calls {
    fn since(&self, start: Instant) -> Vec<CallRecord> {
        self.at.lock().iter().filter(|(t, _)| *t >= start).map(|(_, c)| c.clone()).collect()
    }
}

const ATTEMPTS: u32 = 3;
const TIMEOUT: Duration = Duration::from_millis(1500);

struct Faulty {
    env: Env,
    engine: SyncEngine,
    refresher: BalanceRefresher,
    calls: Arc<Calls>,
    injected: u64,
}

impl Faulty {
    async fn inject(&self, spec: Value) {
        self.env.fault(spec).await;
    }

    /// Clears every fault, adding up how many fired.
    async fn clear(&mut self) -> u64 {
        let list = self.env.sim_get("/sim/faults").await;
        let fired: u64 = list.as_array().unwrap().iter().map(|f| f["fired"].as_u64().unwrap()).sum();
        let response = self.env.http.delete(format!("{}/sim/faults", self.env.sim.url())).send().await.unwrap();
        assert!(response.status().is_success());
        self.injected += fired;
        fired
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_item_converges_once_faults_stop_with_bounded_retries_and_no_starvation() {
    let seed = crate::crash::seed();
    eprintln!("chaos faults seed: {seed} (CHAOS_SEED={seed} reproduces the simulator's fault rolls)");
    let options = SyncOptions {
        page_size: 100,
        max_restarts: 3,
        rate_limit_pause: Duration::from_millis(200),
        rate_limit_budget: Duration::from_secs(2),
    };
    let env = support::sqlite(plaid_sim::SimConfig { seed, ..support::sim_config() }, options.clone()).await;
    let calls = Arc::new(Calls::default());
    *calls.audit.lock() = Some(banksync::audit::AuditTrail::start(env.store.clone()).observer());
    let plaid = support::client(&env.sim)
        .with_timeouts(Timeouts::uniform(TIMEOUT))
        .with_retry(RetryPolicy::new(ATTEMPTS, Duration::from_millis(20)))
        .with_observer(calls.clone());
    let engine = SyncEngine::new(env.store.clone(), plaid.clone(), env.vault.clone(), options.clone());
    let refresher = BalanceRefresher::new(
        env.store.clone(),
        plaid,
        env.vault.clone(),
        BalanceOptions { max_age: Duration::ZERO, item_deadline: Duration::from_secs(5), ..BalanceOptions::default() },
    );
    let mut t = Faulty { env, engine, refresher, calls, injected: 0 };
    let faulty = t.env.new_item("ins_109508", "user_bulk_1500").await;
    let healthy = t.env.new_item("ins_109509", "user_good").await;
    let faulty_id = faulty.item_id.to_string();

    // Each fault, bound to the faulty Item's /transactions/sync, through a whole sync: the first one is the initial
    // sync of 1,500 transactions in 15+ pages (where "every other page" can never finish), later ones follow a few
    // days of bank activity.
    let kinds: [(&str, Value); 5] = [
        ("mutation on every other page", json!({"error": "TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION", "every": 2})),
        ("API_ERROR burst", json!({"error": "API_ERROR", "count": 4})),
        ("429 storm", json!({"error": "RATE_LIMIT_EXCEEDED", "count": 20})),
        ("INSTITUTION_NOT_RESPONDING", json!({"error": "INSTITUTION_NOT_RESPONDING", "count": 4})),
        ("hung connections", json!({"hang": true, "count": 2})),
    ];
    for (round, (what, fault)) in kinds.iter().enumerate() {
        if round > 0 {
            t.env.advance(&faulty.item_id, 3).await;
            t.env.advance(&healthy.item_id, 2).await;
        }
        let mut spec = fault.clone();
        spec["endpoint"] = json!("/transactions/sync");
        spec["item_id"] = json!(faulty_id);
        t.inject(spec).await;

        let started = Instant::now();
        let result = t.engine.sync_item(&faulty, SyncTrigger::Manual).await;
        let elapsed = started.elapsed();
        let made = t.calls.since(started);
        let fired = t.clear().await;
        assert!(fired > 0, "{what}: the fault never fired");
        // Bounded: the engine restarts at most max_restarts times after a mutation, rate-limit pauses stop at their
        // budget, and each call is tried at most ATTEMPTS times. Pages: 1,500 / 100 plus a few.
        let pages_bound = (options.max_restarts as usize + 1) * 20 * ATTEMPTS as usize;
        assert!(made.len() <= pages_bound, "{what}: {} calls for one sync (bound {pages_bound})", made.len());
        assert!(made.iter().all(|c| c.attempt <= ATTEMPTS), "{what}: a call retried past the policy");
        // No busy loop: with backoff between retries, pauses between rate-limited pages and a timeout per hung
        // call, the faulty Item cannot hammer Plaid. (Load only makes the rate lower.)
        let per_second = made.len() as f64 / elapsed.as_secs_f64().max(0.001);
        let retries = made.iter().filter(|c| c.attempt > 1).count();
        eprintln!(
            "chaos faults: {what}: {fired} fired; {} calls ({retries} retries) in {elapsed:.2?} ({per_second:.0}/s): {}",
            made.len(),
            match &result {
                Ok(s) => format!("ok (pages {}, restarts {})", s.pages, s.restarts),
                Err(e) => format!("failed: {e}"),
            }
        );
        if *what == "mutation on every other page" {
            assert!(
                matches!(result, Err(SyncError::TooManyRestarts(_))),
                "a pagination that can never finish must give up after max_restarts: {result:?}"
            );
        }
        if *what == "hung connections" {
            let timeouts = made.iter().filter(|c| c.outcome == plaid::CallOutcome::Timeout).count();
            assert!(timeouts >= 1, "the per-endpoint timeout never fired on a hung connection");
        }
        // The faults stopped: one more sync converges exactly (ids, amounts, pending, names; each stored once).
        t.engine.sync_item(&faulty, SyncTrigger::Manual).await.unwrap_or_else(|e| panic!("{what}: after faults: {e}"));
        t.env.assert_converged(&faulty.item_id).await;
    }

    // No starvation: the faulty Item's sync hangs on every call (each attempt cut by the client's timeout) while the
    // healthy Item syncs through the same engine and finishes first.
    t.env.advance(&healthy.item_id, 2).await;
    t.inject(json!({"endpoint": "/transactions/sync", "hang": true, "item_id": faulty_id})).await;
    let stuck = {
        let (engine, item) = (t.engine.clone(), faulty.clone());
        tokio::spawn(async move { engine.sync_item(&item, SyncTrigger::Manual).await })
    };
    // The faulty sync is under way (its first call is hanging) before the healthy one starts.
    t.env
        .eventually("the faulty Item's first call hangs", Duration::from_secs(10), || async {
            t.env.sim_get("/sim/faults").await[0]["fired"].as_u64() >= Some(1)
        })
        .await;
    let healthy_started = Instant::now();
    t.engine.sync_item(&healthy, SyncTrigger::Manual).await.expect("the healthy Item syncs");
    let healthy_took = healthy_started.elapsed();
    let faulty_done = stuck.is_finished();
    t.env.assert_converged(&healthy.item_id).await;
    assert!(!faulty_done, "the healthy Item's sync ({healthy_took:?}) waited for the faulty one");
    let stuck = stuck.await.unwrap();
    assert!(stuck.is_err(), "a sync whose every call hangs fails: {stuck:?}");
    t.clear().await;

    // Balance refreshes under each fault: the healthy Item gets live balances, the faulty one a bounded error (or
    // its balances, once the retries win), and both get them once the faults stop.
    let balance_faults: [(&str, Value); 4] = [
        ("API_ERROR burst", json!({"error": "API_ERROR", "count": 6})),
        ("INSTITUTION_NOT_RESPONDING", json!({"error": "INSTITUTION_NOT_RESPONDING", "count": 6})),
        ("hung connections", json!({"hang": true, "count": 3})),
        // Last: a 429 holds the Item for the rest of Plaid's one-minute window (the budget honours it).
        ("429 storm", json!({"error": "RATE_LIMIT_EXCEEDED", "count": 30})),
    ];
    for (what, fault) in balance_faults {
        let mut spec = fault.clone();
        spec["endpoint"] = json!("/accounts/balance/get");
        spec["item_id"] = json!(faulty_id);
        t.inject(spec).await;
        let started = Instant::now();
        let job = t.refresher.start(&t.env.user.id, None).await.unwrap();
        let done = t.refresher.status(&t.env.user.id, &job, Duration::from_secs(60)).await.unwrap().unwrap();
        let made = t.calls.since(started);
        let fired = t.clear().await;
        let outcome =
            |id: &banksync::domain::PlaidItemId| done.items.iter().find(|i| i.item_id == *id).unwrap().clone();
        assert_eq!(outcome(&healthy.item_id).state, ItemRefreshState::Ok, "balances/{what}: the healthy Item");
        let faulty_outcome = outcome(&faulty.item_id);
        assert_ne!(faulty_outcome.state, ItemRefreshState::Pending, "balances/{what}: the job finished");
        assert!(made.iter().all(|c| c.attempt <= ATTEMPTS), "balances/{what}: retried past the policy");
        assert!(made.len() <= 40, "balances/{what}: {} calls for one refresh of two Items", made.len());
        eprintln!(
            "chaos faults: balances/{what}: {fired} fired; {} calls; faulty Item {:?} {:?}",
            made.len(),
            faulty_outcome.state,
            faulty_outcome.error.map(|e| e.code)
        );
        let job = t.refresher.start(&t.env.user.id, None).await.unwrap();
        let after = t.refresher.status(&t.env.user.id, &job, Duration::from_secs(30)).await.unwrap().unwrap();
        let held = |i: &banksync::balances::ItemBalanceOutcome| {
            what == "429 storm"
                && i.item_id == faulty.item_id
                && i.error.as_ref().is_some_and(|e| e.code == "rate_limited")
        };
        assert!(
            after.items.iter().all(|i| i.state == ItemRefreshState::Ok || held(i)),
            "balances/{what}: once faults stop every Item refreshes (a rate-limited one waits out Plaid's window): {:?}",
            after.items
        );
    }

    // The audit trail counted every attempt, retries included (plus the link calls of the setup).
    let audited = t.audited().await;
    let observed = t.calls.at.lock().len() as i64;
    assert!(audited >= observed, "{audited} rows in plaid_calls for {observed} attempts of the faulty client");
    eprintln!("chaos faults: {} faults injected in total; {observed} Plaid attempts audited", t.injected);
    t.env.finish().await;
}

impl Faulty {
    /// Rows in `plaid_calls` once the audit's channel has drained.
    async fn audited(&self) -> i64 {
        let expected = self.calls.at.lock().len() as i64;
        let dir = self.env.db_dir().unwrap();
        let pool = crate::node::sqlite(&dir.join("banksync.db")).await;
        let mut rows = 0;
        for _ in 0..100 {
            rows = sqlx::query_scalar("SELECT count(*) FROM plaid_calls").fetch_one(&pool).await.unwrap();
            if rows >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pool.close().await;
        rows
    }
}
