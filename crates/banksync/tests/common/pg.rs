//! The test PostgreSQL server, shared by every test binary that runs on it: its URL and a fresh schema per test,
//! so tests run in parallel without seeing each other's rows; and the one rule for a missing PostgreSQL.

use std::io::Write as _;

use sqlx::Connection as _;

/// `BANKSYNC_TEST_POSTGRES_URL`, else the local server every developer machine and CI have.
pub fn url() -> String {
    std::env::var("BANKSYNC_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// The opt-out for a machine without PostgreSQL: `BANKSYNC_TEST_SKIP_POSTGRES=1`.
pub const SKIP_VAR: &str = "BANKSYNC_TEST_SKIP_POSTGRES";

/// A PostgreSQL prerequisite of `what` is missing (`why`): the test fails, unless the developer said
/// `BANKSYNC_TEST_SKIP_POSTGRES=1`, in which case it is skipped with a banner on stderr and the caller returns
/// early. A green run then cannot hide PostgreSQL tests that never ran, unless someone asked for exactly that.
pub fn missing(what: &str, why: &str) {
    let opted_out = std::env::var(SKIP_VAR).is_ok_and(|v| v == "1");
    assert!(opted_out, "PostgreSQL {what}: {why}. Start PostgreSQL (see README, Test) or set {SKIP_VAR}=1 to skip");
    // Straight to stderr, not eprintln!: the test harness captures that and would hide the skip on a passing test.
    let bar = "!".repeat(78);
    let _ = writeln!(std::io::stderr(), "\n{bar}\nSKIPPED PostgreSQL {what}: {why} ({SKIP_VAR}=1)\n{bar}");
}

/// Creates the schema `{prefix}_{uuid}` and returns it with an admin connection for dropping it afterwards.
/// An unreachable server fails the test ([`missing`]); `None` only when skipping PostgreSQL was asked for.
pub async fn fresh_schema(prefix: &str, what: &str) -> Option<(sqlx::PgConnection, String)> {
    let url = url();
    let mut admin = match sqlx::PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) => {
            missing(what, &format!("{url} unreachable ({e})"));
            return None;
        }
    };
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.unwrap();
    Some((admin, schema))
}
