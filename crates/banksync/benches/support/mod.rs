//! What the benchmarks share: linking an Item through the simulator's sandbox route and storing it with its accounts
//! the way the link flow does (without the link flow's queued first sync, so a benchmark times only what it means to);
//! a fresh store of either backend (SQLite temp file, PostgreSQL schema) and its size on disk; the process helpers.
// Each benchmark binary uses its own part of this module.
#![allow(dead_code)]

use banksync::domain::{BalanceSource, Item, NewItem, User};
use banksync::store::Store;
use banksync::vault::Vault;
use plaid::{AccountsGetRequest, PlaidClient, Product, SandboxPublicTokenCreateRequest};
use secrecy::SecretString;

/// The simulated institution every benchmark links.
pub const INSTITUTION: &str = "ins_109508";

/// Links `username` at [`INSTITUTION`] (730 days) for `user` and stores the Item with its accounts.
pub async fn link_item(
    store: &Store,
    plaid: &PlaidClient,
    vault: &Vault,
    user: &User,
    username: &str,
    password: &str,
) -> Item {
    link_item_with_webhook(store, plaid, vault, user, username, password, None).await
}

/// [`link_item`], with Plaid's webhooks for the Item going to `webhook`.
pub async fn link_item_with_webhook(
    store: &Store,
    plaid: &PlaidClient,
    vault: &Vault,
    user: &User,
    username: &str,
    password: &str,
    webhook: Option<&str>,
) -> Item {
    let mut request = SandboxPublicTokenCreateRequest::new(INSTITUTION, [Product::Transactions])
        .credentials(username, password)
        .days_requested(730);
    if let Some(url) = webhook {
        request = request.webhook(url);
    }
    let public_token = plaid.sandbox_public_token_create(&request).await.unwrap().public_token;
    let exchanged = plaid.item_public_token_exchange(&public_token).await.unwrap();
    let secret = SecretString::from(exchanged.access_token.expose_secret().to_owned());
    let item = store
        .insert_item(&NewItem {
            item_id: exchanged.item_id.clone().into(),
            user_id: user.id.clone(),
            institution_id: Some(INSTITUTION.into()),
            institution_name: None,
            access_token: vault.encrypt(&secret, &exchanged.item_id).unwrap(),
        })
        .await
        .unwrap();
    let accounts = plaid.accounts_get(&AccountsGetRequest::new(exchanged.access_token)).await.unwrap();
    let now = chrono::Utc::now();
    let accounts: Vec<_> =
        accounts.accounts.iter().map(|a| banksync::normalize::account(a, BalanceSource::Cached, now)).collect();
    store.upsert_accounts(&item, &accounts, true).await.unwrap();
    item
}

/// Which store a benchmark runs against (`sqlite` or `postgres` on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn parse(s: &str) -> Backend {
        match s {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => panic!("unknown backend {other:?}: sqlite or postgres"),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The backends a run covers: `BENCH_BACKENDS` (comma-separated), else both.
    pub fn selected() -> Vec<Backend> {
        match std::env::var("BENCH_BACKENDS") {
            Ok(list) => list.split(',').map(|s| Backend::parse(s.trim())).collect(),
            Err(_) => vec![Backend::Sqlite, Backend::Postgres],
        }
    }
}

/// `BANKSYNC_BENCH_POSTGRES_URL`, else the local server the tests use (trust auth, database `test`).
pub fn postgres_url() -> String {
    std::env::var("BANKSYNC_BENCH_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh, migrated store of one backend: SQLite in a temp directory, or a new PostgreSQL schema
/// (`bench_<uuid>`) that [`BenchStore::drop_all`] removes again.
pub struct BenchStore {
    pub store: std::sync::Arc<Store>,
    pub backend: Backend,
    /// The SQLite file (kept alive with its directory), or the PostgreSQL schema.
    location: Location,
}

enum Location {
    Sqlite { _dir: Option<tempfile::TempDir>, path: std::path::PathBuf },
    Postgres { schema: String },
}

impl BenchStore {
    /// Opens a fresh store.
    pub async fn open(backend: Backend) -> BenchStore {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path = dir.path().join("bench.db");
                let mut store = Self::sqlite_at(&path).await;
                // `BENCH_KEEP=1`: the file outlives the run, for `sqlite3` (EXPLAIN, dbstat).
                let dir = if std::env::var_os("BENCH_KEEP").is_some() {
                    eprintln!("  keeping the SQLite database: {}", path.display());
                    let _ = dir.keep();
                    None
                } else {
                    Some(dir)
                };
                store.location = Location::Sqlite { _dir: dir, path };
                store
            }
            Backend::Postgres => Self::postgres_schema(&create_schema().await).await,
        }
    }

    /// The store at `location` (as [`BenchStore::location`] names it), for a process that works on the data another
    /// one filled.
    pub async fn at(backend: Backend, location: &str) -> BenchStore {
        match backend {
            Backend::Sqlite => Self::sqlite_at(std::path::Path::new(location)).await,
            Backend::Postgres => Self::postgres_schema(location).await,
        }
    }

    /// The SQLite database at `path` (created and migrated if missing).
    pub async fn sqlite_at(path: &std::path::Path) -> BenchStore {
        let store = Store::open_sqlite(path).await.expect("open SQLite");
        store.migrate().await.expect("migrate");
        BenchStore {
            store: std::sync::Arc::new(store),
            backend: Backend::Sqlite,
            location: Location::Sqlite { _dir: None, path: path.to_owned() },
        }
    }

    /// An existing PostgreSQL schema (migrated here if new).
    pub async fn postgres_schema(schema: &str) -> BenchStore {
        use std::str::FromStr as _;
        let options = sqlx::postgres::PgConnectOptions::from_str(&postgres_url())
            .expect("URL")
            .options([("search_path", schema)]);
        let store = Store::connect_postgres(options, 10).await.expect("connect PostgreSQL");
        store.migrate().await.expect("migrate");
        BenchStore {
            store: std::sync::Arc::new(store),
            backend: Backend::Postgres,
            location: Location::Postgres { schema: schema.to_owned() },
        }
    }

    /// Where the data lives: the SQLite file's path, or the PostgreSQL schema's name.
    pub fn location(&self) -> String {
        match &self.location {
            Location::Sqlite { path, .. } => path.display().to_string(),
            Location::Postgres { schema } => schema.clone(),
        }
    }

    /// Bytes the whole store takes on disk: the SQLite file after a WAL checkpoint, or the sum of
    /// `pg_total_relation_size` (table, indexes, TOAST) over the schema's tables.
    pub async fn size_bytes(&self) -> u64 {
        use sqlx::Connection as _;
        match &self.location {
            Location::Sqlite { path, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("open SQLite");
                // Until no other connection (the store's background checkpointer) held it up: a busy checkpoint
                // leaves pages in the WAL, and the file measured 40 % small once.
                loop {
                    let (busy, _, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)")
                        .fetch_one(&mut conn)
                        .await
                        .expect("checkpoint");
                    if busy == 0 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                conn.close().await.ok();
                std::fs::metadata(path).expect("database file").len()
            }
            Location::Postgres { schema } => {
                let mut conn = sqlx::PgConnection::connect(&postgres_url()).await.expect("connect");
                let (bytes,): (i64,) = sqlx::query_as(
                    "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c \
                     JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'",
                )
                .bind(schema)
                .fetch_one(&mut conn)
                .await
                .expect("pg_total_relation_size");
                bytes as u64
            }
        }
    }

    /// One `BIGINT` from a read-only query the benchmark itself asks (progress checks), on its own connection.
    pub async fn scalar(&self, sql: &str) -> i64 {
        use sqlx::Connection as _;
        match &self.location {
            Location::Sqlite { path, .. } => {
                let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("open SQLite");
                let (v,): (i64,) = sqlx::query_as(sql).fetch_one(&mut conn).await.expect("benchmark query");
                conn.close().await.ok();
                v
            }
            Location::Postgres { schema } => {
                let mut conn = sqlx::PgConnection::connect(&postgres_url()).await.expect("connect");
                sqlx::query(&format!("SET search_path TO {schema}")).execute(&mut conn).await.expect("search_path");
                let (v,): (i64,) = sqlx::query_as(sql).fetch_one(&mut conn).await.expect("benchmark query");
                conn.close().await.ok();
                v
            }
        }
    }

    /// Closes the store; a PostgreSQL schema is dropped (a SQLite temp directory goes with `self`), unless
    /// `BENCH_KEEP=1` asks to keep it for `psql` (EXPLAIN, index sizes).
    pub async fn drop_all(self) {
        self.store.close().await;
        if let Location::Postgres { schema } = &self.location {
            if std::env::var_os("BENCH_KEEP").is_some() {
                eprintln!("  keeping the PostgreSQL schema: {schema}");
            } else {
                drop_schema(schema).await;
            }
        }
    }
}

/// Creates a fresh PostgreSQL schema `bench_<uuid>` and returns its name.
pub async fn create_schema() -> String {
    use sqlx::Connection as _;
    let url = postgres_url();
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} unreachable (the benchmark needs it): {e}"));
    let schema = format!("bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.expect("create schema");
    schema
}

/// Drops a benchmark's PostgreSQL schema.
pub async fn drop_schema(schema: &str) {
    use sqlx::Connection as _;
    let mut admin = sqlx::PgConnection::connect(&postgres_url()).await.expect("connect");
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).execute(&mut admin).await.expect("drop schema");
}

/// A `kB` field of /proc/self/status (Linux): `VmHWM` is the peak RSS, `VmRSS` the current one.
pub fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field).and_then(|rest| rest.trim_start_matches(':').split_whitespace().next()))
        .and_then(|v| v.parse().ok())
        .expect("field present")
}

/// Starts `exe --sim [ARGS]` (a benchmark binary serving the simulator) and returns it with the URL it printed.
pub fn spawn_sim(exe: &std::path::Path, args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut sim = std::process::Command::new(exe)
        .arg("--sim")
        .args(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start simulator");
    let mut line = String::new();
    std::io::BufReader::new(sim.stdout.as_mut().expect("piped")).read_line(&mut line).expect("simulator URL");
    (sim, line.trim().to_owned())
}
