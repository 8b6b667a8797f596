//! A banksync installation driven from outside, as an operator runs it: a data directory, the real `banksync` binary
//! (`serve` as a child process the tests SIGKILL and restart on the same port, and the one-shot commands), and an
//! API client with the installation's token. The Plaid simulator runs in the test process, so it outlives every kill
//! and keeps the ground truth.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::sim::{SIM_CLIENT_ID, SIM_SECRET};

enum Pipe {
    Out(tokio::process::ChildStdout),
    Err(tokio::process::ChildStderr),
}

/// One transaction as the comparisons need it: id, amount, pending.
pub type Txn = (String, Decimal, bool);

pub struct Node {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub sim_url: String,
    /// Extra environment for every command (database URL, lease, pool settings, …).
    pub env: Vec<(String, String)>,
    pub token: String,
    pub http: reqwest::Client,
    server: Option<Child>,
    /// Runs as this uid/gid (a non-root user for the read-only database test).
    pub run_as: Option<(u32, u32)>,
    /// Starts the server with SIGXFSZ ignored (the full-disk test).
    pub ignore_sigxfsz: bool,
    pub starts: u32,
}

/// A port nothing listens on right now (the server keeps it across restarts, so the simulator's webhook URL holds).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The `banksync` binary cargo built for this test, or `CHAOS_BANKSYNC_BIN` (a copy of it, when a shared target
/// directory may be rebuilt from another checkout meanwhile).
pub fn banksync_bin() -> String {
    std::env::var("CHAOS_BANKSYNC_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_banksync").to_owned())
}

impl Node {
    /// A fresh data directory with user `alice` and an API token for her (through `banksync user add` and
    /// `banksync token create`, which also create the database). Not started.
    pub async fn new(sim_url: &str, env: Vec<(String, String)>) -> Node {
        Self::new_as(sim_url, env, None).await
    }

    /// [`Node::new`], every command running as `run_as` (uid, gid), which owns the directory.
    pub async fn new_as(sim_url: &str, env: Vec<(String, String)>, run_as: Option<(u32, u32)>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let mut node = Node {
            dir,
            port: free_port(),
            sim_url: sim_url.to_owned(),
            env,
            token: String::new(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build().unwrap(),
            server: None,
            run_as,
            ignore_sigxfsz: false,
            starts: 0,
        };
        node.run(&["user", "add", "alice"], Some("correct horse battery\n")).await.expect("user add");
        let out = node.run(&["token", "create", "alice"], None).await.expect("token create");
        node.token = out.trim().to_owned();
        assert!(node.token.starts_with("bsk_"), "token create printed {out:?}");
        node
    }

    /// Another server on `other`'s database (given in `env`) with its own directory, acting with `other`'s token.
    pub fn sharing(other: &Node, env: Vec<(String, String)>) -> Node {
        Node {
            dir: tempfile::tempdir().unwrap(),
            port: free_port(),
            sim_url: other.sim_url.clone(),
            env,
            token: other.token.clone(),
            http: other.http.clone(),
            server: None,
            run_as: None,
            ignore_sigxfsz: false,
            starts: 0,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir().join("banksync.db")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = if self.ignore_sigxfsz && args == ["serve"] {
            // Started with SIGXFSZ ignored (an ignored signal stays ignored across exec), a write past RLIMIT_FSIZE
            // fails with EFBIG, which SQLite reports, instead of killing the process.
            let mut sh = Command::new("/bin/sh");
            sh.args(["-c", "trap '' XFSZ; exec \"$0\" \"$@\"", &banksync_bin()]);
            sh
        } else {
            Command::new(banksync_bin())
        };
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("RUST_LOG", "info,banksync=debug")
            .env("BANKSYNC_DATA_DIR", self.data_dir())
            .env("BANKSYNC_LISTEN", format!("127.0.0.1:{}", self.port))
            .env("PLAID_CLIENT_ID", SIM_CLIENT_ID)
            .env("PLAID_SECRET", SIM_SECRET)
            .env("PLAID_BASE_URL", &self.sim_url)
            .env("BANKSYNC_SYNC_COOLDOWN", "0s")
            .env("BANKSYNC_TRANSACTIONS_REFRESH", "off")
            .env("BANKSYNC_JOB_LEASE", "2s")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .kill_on_drop(true);
        if let Some((uid, gid)) = self.run_as {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    /// Runs a one-shot command to completion; its stdout, or its stderr as the error.
    pub async fn run(&self, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = stdin {
            use tokio::io::AsyncWriteExt as _;
            child.stdin.take().unwrap().write_all(input.as_bytes()).await.unwrap();
        }
        drop(child.stdin.take());
        let out = child.wait_with_output().await.unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("banksync {args:?}: {}: {}", out.status, String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Starts a one-shot command without waiting (to kill it mid-way).
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn().unwrap()
    }

    /// [`Node::spawn`] with its log (stderr) piped, to follow its progress.
    pub fn spawn_logged(&self, args: &[&str]) -> Child {
        let mut cmd = self.command(args);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.spawn().unwrap()
    }

    /// Starts `banksync serve` (its output appended to serve.log) and waits until `/health` answers 200.
    pub async fn start(&mut self) {
        self.start_no_wait();
        self.wait_healthy().await;
    }

    pub fn start_no_wait(&mut self) {
        assert!(self.server.is_none(), "the server is already running");
        let mut cmd = self.command(&["serve"]);
        // Through a pipe, copied here: a file-size limit on the server (the full-disk test) must not cost its log.
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        for pipe in [child.stdout.take().map(Pipe::Out), child.stderr.take().map(Pipe::Err)].into_iter().flatten() {
            let path = self.log_path();
            tokio::spawn(async move {
                let mut log = tokio::fs::OpenOptions::new().create(true).append(true).open(path).await.unwrap();
                let _ = match pipe {
                    Pipe::Out(mut out) => tokio::io::copy(&mut out, &mut log).await,
                    Pipe::Err(mut err) => tokio::io::copy(&mut err, &mut log).await,
                };
            });
        }
        self.server = Some(child);
        self.starts += 1;
    }

    pub async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.server.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("banksync serve exited ({status}) at start; log:\n{}", self.log_tail());
            }
            let health = self.http.get(format!("{}/health", self.url())).timeout(Duration::from_secs(2)).send().await;
            if health.is_ok_and(|r| r.status() == 200) {
                return;
            }
            assert!(Instant::now() < deadline, "banksync did not become healthy; log:\n{}", self.log_tail());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.server.as_ref().and_then(Child::id)
    }

    /// SIGKILL: no shutdown code runs, exactly like a power cut for the process.
    pub async fn kill(&mut self) {
        let mut child = self.server.take().expect("a running server to kill");
        child.start_kill().unwrap();
        child.wait().await.unwrap();
    }

    /// SIGTERM and wait: banksync's graceful shutdown (the SQLite WAL is checkpointed and removed).
    pub async fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.server.take().expect("a running server to stop");
        if let Some(pid) = child.id() {
            let sent = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status().unwrap();
            assert!(sent.success(), "kill -TERM {pid}");
        }
        child.wait().await.unwrap()
    }

    /// Waits for a server that is expected to exit by itself (e.g. refusing to start).
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let mut child = self.server.take().expect("a server");
        tokio::time::timeout(limit, child.wait()).await.expect("the server exits").unwrap()
    }

    /// Exit status if the server has exited on its own.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.server.as_mut().and_then(|c| c.try_wait().unwrap())
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    // --- the API ------------------------------------------------------------------------------------------------

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.try_call(method, path, body).await.unwrap_or_else(|e| panic!("{path}: {e}; log:\n{}", self.log_tail()))
    }

    pub async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{}{path}", self.url())).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// Links a bank through the API and the simulator's Link backend as the sandbox user `username` (e.g.
    /// `user_bulk_5000` for a long history); Plaid's item_id. The first sync is queued by the exchange.
    pub async fn link(&self, institution_index: usize, username: &str) -> String {
        let (status, link) = self.post("/api/link/token", json!({})).await;
        assert_eq!(status, 200, "{link}");
        let public_token =
            sim_link(&self.http, &self.sim_url, link["link_token"].as_str().unwrap(), institution_index, username)
                .await;
        let (status, item) =
            self.post("/api/link/exchange", json!({"public_token": public_token, "allow_duplicate": true})).await;
        assert_eq!(status, 201, "{item}");
        item["item_id"].as_str().or_else(|| item["item"]["item_id"].as_str()).unwrap().to_owned()
    }

    /// Every transaction the API lists for the Item (sorted by id), asserting no id is listed twice.
    pub async fn visible(&self, item_id: &str) -> Vec<Txn> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut query = format!("/api/transactions?item_id={item_id}&limit=500");
            if let Some(c) = &cursor {
                query.push_str(&format!("&cursor={}", urlencode(c)));
            }
            let (status, page) = self.get(&query).await;
            assert_eq!(status, 200, "{page}");
            all.extend(page["transactions"].as_array().unwrap().iter().map(api_txn));
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        all.sort();
        let before = all.len();
        all.dedup_by(|a, b| a.0 == b.0);
        assert_eq!(all.len(), before, "the API listed a transaction id twice for {item_id}");
        all
    }
}

pub fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A transaction from banksync's API, which writes money as a decimal string (never a JSON number, which a client
/// would read as a binary float).
pub fn api_txn(t: &Value) -> Txn {
    let text = t["amount"].as_str().unwrap_or_else(|| panic!("the API's amount must be a string: {t}"));
    (t["transaction_id"].as_str().unwrap().to_owned(), text.parse().unwrap(), t["pending"].as_bool().unwrap())
}

/// A transaction from the simulator, which (like Plaid) writes money as an exact JSON number.
pub fn sim_txn(t: &Value) -> Txn {
    assert!(t["amount"].is_number(), "the simulator's amount is a JSON number: {t}");
    (
        t["transaction_id"].as_str().unwrap().to_owned(),
        t["amount"].to_string().parse().unwrap(),
        t["pending"].as_bool().unwrap(),
    )
}

/// The simulator's ground truth for the Item, in the same shape.
pub async fn truth(http: &reqwest::Client, sim_url: &str, item_id: &str) -> Vec<Txn> {
    let body = crate::sim::get(http, sim_url, &format!("/sim/items/{item_id}/transactions")).await;
    let mut all: Vec<Txn> = body["transactions"].as_array().unwrap().iter().map(sim_txn).collect();
    all.sort();
    all
}

/// Link UI backend: start a session, log in as `username` at the `institution_index`-th bank; the public token.
pub async fn sim_link(
    http: &reqwest::Client,
    sim_url: &str,
    link_token: &str,
    institution_index: usize,
    username: &str,
) -> String {
    let session = crate::sim::post(http, sim_url, "/link/session/start", json!({"link_token": link_token})).await;
    let institution_id = session["institutions"][institution_index]["institution_id"].as_str().unwrap().to_owned();
    let body = json!({
        "link_token": link_token,
        "link_session_id": session["link_session_id"],
        "institution_id": institution_id,
        "username": username,
        "password": "pass_good",
    });
    let done = crate::sim::post(http, sim_url, "/link/session/submit", body).await;
    done["public_token"].as_str().unwrap().to_owned()
}

/// Waits until `check` holds, failing after `limit` with `what`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A SQLite database opened by the test itself (while no server runs, so what it reads is what survived).
pub async fn sqlite(path: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path).create_if_missing(false);
    sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap()
}

/// `PRAGMA integrity_check` and `foreign_key_check` are clean, and no transaction points at a missing account.
pub async fn assert_sqlite_consistent(path: &Path) {
    let pool = sqlite(path).await;
    let integrity: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check").fetch_all(&pool).await.unwrap();
    assert_eq!(integrity, ["ok"], "integrity_check of {}", path.display());
    let broken: Vec<(String,)> =
        sqlx::query_as("SELECT \"table\" FROM pragma_foreign_key_check").fetch_all(&pool).await.unwrap();
    assert!(broken.is_empty(), "rows whose parent is gone (orphans) in {broken:?}");
    let orphans: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM transactions t LEFT JOIN accounts a ON a.account_id = t.account_id \
         WHERE a.account_id IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(orphans, 0, "transactions whose account is missing");
    pool.close().await;
}

/// Every Item's access token opens with the keys the installation has (the key file and every old key), the way a
/// starting server loads them. Returns how many Items were checked.
pub async fn assert_tokens_decrypt(node: &Node) -> usize {
    let settings = banksync::config::Settings {
        data_dir: Some(node.data_dir()),
        database_url: node.env.iter().find(|(k, _)| k == "BANKSYNC_DATABASE_URL").map(|(_, v)| v.clone()),
        plaid_client_id: Some(SIM_CLIENT_ID.into()),
        plaid_secret: Some(SIM_SECRET.into()),
        plaid_base_url: Some(node.sim_url.clone()),
        ..Default::default()
    };
    let config = banksync::config::Config::resolve(settings).unwrap();
    let vault = banksync::keys::server_vault(&config).expect("the key files load");
    let url = match &config.database {
        banksync::config::DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        banksync::config::DatabaseUrl::Postgres(url) => secrecy::ExposeSecret::expose_secret(url).to_owned(),
    };
    let store = banksync::store::connect(&url).await.unwrap();
    let items = store.list_all_items().await.unwrap();
    for item in &items {
        if let Err(e) = vault.decrypt(&item.access_token, item.item_id.as_str()) {
            panic!("the access token of {} (key {}) does not decrypt: {e}", item.item_id, item.access_token.key_id);
        }
    }
    store.close().await;
    items.len()
}
