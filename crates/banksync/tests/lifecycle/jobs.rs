//! The job queue's crash safety, with the components wired by hand: a worker "process" (its own tokio runtime,
//! store connection, Plaid client and sync engine) dies mid-job; a new one reclaims the job after its lease and
//! completes it.

use std::sync::Arc;
use std::time::Duration;

use banksync::domain::{JobState, NewItem, NewWebhookEvent, PlaidItemId};
use banksync::jobs::{JobQueue, WorkerOptions, WorkerPool};
use banksync::store::Store;
use banksync::sync::{SyncEngine, SyncOptions, SyncTrigger};
use banksync::vault::{MasterKey, Vault};
use plaid::{Product, SandboxPublicTokenCreateRequest};
use serde_json::json;

use crate::app::sim::{plaid_client, sim_config};
use crate::harness::eventually;

struct Process {
    store: Arc<Store>,
    engine: SyncEngine,
    queue: JobQueue,
}

async fn process(db: &std::path::Path, sim_url: &str, key: [u8; 32]) -> Process {
    let store: Arc<Store> = Arc::new(Store::open_sqlite(db).await.unwrap());
    store.migrate().await.unwrap();
    let plaid = plaid_client(sim_url);
    let vault = Arc::new(Vault::new(MasterKey::from_bytes(key)));
    let engine = SyncEngine::new(store.clone(), plaid, vault, SyncOptions::default());
    Process { queue: JobQueue::new(store.clone()), store, engine }
}

/// An Item of a new user with a real access token at the simulator, stored (sealed under `key`) the way the link
/// flow stores it; returns its item_id.
async fn item_at_the_bank(p: &Process, sim_url: &str, key: [u8; 32], username: &str) -> PlaidItemId {
    let plaid = plaid_client(sim_url);
    let public = plaid
        .sandbox_public_token_create(&SandboxPublicTokenCreateRequest::new("ins_109508", [Product::Transactions]))
        .await
        .unwrap();
    let exchanged = plaid.item_public_token_exchange(&public.public_token).await.unwrap();
    let user = p.store.create_user(username, "x").await.unwrap();
    let sealed = Vault::new(MasterKey::from_bytes(key))
        .encrypt(&exchanged.access_token.expose_secret().to_owned().into(), &exchanged.item_id)
        .unwrap();
    p.store
        .insert_item(&NewItem {
            item_id: exchanged.item_id.clone().into(),
            user_id: user.id.clone(),
            institution_id: Some("ins_109508".into()),
            institution_name: None,
            access_token: sealed,
        })
        .await
        .unwrap();
    exchanged.item_id.into()
}

fn short_lease() -> WorkerOptions {
    WorkerOptions {
        concurrency: 2,
        lease: Duration::from_millis(900),
        poll_interval: Duration::from_millis(200),
        reclaim_interval: Duration::from_millis(500),
        shutdown_grace: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_worker_died_mid_run_is_reclaimed_and_completed_by_a_new_worker() {
    let sim = plaid_sim::Simulator::new(sim_config()).spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("banksync.db");
    let key: [u8; 32] = rand::random();
    let main = process(&db, &sim.url(), key).await;

    let item_id = item_at_the_bank(&main, &sim.url(), key, "carol").await;

    // The first worker's sync hangs at Plaid long enough to be killed in the middle of it.
    let client = reqwest::Client::new();
    // Long enough for three renewals of the 900 ms lease to be watched below.
    let fault = json!({"endpoint": "/transactions/sync", "latency_ms": 8000, "count": 1});
    assert!(client.post(format!("{}/sim/faults", sim.url())).json(&fault).send().await.unwrap().status().is_success());

    // Process A: its own runtime, so killing it kills everything it runs (workers, heartbeats, the sync itself).
    let (db_a, url_a, key_a, item_a) = (db.clone(), sim.url(), key, item_id.clone());
    let (job_tx, job_rx) = std::sync::mpsc::channel();
    let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
    let a = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        runtime.block_on(async {
            let p = process(&db_a, &url_a, key_a).await;
            let pool = WorkerPool::start(p.queue.clone(), p.engine.clone(), short_lease());
            let job = p.queue.enqueue_sync(&item_a, SyncTrigger::Webhook, Duration::ZERO).await.unwrap();
            job_tx.send((job.job_id, pool.worker_id().to_owned())).unwrap();
            std::mem::forget(pool); // never shut down gracefully: this process is going to crash
        });
        kill_rx.recv().unwrap();
        runtime.shutdown_background();
    });
    let (job_id, worker_a) = job_rx.recv().unwrap();
    eventually("process A leases the job", || async {
        let job = main.store.get_job(&job_id).await.unwrap();
        job.state == JobState::Running && job.lease_owner.as_deref() == Some(worker_a.as_str())
    })
    .await;
    // The heartbeat renews the lease: once the lease A took with the job has run out, the job is still leased to A
    // with an expiry that lies ahead (a lease nobody renewed would lie behind), and another worker cannot take it.
    let first_expiry = main.store.get_job(&job_id).await.unwrap().lease_expires_at.expect("a leased job");
    eventually("the first lease runs out", || async { chrono::Utc::now() > first_expiry }).await;
    for renewal in 0..3 {
        let now = chrono::Utc::now();
        let job = main.store.get_job(&job_id).await.unwrap();
        assert_eq!(job.state, JobState::Running, "renewal {renewal}: {job:?}");
        assert_eq!(job.lease_owner.as_deref(), Some(worker_a.as_str()), "renewal {renewal}: {job:?}");
        let expiry = job.lease_expires_at.expect("a leased job");
        assert!(expiry > now, "renewal {renewal}: the lease ran out at {expiry}, now {now}: not renewed");
        assert!(main.store.claim_job("intruder", Duration::from_secs(60)).await.unwrap().is_none(), "taken");
        // The next look is past this expiry, so it sees a later renewal, not the same one.
        eventually("this lease's expiry passes", || async { chrono::Utc::now() > expiry }).await;
    }
    assert_eq!(main.store.get_job(&job_id).await.unwrap().attempts, 1, "nobody else ran it meanwhile");
    kill_tx.send(()).unwrap();
    a.join().unwrap();

    // Process B starts after the crash and finishes the job once A's lease ran out.
    let pool = WorkerPool::start(main.queue.clone(), main.engine.clone(), short_lease());
    eventually("process B completes the job", || async {
        main.store.get_job(&job_id).await.unwrap().state == JobState::Done
    })
    .await;
    let job = main.store.get_job(&job_id).await.unwrap();
    assert_eq!(job.attempts, 2, "one attempt by A, one by B: {job:?}");
    let item = main.store.get_item_by_plaid_id(&item_id).await.unwrap().unwrap();
    assert!(item.last_successful_sync_at.is_some(), "the sync committed");
    assert!(item.cursor.is_some());
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_running_job_finish_and_rate_limits_retry_later() {
    let sim = plaid_sim::Simulator::new(sim_config()).spawn("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key: [u8; 32] = rand::random();
    let p = process(&dir.path().join("banksync.db"), &sim.url(), key).await;
    let item_id = item_at_the_bank(&p, &sim.url(), key, "dave").await;
    let client = reqwest::Client::new();

    // Graceful shutdown: the slow job still completes.
    let fault = json!({"endpoint": "/transactions/sync", "latency_ms": 1500, "count": 1});
    client.post(format!("{}/sim/faults", sim.url())).json(&fault).send().await.unwrap();
    let pool = WorkerPool::start(p.queue.clone(), p.engine.clone(), short_lease());
    let job = p.queue.enqueue_sync(&item_id, SyncTrigger::Webhook, Duration::ZERO).await.unwrap();
    eventually("the job runs", || async { p.store.get_job(&job.job_id).await.unwrap().state == JobState::Running })
        .await;
    pool.shutdown().await;
    assert_eq!(p.store.get_job(&job.job_id).await.unwrap().state, JobState::Done);

    // A Plaid 429: the job goes back to the queue with a delay of at least a minute, not a hot retry.
    client.delete(format!("{}/sim/faults", sim.url())).send().await.unwrap();
    let fault = json!({"endpoint": "/transactions/sync", "error": "RATE_LIMIT_EXCEEDED", "count": 10});
    client.post(format!("{}/sim/faults", sim.url())).json(&fault).send().await.unwrap();
    let pool = WorkerPool::start(p.queue.clone(), p.engine.clone(), short_lease());
    let job = p.queue.enqueue_sync(&item_id, SyncTrigger::Schedule, Duration::ZERO).await.unwrap();
    eventually("the rate-limited job is requeued", || async {
        let j = p.store.get_job(&job.job_id).await.unwrap();
        j.state == JobState::Queued && j.attempts == 1
    })
    .await;
    let j = p.store.get_job(&job.job_id).await.unwrap();
    let delay = j.run_after - chrono::Utc::now();
    assert!(delay > chrono::Duration::seconds(50), "retry scheduled {delay} from now");
    assert!(j.last_error.unwrap_or_default().contains("RATE_LIMIT"), "the error is kept");
    pool.shutdown().await;
}

/// Webhook deliveries that arrive together share write transactions (the receiver's group commit) and each still
/// gets the outcome it would have had alone: every distinct delivery recorded once, every repeat counted as a
/// duplicate, one queued sync per Item that all of that Item's deliveries join.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_webhook_deliveries_share_commits_and_keep_their_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<Store> = Arc::new(Store::open_sqlite(&dir.path().join("banksync.db")).await.unwrap());
    store.migrate().await.unwrap();
    let vault = Vault::new(MasterKey::from_bytes([7; 32]));
    let mut items = Vec::new();
    for n in 0..3 {
        let user = store.create_user(&format!("user{n}"), "x").await.unwrap();
        let item_id = format!("item-{n}");
        let sealed = vault.encrypt(&"access-sandbox-x".to_owned().into(), &item_id).unwrap();
        let new = NewItem {
            item_id: item_id.into(),
            user_id: user.id,
            institution_id: None,
            institution_name: None,
            access_token: sealed,
        };
        items.push(store.insert_item(&new).await.unwrap());
    }
    let queue = JobQueue::new(store.clone());
    // 300 deliveries over three Items, at once; every tenth repeats the one before it.
    let calls = (0..300usize).map(|i| {
        let queue = queue.clone();
        let item = items[i % 3].clone();
        let key = if i % 10 == 9 { i - 1 } else { i };
        let event = NewWebhookEvent {
            dedupe_key: format!("delivery-{key}"),
            item_id: Some(item.item_id.clone()),
            webhook_type: "TRANSACTIONS".into(),
            webhook_code: "SYNC_UPDATES_AVAILABLE".into(),
            body: format!("{{\"n\":{i}}}"),
        };
        tokio::spawn(async move { queue.record_webhook_sync(&event, &item.item_id).await })
    });
    let outcomes: Vec<_> =
        futures::future::join_all(calls).await.into_iter().map(|r| r.unwrap().unwrap().expect("ours")).collect();
    let new: Vec<_> = outcomes.iter().filter(|(record, _)| record.is_new).collect();
    assert_eq!(new.len(), 270, "each distinct delivery recorded once");
    assert!(
        outcomes
            .iter()
            .filter(|(record, _)| !record.is_new)
            .all(|(record, queued)| record.duplicates == 1 && queued.is_none())
    );
    let jobs: std::collections::HashSet<_> = new.iter().map(|(_, queued)| queued.clone().unwrap().job_id).collect();
    assert_eq!(jobs.len(), 3, "one queued sync per Item, joined by all its deliveries");
    assert_eq!(new.iter().filter(|(_, queued)| !queued.as_ref().unwrap().coalesced).count(), 3);
    for job in jobs {
        assert_eq!(store.get_job(&job).await.unwrap().state, JobState::Queued);
    }
}
