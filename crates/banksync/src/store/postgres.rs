//! PostgreSQL backend: for several banksync processes sharing one database.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::dialect::{CLAIM_JOB_POSTGRES, DELETE_STAGING, Dialect};
use super::exec::{Pool, Sql, Tx};
use super::{Backend, PoolSettings, Result, Store, StoreError};

impl Store {
    pub(super) async fn connect_postgres_url(url: &str, pool: PoolSettings) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidInput(format!("invalid PostgreSQL URL: {e}")))?;
        Self::connect_postgres_with(options, pool).await
    }

    /// One pool of up to `max_connections` for reads and writes (the default acquire timeout).
    pub async fn connect_postgres(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        Self::connect_postgres_with(options, PoolSettings { size: max_connections, ..PoolSettings::default() }).await
    }

    /// One pool for reads and writes. A connection is tested before use, so after a server restart the pool drops
    /// the dead connections and reconnects by itself: while the server is away calls fail after
    /// `acquire_timeout` (answered 503 by the API), and the first call after it is back succeeds.
    pub async fn connect_postgres_with(options: PgConnectOptions, pool: PoolSettings) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(pool.size)
            .acquire_timeout(pool.acquire_timeout)
            .test_before_acquire(true)
            .connect_with(options)
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot connect to PostgreSQL"))?;
        Ok(Store {
            backend: Backend::Postgres,
            writer: Pool::Postgres(pool.clone()),
            reader: Pool::Postgres(pool),
            dialect: Box::new(PgDialect),
            migrator: sqlx::migrate!("./migrations/postgres"),
        })
    }
}

/// Staged pages live in the shared `sync_staging` table, so any connection (or process) can commit a run.
struct PgDialect;

#[async_trait]
impl Dialect for PgDialect {
    fn claim_job_sql(&self) -> &'static str {
        CLAIM_JOB_POSTGRES
    }

    async fn prepare_staging(&self, _tx: &mut Tx) -> Result<()> {
        Ok(())
    }

    async fn remember_run(&self, _tx: &mut Tx, _run_id: &str) -> Result<()> {
        Ok(())
    }

    async fn check_run(&self, _tx: &mut Tx, _run_id: &str) -> Result<()> {
        Ok(())
    }

    async fn clear_staging(&self, tx: &mut Tx, run_id: &str) -> Result<()> {
        tx.execute(&Sql::new(DELETE_STAGING).bind(run_id)).await?;
        Ok(())
    }

    fn forget_run(&self, _run_id: &str) {}
}
