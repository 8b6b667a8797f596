//! `banksync migrate-store --from URL --to URL`: copies an installation between SQLite and PostgreSQL.
//!
//! Both databases are migrated to this version's schema first; the target must be empty (every table), so a copy
//! never merges two installations. Every table of [`COPY_TABLES`] is copied in dependency order with all its
//! columns, from one consistent snapshot of the source, each table in one target transaction. Then the target
//! is read back in a snapshot and each table's row count and checksum (see `store/copy.rs`) must equal what was
//! read from the source, else the command fails. Staged pages of a sync in progress are not copied: stop the
//! server first (a sync interrupted that way simply runs again from its last committed cursor).

use anyhow::Context as _;

use crate::store::{COPY_TABLES, Store, TableDigest};

/// One table's outcome, printed by the command.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableCopy {
    pub table: &'static str,
    pub rows: u64,
    pub checksum: String,
}

async fn open(url: &str, which: &str) -> anyhow::Result<std::sync::Arc<Store>> {
    let store = crate::store::connect(url.trim()).await.with_context(|| format!("cannot open the {which} database"))?;
    store.migrate().await.with_context(|| format!("cannot migrate the {which} database"))?;
    Ok(store)
}

/// Copies everything from `from` into the empty `to` and verifies it.
pub async fn migrate_store(from: &str, to: &str) -> anyhow::Result<Vec<TableCopy>> {
    if from.trim() == to.trim() {
        anyhow::bail!("--from and --to name the same database");
    }
    for (url, which) in [(from, "--from"), (to, "--to")] {
        if let Some(dir) = sqlite_dir(url).filter(|d| crate::data_lock::server_running(d)) {
            anyhow::bail!(
                "a banksync server is using the {which} database (it holds {}); stop it first, so no write is lost",
                dir.join(crate::data_lock::LOCK_FILE_NAME).display()
            );
        }
    }
    let source = open(from, "source (--from)").await?;
    let target = open(to, "target (--to)").await?;
    let result = copy(&source, &target).await;
    source.close().await;
    target.close().await;
    result
}

/// The directory of a SQLite URL's file, where a server using it keeps its lock (the default layout).
fn sqlite_dir(url: &str) -> Option<std::path::PathBuf> {
    use std::str::FromStr as _;
    if !url.trim().to_ascii_lowercase().starts_with("sqlite:") {
        return None;
    }
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url.trim()).ok()?;
    let parent = options.get_filename().parent()?.to_owned();
    Some(if parent.as_os_str().is_empty() { std::path::PathBuf::from(".") } else { parent })
}

async fn copy(source: &Store, target: &Store) -> anyhow::Result<Vec<TableCopy>> {
    for table in COPY_TABLES {
        let n = target.count_table(table).await.context("cannot read the target database")?;
        if n > 0 {
            anyhow::bail!(
                "the target database is not empty (table {table} has {n} row(s)); migrate-store only copies into \
                 an empty database"
            );
        }
    }
    let mut columns = Vec::new();
    for table in COPY_TABLES {
        let from = source.table_columns(table).await.context("cannot read the source schema")?;
        let to = target.table_columns(table).await.context("cannot read the target schema")?;
        if from.names() != to.names() {
            anyhow::bail!(
                "table {table} has different columns in the two databases ({:?} vs {:?}): are both migrated by this \
                 banksync version?",
                from.names(),
                to.names()
            );
        }
        columns.push((table, from, to));
    }

    let mut snapshot = source.snapshot().await.context("cannot start reading the source")?;
    let mut copied: Vec<(&'static str, TableDigest)> = Vec::new();
    for (table, from, to) in &columns {
        let digest = target
            .insert_copied_rows(to, &mut snapshot, from)
            .await
            .with_context(|| format!("cannot copy table {table}"))?;
        copied.push((table, digest));
    }
    snapshot.finish().await.context("cannot finish reading the source")?;

    let mut check = target.snapshot().await.context("cannot read the target back")?;
    let mut report = Vec::new();
    for ((table, expected), (_, _, to)) in copied.into_iter().zip(&columns) {
        let got = check.digest(to).await.with_context(|| format!("cannot read table {table} back"))?;
        if got != expected {
            anyhow::bail!(
                "verification failed for table {table}: source {} row(s) checksum {}, target {} row(s) checksum {}",
                expected.rows,
                expected.checksum,
                got.rows,
                got.checksum
            );
        }
        report.push(TableCopy { table, rows: got.rows, checksum: got.checksum });
    }
    check.finish().await.ok();
    Ok(report)
}
