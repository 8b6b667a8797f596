//! PostgreSQL backend: for several banksync processes sharing one database.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::Result;

pub struct PgStore {
    pool: PgPool,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never print it.
        f.debug_struct("PgStore").finish_non_exhaustive()
    }
}

impl PgStore {
    pub async fn connect(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| super::StoreError::InvalidInput(format!("invalid PostgreSQL URL: {e}")))?;
        Self::connect_with(options, 10).await
    }

    pub async fn connect_with(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot connect to PostgreSQL"))?;
        Ok(Self { pool })
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("./migrations/postgres")
    }

    // Staged pages live in the shared `sync_staging` table, so any connection (or process) can commit a run.
    async fn prepare_staging(_tx: &mut sqlx::Transaction<'_, sqlx::Postgres>) -> Result<()> {
        Ok(())
    }

    async fn remember_run(&self, _tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, _run_id: &str) -> Result<()> {
        Ok(())
    }

    async fn check_run(&self, _tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, _run_id: &str) -> Result<()> {
        Ok(())
    }

    async fn clear_staging(&self, tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, run_id: &str) -> Result<()> {
        sqlx::query(super::sql::DELETE_STAGING).bind(run_id).execute(&mut **tx).await?;
        Ok(())
    }

    fn forget_run(&self, _run_id: &str) {}

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

impl_store!(PgStore, sqlx::Postgres, super::Backend::Postgres, super::sql::CLAIM_JOB_POSTGRES);
