//! The test harness of the API and lifecycle tests: `TestApp::builder()…spawn()` starts the real banksync
//! `Application` on a random port with a fresh database (SQLite in a temp dir, or a PostgreSQL schema), talking to a
//! Plaid simulator started for the test, and seeds a user with an API token. The builder sets what differs between
//! the tests: webhook delivery through the key proxy, the database, the simulator's settings, banksync's settings
//! and log capture. Talking to the app and the simulator is in client.rs; each test binary adds its own helpers in
//! its own `impl TestApp` block.
// Each test binary uses its own part of the harness.
#![allow(dead_code)]

#[path = "client.rs"]
pub mod client;
#[path = "key_proxy.rs"]
mod key_proxy;
#[path = "sim.rs"]
pub mod sim;

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};

use banksync::auth::password::hash_password;
use banksync::auth::token::{hash_secret, new_api_token};
use banksync::config::{Config, Settings};
use banksync::startup::Application;
use banksync::store::Store;
use serde_json::Value;

pub const PASSWORD: &str = "correct horse battery";

/// Every log line the tests' servers write, to prove secrets never reach the log. Printed with TEST_LOG=1.
static LOGS: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(|| {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = CaptureWriter(buffer.clone());
    let filter = tracing_subscriber::EnvFilter::new("info,banksync=debug,plaid=debug,tower_http=debug");
    tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).with_writer(move || sink.clone()).init();
    buffer
});

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(buf)?;
        }
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line of this test process from now on (the process has one log subscriber).
pub fn start_log_capture() {
    LazyLock::force(&LOGS);
}

pub fn captured_logs() -> String {
    String::from_utf8_lossy(&LOGS.lock().unwrap()).into_owned()
}

pub struct TestUser {
    pub username: String,
    pub token: String,
}

/// A user with the test password and a fresh API token.
pub async fn seed_user(store: &Arc<Store>, username: &str) -> TestUser {
    let hash = hash_password(PASSWORD.to_owned().into()).await.unwrap();
    let user = store.create_user(username, &hash).await.unwrap();
    let token = new_api_token();
    store.create_api_token(&user.id, "test", &hash_secret(&token)).await.unwrap();
    TestUser { username: username.into(), token }
}

pub struct TestApp {
    pub address: String,
    pub sim_url: String,
    /// banksync's PLAID_BASE_URL: the key proxy with [`AppBuilder::webhooks`], else the simulator.
    pub plaid_url: String,
    pub store: Arc<Store>,
    /// The app's database, for the tests' own read-only checks.
    pub db: Db,
    /// A client without cookies; requests carry the bearer token explicitly.
    pub http: reqwest::Client,
    pub user: TestUser,
    /// Every response body this app returned through the helpers, to search for leaked secrets.
    pub bodies: Mutex<Vec<String>>,
    pub data_dir: tempfile::TempDir,
    settings: Settings,
    /// The running application; [`TestApp::restart`] stops it.
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    webhook_keys: Option<key_proxy::Keys>,
    /// Kept alive as long as the app.
    _sim: plaid_sim::RunningSim,
}

/// The app's database (SQLite in the data directory, or PostgreSQL with [`AppBuilder::postgres`]).
pub enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// What a test changes about its app; [`AppBuilder::spawn`] starts it.
pub struct AppBuilder {
    sim: plaid_sim::SimConfig,
    key_proxy: bool,
    database_url: Option<String>,
    settings: Vec<SettingsChange>,
    /// Changes to the resolved configuration: what no setting can express (test-only allowances).
    config: Vec<ConfigChange>,
    capture_logs: bool,
}

type SettingsChange = Box<dyn FnOnce(&mut Settings) + Send>;
type ConfigChange = Box<dyn FnOnce(&mut Config) + Send>;

impl TestApp {
    /// A SQLite app whose simulator delivers no webhooks, with logs not captured (printed with TEST_LOG=1).
    pub fn builder() -> AppBuilder {
        AppBuilder {
            sim: sim::sim_config(),
            key_proxy: false,
            database_url: None,
            settings: Vec::new(),
            config: Vec::new(),
            capture_logs: false,
        }
    }

    /// The settings this app started with, for another instance on its data directory, database and Plaid.
    pub fn settings(&self) -> Settings {
        self.settings.clone()
    }

    /// Stops the application (its server, job workers and scheduler go away; what it queued stays in the database)
    /// and starts a new one on the same data directory, database and simulator, as a restart would.
    pub async fn restart(&mut self) {
        self.server.abort();
        let _ = (&mut self.server).await;
        let config = Config::resolve(self.settings.clone()).expect("valid test config");
        let app = Application::build(config).await.expect("application builds again");
        self.address = app.url();
        self.store = app.store();
        self.server = tokio::spawn(app.run_until_stopped());
    }

    /// Serves `jwk` as the webhook verification key `kid` (needs [`AppBuilder::webhooks`]).
    pub fn serve_webhook_key(&self, kid: &str, jwk: Value) {
        let keys = self.webhook_keys.as_ref().expect("the key proxy runs only for apps built with .webhooks()");
        keys.lock().unwrap().insert(kid.to_owned(), jwk);
    }

    /// A `count(*)` query with text parameters, on whichever backend the app runs.
    pub async fn count(&self, sql: &str, params: &[Option<&str>]) -> i64 {
        match &self.db {
            Db::Sqlite(pool) => {
                let mut query = sqlx::query_scalar(sql);
                for p in params {
                    query = query.bind(*p);
                }
                query.fetch_one(pool).await.unwrap()
            }
            Db::Postgres(pool) => {
                let mut query = sqlx::query_scalar(sql);
                for p in params {
                    query = query.bind(*p);
                }
                query.fetch_one(pool).await.unwrap()
            }
        }
    }
}

impl AppBuilder {
    /// The simulator delivers real signed webhooks to the app, and banksync reaches Plaid through the key proxy
    /// (tests/common/key_proxy.rs), which serves the keys given to [`TestApp::serve_webhook_key`].
    pub fn webhooks(mut self) -> Self {
        self.sim.deliver_webhooks = true;
        self.key_proxy = true;
        self
    }

    /// Changes the simulator's settings (from [`sim::sim_config`]).
    pub fn sim(mut self, change: impl FnOnce(&mut plaid_sim::SimConfig)) -> Self {
        change(&mut self.sim);
        self
    }

    /// Runs the app on PostgreSQL at `url` (a fresh schema: tests/common/pg.rs) instead of SQLite.
    pub fn postgres(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_owned());
        self
    }

    /// Changes banksync's settings, after the harness has set its own.
    pub fn settings(mut self, change: impl FnOnce(&mut Settings) + Send + 'static) -> Self {
        self.settings.push(Box::new(change));
        self
    }

    /// Changes the resolved configuration of the first start (not of [`TestApp::restart`]), e.g. to let the logo
    /// proxy fetch from a local stand-in host: `Config` fields that no setting reaches.
    pub fn config(mut self, change: impl FnOnce(&mut Config) + Send + 'static) -> Self {
        self.config.push(Box::new(change));
        self
    }

    /// Captures every log line of the test process from the start of this app on, for [`captured_logs`].
    pub fn capture_logs(mut self) -> Self {
        self.capture_logs = true;
        self
    }

    pub async fn spawn(self) -> TestApp {
        if self.capture_logs || std::env::var_os("TEST_LOG").is_some() {
            start_log_capture();
        }
        let (client_id, secret) = (self.sim.client_id.clone(), self.sim.secret.clone());
        let sim =
            plaid_sim::Simulator::new(self.sim).spawn("127.0.0.1:0".parse().unwrap()).await.expect("simulator starts");
        let webhook_keys = self.key_proxy.then(key_proxy::Keys::default);
        let plaid_url = match &webhook_keys {
            Some(keys) => key_proxy::start(sim.url(), keys.clone()).await,
            None => sim.url(),
        };

        let data_dir = tempfile::tempdir().unwrap();
        let mut settings = Settings {
            // Port 0: banksync fixes the public URL up to its real port, so the simulator's webhooks reach it.
            listen: Some("127.0.0.1:0".parse().unwrap()),
            data_dir: Some(data_dir.path().to_owned()),
            database_url: self.database_url,
            plaid_client_id: Some(client_id),
            plaid_secret: Some(secret),
            plaid_base_url: Some(plaid_url.clone()),
            // Tests sync the same Item several times in a row; the cooldown has its own test (tests/lifecycle).
            sync_cooldown: Some("0s".into()),
            ..Settings::default()
        };
        for change in self.settings {
            change(&mut settings);
        }
        let mut config = Config::resolve(settings.clone()).expect("valid test config");
        for change in self.config {
            change(&mut config);
        }
        let app = Application::build(config).await.expect("application builds");
        let address = app.url();
        let store = app.store();
        let server = tokio::spawn(app.run_until_stopped());

        // Connected on first use: most tests never look at the database themselves.
        let db = match settings.database_url.as_deref() {
            Some(url) if url.starts_with("postgres") => Db::Postgres(sqlx::PgPool::connect_lazy(url).unwrap()),
            _ => Db::Sqlite(
                sqlx::SqlitePool::connect_lazy(&format!("sqlite://{}", data_dir.path().join("banksync.db").display()))
                    .unwrap(),
            ),
        };
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let user = seed_user(&store, "alice").await;
        TestApp {
            address,
            sim_url: sim.url(),
            plaid_url,
            store,
            db,
            http,
            user,
            bodies: Mutex::new(Vec::new()),
            data_dir,
            settings,
            server,
            webhook_keys,
            _sim: sim,
        }
    }
}
