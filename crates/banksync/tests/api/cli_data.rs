//! The terminal user's data commands (`items`, `accounts`, `transactions`, `sync`, `link`), run as a real process
//! on the data directory and database of a running test server, talking to the same Plaid simulator.

use serde_json::{Value, json};

use crate::helpers::{TestApp, seed_user, spawn_app};
use crate::sync::wait_for_first_sync;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json_lines(&self) -> Vec<Value> {
        self.stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}"))).collect()
    }

    /// The error line the command ended with (log lines may come before it).
    fn error_line(&self) -> &str {
        self.stderr
            .lines()
            .rfind(|l| l.starts_with("error: "))
            .unwrap_or_else(|| panic!("no error line: {}", self.stderr))
    }
}

/// Runs `banksync ARGS` with the app's data directory, database and Plaid settings (the way a user on the server's
/// machine would), without blocking the test server's runtime.
async fn banksync(app: &TestApp, args: &[&str]) -> Run {
    let s = app.settings();
    // BANKSYNC_TEST_BIN: another build of the binary, for a target directory shared by several checkouts (their
    // builds replace target/debug/banksync).
    let bin = std::env::var_os("BANKSYNC_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_banksync").into());
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("BANKSYNC_DATA_DIR", app.data_dir.path())
        .env("PLAID_CLIENT_ID", s.plaid_client_id.unwrap())
        .env("PLAID_SECRET", s.plaid_secret.unwrap())
        .env("PLAID_BASE_URL", s.plaid_base_url.unwrap())
        .env("BANKSYNC_SYNC_COOLDOWN", "0s")
        // Plaid's budget for /transactions/refresh (a few per Item per minute) would hold back repeated syncs.
        .env("BANKSYNC_TRANSACTIONS_REFRESH", "off")
        .env("BANKSYNC_PUBLIC_URL", &app.address)
        .env("RUST_LOG", if std::env::var_os("TEST_LOG").is_some() { "info" } else { "warn" });
    let started = std::time::Instant::now();
    let out = cmd.output().await.expect("banksync binary runs");
    if std::env::var_os("TEST_LOG").is_some() {
        eprintln!("banksync {args:?} took {:?}:\n{}", started.elapsed(), String::from_utf8_lossy(&out.stderr));
    }
    let run = Run {
        code: out.status.code().expect("exited"),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(!run.stderr.contains("panicked") && !run.stderr.contains("stack backtrace"), "{}", run.stderr);
    run
}

/// An app with one linked, synced bank, whose "sync now" hears from the bank quickly.
async fn linked_app() -> (TestApp, String) {
    let app = TestApp::builder()
        .sim(|s| s.refresh_delay = std::time::Duration::from_millis(200))
        .capture_logs()
        .spawn()
        .await;
    let item = app.link_bank(0).await;
    let item_id = item["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;
    (app, item_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_accounts_and_transactions_print_what_the_api_shows_as_tables_and_json_lines() {
    let (app, item_id) = linked_app().await;
    let api_item = app.get_item(&item_id).await.expect(200);
    let institution = api_item["institution_name"].as_str().unwrap().to_owned();

    let items = banksync(&app, &["items", "--json"]).await;
    assert_eq!(items.code, 0, "{}", items.stderr);
    let lines = items.json_lines();
    assert_eq!(lines.len(), 1, "{}", items.stdout);
    assert_eq!(lines[0]["item_id"], item_id.as_str());
    assert_eq!(lines[0]["health"]["status"], "good");
    assert_eq!(lines[0]["last_successful_sync_at"], api_item["last_successful_sync_at"]);
    let table = banksync(&app, &["items"]).await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    let rows: Vec<&str> = table.stdout.lines().collect();
    assert!(rows[0].starts_with("ITEM_ID") && rows[0].contains("HEALTH") && rows[0].contains("FIX"), "{rows:?}");
    assert!(rows[1].contains(&item_id) && rows[1].contains(&institution) && rows[1].contains("good"), "{rows:?}");

    let accounts = banksync(&app, &["accounts", "--json"]).await;
    assert_eq!(accounts.code, 0, "{}", accounts.stderr);
    let api_accounts = app.get_accounts().await.expect(200)["accounts"].as_array().unwrap().clone();
    let ids = |v: &[Value]| {
        let mut ids: Vec<String> = v.iter().map(|a| a["account_id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&accounts.json_lines()), ids(&api_accounts));
    let first = &accounts.json_lines()[0];
    let table = banksync(&app, &["accounts"]).await;
    assert!(table.stdout.lines().next().unwrap().contains("AS_OF"), "{}", table.stdout);
    assert!(table.stdout.contains(first["account_id"].as_str().unwrap()), "{}", table.stdout);

    let api_page = app.get_transactions("limit=5").await.expect(200);
    let api_ids: Vec<&Value> =
        api_page["transactions"].as_array().unwrap().iter().map(|t| &t["transaction_id"]).collect();
    let txs = banksync(&app, &["transactions", "--json", "--limit", "5"]).await;
    assert_eq!(txs.code, 0, "{}", txs.stderr);
    let cli_ids: Vec<Value> = txs.json_lines().iter().map(|t| t["transaction_id"].clone()).collect();
    assert_eq!(cli_ids.iter().collect::<Vec<_>>(), api_ids);
    assert!(txs.stderr.contains("--cursor"), "a next page is announced: {}", txs.stderr);
    // A filter narrows exactly as the API's does.
    let posted = banksync(&app, &["transactions", "--json", "--pending", "false", "--min-amount", "-1000000"]).await;
    assert!(posted.json_lines().iter().all(|t| t["pending"] == false), "{}", posted.stdout);
    let table = banksync(&app, &["transactions", "--limit", "3"]).await;
    assert_eq!(table.stdout.lines().count(), 4, "a header and 3 rows: {}", table.stdout);

    let bad = banksync(&app, &["transactions", "--start", "2024-13-01"]).await;
    assert_eq!(bad.code, 1);
    assert_eq!(bad.error_line(), "error: --start must be a date like 2024-01-31");
    let usage = banksync(&app, &["transactions", "--no-such-flag"]).await;
    assert_eq!(usage.code, 2, "usage errors exit with 2");

    let link = banksync(&app, &["link", "--print"]).await;
    assert_eq!(link.code, 0, "{}", link.stderr);
    assert_eq!(link.stdout.trim(), format!("{}/", app.address));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_users_the_cli_refuses_to_guess_whose_data_to_show() {
    let (app, item_id) = linked_app().await;
    seed_user(&app.store, "bob").await;

    let guessed = banksync(&app, &["items"]).await;
    assert_eq!(guessed.code, 1);
    assert!(guessed.stdout.is_empty(), "{}", guessed.stdout);
    let line = guessed.error_line();
    assert!(line.contains("--user") && line.contains("alice") && line.contains("bob"), "{line}");
    for command in [&["accounts"][..], &["transactions"], &["sync"]] {
        assert_eq!(banksync(&app, command).await.code, 1, "{command:?} must not guess either");
    }

    let alice = banksync(&app, &["items", "--json", "--user", "alice"]).await;
    assert_eq!(alice.json_lines()[0]["item_id"], item_id.as_str());
    let bob = banksync(&app, &["items", "--json", "--user", "bob"]).await;
    assert_eq!(bob.code, 0, "{}", bob.stderr);
    assert!(bob.stdout.is_empty(), "bob has no Items: {}", bob.stdout);
    let nobody = banksync(&app, &["items", "--user", "nobody"]).await;
    assert_eq!(nobody.code, 1);
    assert!(nobody.error_line().contains("no user named \"nobody\""), "{}", nobody.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_exits_0_when_every_item_synced_and_1_with_plaids_reason_and_the_fix_when_one_failed() {
    let (app, item_id) = linked_app().await;

    let ok = banksync(&app, &["sync", "--json"]).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let reports = ok.json_lines();
    assert_eq!(reports.len(), 1, "{}", ok.stdout);
    assert_eq!(reports[0]["item_id"], item_id.as_str());
    assert_eq!(reports[0]["outcome"], "synced", "{}", ok.stdout);
    assert!(reports[0]["pages"].as_u64().unwrap() >= 1, "{}", ok.stdout);

    app.sim_post(&format!("/sim/items/{item_id}/reset_login"), json!({})).await;
    let failed = banksync(&app, &["sync", "--item", &item_id]).await;
    assert_eq!(failed.code, 1, "{}\n{}", failed.stdout, failed.stderr);
    assert!(failed.stdout.contains("ITEM_LOGIN_REQUIRED"), "Plaid's reason: {}", failed.stdout);
    assert!(failed.stdout.contains("banksync link"), "the fix: {}", failed.stdout);
    assert_eq!(failed.error_line(), "error: 1 of 1 Item(s) failed to sync");
    let json = banksync(&app, &["sync", "--json"]).await;
    assert_eq!(json.code, 1);
    assert_eq!(json.json_lines()[0]["error_code"], "ITEM_LOGIN_REQUIRED");

    // The Item's health says the same in `items`.
    let items = banksync(&app, &["items"]).await;
    assert!(items.stdout.contains("login_required") && items.stdout.contains("Reconnect"), "{}", items.stdout);
    let unknown = banksync(&app, &["sync", "--item", "no-such-item"]).await;
    assert_eq!(unknown.code, 1);
    assert!(unknown.error_line().contains("banksync items"), "{}", unknown.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_sync_beside_a_running_server_never_syncs_an_item_while_the_server_does() {
    // The bank takes its usual time to answer "sync now", so syncs last long enough to collide.
    let app = spawn_app().await;
    let item_id = app.link_bank(0).await["item_id"].as_str().unwrap().to_owned();
    wait_for_first_sync(&app, &item_id).await;
    let item = app.store.get_item_by_plaid_id(&item_id.clone().into()).await.unwrap().unwrap();
    let runs_before = app.store.list_sync_runs(&item.id, 500).await.unwrap().len();

    // The server's "sync now" and the CLI's sync, requested at the same moment, several times.
    for _ in 0..3 {
        let (server, cli) = tokio::join!(app.post_sync(&item_id), banksync(&app, &["sync", "--json"]));
        assert_eq!(cli.code, 0, "{}\n{}", cli.stdout, cli.stderr);
        assert_eq!(cli.json_lines()[0]["outcome"], "synced", "{}", cli.stdout);
        let (status, body) = server.into_parts();
        assert!(status == 200 || status == 202, "{status} {body}");
    }

    let mut runs = app.store.list_sync_runs(&item.id, 500).await.unwrap();
    assert!(runs.len() > runs_before, "the syncs ran");
    runs.sort_by_key(|r| r.started_at);
    for pair in runs.windows(2) {
        let finished = pair[0].finished_at.expect("every run finished");
        assert!(
            finished <= pair[1].started_at,
            "run {} ({}) overlaps run {} ({})",
            pair[0].id,
            pair[0].triggered_by,
            pair[1].id,
            pair[1].triggered_by
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_refresh_asks_the_banks_for_live_balances_first() {
    let (app, _) = linked_app().await;
    let before = banksync(&app, &["accounts", "--json"]).await.json_lines();
    assert!(before.iter().all(|a| a["balances"]["source"] != "live"), "{before:?}");

    let refreshed = banksync(&app, &["accounts", "--refresh", "--json"]).await;
    assert_eq!(refreshed.code, 0, "{}", refreshed.stderr);
    let accounts = refreshed.json_lines();
    assert_eq!(accounts.len(), before.len());
    assert!(
        accounts.iter().all(|a| a["balances"]["source"] == "live" && a["balances"]["as_of"].is_string()),
        "{accounts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_demo_mode_plaid_calling_commands_refuse_while_a_server_owns_the_simulated_banks() {
    let (app, item_id) = linked_app().await;
    let bin = std::env::var_os("BANKSYNC_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_banksync").into());
    // No Plaid keys (demo mode), and the server's address as the listen address: "a demo server is running".
    let listen = app.address.trim_start_matches("http://");
    let demo = |args: &'static [&'static str]| {
        let mut cmd = tokio::process::Command::new(&bin);
        cmd.args(args)
            .env_clear()
            .env("BANKSYNC_DATA_DIR", app.data_dir.path())
            .env("BANKSYNC_LISTEN", listen)
            .env("RUST_LOG", "warn");
        cmd.output()
    };
    for args in [&["sync"][..], &["accounts", "--refresh"]] {
        let out = demo(args).await.unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.lines().last().unwrap().contains("demo mode is running on"), "{stderr}");
    }
    // Reading the database needs no Plaid: it still works.
    let items = demo(&["items", "--json"]).await.unwrap();
    assert_eq!(items.status.code(), Some(0), "{}", String::from_utf8_lossy(&items.stderr));
    assert!(String::from_utf8(items.stdout).unwrap().contains(&item_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_a_file_and_append_twice_adds_nothing() {
    let (app, item_id) = linked_app().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("all.csv");
    let csv_arg = csv.to_str().unwrap();

    let written = banksync(&app, &["export", "--format", "csv", "--output", csv_arg]).await;
    assert_eq!(written.code, 0, "{}", written.stderr);
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows = text.lines().count() - 1;
    let api = app.all_transactions(&item_id).await.iter().filter(|t| t["pending"] == false).count();
    assert_eq!(rows, api, "every posted transaction once (pending excluded by default)");
    // The file is not overwritten, and appending to it adds nothing new.
    assert_eq!(banksync(&app, &["export", "--format", "csv", "--output", csv_arg]).await.code, 1);
    let appended = banksync(&app, &["export", "--format", "csv", "--append", csv_arg]).await;
    assert_eq!(appended.code, 0, "{}", appended.stderr);
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), text, "nothing added");
    assert!(appended.stderr.contains(&format!("{rows} already in the file")), "{}", appended.stderr);

    // To standard output, and bad options as one line.
    let beancount = banksync(&app, &["export", "--format", "beancount"]).await;
    assert_eq!(beancount.code, 0, "{}", beancount.stderr);
    assert!(beancount.stdout.contains("open "), "{}", &beancount.stdout[..beancount.stdout.len().min(300)]);
    let bad = banksync(&app, &["export", "--format", "xls"]).await;
    assert_eq!(bad.code, 1);
    assert!(bad.error_line().contains("--format"), "{}", bad.stderr);
}
