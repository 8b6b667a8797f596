//! Database outages against the real `banksync serve`:
//! - SQLite on a full disk: `RLIMIT_FSIZE` lowered on the running server (`prlimit(2)`; SIGXFSZ ignored so a write
//!   past it fails with EFBIG the way a full disk fails it) → writes answer 503 `database_storage_full` and are logged,
//!   reads keep working, nothing is corrupted, and once the limit is lifted the same process writes and syncs again;
//! - a read-only SQLite database, for a process that really cannot write it (a non-root user when the tests run as
//!   root: root ignores file modes) → 503 `database_read_only`, reads work, no corruption;
//! - PostgreSQL restarted mid-sync, on a private cluster this test starts itself (`initdb`/`pg_ctl` on a spare port,
//!   never the shared server) → every request meanwhile answers 503 `database_unavailable` within the configured
//!   acquire timeout, and the server recovers by itself and converges.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node::{Node, assert_sqlite_consistent, eventually, free_port, truth};

/// Syncs until the Item equals the simulator (each "sync now" waits up to 30 s).
async fn converge(node: &Node, item: &str) -> usize {
    let want = truth(&node.http, &node.sim_url, item).await;
    let deadline = Instant::now() + Duration::from_secs(90);
    while node.visible(item).await != want {
        assert!(Instant::now() < deadline, "Item {item} never converged; log:\n{}", node.log_tail());
        let _ = node.try_call(reqwest::Method::POST, &format!("/api/items/{item}/sync"), Some(json!({}))).await;
    }
    want.len()
}

async fn first_transaction(node: &Node, item: &str) -> String {
    let (status, page) = node.get(&format!("/api/transactions?item_id={item}&limit=1")).await;
    assert_eq!(status, 200, "{page}");
    page["transactions"][0]["transaction_id"].as_str().unwrap().to_owned()
}

/// `prlimit --fsize` on the running server: the soft file-size limit (None: unlimited), the hard one unlimited.
fn set_fsize_limit(pid: u32, bytes: Option<u64>) {
    let soft = bytes.map_or_else(|| "unlimited".to_owned(), |b| b.to_string());
    let out = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={soft}:unlimited")])
        .output()
        .expect("prlimit (util-linux) is installed");
    assert!(out.status.success(), "prlimit: {}", String::from_utf8_lossy(&out.stderr));
}

fn assert_outage(status: u16, body: &Value, code: &str, what: &str) {
    assert_eq!(status, 503, "{what}: {body}");
    assert_eq!(body["error"]["code"], code, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("database"), "{what}: the message says what is wrong: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_on_a_full_disk_answers_503_keeps_reading_and_recovers_when_space_returns() {
    let sim = crate::start_sim(7, |_| {}).await;
    let mut node = Node::new(&sim.url(), vec![]).await;
    node.ignore_sigxfsz = true;
    node.start().await;
    let item = node.link(0, "user_good").await;
    let count = converge(&node, &item).await;
    let txn = first_transaction(&node, &item).await;
    let pid = node.pid().unwrap();

    // The disk is full: no write may go past the first page of any file.
    set_fsize_limit(pid, Some(4096));
    let (status, body) = node
        .call(reqwest::Method::PATCH, &format!("/api/transactions/{txn}"), Some(json!({"note": "x".repeat(2000)})))
        .await;
    assert_outage(status, &body, "database_storage_full", "a note on a full disk");
    // The bank moved on; the sync cannot store it, says so, and keeps what was there.
    crate::sim::post(&node.http, &node.sim_url, &format!("/sim/items/{item}/advance"), json!({"days": 5})).await;
    let (status, body) = node.post(&format!("/api/items/{item}/sync"), json!({})).await;
    assert_eq!(status, 503, "sync now on a full disk: {body}");
    let (status, page) = node.get(&format!("/api/transactions?item_id={item}&limit=500")).await;
    assert_eq!(status, 200, "reads work on a full disk: {page}");
    assert_eq!(node.visible(&item).await.len(), count, "nothing half-written is visible");
    assert!(node.exited().is_none(), "the server survived the full disk");
    let log = node.log();
    assert!(log.contains("database_storage_full"), "the log names the full disk:\n{}", node.log_tail());

    // Space returns: the same process writes and syncs again.
    set_fsize_limit(pid, None);
    let path = format!("/api/transactions/{txn}");
    eventually("a write succeeds once space returns", Duration::from_secs(30), || async {
        node.call(reqwest::Method::PATCH, &path, Some(json!({"note": "after"}))).await.0 == 200
    })
    .await;
    let count_after = converge(&node, &item).await;
    node.stop().await;
    assert_sqlite_consistent(&node.db_path()).await;
    eprintln!(
        "chaos outages: SQLite full disk (RLIMIT_FSIZE 4096): writes 503 database_storage_full, reads 200, \
         integrity ok, recovered without a restart ({count} → {count_after} transactions)"
    );
}

fn is_root() -> bool {
    let out = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_sqlite_answers_503_for_writes_and_is_not_corrupted() {
    let sim = crate::start_sim(8, |_| {}).await;
    // As root every file is writable whatever its mode: run banksync as `nobody` so the mode means something.
    let run_as = is_root().then_some((65534, 65534));
    let mut node = Node::new_as(&sim.url(), vec![], run_as).await;
    node.start().await;
    let item = node.link(0, "user_good").await;
    let count = converge(&node, &item).await;
    let txn = first_transaction(&node, &item).await;
    node.stop().await;
    let db = node.db_path();
    set_mode(&db, 0o400);

    node.start().await;
    let (status, body) =
        node.call(reqwest::Method::PATCH, &format!("/api/transactions/{txn}"), Some(json!({"note": "x"}))).await;
    assert_outage(status, &body, "database_read_only", "a note on a read-only database");
    assert_eq!(node.visible(&item).await.len(), count, "reads work on a read-only database");
    assert!(node.log().contains("database_read_only"), "the log says so:\n{}", node.log_tail());
    node.stop().await;

    set_mode(&db, 0o600);
    assert_sqlite_consistent(&db).await;
    eprintln!(
        "chaos outages: read-only SQLite (as {}): writes 503 database_read_only, reads 200, integrity ok",
        if run_as.is_some() { "nobody" } else { "the test user" }
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A PostgreSQL cluster of our own in a temp dir on a spare port, stopped (immediately) when dropped.
struct PrivatePg {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
}

impl PrivatePg {
    /// None when no PostgreSQL server binaries are installed and skipping PostgreSQL was asked for (else it fails).
    fn start() -> Option<PrivatePg> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
        else {
            crate::pg::missing("restart test", "no /usr/lib/postgresql/*/bin/initdb for a private cluster");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        // initdb refuses to run as root: the cluster belongs to the `postgres` user then.
        let owner = is_root().then(|| (uid_of("postgres"), gid_of("postgres")));
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let pg = PrivatePg { dir, bin, port: free_port(), owner };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]);
        pg.ctl_start();
        Some(pg)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let mut cmd = std::process::Command::new(self.bin.join(tool));
        cmd.args(args).stdin(Stdio::null()).current_dir(self.dir.path());
        if let Some((uid, gid)) = self.owner {
            use std::os::unix::process::CommandExt as _;
            cmd.uid(uid).gid(gid);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl_start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("pg.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "start"]);
    }

    fn ctl_stop(&self, mode: &str) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", mode, "-w", "stop"]);
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let mut cmd = std::process::Command::new(self.bin.join("pg_ctl"));
        cmd.args(["-D", &self.data(), "-m", "immediate", "stop"]).stdout(Stdio::null()).stderr(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            use std::os::unix::process::CommandExt as _;
            cmd.uid(uid).gid(gid);
        }
        let _ = cmd.status();
    }
}

fn id_of(flag: &str, user: &str) -> u32 {
    let out = std::process::Command::new("id").args([flag, user]).output().unwrap();
    assert!(out.status.success(), "no user {user}");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn uid_of(user: &str) -> u32 {
    id_of("-u", user)
}

fn gid_of(user: &str) -> u32 {
    id_of("-g", user)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_sync_answers_503_meanwhile_and_recovers_by_itself() {
    let Some(pg) = PrivatePg::start() else { return };
    let sim = crate::start_sim(9, |_| {}).await;
    let env = vec![
        ("BANKSYNC_DATABASE_URL".to_owned(), pg.url()),
        ("BANKSYNC_DB_POOL_SIZE".to_owned(), "4".to_owned()),
        ("BANKSYNC_DB_ACQUIRE_TIMEOUT".to_owned(), "1s".to_owned()),
    ];
    let mut node = Node::new(&sim.url(), env).await;
    node.start().await;
    let small = node.link(0, "user_good").await;
    converge(&node, &small).await;

    // An initial sync of a long history is under way when the database goes away: stopped once the database shows
    // the Item claimed by its first sync (seen, not assumed after a delay).
    // (Its pages come slowly, so it is still under way when it has been seen.)
    let slow_pages = json!({"endpoint": "/transactions/sync", "latency_ms": 250, "count": 8});
    crate::sim::post(&node.http, &sim.url(), "/sim/faults", slow_pages).await;
    let big = node.link(1, "user_bulk_4000").await;
    eventually("the initial sync of the long history runs", Duration::from_secs(30), || async {
        let mut db = <sqlx::PgConnection as sqlx::Connection>::connect(&pg.url()).await.unwrap();
        let claimed: i64 =
            sqlx::query_scalar("SELECT count(*) FROM items WHERE item_id = $1 AND initial_sync_run IS NOT NULL")
                .bind(&big)
                .fetch_one(&mut db)
                .await
                .unwrap();
        claimed == 1
    })
    .await;
    pg.ctl_stop("fast");
    let mut answers = 0;
    for path in ["/api/items", &format!("/api/transactions?item_id={small}"), "/api/accounts"] {
        let (status, body) = node.get(path).await;
        assert_outage(status, &body, "database_unavailable", &format!("GET {path} while PostgreSQL is down"));
        answers += 1;
    }
    let (status, body) = node.post(&format!("/api/items/{small}/sync"), json!({})).await;
    assert_outage(status, &body, "database_unavailable", "sync now while PostgreSQL is down");
    let health = node.http.get(format!("{}/health", node.url())).send().await.unwrap();
    assert_eq!(health.status(), 503, "/health while PostgreSQL is down");

    pg.ctl_start();
    // No restart of banksync: its pool reconnects, the interrupted initial sync is taken over and finishes.
    eventually("the API answers again after PostgreSQL restarted", Duration::from_secs(30), || async {
        node.try_call(reqwest::Method::GET, "/api/items", None).await.is_ok_and(|(s, _)| s == 200)
    })
    .await;
    assert!(node.exited().is_none(), "banksync kept running through the outage");
    let n = converge(&node, &big).await;
    converge(&node, &small).await;
    assert!(node.log().contains("database_unavailable"), "the log says the database was unavailable");
    node.kill().await;
    eprintln!(
        "chaos outages: PostgreSQL (private cluster, port {}) stopped mid-sync: {answers} reads + sync now + /health \
         answered 503 database_unavailable; recovered by itself, {n} transactions converged",
        pg.port
    );
}
