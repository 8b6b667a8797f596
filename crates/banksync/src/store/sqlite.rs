//! SQLite backend: the default, one file in the data directory.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use super::Result;

/// SQLite allows one writer at a time. Sending every write through one connection turns lock contention inside this
/// process into a queue (no SQLITE_BUSY), while readers use their own connections and, thanks to WAL, never wait.
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path/to/file.db`, `sqlite:file.db`, or
    /// `sqlite::memory:`).
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| super::StoreError::InvalidInput(format!("invalid SQLite URL: {e}")))?;
        Self::connect_with(options).await
    }

    /// Opens the database file at `path`, creating it if missing.
    pub async fn open(path: &std::path::Path) -> Result<Self> {
        Self::connect_with(SqliteConnectOptions::new().filename(path)).await
    }

    pub async fn connect_with(options: SqliteConnectOptions) -> Result<Self> {
        let in_memory = options.get_filename().to_str().is_some_and(|f| f.is_empty() || f.contains(":memory:"));
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(options.clone())
            .await
            .map_err(|e| anyhow::Error::new(e).context("cannot open the SQLite database"))?;
        // An in-memory database exists once per connection, so it cannot have separate readers.
        let reader = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await
                .map_err(|e| anyhow::Error::new(e).context("cannot open the SQLite database"))?
        };
        Ok(Self { writer, reader })
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    fn migrator() -> sqlx::migrate::Migrator {
        sqlx::migrate!("./migrations/sqlite")
    }

    /// Closes both pools (checkpointing the WAL).
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

impl_store!(SqliteStore, sqlx::Sqlite, super::Backend::Sqlite, super::sql::CLAIM_JOB_SQLITE);
