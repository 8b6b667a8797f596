//! The operator commands (issue 11), as the real `banksync` binary against a running server's data directory:
//! a backup taken while a sync runs restores into a fresh data directory as a consistent database whose tokens
//! decrypt; restore is refused while a server uses the directory and without a key; migrate-store copies SQLite →
//! PostgreSQL → SQLite with every table equal; doctor passes a healthy setup and names what is broken; user list
//! and passwd.

#[path = "common/app.rs"]
mod app;
#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/pg.rs"]
mod pg;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use app::TestApp;
use banksync::store::{COPY_TABLES, Store, TableDigest};
use serde_json::{Value, json};

/// Runs the binary with `env` on top of a clean environment for banksync's own settings.
fn banksync(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_banksync"));
    command.args(args);
    for var in [
        "BANKSYNC_DATA_DIR",
        "BANKSYNC_DATABASE_URL",
        "BANKSYNC_MASTER_KEY",
        "BANKSYNC_PUBLIC_URL",
        "PLAID_CLIENT_ID",
        "PLAID_SECRET",
        "PLAID_BASE_URL",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child =
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("banksync runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn data_dir_env(dir: &Path) -> (&'static str, String) {
    ("BANKSYNC_DATA_DIR", dir.display().to_string())
}

/// Every table's row count and checksum, read in one snapshot.
async fn digests(store: &Store) -> Vec<(&'static str, TableDigest)> {
    let mut snapshot = store.snapshot().await.unwrap();
    let mut out = Vec::new();
    for table in COPY_TABLES {
        let columns = store.table_columns(table).await.unwrap();
        out.push((*table, snapshot.digest(&columns).await.unwrap()));
    }
    snapshot.finish().await.unwrap();
    out
}

/// Slows every `/transactions/sync` page so a sync is still running when the backup is taken.
async fn slow_syncs(app: &TestApp, latency_ms: u64) {
    let body = json!({"endpoint": "/transactions/sync", "latency_ms": latency_ms, "rate": 1.0});
    let response = app.http.post(format!("{}/sim/faults", app.sim_url)).json(&body).send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
}

async fn running_syncs(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM sync_runs WHERE status = 'running'", &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_a_sync_runs_restores_to_a_consistent_database_whose_tokens_decrypt() {
    let app = TestApp::builder().spawn().await;
    slow_syncs(&app, 400).await;
    app.link_bank(0).await;
    app.link_bank(1).await;
    eventually::eventually("a sync to be running", Duration::from_secs(20), || async { running_syncs(&app).await > 0 })
        .await;

    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("banksync.backup");
    let file_arg = file.display().to_string();
    let (k, v) = data_dir_env(app.data_dir.path());
    let backup = banksync(&["backup", &file_arg, "--include-key"], &[(k, &v)], "");
    assert!(backup.status.success(), "{}", stderr(&backup));
    assert!(stderr(&backup).contains("holds the master key"), "{}", stderr(&backup));
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    // The sync was still going while the copy was taken (else this test proves nothing about consistency).
    let runs_in_backup: (i64,) = {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", file.display())).await.unwrap();
        let row = sqlx::query_as("SELECT COUNT(*) FROM sync_runs WHERE status = 'running'").fetch_one(&pool).await;
        pool.close().await;
        row.unwrap()
    };
    assert!(runs_in_backup.0 > 0, "no sync was running in the backup");
    let again = banksync(&["backup", &file_arg], &[(k, &v)], "");
    assert!(!again.status.success() && stderr(&again).contains("already exists"), "{}", stderr(&again));

    let fresh = tempfile::tempdir().unwrap();
    let (fk, fv) = data_dir_env(fresh.path());
    let restored = banksync(&["restore", &file_arg], &[(fk, &fv)], "");
    assert!(restored.status.success(), "{}", stderr(&restored));
    assert!(fresh.path().join("master.key").exists(), "the backup's key is installed");

    let store = Store::open_sqlite(&fresh.path().join("banksync.db")).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    let orphans: Vec<(String, i64, String, i64)> = {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", fresh.path().join("banksync.db").display()))
            .await
            .unwrap();
        let rows = sqlx::query_as("PRAGMA foreign_key_check").fetch_all(&pool).await;
        pool.close().await;
        rows.unwrap()
    };
    assert!(orphans.is_empty(), "rows without their parent: {orphans:?}");
    let items = store.list_all_items().await.unwrap();
    assert_eq!(items.len(), 2);
    let config = banksync::config::Config::resolve(banksync::config::Settings {
        data_dir: Some(fresh.path().to_owned()),
        ..Default::default()
    })
    .unwrap();
    let vault = banksync::keys::load_keyring(&config, false).unwrap().vault();
    for item in &items {
        vault.decrypt(&item.access_token, item.item_id.as_str()).expect("the restored token decrypts");
        // A sync commits its transactions and cursor together: a copy never has one without the other.
        let (n,): (i64,) = {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", fresh.path().join("banksync.db").display()))
                .await
                .unwrap();
            let row = sqlx::query_as("SELECT COUNT(*) FROM transactions WHERE item_ref = ?")
                .bind(item.id.as_str())
                .fetch_one(&pool)
                .await;
            pool.close().await;
            row.unwrap()
        };
        assert_eq!(
            item.cursor.is_some(),
            n > 0,
            "Item {} has cursor {:?} and {n} transactions",
            item.item_id,
            item.cursor
        );
    }
    store.close().await;
    // The restored directory serves: the server's own start check opens every stored token.
    let mut settings = app.settings();
    settings.data_dir = Some(fresh.path().to_owned());
    let server = banksync::startup::Application::build(banksync::config::Config::resolve(settings).unwrap()).await;
    assert!(server.is_ok(), "a server starts on the restored data directory: {:?}", server.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_is_refused_while_a_server_runs_and_without_the_key_and_changes_nothing() {
    let app = TestApp::builder().spawn().await;
    app.link_bank(0).await;
    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("plain.backup");
    let file_arg = file.display().to_string();
    let (k, v) = data_dir_env(app.data_dir.path());
    let backup = banksync(&["backup", &file_arg], &[(k, &v)], "");
    assert!(backup.status.success(), "{}", stderr(&backup));
    assert!(stderr(&backup).contains("does NOT hold the master key"), "{}", stderr(&backup));

    let busy = banksync(&["restore", &file_arg], &[(k, &v)], "");
    assert!(!busy.status.success());
    assert!(stderr(&busy).contains("stop it first"), "{}", stderr(&busy));
    assert_eq!(stderr(&busy).lines().count(), 1, "one clear line: {}", stderr(&busy));
    assert!(!app.data_dir.path().join("banksync.db.pre-restore").exists());

    // A fresh directory without the key: refused, nothing created.
    let fresh = tempfile::tempdir().unwrap();
    let (fk, fv) = data_dir_env(fresh.path());
    let keyless = banksync(&["restore", &file_arg], &[(fk, &fv)], "");
    assert!(!keyless.status.success());
    assert!(stderr(&keyless).contains("no master key"), "{}", stderr(&keyless));
    assert!(!fresh.path().join("banksync.db").exists());

    // The wrong key: refused, nothing created.
    let other_key = banksync::vault::MasterKey::generate();
    other_key.write_file_atomic(&fresh.path().join("master.key")).unwrap();
    let wrong = banksync(&["restore", &file_arg], &[(fk, &fv)], "");
    assert!(!wrong.status.success());
    assert!(stderr(&wrong).contains("does not open"), "{}", stderr(&wrong));
    assert!(!fresh.path().join("banksync.db").exists());

    // With the server's key beside it, the same backup restores.
    std::fs::copy(app.data_dir.path().join("master.key"), fresh.path().join("master.key")).unwrap();
    let ok = banksync(&["restore", &file_arg], &[(fk, &fv)], "");
    assert!(ok.status.success(), "{}", stderr(&ok));

    let not_a_backup = out_dir.path().join("junk");
    std::fs::write(&not_a_backup, b"not sqlite at all").unwrap();
    let junk = banksync(&["restore", &not_a_backup.display().to_string()], &[(fk, &fv)], "");
    assert!(!junk.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_round_trips_sqlite_to_postgres_to_sqlite_exactly() {
    let Some((mut admin, schema)) = pg::fresh_schema("banksync_admin", "migrate-store test").await else { return };
    let url = pg::url();
    let separator = if url.contains('?') { '&' } else { '?' };
    let pg_url = format!("{url}{separator}options=-c%20search_path%3D{schema}");

    let app = TestApp::builder().spawn().await;
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    app.post_sync(&item_id).await;
    eventually::eventually("transactions", Duration::from_secs(20), || async {
        app.count("SELECT COUNT(*) FROM transactions", &[]).await > 0
    })
    .await;
    // A frozen copy of the live installation is the source (the server keeps writing its own).
    let work = tempfile::tempdir().unwrap();
    let source_path = work.path().join("source.db");
    app.store.vacuum_into(&source_path).await.unwrap();
    let source_url = format!("sqlite://{}", source_path.display());
    let back_url = format!("sqlite://{}?mode=rwc", work.path().join("back.db").display());

    let live = format!("sqlite://{}", app.data_dir.path().join("banksync.db").display());
    let busy = banksync::admin::migrate_store::migrate_store(&live, &back_url).await.unwrap_err().to_string();
    assert!(busy.contains("stop it first"), "{busy}");
    assert!(!work.path().join("back.db").exists(), "nothing was created");

    let there = banksync::admin::migrate_store::migrate_store(&source_url, &pg_url).await;
    let back = match there {
        Ok(_) => banksync::admin::migrate_store::migrate_store(&pg_url, &back_url).await,
        Err(e) => Err(e),
    };
    let refused = banksync::admin::migrate_store::migrate_store(&source_url, &pg_url).await;
    let cli_refused = banksync(&["migrate-store", "--from", &source_url, "--to", &pg_url], &[], "");
    // The identity sequence moved past the copied ids: PostgreSQL can take the next audit row.
    let next_call = sqlx::query(&format!(
        "INSERT INTO {schema}.plaid_calls (endpoint, outcome, latency_ms, at) VALUES ('/x', 'ok', 1, 'now')"
    ))
    .execute(&mut admin)
    .await;
    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await;

    let back = back.expect("both copies succeed");
    let by_table: std::collections::HashMap<_, _> = back.iter().map(|t| (t.table, t.rows)).collect();
    assert!(by_table["transactions"] > 0 && by_table["items"] == 1 && by_table["plaid_calls"] > 0, "{back:?}");
    let err = refused.unwrap_err().to_string();
    assert!(err.contains("not empty"), "{err}");
    assert!(!cli_refused.status.success() && stderr(&cli_refused).contains("not empty"), "{}", stderr(&cli_refused));
    next_call.expect("a new plaid_calls row gets an id after the copied ones");

    let source = banksync::store::connect(&source_url).await.unwrap();
    let copy = banksync::store::connect(&back_url).await.unwrap();
    let (a, b) = (digests(&source).await, digests(&copy).await);
    assert_eq!(a, b, "every table is equal after SQLite -> PostgreSQL -> SQLite");
}

fn doctor_env(app: &TestApp) -> Vec<(&'static str, String)> {
    let s = app.settings();
    vec![
        ("BANKSYNC_DATA_DIR", app.data_dir.path().display().to_string()),
        ("PLAID_CLIENT_ID", s.plaid_client_id.unwrap()),
        ("PLAID_SECRET", s.plaid_secret.unwrap()),
        ("PLAID_BASE_URL", s.plaid_base_url.unwrap()),
        ("BANKSYNC_PUBLIC_URL", app.address.clone()),
    ]
}

fn run_doctor(env: &[(&'static str, String)]) -> (bool, Vec<Value>) {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let out = banksync(&["doctor", "--json"], &env, "");
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    (out.status.success(), checks)
}

fn status_of<'a>(checks: &'a [Value], name: &str) -> &'a str {
    checks.iter().find(|c| c["check"] == name).and_then(|c| c["status"].as_str()).unwrap_or("missing")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_healthy_setup_and_names_what_is_broken() {
    let app = TestApp::builder().spawn().await;
    app.link_bank(0).await;
    let healthy = doctor_env(&app);
    let (ok, checks) = run_doctor(&healthy);
    assert!(ok, "{checks:#?}");
    for name in ["configuration", "database", "master key", "plaid", "jobs"] {
        assert_eq!(status_of(&checks, name), "ok", "{name}: {checks:#?}");
    }
    // Reachable here, but a loopback address Plaid cannot reach.
    assert_eq!(status_of(&checks, "webhook url"), "warn", "{checks:#?}");

    let mut bad_secret = healthy.clone();
    bad_secret.retain(|(k, _)| *k != "PLAID_SECRET");
    bad_secret.push(("PLAID_SECRET", "wrong-secret".into()));
    let unreachable = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = unreachable.local_addr().unwrap().port();
    drop(unreachable);
    bad_secret.retain(|(k, _)| *k != "BANKSYNC_PUBLIC_URL");
    bad_secret.push(("BANKSYNC_PUBLIC_URL", format!("http://127.0.0.1:{closed_port}")));
    let (ok, checks) = run_doctor(&bad_secret);
    assert!(!ok);
    assert_eq!(status_of(&checks, "plaid"), "fail", "{checks:#?}");
    assert_eq!(status_of(&checks, "webhook url"), "fail", "{checks:#?}");
    let text = serde_json::to_string(&checks).unwrap();
    assert!(!text.contains("wrong-secret"), "the secret is never printed");
    assert!(checks.iter().filter(|c| c["status"] == "fail").all(|c| c["fix"].is_string()), "{checks:#?}");

    // A data directory whose key does not open the stored tokens.
    let other = tempfile::tempdir().unwrap();
    app.store.vacuum_into(&other.path().join("banksync.db")).await.unwrap();
    banksync::vault::MasterKey::generate().write_file_atomic(&other.path().join("master.key")).unwrap();
    let mut wrong_key = healthy.clone();
    wrong_key.retain(|(k, _)| *k != "BANKSYNC_DATA_DIR");
    wrong_key.push(("BANKSYNC_DATA_DIR", other.path().display().to_string()));
    let (ok, checks) = run_doctor(&wrong_key);
    assert!(!ok);
    assert_eq!(status_of(&checks, "master key"), "fail", "{checks:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_list_shows_users_and_passwd_changes_the_password_and_ends_sessions() {
    let app = TestApp::builder().spawn().await;
    let (k, v) = data_dir_env(app.data_dir.path());
    let login = |password: &'static str| {
        let http = app.http.clone();
        let url = format!("{}/api/session", app.address);
        async move {
            http.post(url).json(&json!({"username": "alice", "password": password})).send().await.unwrap().status()
        }
    };
    assert_eq!(login(app::PASSWORD).await, 200);
    assert!(app.count("SELECT COUNT(*) FROM sessions", &[]).await > 0);

    let list = banksync(&["user", "list"], &[(k, &v)], "");
    assert!(list.status.success(), "{}", stderr(&list));
    let text = String::from_utf8(list.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("alice\t"), "{text}");
    let json_list = banksync(&["user", "list", "--json"], &[(k, &v)], "");
    let users: Vec<Value> = serde_json::from_slice(&json_list.stdout).unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["username"], "alice");
    assert_eq!(users[0]["api_tokens"], 1);
    assert!(users[0].get("password_hash").is_none());

    let short = banksync(&["user", "passwd", "alice"], &[(k, &v)], "short\n");
    assert!(!short.status.success());
    let nobody = banksync(&["user", "passwd", "nobody"], &[(k, &v)], "a brand new password\n");
    assert!(!nobody.status.success() && stderr(&nobody).contains("no user named"), "{}", stderr(&nobody));
    assert_eq!(login(app::PASSWORD).await, 200, "failed attempts change nothing");

    let changed = banksync(&["user", "passwd", "alice"], &[(k, &v)], "a brand new password\n");
    assert!(changed.status.success(), "{}", stderr(&changed));
    assert_eq!(app.count("SELECT COUNT(*) FROM sessions", &[]).await, 0, "every session ended");
    assert_eq!(login(app::PASSWORD).await, 401);
    assert_eq!(login("a brand new password").await, 200);
}
