//! The `banksync` binary's user and token commands, run as a real process against a temp data directory.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::helpers::spawn_app;

fn banksync(data_dir: &std::path::Path, args: &[&str], stdin: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_banksync"))
        .args(args)
        .env("BANKSYNC_DATA_DIR", data_dir)
        .env_remove("BANKSYNC_DATABASE_URL")
        .env_remove("BANKSYNC_MASTER_KEY")
        .env_remove("PLAID_CLIENT_ID")
        .env_remove("PLAID_SECRET")
        // Default logging on purpose: log lines must go to stderr and never mix into command output.
        .env_remove("RUST_LOG")
        // Errors must stay one line even where backtraces are asked for.
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("banksync binary runs");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn user_add_and_token_create_make_a_working_login_and_api_token() {
    let app = spawn_app().await;
    let dir = app.data_dir.path();

    let migrated = banksync(dir, &["migrate"], "");
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let bad_config = banksync(dir, &["migrate", "--database-url", "mysql://u:hunter2@h/db"], "");
    assert!(!bad_config.status.success());
    let stderr = String::from_utf8_lossy(&bad_config.stderr);
    assert!(stderr.contains("BANKSYNC_DATABASE_URL") && !stderr.contains("hunter2"), "{stderr}");

    let added = banksync(dir, &["user", "add", "carol"], "a long enough password\n");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let again = banksync(dir, &["user", "add", "carol"], "a long enough password\n");
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("already exists"), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error: ")).count(), 1, "one error line: {stderr}");
    assert!(!stderr.to_lowercase().contains("backtrace"), "no backtrace: {stderr}");
    let short = banksync(dir, &["user", "add", "dave"], "short\n");
    assert!(!short.status.success());

    let created = banksync(dir, &["token", "create", "carol"], "");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let stdout = String::from_utf8(created.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "stdout must hold only the token, for scripts: {stdout:?}");
    let token = stdout.trim().to_owned();
    assert!(token.starts_with("bsk_"), "{token}");
    let unknown = banksync(dir, &["token", "create", "nobody"], "");
    assert!(!unknown.status.success());

    // The running server shares the data directory: the new token and password work there.
    let me = app.call_as(&token, reqwest::Method::GET, "/api/session", None).await.expect(200);
    assert_eq!(me["user"]["username"], "carol");
    let login = app
        .http
        .post(app.url("/api/session"))
        .json(&serde_json::json!({"username": "carol", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    // Only the hash is stored.
    let db = std::fs::read(dir.join("banksync.db")).unwrap();
    let wal = std::fs::read(dir.join("banksync.db-wal")).unwrap_or_default();
    let needle = token.as_bytes();
    for bytes in [db, wal] {
        assert!(!bytes.windows(needle.len()).any(|w| w == needle), "the plaintext token is in the database");
    }
}
