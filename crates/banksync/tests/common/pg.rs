//! The test PostgreSQL server, shared by every test binary that runs on it: its URL and a fresh schema per test,
//! so tests run in parallel without seeing each other's rows.

use sqlx::Connection as _;

/// `BANKSYNC_TEST_POSTGRES_URL`, else the local server every developer machine and CI have.
pub fn url() -> String {
    std::env::var("BANKSYNC_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Creates the schema `{prefix}_{uuid}` and returns it with an admin connection for dropping it afterwards.
/// An unreachable server fails the test under `CI`; elsewhere it is skipped loudly (`None`), naming `what`.
pub async fn fresh_schema(prefix: &str, what: &str) -> Option<(sqlx::PgConnection, String)> {
    let url = url();
    let mut admin = match sqlx::PgConnection::connect(&url).await {
        Ok(c) => c,
        Err(e) if std::env::var_os("CI").is_some() => panic!("PostgreSQL at {url} unreachable in CI: {e}"),
        Err(e) => {
            eprintln!("!!! SKIPPING PostgreSQL {what}: {url} unreachable ({e}); set CI=1 to make this fail");
            return None;
        }
    };
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut admin).await.unwrap();
    Some((admin, schema))
}
