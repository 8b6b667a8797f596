//! The whole application on PostgreSQL: the real `Application` (HTTP, webhook receiver, job workers, scheduler) on
//! a fresh schema of the server at `BANKSYNC_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`),
//! and two instances sharing one schema and one simulator the way two processes behind a load balancer would.
//! Without a reachable PostgreSQL these tests fail, unless `BANKSYNC_TEST_SKIP_POSTGRES=1` skips them.

use std::future::Future;
use std::time::{Duration, Instant};

use banksync::config::{Config, Settings};
use banksync::domain::SyncRunStatus;
use banksync::startup::Application;
use banksync::store::Backend;
use serde_json::json;
use sqlx::Connection as _;

use crate::harness::*;

/// Runs `test` with the URL of a fresh schema (via `search_path` in the URL's `options`, the way an operator would
/// configure it), dropping the schema afterwards even when the test panics.
async fn in_fresh_schema<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some((mut admin, schema)) = crate::pg::fresh_schema("banksync_life", "lifecycle test").await else { return };
    let url = crate::pg::url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let schema_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
    // Run the body as a task so the schema is dropped even when it panics.
    let outcome = tokio::spawn(test(schema_url)).await;
    // Instances still running in the background may hold a lock for a moment; don't wait forever on them.
    sqlx::query("SET lock_timeout = '20s'").execute(&mut admin).await.unwrap();
    let dropped = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
    dropped.unwrap();
}

/// A second banksync process: its own runtime on its own thread, so [`Instance::kill`] stops everything it runs
/// (HTTP server, job workers with their heartbeats, syncs in flight) at once, like a crash.
struct Instance {
    url: String,
    kill: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Instance {
    fn start(settings: Settings) -> Instance {
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let (kill_tx, kill_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async {
                let config = Config::resolve(settings).expect("valid config");
                let app = Application::build(config).await.expect("the second instance builds");
                url_tx.send(app.url()).unwrap();
                tokio::spawn(app.run_until_stopped());
            });
            let _ = kill_rx.recv();
            runtime.shutdown_background();
        });
        let url = url_rx.recv().expect("the second instance started");
        Instance { url, kill: Some(kill_tx), thread: Some(thread) }
    }

    fn kill(&mut self) {
        drop(self.kill.take());
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits until the API shows exactly the simulator's transactions for every Item.
async fn converge(app: &TestApp, items: &[String], what: &str) {
    for item_id in items {
        let truth = app.sim_transactions(item_id).await;
        let mut ours = Vec::new();
        for _ in 0..300 {
            ours = app.api_transactions(item_id).await;
            if ours == truth {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if ours != truth {
            let runs = app.get_item(item_id).await.expect(200)["recent_sync_runs"].clone();
            panic!("{what}: {item_id} did not converge: {} ours vs {} truth; runs {runs}", ours.len(), truth.len());
        }
    }
}

/// No two sync runs of one Item overlapped in time (whichever process ran them), and none is left running.
async fn assert_runs_never_overlap(app: &TestApp, item_id: &str) {
    let item = app.store.get_item_by_plaid_id(&item_id.into()).await.unwrap().unwrap();
    let mut runs = app.store.list_sync_runs(&item.id, 1000).await.unwrap();
    runs.sort_by_key(|r| r.started_at);
    for pair in runs.windows(2) {
        assert_ne!(pair[0].status, SyncRunStatus::Running, "a run never finished: {:?}", pair[0]);
        let finished = pair[0].finished_at.expect("finished run has an end");
        assert!(finished <= pair[1].started_at, "two syncs of {item_id} ran at once: {:?} and {:?}", pair[0], pair[1]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_a_webhook_after_advancing_days_converges_without_any_manual_sync() {
    in_fresh_schema(|url| async move {
        let app = lifecycle_app().postgres(&url).spawn().await;
        assert_eq!(app.store.backend(), Backend::Postgres);
        let item_id = app.link_and_sync(0).await;
        assert_eq!(app.count_runs(&item_id, None).await, 1, "the link flow's first sync");
        converge(&app, std::slice::from_ref(&item_id), "after the first sync").await;

        for round in 0..2 {
            // Updates within one second are byte-identical signed deliveries (see the SQLite twin of this test).
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let runs_before = app.count_runs(&item_id, Some("webhook")).await;
            let moved = app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 3})).await;
            assert!(moved["added"].as_u64().unwrap() > 0, "round {round}: the bank produced nothing: {moved}");
            converge(&app, std::slice::from_ref(&item_id), &format!("round {round}")).await;
            eventually("the webhook's run is recorded", || async {
                app.count_runs(&item_id, Some("webhook")).await > runs_before
            })
            .await;
        }
        assert_eq!(app.count_runs(&item_id, Some("manual")).await, 0);
        let deliveries = app.sim_get("/sim/webhooks").await;
        let accepted = deliveries
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["webhook_code"] == "SYNC_UPDATES_AVAILABLE" && d["status"] == 200)
            .count();
        assert!(accepted >= 2, "signed webhooks delivered and accepted: {deliveries}");
        assert_runs_never_overlap(&app, &item_id).await;
    })
    .await;
}

/// Instance A (the harness app, which linked three Items, so the simulator's own webhooks go to it) and instance B,
/// on one schema with one master key, one simulator and one webhook key.
struct Pair {
    app: TestApp,
    key: TestKey,
    items: Vec<String>,
    instances: [String; 2],
    url: String,
    _b_dir: tempfile::TempDir,
}

/// Instance B comes back separately so a test can kill it.
async fn two_instances(url: String) -> (Pair, Instance) {
    let master_key = hex::encode(rand::random::<[u8; 32]>());
    let app = lifecycle_app().postgres(&url).settings(|s| s.master_key = Some(master_key)).spawn().await;
    let key = TestKey::new("pg-storm-key", false);
    app.add_key(&key);
    let mut items = Vec::new();
    for institution in 0..3 {
        items.push(app.link_and_sync(institution).await);
    }
    eventually("no job left from linking", || async { app.open_jobs().await == 0 }).await;
    let b_dir = tempfile::tempdir().unwrap();
    // The same settings as A (database, master key, Plaid through the key proxy) but its own data directory.
    let b = Instance::start(Settings { data_dir: Some(b_dir.path().to_owned()), ..app.settings() });
    let instances = [app.address.clone(), b.url.clone()];
    (Pair { app, key, items, instances, url, _b_dir: b_dir }, b)
}

/// The banks move (the simulator tells instance A), and five fresh signed deliveries per Item arrive at both
/// instances at once; waits until every Item matches the simulator and the queue is empty.
async fn fresh_storm(p: &Pair) {
    let Pair { app, key, items, instances, .. } = p;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for item_id in items {
        app.sim_post(&format!("/sim/items/{item_id}/advance"), json!({"days": 2})).await;
    }
    let fresh: Vec<(Vec<u8>, String)> = items
        .iter()
        .flat_map(|item_id| {
            let body = sync_updates_body(item_id);
            // Different `iat`s: distinct deliveries, each recorded and handled (coalescing absorbs them).
            (1..=5).map(move |age| (body.clone(), age))
        })
        .map(|(body, age)| {
            let jwt = key.sign(&body, age);
            (body, jwt)
        })
        .collect();
    let replies = futures::future::join_all(
        fresh.iter().enumerate().map(|(i, (body, jwt))| app.post_webhook_at(&instances[i % 2], body, Some(jwt))),
    )
    .await;
    for (status, reply) in &replies {
        assert_eq!(*status, 200, "{reply}");
    }
    converge(app, items, "after the fresh storm").await;
    eventually("the fresh storm's jobs drained", || async { app.open_jobs().await == 0 }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_schema_share_the_work_and_one_reclaims_the_others_job_after_a_crash() {
    in_fresh_schema(|url| async move {
        let started = Instant::now();
        let (pair, mut b) = two_instances(url).await;
        let Pair { app, key, items, instances, url, .. } = &pair;
        let mut pg = sqlx::PgConnection::connect(url).await.unwrap();

        // 1. A storm of one signed delivery per Item, replayed 20 times at each instance: exactly one delivery is
        //    recorded, one job enqueued and one sync run per Item, whichever instance took it.
        let runs_before: Vec<i64> =
            futures::future::join_all(items.iter().map(|i| app.count_runs(i, None))).await.into_iter().collect();
        let effects_before = app.side_effects().await;
        let deliveries: Vec<(Vec<u8>, String)> = items
            .iter()
            .map(|item_id| {
                let body = sync_updates_body(item_id);
                let jwt = key.sign(&body, 0);
                (body, jwt)
            })
            .collect();
        let storm = deliveries
            .iter()
            .flat_map(|(body, jwt)| instances.iter().flat_map(move |base| (0..20).map(move |_| (base, body, jwt))));
        let replies =
            futures::future::join_all(storm.map(|(base, body, jwt)| app.post_webhook_at(base, body, Some(jwt)))).await;
        let mut enqueued = 0;
        for (status, reply) in &replies {
            assert_eq!(*status, 200, "{reply}");
            match reply["status"].as_str() {
                Some("enqueued") => enqueued += 1,
                Some("duplicate") => {}
                other => panic!("unexpected webhook answer {other:?}: {reply}"),
            }
        }
        assert_eq!(enqueued, items.len(), "one delivery per Item enqueued across both instances");
        eventually("the storm's syncs ran", || async { app.open_jobs().await == 0 }).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        // A duplicate still asks for a sync (tests/lifecycle/main.rs: a_storm_of_the_same_webhook_runs_one_sync):
        // one more at most per Item.
        for (item_id, before) in items.iter().zip(&runs_before) {
            let runs = app.count_runs(item_id, None).await;
            assert!((before + 1..=before + 2).contains(&runs), "{runs} syncs of {item_id} for 40 deliveries");
        }
        let n = items.len() as i64;
        let effects = app.side_effects().await;
        assert_eq!(effects.0, effects_before.0 + n, "one delivery recorded per Item");
        assert!((n..=2 * n).contains(&(effects.1 - effects_before.1)), "{effects:?}");
        eprintln!("phase 1 (replay storm) done after {:?}", started.elapsed());

        // 2. Fresh deliveries at both instances while the banks move: every Item converges.
        fresh_storm(&pair).await;
        eprintln!("phase 2 (fresh storm, convergence) done after {:?}", started.elapsed());

        // 3. Instance B crashes while it holds a leased job (its sync hangs at Plaid); A reclaims the job once the
        //    lease runs out and completes it.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let victim = &items[0];
        let webhook_runs = app.count_runs(victim, Some("webhook")).await;
        app.sim_post(&format!("/sim/items/{victim}/advance"), json!({"days": 1})).await;
        // The simulator delivers its webhook asynchronously: wait for the sync it causes, not just an empty queue.
        eventually("the advance's own webhook is handled", || async {
            app.count_runs(victim, Some("webhook")).await > webhook_runs && app.open_jobs().await == 0
        })
        .await;
        let fault = json!({"endpoint": "/transactions/sync", "latency_ms": 5000, "count": 1});
        app.sim_post("/sim/faults", fault).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let body = sync_updates_body(victim);
        let (status, reply) = app.post_webhook_at(&b.url, &body, Some(&key.sign(&body, 0))).await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("enqueued")), "{reply}");
        let mut held = None;
        for _ in 0..100 {
            held = sqlx::query_as::<_, (String, String, i64)>(
                "SELECT id, lease_owner, attempts FROM jobs WHERE state = 'running' AND lease_owner IS NOT NULL",
            )
            .fetch_optional(&mut pg)
            .await
            .unwrap();
            if held.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (job_id, owner, attempts) = held.expect("instance B leased the job");
        assert_eq!(attempts, 1);
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.kill();
        let killed_at = Instant::now();
        assert!(app.http.get(format!("{}/health", b.url)).send().await.is_err(), "instance B is gone");
        // Past the injected 5 s latency a live holder would have finished (or failed) the job; it is still leased
        // to its holder, unchanged: the holder is the dead instance B, and nobody runs the job before the lease
        // runs out.
        tokio::time::sleep(Duration::from_secs(7)).await;
        let job = app.store.get_job(&job_id.as_str().into()).await.unwrap();
        assert_eq!(
            (job.state, job.lease_owner.as_deref(), job.attempts),
            (banksync::domain::JobState::Running, Some(owner.as_str()), 1),
            "the job stays with its dead holder until the lease runs out: {job:?}"
        );
        // Default lease: 60 s, polled every 5 s by the survivor.
        let mut done = false;
        while killed_at.elapsed() < Duration::from_secs(120) {
            if app.store.get_job(&job_id.as_str().into()).await.unwrap().state == banksync::domain::JobState::Done {
                done = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let job = app.store.get_job(&job_id.as_str().into()).await.unwrap();
        assert!(done, "instance A never completed the crashed instance's job: {job:?}");
        assert_eq!(job.attempts, 2, "one attempt by B (crashed), one by A: {job:?}");
        eprintln!("reclaimed and completed {:?} after the crash", killed_at.elapsed());
        converge(app, std::slice::from_ref(victim), "after the reclaim").await;
        eprintln!("phase 3 (crash and reclaim) done after {:?}", started.elapsed());
    })
    .await;
}

/// Regression test: instance B must not claim an Item's queued sync while instance A still runs the previous one
/// (the engine's single flight is per process; the queue's claim skips work that is running under a live lease),
/// otherwise two syncs of one Item overlap and the later commit fails the cursor compare-and-set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_never_sync_one_item_at_once() {
    in_fresh_schema(|url| async move {
        let (pair, _b) = two_instances(url).await;
        let mut pg = sqlx::PgConnection::connect(&pair.url).await.unwrap();
        // Slow syncs widen the window in which a second instance can pick up the same Item.
        let fault = json!({"endpoint": "/transactions/sync", "latency_ms": 800, "count": 3});
        pair.app.sim_post("/sim/faults", fault).await;
        fresh_storm(&pair).await;
        let retried: Vec<(String, i64, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT state, attempts, last_error, result FROM jobs WHERE attempts > 1")
                .fetch_all(&mut pg)
                .await
                .unwrap();
        let failed_runs: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT item_ref, status, error_code, error_message FROM sync_runs WHERE error_code IS NOT NULL \
             OR error_message IS NOT NULL",
        )
        .fetch_all(&mut pg)
        .await
        .unwrap();
        assert!(retried.is_empty(), "jobs run more than once: {retried:?}; failed runs: {failed_runs:?}");
        // An overlapping second sync would fail at the commit's cursor compare-and-set: it shows as a failed run
        // even when no job needed a second attempt.
        assert!(failed_runs.is_empty(), "sync runs failed: {failed_runs:?}");
        for item_id in &pair.items {
            assert_runs_never_overlap(&pair.app, item_id).await;
        }
    })
    .await;
}

/// A live balance refresh started on instance A is answered by instance B too: B sees it running, joins it instead
/// of starting a second one, long-polls it to completion, and hides it from another user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balance_refresh_started_on_one_instance_is_long_polled_to_completion_on_the_other() {
    in_fresh_schema(|url| async move {
        let (pair, b) = two_instances(url).await;
        let Pair { app, items, .. } = &pair;
        let bob = seed_user(&app.store, "bob").await;
        let b_url = b.url.as_str();
        let on_b = |method: reqwest::Method, path: String, token: String| {
            let body = (method == reqwest::Method::POST).then(|| json!({}));
            async move { app.call_at(b_url, &token, method, &path, body).await.into_parts() }
        };
        let token = app.user.token.clone();

        // The first balance call takes 5 s; the others answer at once. The 202 comes before the slow bank answered:
        // B sees the job still running below (had the POST waited for the banks, the job would be done).
        app.sim_post("/sim/faults", json!({"endpoint": "/accounts/balance/get", "latency_ms": 5000, "count": 1})).await;
        let (status, job) = app.post("/api/balances/refresh", json!({})).await.into_parts();
        assert_eq!(status, 202, "{job}");
        let job_id = job["job_id"].as_str().unwrap().to_owned();
        let poll = format!("/api/balances/refresh/{job_id}");

        let (status, early) = on_b(reqwest::Method::GET, format!("{poll}?wait=1"), token.clone()).await;
        assert_eq!(status, 200, "instance B answers for A's job: {early}");
        assert_eq!(early["job_id"], job_id.as_str());
        assert_eq!(early["state"], "running", "{early}");
        assert_eq!(early["items"].as_array().unwrap().len(), items.len(), "{early}");
        let (status, joined) = on_b(reqwest::Method::POST, "/api/balances/refresh".into(), token.clone()).await;
        assert_eq!((status, joined["job_id"].as_str()), (202, Some(job_id.as_str())), "B joins A's running refresh");
        let (status, foreign) = on_b(reqwest::Method::GET, format!("{poll}?wait=0"), bob.token.clone()).await;
        assert_eq!(status, 404, "another user's job: {foreign}");

        let (status, done) = on_b(reqwest::Method::GET, format!("{poll}?wait=20"), token.clone()).await;
        assert_eq!(status, 200, "{done}");
        // Done, so the 20 s long-poll ended with the job (on its deadline it would have answered "running").
        assert_eq!(done["state"], "done", "{done}");
        let faults = app.sim_get("/sim/faults").await;
        assert_eq!(faults[0]["fired"], 1, "the slow bank was asked once and answered: {faults}");
        for outcome in done["items"].as_array().unwrap() {
            assert_eq!(outcome["state"], "ok", "{done}");
            assert!(outcome["accounts_updated"].as_u64() > Some(0), "{done}");
        }
        // Both instances agree, and nothing is left running.
        let on_a = app.get(&format!("{poll}?wait=0")).await.expect(200);
        assert_eq!(on_a["state"], "done");
        assert_eq!(on_a["items"], done["items"]);
        assert_eq!(app.open_jobs().await, 0);
    })
    .await;
}

/// The sync rules live in the database: a cooldown claimed through instance A refuses "sync now" on instance B, and
/// a rate-limit hold recorded by A's worker delays a sync B queues.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_manual_cooldown_and_the_rate_limit_hold() {
    in_fresh_schema(|url| async move {
        let master_key = hex::encode(rand::random::<[u8; 32]>());
        let app = lifecycle_app()
            .postgres(&url)
            .settings(|s| {
                s.master_key = Some(master_key);
                s.sync_cooldown = Some("10m".into());
            })
            .spawn()
            .await;
        let item_id = app.link_and_sync(0).await;
        eventually("no job left from linking", || async { app.open_jobs().await == 0 }).await;
        let b_dir = tempfile::tempdir().unwrap();
        let b = Instance::start(Settings { data_dir: Some(b_dir.path().to_owned()), ..app.settings() });
        let path = format!("/api/items/{item_id}/sync");

        // The cooldown: A syncs, B refuses.
        app.call_at(&app.address, &app.user.token, reqwest::Method::POST, &path, Some(json!({}))).await.expect(200);
        let refused = app.call_at(&b.url, &app.user.token, reqwest::Method::POST, &path, Some(json!({}))).await;
        refused.expect_error(429, "sync_cooldown");

        // The hold: Plaid rate-limits the Item's next sync (run by whichever worker claims it); the hold is stored,
        // and a sync queued through B afterwards waits for it instead of calling Plaid again.
        let fault = json!({"endpoint": "/transactions/sync", "error": "RATE_LIMIT_EXCEEDED", "count": 5});
        app.sim_post("/sim/faults", fault).await;
        let item = app.store.get_item_by_plaid_id(&item_id.as_str().into()).await.unwrap().unwrap();
        app.store.release_sync_cooldown(&item.id).await.unwrap();
        let limited = app.call_at(&b.url, &app.user.token, reqwest::Method::POST, &path, Some(json!({}))).await;
        assert_eq!(limited.status, 429, "{}", limited.body);
        let held = app.get_item(&item_id).await.expect(200)["sync"]["held_until"].clone();
        let held_until: chrono::DateTime<chrono::Utc> = serde_json::from_value(held.clone()).expect("a hold");
        assert!(held_until > chrono::Utc::now() + chrono::Duration::seconds(30), "{held}");
        let webhook = sync_updates_body(&item_id);
        let jwt = TestKey::new("hold-key", false);
        app.add_key(&jwt);
        let (status, reply) = app.post_webhook_at(&b.url, &webhook, Some(&jwt.sign(&webhook, 0))).await;
        assert_eq!((status, reply["status"].as_str()), (200, Some("enqueued")), "{reply}");
        let queued: Vec<(String,)> =
            sqlx::query_as("SELECT run_after FROM jobs WHERE kind = 'sync' AND state = 'queued' AND item_id = $1")
                .bind(&item_id)
                .fetch_all(&mut sqlx::PgConnection::connect(&url).await.unwrap())
                .await
                .unwrap();
        assert_eq!(queued.len(), 1, "{queued:?}");
        let run_after = chrono::DateTime::parse_from_rfc3339(&queued[0].0).unwrap();
        assert!(run_after >= held_until - chrono::Duration::seconds(1), "queued for {run_after}, hold {held_until}");
        drop(b);
    })
    .await;
}
