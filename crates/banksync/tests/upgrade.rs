//! Upgrades: a database written by an earlier release, with real data in it, migrates forward through every
//! migration this build has (full-text backfill included) and loses nothing.
//!
//! Each fixture is `tests/fixtures/upgrade/vN.sqlite` (the database as release N's schema left it, `VACUUM INTO`
//! a single file), `vN.master.key` (its vault key, for this test only) and `vN.json` (what the generator saw: row
//! counts per table, the first rows of every table, and the credentials it created). For every fixture:
//! - SQLite: a copy is migrated by the real `Store::migrate`; every table keeps its rows (counts equal), every
//!   recorded row keeps every recorded column, every Item's access token still decrypts with the fixture's key,
//!   the password still verifies, the API token and the session still find their user; then a real banksync starts
//!   on the upgraded data directory and serves the old transactions over the API, notes included, and finds an old
//!   transaction by a word of its name when the API has a search parameter.
//! - PostgreSQL: a fresh schema gets release N's migrations only (a prefix of this build's migrator), the fixture's
//!   rows are copied in, then the store's migrator runs the rest; counts and the same checks follow.
//!
//! Adding a fixture for a release (do it at the release's commit, before the next migration lands):
//! `UPGRADE_FIXTURE=v9 cargo test -p banksync --test upgrade -- --ignored write_upgrade_fixture`, then commit the
//! three files. The version number is the count of migrations in that release. Nothing else changes: the test
//! iterates over every fixture in the directory.

#[path = "common/app.rs"]
mod app;
#[path = "common/eventually.rs"]
mod eventually;
#[path = "common/pg.rs"]
mod pg;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use banksync::auth::password::verify_password;
use banksync::auth::token::{hash_secret, random_secret};
use banksync::config::{Config, Settings};
use banksync::domain::NewSession;
use banksync::startup::Application;
use banksync::store::Store;
use banksync::vault::{KEY_FILE_NAME, MasterKey, Vault};
use serde_json::{Value, json};
use sqlx::{Connection as _, Row as _, SqliteConnection};

use app::{PASSWORD, TestApp};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/upgrade")
}

/// Tables whose rows the generator records (sqlx's own bookkeeping and SQLite's internals excluded).
async fn tables(conn: &mut SqliteConnection) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE '_sqlx%' AND sql NOT LIKE 'CREATE VIRTUAL%' AND name NOT LIKE '%fts%' ORDER BY name",
    )
    .fetch_all(conn)
    .await
    .unwrap()
}

async fn columns(conn: &mut SqliteConnection, table: &str) -> Vec<String> {
    sqlx::query(&format!("PRAGMA table_info({table})"))
        .fetch_all(conn)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("name"))
        .collect()
}

/// The first `limit` rows of `table` (by rowid) as JSON objects of every column (blobs as hex).
async fn first_rows(conn: &mut SqliteConnection, table: &str, only: Option<&[String]>, limit: i64) -> Vec<Value> {
    let columns: Vec<String> = match only {
        Some(cols) => cols.to_vec(),
        None => columns(conn, table).await,
    };
    let pairs: Vec<String> = columns
        .iter()
        .map(|c| format!("'{c}', CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE \"{c}\" END"))
        .collect();
    let sql = format!("SELECT json_object({}) FROM \"{table}\" ORDER BY rowid LIMIT {limit}", pairs.join(", "));
    let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(conn).await.unwrap();
    rows.iter().map(|r| serde_json::from_str(r).unwrap()).collect()
}

async fn count(conn: &mut SqliteConnection, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\"")).fetch_one(conn).await.unwrap()
}

fn fixtures() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures_dir()).expect("tests/fixtures/upgrade exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
            out.push((name, serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no upgrade fixture in {}", fixtures_dir().display());
    out
}

fn fixture_key(name: &str) -> MasterKey {
    // Read as text, not with `MasterKey::load_file`: a git checkout makes the file 0644, which that refuses.
    let text = std::fs::read_to_string(fixtures_dir().join(format!("{name}.master.key"))).unwrap();
    MasterKey::from_encoded(text.trim()).expect("the fixture's key decodes")
}

/// Checks, on an upgraded store, what does not depend on the backend: tokens decrypt, credentials work.
async fn check_credentials(store: &Store, manifest: &Value, key: MasterKey) {
    let vault = Vault::new(key);
    let creds = &manifest["credentials"];
    let user = store.find_user_by_username(creds["username"].as_str().unwrap()).await.unwrap().expect("the user");
    assert!(verify_password(Some(user.password_hash.clone()), PASSWORD.to_owned().into()).await.unwrap());
    let by_token = store
        .find_user_by_api_token_hash(&hash_secret(creds["api_token"].as_str().unwrap()))
        .await
        .unwrap()
        .expect("the API token still finds its user");
    assert_eq!(by_token.id, user.id);
    let items = store.list_items(&user.id).await.unwrap();
    assert_eq!(items.len() as u64, manifest["items_of_user"].as_u64().unwrap());
    for item in &items {
        let token = vault.decrypt(&item.access_token, item.item_id.as_str()).expect("the access token decrypts");
        use secrecy::ExposeSecret as _;
        assert!(token.expose_secret().starts_with("access-"), "a decrypted token looks like one");
    }
}

#[tokio::test]
async fn every_upgrade_fixture_migrates_on_sqlite_without_losing_anything() {
    for (name, manifest) in fixtures() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("banksync.db");
        std::fs::copy(fixtures_dir().join(format!("{name}.sqlite")), &db).unwrap();
        let key = fixture_key(&name);
        key.write_file_atomic(&dir.path().join(KEY_FILE_NAME)).unwrap();

        let url = format!("sqlite://{}", db.display());
        let store = banksync::store::connect(&url).await.unwrap();
        store.migrate().await.expect("every migration applies to the fixture");
        store.close().await;

        let mut conn = SqliteConnection::connect(&url).await.unwrap();
        let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert!(applied >= manifest["migrations"].as_i64().unwrap(), "{name}: migrations applied: {applied}");
        for (table, expected) in manifest["counts"].as_object().unwrap() {
            assert_eq!(count(&mut conn, table).await, expected.as_i64().unwrap(), "{name}: rows of {table}");
        }
        for (table, rows) in manifest["rows"].as_object().unwrap() {
            let recorded = rows.as_array().unwrap();
            let cols: Vec<String> = recorded[0].as_object().unwrap().keys().cloned().collect();
            let now = first_rows(&mut conn, table, Some(&cols), recorded.len() as i64).await;
            assert_eq!(&now, recorded, "{name}: the first rows of {table} changed");
        }
        let bands: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT amount, amount_band FROM transactions").fetch_all(&mut conn).await.unwrap();
        check_amount_bands(&name, &bands);
        conn.close().await.unwrap();

        let store = banksync::store::connect(&url).await.unwrap();
        check_credentials(&store, &manifest, fixture_key(&name)).await;
        store.close().await;
        check_through_the_api(&name, &manifest, dir.path()).await;
    }
}

/// The migration's SQL gave every stored transaction the band `codec::amount_band` gives a new one: range queries
/// read the amount index band by band and would miss a row whose band the two computed differently.
fn check_amount_bands(name: &str, stored: &[(String, Option<i64>)]) {
    assert!(!stored.is_empty(), "{name}: the fixture has transactions");
    for (amount, band) in stored {
        let expected = banksync::store::amount_band(amount.parse().unwrap());
        assert_eq!(*band, Some(expected), "{name}: the band of {amount}");
    }
}

/// Starts banksync on the upgraded data directory (its embedded simulator: no Plaid keys) and reads the old data
/// through the API.
async fn check_through_the_api(name: &str, manifest: &Value, data_dir: &Path) {
    let settings = Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        data_dir: Some(data_dir.to_owned()),
        // The fixture's Items belong to a simulator that is gone: no background sync may touch them meanwhile.
        sync_interval: Some("24h".into()),
        ..Settings::default()
    };
    let app = Application::build(Config::resolve(settings).unwrap()).await.expect("banksync starts on the upgrade");
    let base = app.url();
    let server = tokio::spawn(app.run_until_stopped());
    let http = reqwest::Client::new();
    let token = manifest["credentials"]["api_token"].as_str().unwrap();
    let get = async |path: &str| -> Value {
        let response = http.get(format!("{base}{path}")).bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), 200, "{name}: GET {path}");
        response.json().await.unwrap()
    };
    let mut seen = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/transactions?limit=500".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", app::client::urlencode(c)));
        }
        let page = get(&path).await;
        for t in page["transactions"].as_array().unwrap() {
            seen.insert(t["transaction_id"].as_str().unwrap().to_owned(), t.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len() as u64, manifest["visible_transactions"].as_u64().unwrap(), "{name}: transactions served");
    for (id, note) in manifest["notes"].as_object().unwrap() {
        assert_eq!(seen[id]["user_note"], *note, "{name}: the note on {id}");
    }
    // Plaid's object of an old transaction, stored as text before `raw` was compressed, is served unchanged.
    let mut raw_checked = 0;
    for old in manifest["rows"]["transactions"].as_array().unwrap() {
        let id = old["transaction_id"].as_str().unwrap();
        if old["deleted_at"].is_null() && seen.contains_key(id) {
            raw_checked += 1;
            let response =
                http.get(format!("{base}/api/transactions/{id}/raw")).bearer_auth(token).send().await.unwrap();
            assert_eq!(response.status(), 200, "{name}: the raw object of {id}");
            let served: Value = response.json().await.unwrap();
            let stored: Value = serde_json::from_str(old["raw"].as_str().unwrap()).unwrap();
            assert_eq!(served, stored, "{name}: the raw object of {id}");
        }
    }
    assert!(raw_checked > 0, "{name}: the fixture's first transactions are visible");
    // Full-text search, once the API has it: an old transaction is found by a word of its name.
    let doc = get("/api/openapi.json").await;
    let params = doc["paths"]["/api/transactions"]["get"]["parameters"].as_array().cloned().unwrap_or_default();
    if let Some(search) = params.iter().map(|p| p["name"].as_str().unwrap_or("")).find(|n| ["q", "search"].contains(n))
    {
        let word = manifest["search_word"].as_str().unwrap();
        let found = get(&format!("/api/transactions?{search}={}", app::client::urlencode(word))).await;
        let hits = found["transactions"].as_array().unwrap();
        assert!(!hits.is_empty(), "{name}: search for {word:?} finds nothing after the backfill");
        assert!(hits.iter().all(|t| seen.contains_key(t["transaction_id"].as_str().unwrap())));
    }
    server.abort();
    let _ = server.await;
}

#[tokio::test]
async fn every_upgrade_fixture_migrates_on_postgres_from_its_own_schema_version() {
    for (name, manifest) in fixtures() {
        let Some((mut admin, schema)) = pg::fresh_schema("banksync_upgrade", "upgrade test").await else { return };
        let options =
            sqlx::postgres::PgConnectOptions::from_str(&pg::url()).unwrap().options([("search_path", schema.as_str())]);
        let version = manifest["migrations"].as_i64().unwrap();

        // Release N's schema: this build's PostgreSQL migrations up to N (same files, so the same checksums).
        let mut prefix =
            sqlx::migrate::Migrator::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres"))
                .await
                .unwrap();
        let all = prefix.migrations.to_vec();
        prefix.migrations = all.iter().take(version as usize).cloned().collect::<Vec<_>>().into();
        assert_eq!(prefix.migrations.len() as i64, version, "{name}: this build lacks release {name}'s migrations");
        let mut pg = sqlx::PgConnection::connect_with(&options).await.unwrap();
        prefix.run(&mut pg).await.unwrap();

        // The fixture's rows, copied column by column as text and cast to each PostgreSQL column's type.
        let mut lite = SqliteConnection::connect(&format!(
            "sqlite://{}?mode=ro",
            fixtures_dir().join(format!("{name}.sqlite")).display()
        ))
        .await
        .unwrap();
        let counts = manifest["counts"].as_object().unwrap();
        // Parents before children: the order the generator recorded (tables sorted so foreign keys hold) is not
        // enough, so defer the checks for the copy.
        let mut tx = pg.begin().await.unwrap();
        sqlx::query("SET CONSTRAINTS ALL DEFERRED").execute(&mut *tx).await.unwrap();
        sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await.unwrap();
        for table in counts.keys() {
            let types: Vec<(String, String)> = sqlx::query_as(
                "SELECT column_name::text, data_type::text FROM information_schema.columns \
                 WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
            )
            .bind(&schema)
            .bind(table)
            .fetch_all(&mut *tx)
            .await
            .unwrap();
            if types.is_empty() {
                // A SQLite-only table (none today): nothing to copy.
                continue;
            }
            let lite_cols = columns(&mut lite, table).await;
            let cols: Vec<&(String, String)> = types.iter().filter(|(c, _)| lite_cols.contains(c)).collect();
            let select = cols
                .iter()
                .map(|(c, _)| {
                    format!("CASE WHEN typeof(\"{c}\") = 'blob' THEN hex(\"{c}\") ELSE CAST(\"{c}\" AS TEXT) END")
                })
                .collect::<Vec<_>>()
                .join(", ");
            let rows = sqlx::query(&format!("SELECT {select} FROM \"{table}\" ORDER BY rowid"))
                .fetch_all(&mut lite)
                .await
                .unwrap();
            let placeholders = cols
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| match ty.as_str() {
                    "bytea" => format!("decode(${}, 'hex')", i + 1),
                    "boolean" => format!("(${}::text <> '0')", i + 1),
                    _ => format!("${}::text::{ty}", i + 1),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let names = cols.iter().map(|(c, _)| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
            // Identity columns (GENERATED ALWAYS) keep the fixture's ids.
            let insert = format!("INSERT INTO \"{table}\" ({names}) OVERRIDING SYSTEM VALUE VALUES ({placeholders})");
            for row in &rows {
                let mut q = sqlx::query(&insert);
                for i in 0..cols.len() {
                    q = q.bind(row.get::<Option<String>, _>(i));
                }
                q.execute(&mut *tx).await.unwrap_or_else(|e| panic!("{name}: copying into {table}: {e}"));
            }
        }
        tx.commit().await.unwrap();
        pg.close().await.unwrap();
        lite.close().await.unwrap();

        let store = Arc::new(Store::connect_postgres(options.clone(), 4).await.unwrap());
        store.migrate().await.expect("the remaining migrations apply on PostgreSQL");
        let mut pg = sqlx::PgConnection::connect_with(&options).await.unwrap();
        for (table, expected) in counts {
            let n: i64 =
                sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\"")).fetch_one(&mut pg).await.unwrap();
            assert_eq!(n, expected.as_i64().unwrap(), "{name}: rows of {table} on PostgreSQL");
        }
        for (id, note) in manifest["notes"].as_object().unwrap() {
            let stored: Option<String> =
                sqlx::query_scalar("SELECT user_note FROM transactions WHERE transaction_id = $1")
                    .bind(id)
                    .fetch_one(&mut pg)
                    .await
                    .unwrap();
            assert_eq!(stored.as_deref(), note.as_str(), "{name}: the note on {id} on PostgreSQL");
        }
        let bands: Vec<(String, Option<i64>)> =
            sqlx::query_as("SELECT amount, amount_band FROM transactions").fetch_all(&mut pg).await.unwrap();
        check_amount_bands(&name, &bands);
        pg.close().await.unwrap();
        check_credentials(&store, &manifest, fixture_key(&name)).await;
        store.close().await;
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.unwrap();
    }
}

/// Writes `tests/fixtures/upgrade/$UPGRADE_FIXTURE.{sqlite,master.key,json}` from this build's schema: a user with
/// a linked simulated Item synced in full, notes and categories, an API token, a session, a finished balance job
/// and sync jobs, Plaid call and sync-run audit rows, and a second user. Run it at a release's commit (see the
/// header); it is `#[ignore]`d so the suite never rewrites a committed fixture.
#[tokio::test]
#[ignore = "writes a fixture: run by hand at a release"]
async fn write_upgrade_fixture() {
    let name = std::env::var("UPGRADE_FIXTURE").expect("UPGRADE_FIXTURE=vN names the fixture");
    let app = TestApp::builder().spawn().await;
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    eventually::eventually("the first sync", std::time::Duration::from_secs(60), || async {
        app.get_item(&item_id).await.body["last_successful_sync_at"].is_string()
    })
    .await;
    let transactions = app.all_transactions(&item_id).await;
    assert!(transactions.len() > 20, "the simulated Item has history");
    let mut notes = serde_json::Map::new();
    for (i, t) in transactions.iter().take(3).enumerate() {
        let id = t["transaction_id"].as_str().unwrap();
        let note = format!("fixture note {i}: ünïcode, \"quotes\"");
        app.patch_transaction(id, json!({"note": note, "category": "Fixture"})).await.expect(200);
        notes.insert(id.to_owned(), Value::String(note));
    }
    let job = app.post_balances_refresh(None).await.expect(202)["job_id"].as_str().unwrap().to_owned();
    app.get_balance_job(&job, 30).await.expect(200);
    let token = app.post("/api/tokens", json!({"name": "fixture script"})).await.expect(201)["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let user = app.store.find_user_by_username(&app.user.username).await.unwrap().unwrap();
    app.store
        .create_session(&NewSession {
            id_hash: hash_secret(&random_secret()),
            public_id: random_secret(),
            user_id: user.id.clone(),
            csrf_token: random_secret(),
            expires_at: chrono::Utc::now() + chrono::Duration::days(3650),
            idle_expires_at: chrono::Utc::now() + chrono::Duration::days(3650),
            user_agent: Some("fixture".into()),
        })
        .await
        .unwrap();
    app::seed_user(&app.store, "bob").await;

    let out = fixtures_dir();
    std::fs::create_dir_all(&out).unwrap();
    let db_path = out.join(format!("{name}.sqlite"));
    let _ = std::fs::remove_file(&db_path);
    let app::Db::Sqlite(pool) = &app.db else { unreachable!() };
    sqlx::query(&format!("VACUUM INTO '{}'", db_path.display())).execute(pool).await.unwrap();
    std::fs::copy(app.data_dir.path().join(KEY_FILE_NAME), out.join(format!("{name}.master.key"))).unwrap();

    let mut conn = SqliteConnection::connect(&format!("sqlite://{}", db_path.display())).await.unwrap();
    // What the API showed is what the store holds undeleted (checked, since the pruning below counts on it)…
    let undeleted = "SELECT count(*) FROM transactions WHERE deleted_at IS NULL";
    let before: i64 = sqlx::query_scalar(undeleted).fetch_one(&mut conn).await.unwrap();
    assert_eq!(before as usize, transactions.len(), "the API shows every undeleted transaction");
    // …and a committed fixture should be small: keep the first KEEP transactions (and the edited ones).
    const KEEP: i64 = 200;
    let edited: Vec<String> = notes.keys().cloned().collect();
    let placeholders = vec!["?"; edited.len()].join(", ");
    let prune_sql = format!(
        "DELETE FROM transactions WHERE rowid NOT IN (SELECT rowid FROM transactions ORDER BY rowid LIMIT {KEEP}) \
         AND transaction_id NOT IN ({placeholders})"
    );
    let mut prune = sqlx::query(&prune_sql);
    for id in &edited {
        prune = prune.bind(id);
    }
    prune.execute(&mut conn).await.unwrap();
    sqlx::query("VACUUM").execute(&mut conn).await.unwrap();
    let visible: i64 = sqlx::query_scalar(undeleted).fetch_one(&mut conn).await.unwrap();
    // A word of a kept transaction's name, for the search check.
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM transactions WHERE deleted_at IS NULL ORDER BY rowid")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let search_word = names
        .iter()
        .flat_map(|n| n.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .find(|w| w.len() >= 5 && w.chars().all(char::is_alphabetic))
        .expect("a word in some transaction name");
    let migrations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations").fetch_one(&mut conn).await.unwrap();
    let (mut counts, mut rows) = (serde_json::Map::new(), serde_json::Map::new());
    for table in tables(&mut conn).await {
        let n = count(&mut conn, &table).await;
        counts.insert(table.clone(), json!(n));
        if n > 0 {
            rows.insert(table.clone(), Value::Array(first_rows(&mut conn, &table, None, 3).await));
        }
    }
    for required in
        ["users", "sessions", "api_tokens", "items", "accounts", "transactions", "jobs", "sync_runs", "plaid_calls"]
    {
        assert!(counts.get(required).and_then(Value::as_i64).is_some_and(|n| n > 0), "the fixture has no {required}");
    }
    let manifest = json!({
        "migrations": migrations,
        "counts": counts,
        "rows": rows,
        "visible_transactions": visible,
        "notes": notes,
        "search_word": search_word,
        "items_of_user": 1,
        "credentials": {"username": app.user.username, "api_token": token},
    });
    std::fs::write(out.join(format!("{name}.json")), serde_json::to_string_pretty(&manifest).unwrap() + "\n").unwrap();
}

/// The band expression the `amount_bands` migration fills the stored rows with, on each backend, gives exactly
/// `codec::amount_band` for amounts across signs, magnitudes and digits (the fixtures hold only a few amounts).
#[tokio::test]
async fn the_amount_band_migration_computes_what_the_code_computes() {
    let expression = |backend: &str| {
        let file =
            Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("migrations/{backend}/20261129000015_amount_bands.sql"));
        let sql = std::fs::read_to_string(file).unwrap();
        let from = sql.find("SET amount_band = ").unwrap() + "SET amount_band = ".len();
        let to = from + sql[from..].find(';').unwrap();
        format!("SELECT {}", sql[from..to].replace("amount_key", "$1"))
    };
    let mut amounts: Vec<rust_decimal::Decimal> =
        (-300_000..300_000i64).step_by(97).map(|cents| rust_decimal::Decimal::new(cents, 2)).collect();
    for text in [
        "0",
        "-0",
        "0.0000000000000000000000000001",
        "-0.0000000000000000000000000001",
        "79228162514264337593543950335",
        "-79228162514264337593543950335",
        "1234567.891234",
        "-1234567.891234",
        "100",
        "109.999",
        "-110",
    ] {
        amounts.push(text.parse().unwrap());
    }

    let mut lite = SqliteConnection::connect("sqlite::memory:").await.unwrap();
    let select = expression("sqlite");
    for &amount in &amounts {
        let band: i64 =
            sqlx::query_scalar(&select).bind(banksync::store::amount_key(amount)).fetch_one(&mut lite).await.unwrap();
        assert_eq!(band, banksync::store::amount_band(amount), "SQLite: the band of {amount}");
    }

    let Some((mut admin, schema)) = pg::fresh_schema("banksync_bands", "amount band expression").await else {
        return;
    };
    let select = expression("postgres");
    for &amount in &amounts {
        let band: i64 =
            sqlx::query_scalar(&select).bind(banksync::store::amount_key(amount)).fetch_one(&mut admin).await.unwrap();
        assert_eq!(band, banksync::store::amount_band(amount), "PostgreSQL: the band of {amount}");
    }
    sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut admin).await.unwrap();
}
