//! Shared helpers for the proof tests (`conformance`, `python_sdk`, `link_browser`): where the repo,
//! the Python venv, Chromium and the OpenAPI spec live; skipping (dev box) or failing (CI) when they
//! are missing; running a Python script with a deadline; raw Plaid calls over HTTP.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use plaid_sim::{RunningSim, SimConfig, Simulator};
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const INSTITUTION: &str = "ins_109508"; // First Platypus Bank

pub fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

pub fn venv_python() -> PathBuf {
    repo_root().join(".venv/bin/python")
}

/// Plaid's spec, vendored unmodified (see `vendor/plaid-openapi/SOURCE.md`): the tests read nothing outside the repo.
pub fn spec_path() -> PathBuf {
    repo_root().join("vendor/plaid-openapi/plaid-openapi-2020-09-14.yml")
}

pub fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Python,
    Chromium,
    Spec,
}

/// True when everything `needs` lists is installed. Otherwise: in CI (env `CI` set) this panics,
/// because a proof that silently did not run is no proof; on a dev box it prints a loud SKIPPED
/// and returns false, so a plain `cargo test` without Python still works.
pub fn prerequisites(test: &str, needs: &[Need]) -> bool {
    let mut missing = Vec::new();
    // scripts/test-deps.sh writes this stamp after installing the pinned packages.
    let stamp = repo_root().join(".venv/.test-deps-installed");
    if needs.contains(&Need::Python) && !(venv_python().is_file() && stamp.is_file()) {
        missing.push(format!("the Python venv at {}", venv_python().display()));
    }
    if needs.contains(&Need::Chromium) && !Path::new(CHROMIUM).is_file() {
        missing.push(format!("Chromium at {CHROMIUM}"));
    }
    if needs.contains(&Need::Spec) && !spec_path().is_file() {
        missing.push(format!("the Plaid OpenAPI spec at {}", spec_path().display()));
    }
    if missing.is_empty() {
        return true;
    }
    let message = format!("{test}: missing {}. Run scripts/test-deps.sh", missing.join(", "));
    if std::env::var_os("CI").is_some() {
        panic!("{message} (CI is set, so a missing prerequisite is a failure)");
    }
    // Straight to stderr, not eprintln!: the test harness would capture that and hide the skip.
    let bar = "!".repeat(78);
    let _ = writeln!(std::io::stderr(), "\n{bar}\nSKIPPED: {message}\n{bar}\n");
    false
}

/// Spawns the simulator on a loopback port; returns it with a raw client holding its credentials.
pub async fn start_sim(config: SimConfig) -> (RunningSim, Api) {
    let (client_id, secret) = (config.client_id.clone(), config.secret.clone());
    let sim = Simulator::new(config)
        .spawn("127.0.0.1:0".parse().expect("a valid socket address"))
        .await
        .expect("the simulator binds a loopback port");
    let api = Api::new(sim.url(), client_id, secret);
    (sim, api)
}

pub struct ScriptRun {
    pub success: bool,
    pub output: String,
    pub elapsed: Duration,
}

/// Runs `<venv>/bin/python <script> <args>` with extra environment, kills it after `deadline`.
/// stdout and stderr are merged into `output` (and echoed, so `--nocapture` shows progress).
pub async fn run_python(script: &Path, args: &[&str], env: &[(&str, &str)], deadline: Duration) -> ScriptRun {
    let started = Instant::now();
    let mut command = tokio::process::Command::new(venv_python());
    command
        .arg(script)
        .args(args)
        .envs(env.iter().copied())
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", venv_python().display()));
    let result = tokio::time::timeout(deadline, child.wait_with_output()).await;
    let elapsed = started.elapsed();
    let (success, output) = match result {
        Ok(Ok(out)) => {
            let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
            (out.status.success(), text)
        }
        Ok(Err(e)) => (false, format!("waiting for {} failed: {e}", script.display())),
        Err(_) => (false, format!("{} did not finish within {deadline:?} (killed)", script.display())),
    };
    eprintln!("---- {} ({elapsed:.1?}) ----\n{output}----", script.display());
    ScriptRun { success, output, elapsed }
}

/// How a raw call authenticates (Plaid accepts headers or body fields).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Headers,
    Body,
    None,
    WrongSecret,
}

/// A raw HTTP client for the simulator: Plaid endpoints and its /sim control API.
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
    pub client_id: String,
    secret: String,
}

pub struct Item {
    pub access_token: String,
    pub item_id: String,
}

impl Api {
    pub fn new(base: String, client_id: String, secret: String) -> Self {
        Self {
            http: reqwest::Client::builder().timeout(Duration::from_secs(120)).build().expect("an HTTP client"),
            base,
            client_id,
            secret,
        }
    }

    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// POST a Plaid endpoint with the given authentication; returns (HTTP status, JSON body).
    pub async fn call_with(&self, path: &str, mut body: Value, auth: Auth) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base));
        match auth {
            Auth::Headers => {
                request = request.header("PLAID-CLIENT-ID", &self.client_id).header("PLAID-SECRET", &self.secret);
            }
            Auth::Body => {
                if let Some(fields) = body.as_object_mut() {
                    fields.insert("client_id".into(), json!(self.client_id));
                    fields.insert("secret".into(), json!(self.secret));
                }
            }
            Auth::WrongSecret => {
                request = request
                    .header("PLAID-CLIENT-ID", &self.client_id)
                    .header("PLAID-SECRET", "definitely-not-the-secret");
            }
            Auth::None => {}
        }
        let response = request
            .header("Plaid-Version", "2020-09-14")
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(content_type.starts_with("application/json"), "POST {path} -> {status}: Content-Type {content_type:?}");
        let text = response.text().await.unwrap_or_else(|e| panic!("POST {path}: reading the body: {e}"));
        let json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path} -> {status}: not JSON ({e}): {text}"));
        (status, json)
    }

    pub async fn call(&self, path: &str, body: Value) -> (u16, Value) {
        self.call_with(path, body, Auth::Headers).await
    }

    /// A call that must succeed (HTTP 200).
    pub async fn ok(&self, path: &str, body: Value) -> Value {
        let (status, json) = self.call(path, body).await;
        assert_eq!(status, 200, "POST {path} should succeed, got {status}: {json}");
        json
    }

    /// A call that must fail with the given Plaid error code; returns the error body.
    pub async fn err(&self, path: &str, body: Value, error_code: &str) -> Value {
        self.err_with(path, body, Auth::Headers, error_code).await
    }

    pub async fn err_with(&self, path: &str, body: Value, auth: Auth, error_code: &str) -> Value {
        let (status, json) = self.call_with(path, body, auth).await;
        assert!(status >= 400, "POST {path} should fail with {error_code}, got {status}: {json}");
        assert_eq!(json["error_code"], error_code, "POST {path} -> {status}: {json}");
        json
    }

    /// A call that must fail with the given Plaid error_type, whatever the code; returns the error body.
    pub async fn err_type(&self, path: &str, body: Value, error_type: &str) -> Value {
        let (status, json) = self.call(path, body).await;
        assert!(status >= 400, "POST {path} should fail with {error_type}, got {status}: {json}");
        assert_eq!(json["error_type"], error_type, "POST {path} -> {status}: {json}");
        json
    }

    /// A call the simulator must refuse with a client error (HTTP 400), whatever the code.
    pub async fn refused(&self, path: &str, body: Value) -> Value {
        let (status, json) = self.call(path, body.clone()).await;
        assert_eq!(status, 400, "POST {path} {body} should be refused with HTTP 400: {json}");
        json
    }

    /// POST a raw, possibly malformed, body with header credentials.
    pub async fn call_raw(&self, path: &str, body: &str) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("PLAID-CLIENT-ID", &self.client_id)
            .header("PLAID-SECRET", &self.secret)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let json =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path} -> {status}: not JSON ({e}): {text}"));
        (status, json)
    }

    async fn sim_request(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "{method} {path} -> {status}: {text}");
        if text.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
    }

    pub async fn sim_get(&self, path: &str) -> Value {
        self.sim_request(reqwest::Method::GET, path, None).await
    }

    pub async fn sim_post(&self, path: &str, body: Value) -> Value {
        self.sim_request(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn sim_delete(&self, path: &str) -> Value {
        self.sim_request(reqwest::Method::DELETE, path, None).await
    }

    /// A new Item at First Platypus Bank via /sandbox/public_token/create + exchange.
    pub async fn new_item(&self, options: Value) -> Item {
        let created = self
            .ok(
                "/sandbox/public_token/create",
                json!({"institution_id": INSTITUTION, "initial_products": ["transactions"], "options": options}),
            )
            .await;
        let exchanged = self.ok("/item/public_token/exchange", json!({"public_token": created["public_token"]})).await;
        Item { access_token: text(&exchanged["access_token"]), item_id: text(&exchanged["item_id"]) }
    }

    pub async fn link_token(&self, extra: Value) -> String {
        let mut body = json!({
            "client_name": "banksync",
            "language": "en",
            "country_codes": ["US"],
            "user": {"client_user_id": "user-1"},
        });
        if let (Some(fields), Some(more)) = (body.as_object_mut(), extra.as_object()) {
            fields.extend(more.clone());
        }
        text(&self.ok("/link/token/create", body).await["link_token"])
    }
}

pub fn text(value: &Value) -> String {
    value.as_str().unwrap_or_else(|| panic!("expected a string, got {value}")).to_owned()
}

/// A fresh directory under the system temp dir for one test run.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plaid-sim-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}
