//! A simulator with a state directory survives a restart: the same access tokens, Items,
//! cursors, advances, removals, login state, clock, token counters and webhook keys; new Items get
//! fresh ids; the files are private; a torn journal tail is dropped, damage is refused.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Sim, start};
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use parking_lot::Mutex;
use plaid_sim::persist::JOURNAL_FILE;
use plaid_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "plaid-sim-{name}-{}-{nanos}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        Self(dir)
    }

    /// The state directory inside (created by the simulator itself).
    fn state(&self) -> PathBuf {
        self.0.join("simulator")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &Path) -> SimConfig {
    SimConfig { rate_limits: false, deliver_webhooks: false, state_dir: Some(dir.to_owned()), ..SimConfig::default() }
}

/// Stops a simulator and waits until its state is released, like a process exit.
async fn stop(sim: Sim) {
    sim.running.shutdown().await;
}

/// A client that keeps its transactions and cursor across simulator restarts, and checks that a
/// sync never adds a transaction it already has.
#[derive(Default)]
struct Client {
    txns: BTreeMap<String, Value>,
    cursor: String,
}

impl Client {
    /// Applies one page; returns has_more.
    fn apply(&mut self, page: &Value) -> bool {
        for t in page["added"].as_array().expect("added") {
            let id = t["transaction_id"].as_str().expect("id").to_owned();
            assert!(!self.txns.contains_key(&id), "{id} added twice");
            self.txns.insert(id, t.clone());
        }
        for t in page["modified"].as_array().expect("modified") {
            let id = t["transaction_id"].as_str().expect("id").to_owned();
            assert!(self.txns.contains_key(&id), "{id} modified before it was added");
            self.txns.insert(id, t.clone());
        }
        for r in page["removed"].as_array().expect("removed") {
            let id = r["transaction_id"].as_str().expect("id");
            assert!(self.txns.remove(id).is_some(), "{id} removed but never added");
        }
        self.cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
        page["has_more"].as_bool().expect("has_more")
    }

    async fn page(&mut self, sim: &Sim, token: &str, count: u64) -> bool {
        let (status, page) = sim.sync_page(token, &self.cursor, count).await;
        assert_eq!(status, 200, "{page}");
        self.apply(&page)
    }

    async fn sync(&mut self, sim: &Sim, token: &str) {
        while self.page(sim, token, 500).await {}
    }

    fn values(&self) -> Vec<Value> {
        self.txns.values().cloned().collect()
    }
}

#[tokio::test]
async fn a_restart_keeps_tokens_history_advances_and_cursors() {
    let tmp = TempDir::new("restart");
    let sim = start(config(&tmp.state())).await;
    let (token, item_id) = sim.item().await;
    let accounts_before = sim.ok("/accounts/get", json!({"access_token": token})).await["accounts"].clone();
    let created_at = sim.ok("/item/get", json!({"access_token": token})).await["item"]["created_at"].clone();

    let mut client = Client::default();
    client.sync(&sim, &token).await;
    assert_eq!(client.values(), sim.ground_truth(&item_id).await);
    let (status, report) = sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 5})).await;
    assert_eq!(status, 200, "{report}");
    assert!(report["added"].as_u64().expect("added") > 0);
    // Stop in the middle of pulling the advance: the mid-pagination cursor must stay valid.
    assert!(client.page(&sim, &token, 3).await, "the advance should take more than one page of 3");
    let truth_before = sim.ground_truth(&item_id).await;
    let balances_before = sim.ok("/accounts/balance/get", json!({"access_token": token})).await["accounts"].clone();
    stop(sim).await;

    let sim = start(config(&tmp.state())).await;
    // The same access token reaches the same Item, with its advance and everything else.
    assert_eq!(sim.ground_truth(&item_id).await, truth_before);
    let got = sim.ok("/item/get", json!({"access_token": token})).await;
    assert_eq!(got["item"]["item_id"], item_id);
    assert_eq!(got["item"]["created_at"], created_at);
    // Cached balances were refreshed by the balance call before the restart.
    let accounts_after = sim.ok("/accounts/get", json!({"access_token": token})).await["accounts"].clone();
    assert_eq!(accounts_after, balances_before);
    assert_ne!(accounts_after, accounts_before, "the advance moved the balances");
    // The cursor from before the restart continues where it stopped, without duplicates.
    client.sync(&sim, &token).await;
    assert_eq!(client.values(), truth_before);

    // Life goes on after the restart: pending transactions post, new ones come.
    sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 4})).await;
    client.sync(&sim, &token).await;
    assert_eq!(client.values(), sim.ground_truth(&item_id).await);
    let cursor = client.cursor.clone();
    stop(sim).await;

    // And a second restart replays the changes made after the first one.
    let sim = start(config(&tmp.state())).await;
    let (status, page) = sim.sync_page(&token, &cursor, 500).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["added"], json!([]));
    assert_eq!(page["has_more"], false);
    assert_eq!(client.values(), sim.ground_truth(&item_id).await);
    stop(sim).await;
}

#[tokio::test]
async fn removed_items_stay_removed_and_new_ids_never_collide() {
    let tmp = TempDir::new("ids");
    let sim = start(config(&tmp.state())).await;
    let (kept, kept_id) = sim.item().await;
    let (removed, removed_id) = sim.item().await;
    sim.ok("/item/remove", json!({"access_token": removed})).await;
    let unused = sim
        .ok(
            "/sandbox/public_token/create",
            json!({"institution_id": "ins_109509", "initial_products": ["transactions"]}),
        )
        .await["public_token"]
        .as_str()
        .expect("public token")
        .to_owned();
    stop(sim).await;

    let sim = start(config(&tmp.state())).await;
    let (status, err) = sim.plaid("/item/get", json!({"access_token": removed})).await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["error_code"], "INVALID_ACCESS_TOKEN");
    sim.ok("/item/get", json!({"access_token": kept})).await;
    // A public token issued before the restart can still be exchanged, once.
    let exchanged = sim.ok("/item/public_token/exchange", json!({"public_token": unused})).await;
    let (status, err) = sim.plaid("/item/public_token/exchange", json!({"public_token": unused})).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_PUBLIC_TOKEN")));

    let (fresh, fresh_id) = sim.item().await;
    let old_ids = [kept_id.as_str(), removed_id.as_str(), exchanged["item_id"].as_str().expect("id")];
    assert!(!old_ids.contains(&fresh_id.as_str()), "new Item {fresh_id} reuses an id");
    let old_tokens = [kept.as_str(), removed.as_str(), exchanged["access_token"].as_str().expect("token")];
    assert!(!old_tokens.contains(&fresh.as_str()));
    let items = sim.get("/sim/items").await.1;
    let ids: Vec<&str> = items.as_array().expect("items").iter().map(|i| i["item_id"].as_str().expect("id")).collect();
    assert_eq!(ids.len(), 3, "{items}");
    assert!(!ids.contains(&removed_id.as_str()));
    // The new Item's transactions do not collide with the old ones either.
    let old: std::collections::HashSet<String> =
        sim.ground_truth(&kept_id).await.iter().map(|t| t["transaction_id"].as_str().expect("id").to_owned()).collect();
    assert!(sim.ground_truth(&fresh_id).await.iter().all(|t| !old.contains(t["transaction_id"].as_str().expect("id"))));
    stop(sim).await;
}

#[tokio::test]
async fn login_state_webhook_url_clock_and_readiness_survive() {
    let tmp = TempDir::new("misc");
    let delay = Duration::from_secs(3600);
    let slow = |dir: &Path| SimConfig { product_ready_delay: delay, ..config(dir) };
    let sim = start(slow(&tmp.state())).await;
    let (token, item_id) = sim.item_with("ins_109508", json!({"webhook": "http://127.0.0.1:9/hook"})).await;
    let (early, _) = sim.item().await;
    sim.ok("/item/webhook/update", json!({"access_token": token, "webhook": "http://127.0.0.1:9/other"})).await;
    sim.post("/sim/clock/advance", json!({"seconds": delay.as_secs() + 1})).await;
    let (late, _) = sim.item().await;
    sim.ok("/sandbox/item/reset_login", json!({"access_token": token})).await;
    stop(sim).await;

    let sim = start(slow(&tmp.state())).await;
    let got = sim.ok("/item/get", json!({"access_token": token})).await;
    assert_eq!(got["item"]["item_id"], item_id);
    assert_eq!(got["item"]["webhook"], "http://127.0.0.1:9/other");
    assert_eq!(got["item"]["error"]["error_code"], "ITEM_LOGIN_REQUIRED");
    assert_eq!(got["status"]["last_webhook"]["code_sent"], "ERROR");
    let (status, err) = sim.sync_page(&token, "", 10).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("ITEM_LOGIN_REQUIRED")));
    // The clock offset survived: the Item made an hour "ago" is ready, the one made after the
    // clock moved is not (readiness comes from the saved created_at and the saved offset).
    let (status, clock) = sim.post("/sim/clock/advance", json!({"seconds": 0})).await;
    assert_eq!(status, 200);
    assert_eq!(clock["offset_seconds"], json!(delay.as_secs() + 1));
    let (status, page) = sim.sync_page(&early, "", 10).await;
    assert_eq!((status, page["transactions_update_status"].as_str()), (200, Some("HISTORICAL_UPDATE_COMPLETE")));
    let (status, page) = sim.sync_page(&late, "", 10).await;
    assert_eq!((status, page["transactions_update_status"].as_str()), (200, Some("NOT_READY")));
    stop(sim).await;
}

type Received = Arc<Mutex<Vec<String>>>;

/// A loopback webhook receiver keeping each delivery's `Plaid-Verification` JWT.
async fn receiver() -> (String, Received) {
    let received: Received = Arc::default();
    async fn hook(State(r): State<Received>, headers: HeaderMap) -> &'static str {
        let jwt = headers.get("plaid-verification").and_then(|v| v.to_str().ok()).unwrap_or_default();
        r.lock().push(jwt.to_owned());
        "ok"
    }
    let app = Router::new().route("/hook", post(hook)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// Fires a webhook at the Item and returns the `kid` its JWT was signed with, after checking the
/// signature against the key the simulator publishes for that kid.
async fn fire_and_verify(sim: &Sim, token: &str, received: &Received) -> String {
    let before = received.lock().len();
    sim.ok("/sandbox/item/fire_webhook", json!({"access_token": token, "webhook_code": "DEFAULT_UPDATE"})).await;
    for _ in 0..250 {
        if received.lock().len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let jwt = received.lock().get(before).cloned().expect("the webhook arrived");
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).expect("b64")).expect("json");
    let kid = header["kid"].as_str().expect("kid").to_owned();
    let jwk = key(sim, kid.clone()).await;
    let mut sec1 = vec![4u8];
    sec1.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().expect("x")).expect("b64"));
    sec1.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().expect("y")).expect("b64"));
    let vk = VerifyingKey::from_sec1_bytes(&sec1).expect("point");
    let sig = Signature::from_slice(&URL_SAFE_NO_PAD.decode(parts[2]).expect("b64")).expect("sig");
    assert!(vk.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).is_ok(), "signature verifies");
    kid
}

#[tokio::test]
async fn webhook_signing_keys_survive_and_old_kids_still_verify() {
    let tmp = TempDir::new("keys");
    let (url, received) = receiver().await;
    let delivering = |dir: &Path| SimConfig { deliver_webhooks: true, ..config(dir) };
    let sim = start(delivering(&tmp.state())).await;
    let (token, _) = sim.item_with("ins_109508", json!({"webhook": url})).await;
    let initial = fire_and_verify(&sim, &token, &received).await;
    let initial_key = key(&sim, initial.clone()).await;
    stop(sim).await;

    // The key a new simulator started with is the one it signs with after a restart.
    let sim = start(delivering(&tmp.state())).await;
    assert_eq!(fire_and_verify(&sim, &token, &received).await, initial);
    assert_eq!(key(&sim, initial.clone()).await, initial_key);
    let (_, rotated) = sim.post("/sim/keys/rotate", json!({})).await;
    let rotated = rotated["kid"].as_str().expect("kid").to_owned();
    assert_eq!(fire_and_verify(&sim, &token, &received).await, rotated);
    let (old_key, new_key) = (key(&sim, initial.clone()).await, key(&sim, rotated.clone()).await);
    assert!(old_key["expired_at"].is_i64());
    stop(sim).await;

    // A rotation survives too: the new key signs, the old one still verifies old webhooks.
    let sim = start(delivering(&tmp.state())).await;
    assert_eq!(fire_and_verify(&sim, &token, &received).await, rotated);
    assert_eq!(key(&sim, initial).await, old_key);
    assert_eq!(key(&sim, rotated).await, new_key);
    stop(sim).await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_state_directory_and_journal_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("modes");
    // A directory that already exists with open permissions is tightened too.
    std::fs::create_dir_all(tmp.state()).expect("mkdir");
    std::fs::set_permissions(tmp.state(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let sim = start(config(&tmp.state())).await;
    sim.item().await;
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&tmp.state()), 0o700);
    assert_eq!(mode(&tmp.state().join(JOURNAL_FILE)), 0o600);
    stop(sim).await;
}

async fn key(sim: &Sim, kid: String) -> Value {
    sim.ok("/webhook_verification_key/get", json!({"key_id": kid})).await["key"].clone()
}

fn append(dir: &Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().append(true).open(dir.join(JOURNAL_FILE)).expect("journal");
    f.write_all(bytes).expect("write");
}

#[tokio::test]
async fn a_torn_journal_tail_is_dropped_and_damage_is_refused() {
    let tmp = TempDir::new("torn");
    let sim = start(config(&tmp.state())).await;
    let (token, item_id) = sim.item().await;
    sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 2})).await;
    let truth = sim.ground_truth(&item_id).await;
    stop(sim).await;
    let intact = std::fs::read(tmp.state().join(JOURNAL_FILE)).expect("journal");

    // A crash in the middle of writing a line: the line is dropped, the rest restored.
    append(&tmp.state(), br#"{"at":"2030-01-01T00:00:00Z","op":{"item":{"item_id":"#);
    let sim = start(config(&tmp.state())).await;
    assert_eq!(sim.ground_truth(&item_id).await, truth);
    assert_eq!(std::fs::read(tmp.state().join(JOURNAL_FILE)).expect("journal"), intact, "torn bytes cut off");
    // New changes append cleanly after the repair and survive another restart.
    sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 1})).await;
    let truth = sim.ground_truth(&item_id).await;
    stop(sim).await;
    let sim = start(config(&tmp.state())).await;
    assert_eq!(sim.ground_truth(&item_id).await, truth);
    sim.ok("/item/get", json!({"access_token": token})).await;
    stop(sim).await;

    // A complete line that does not parse is damage, not a crash: refuse to guess.
    append(&tmp.state(), b"{\"at\":\"2030-01-01T00:00:00Z\",\"op\":{\"no_such_op\":{}}}\n");
    let err = Simulator::open(config(&tmp.state())).err().expect("damaged journal refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("cannot be read"), "{err}");
    assert!(err.to_string().contains(&tmp.state().display().to_string()), "{err}");
}

#[tokio::test]
async fn another_seed_or_a_newer_format_is_refused_with_a_clear_error() {
    let tmp = TempDir::new("header");
    let sim = start(config(&tmp.state())).await;
    sim.item().await;
    stop(sim).await;
    let err = Simulator::open(SimConfig { seed: 7, ..config(&tmp.state()) }).err().expect("other seed refused");
    assert!(err.to_string().contains("seed 42"), "{err}");

    let newer = TempDir::new("newer");
    std::fs::create_dir_all(newer.state()).expect("mkdir");
    std::fs::write(newer.state().join(JOURNAL_FILE), b"{\"format\":\"plaid-sim-state\",\"version\":99,\"seed\":42}\n")
        .expect("write");
    let err = Simulator::open(config(&newer.state())).err().expect("newer format refused");
    assert!(err.to_string().contains("newer plaid-sim (format version 99"), "{err}");
}

#[tokio::test]
async fn without_a_state_directory_nothing_is_written() {
    let sim = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (token, _) = sim.item().await;
    stop(sim).await;
    let sim = start(SimConfig { rate_limits: false, ..SimConfig::default() }).await;
    let (status, err) = sim.plaid("/item/get", json!({"access_token": token})).await;
    assert_eq!((status, err["error_code"].as_str()), (400, Some("INVALID_ACCESS_TOKEN")));
    stop(sim).await;
}

#[tokio::test]
async fn a_restart_keeps_the_data_phase_and_a_refresh_the_bank_has_not_answered() {
    let tmp = TempDir::new("phases");
    let two_phases = || SimConfig {
        historical_ready_delay: Some(Duration::from_secs(3600)),
        refresh_delay: Duration::from_millis(500),
        ..config(&tmp.state())
    };
    let sim = start(two_phases()).await;
    let (token, item_id) = sim.item().await;
    let mut client = Client::default();
    client.sync(&sim, &token).await;
    let first_phase = client.txns.len();
    assert!(first_phase > 0);
    assert_eq!(client.values(), sim.ground_truth(&item_id).await, "the last 30 days");
    stop(sim).await;

    // Still in the first phase after the restart; the full history then arrives on the same cursor.
    let sim = start(two_phases()).await;
    assert_eq!(client.values(), sim.ground_truth(&item_id).await);
    let (status, moved) = sim.post(&format!("/sim/items/{item_id}/ready"), json!({"phase": "historical"})).await;
    assert_eq!(status, 200, "{moved}");
    client.sync(&sim, &token).await;
    assert!(client.txns.len() > first_phase, "the older history came");
    assert_eq!(client.values(), sim.ground_truth(&item_id).await);

    // Activity at the bank, and a refresh the bank answers only after the restart.
    let (status, _) = sim.post(&format!("/sim/items/{item_id}/advance"), json!({"days": 3, "pulled": false})).await;
    assert_eq!(status, 200);
    sim.ok("/transactions/refresh", json!({"access_token": token})).await;
    let before_answer = client.txns.len();
    stop(sim).await;
    let sim = start(two_phases()).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    client.sync(&sim, &token).await;
    assert!(client.txns.len() > before_answer, "the bank's answer brought the new days");
    assert_eq!(client.values(), sim.ground_truth(&item_id).await);
    stop(sim).await;

    // And the whole journal replays to the same state once more.
    let sim = start(two_phases()).await;
    assert_eq!(client.values(), sim.ground_truth(&item_id).await);
    stop(sim).await;
}
