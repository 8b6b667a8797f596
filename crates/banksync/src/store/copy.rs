//! Whole-table access for the admin commands: an online SQLite copy (`VACUUM INTO`), and a backend-neutral table
//! copy with a checksum computed the same way on both backends (`banksync migrate-store`).
//!
//! Rows are read and written with the columns each table has in the database (introspected), so a later
//! migration's columns are copied without touching this file; only [`COPY_TABLES`] (the order that satisfies the
//! foreign keys) names tables. The checksum must not depend on collation (PostgreSQL sorts text by locale, SQLite
//! by bytes), so it hashes each row, sorts the row hashes and hashes the sorted list.

use std::collections::BTreeMap;
use std::path::Path;

use futures::TryStreamExt as _;
use sha2::{Digest as _, Sha256};
use sqlx::Row as _;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;

use super::exec::{Sql, Tx, Value};
use super::{Backend, Result, Store, StoreError};

/// Every table holding an installation's data, parents before children. `sync_staging` is left out: it only holds
/// the pages of a sync in progress (a TEMP table on SQLite), which no copy can carry over.
pub const COPY_TABLES: &[&str] = &[
    "users",
    "sessions",
    "api_tokens",
    "items",
    "accounts",
    "transactions",
    "sync_runs",
    "plaid_calls",
    "webhook_events",
    "jobs",
    "item_sync_state",
    "service_facts",
    "rate_reservations",
    "rate_blocks",
    "named_locks",
    "overview_visits",
];

/// Rows per multi-row insert (the widest table has ~35 columns: far below both bind limits).
const INSERT_BATCH: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Bool,
    Int,
    Bytes,
}

/// A table's columns as the database declares them, sorted by name (the checksum's column order).
#[derive(Debug, Clone)]
pub struct TableColumns {
    table: &'static str,
    columns: BTreeMap<String, Kind>,
    /// PostgreSQL `GENERATED ALWAYS AS IDENTITY` columns: an insert must say `OVERRIDING SYSTEM VALUE` and the
    /// sequence must move past the copied ids.
    identity: Vec<String>,
}

impl TableColumns {
    pub fn names(&self) -> Vec<&str> {
        self.columns.keys().map(String::as_str).collect()
    }

    fn kinds(&self) -> Vec<Kind> {
        self.columns.values().copied().collect()
    }

    fn select(&self) -> String {
        let list: Vec<String> = self.columns.keys().map(|c| format!("\"{c}\"")).collect();
        format!("SELECT {} FROM {}", list.join(", "), self.table)
    }
}

/// What a table holds: its row count and the collation-independent checksum of its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDigest {
    pub rows: u64,
    pub checksum: String,
}

#[derive(Default)]
struct Digester {
    rows: Vec<[u8; 32]>,
}

impl Digester {
    fn add(&mut self, cells: &[Value<'static>]) {
        let mut h = Sha256::new();
        for cell in cells {
            let (tag, bytes): (u8, Vec<u8>) = match cell {
                Value::Text(Some(t)) => (b'T', t.as_bytes().to_vec()),
                Value::Bool(Some(b)) => (b'B', vec![u8::from(*b)]),
                Value::Int(Some(i)) => (b'I', i.to_be_bytes().to_vec()),
                Value::Bytes(Some(b)) => (b'X', b.to_vec()),
                _ => (b'N', Vec::new()),
            };
            h.update([tag]);
            h.update((bytes.len() as u64).to_be_bytes());
            h.update(&bytes);
        }
        self.rows.push(h.finalize().into());
    }

    fn finish(mut self) -> TableDigest {
        self.rows.sort_unstable();
        let mut h = Sha256::new();
        for row in &self.rows {
            h.update(row);
        }
        TableDigest { rows: self.rows.len() as u64, checksum: hex::encode(h.finalize()) }
    }
}

/// A read-only, consistent view of the whole database (one read transaction), for copying and verifying.
pub struct Snapshot {
    tx: Tx,
}

impl Store {
    /// Writes a consistent copy of the live SQLite database to `path` (which must not exist or be empty) while
    /// the server keeps running: `VACUUM INTO` reads inside one read transaction, so a sync committing meanwhile is
    /// either wholly in the copy or not at all.
    pub async fn vacuum_into(&self, path: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::InvalidInput("VACUUM INTO is SQLite only".into()));
        }
        let path = path.to_str().ok_or_else(|| StoreError::InvalidInput("the backup path is not UTF-8".into()))?;
        self.scanner.execute(&Sql::new("VACUUM INTO $1").bind(path)).await?;
        Ok(())
    }

    /// `PRAGMA integrity_check` (SQLite) — `ok` when sound.
    pub async fn integrity_check(&self) -> Result<String> {
        if self.backend != Backend::Sqlite {
            return Ok("ok".into());
        }
        let rows: Vec<(String,)> = self.scanner.fetch_all(&Sql::new("PRAGMA integrity_check")).await?;
        Ok(rows.into_iter().map(|(r,)| r).collect::<Vec<_>>().join("; "))
    }

    /// Starts a consistent read-only view (REPEATABLE READ on PostgreSQL; one WAL read transaction on SQLite).
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let mut tx = self.scanner.begin().await?;
        if self.backend == Backend::Postgres {
            tx.execute(&Sql::new("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")).await?;
        }
        Ok(Snapshot { tx })
    }

    /// Copies `rows` (read from another store) into `table` in one transaction; returns how many were written.
    /// Moves a PostgreSQL identity sequence past the copied ids so new rows do not collide.
    pub async fn insert_copied_rows(
        &self,
        columns: &TableColumns,
        source: &mut Snapshot,
        source_columns: &TableColumns,
    ) -> Result<TableDigest> {
        let names = source_columns.names();
        for name in &names {
            if !columns.columns.contains_key(*name) {
                return Err(StoreError::InvalidInput(format!(
                    "table {} has a column {name} the target does not have: are both on the same banksync version?",
                    columns.table
                )));
            }
        }
        let quoted: Vec<String> = names.iter().map(|c| format!("\"{c}\"")).collect();
        let overriding = if self.backend == Backend::Postgres && !columns.identity.is_empty() {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let insert = format!("INSERT INTO {} ({}){overriding} VALUES ", columns.table, quoted.join(", "));
        let mut tx = self.writer.begin().await?;
        let mut digest = Digester::default();
        let mut batch: Vec<Vec<Value<'static>>> = Vec::with_capacity(INSERT_BATCH);
        let target_kinds: Vec<Kind> = names.iter().map(|n| columns.columns[*n]).collect();
        let select = source_columns.select();
        let source_kinds = source_columns.kinds();
        let mut rows = source.rows(&select, &source_kinds);
        while let Some(row) = rows.try_next().await? {
            let row = convert(row, &target_kinds)?;
            digest.add(&row);
            batch.push(row);
            if batch.len() == INSERT_BATCH {
                insert_batch(&mut tx, &insert, std::mem::take(&mut batch)).await?;
            }
        }
        drop(rows);
        if !batch.is_empty() {
            insert_batch(&mut tx, &insert, batch).await?;
        }
        if self.backend == Backend::Postgres {
            for column in &columns.identity {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{t}', '{column}'), COALESCE(MAX(\"{column}\"), 0) + 1, \
                     false) FROM {t}",
                    t = columns.table
                );
                tx.fetch_optional::<(i64,)>(&Sql::new(sql)).await?;
            }
        }
        tx.commit().await?;
        Ok(digest.finish())
    }

    /// The columns of `table` as this database declares them.
    pub async fn table_columns(&self, table: &'static str) -> Result<TableColumns> {
        let mut columns = BTreeMap::new();
        let mut identity = Vec::new();
        match self.backend {
            Backend::Sqlite => {
                let rows: Vec<(String, String)> = self
                    .reader
                    .fetch_all(&Sql::new("SELECT name, type FROM pragma_table_info($1)").bind(table))
                    .await?;
                for (name, ty) in rows {
                    columns.insert(name, kind_of(&ty)?);
                }
            }
            Backend::Postgres => {
                let rows: Vec<(String, String, String)> = self
                    .reader
                    .fetch_all(
                        &Sql::new(
                            // Generated columns (the search document) are computed from the others on
                            // insert: neither read nor written, nor part of the checksum.
                            "SELECT column_name::TEXT, data_type::TEXT, is_identity::TEXT FROM information_schema.columns \
                             WHERE table_schema = current_schema() AND table_name = $1 AND is_generated = 'NEVER'",
                        )
                        .bind(table),
                    )
                    .await?;
                for (name, ty, is_identity) in rows {
                    if is_identity == "YES" {
                        identity.push(name.clone());
                    }
                    columns.insert(name, kind_of(&ty)?);
                }
            }
        }
        if columns.is_empty() {
            return Err(StoreError::InvalidInput(format!("the database has no table {table}: is it migrated?")));
        }
        Ok(TableColumns { table, columns, identity })
    }

    /// Rows in `table`.
    pub async fn count_table(&self, table: &'static str) -> Result<i64> {
        let (n,): (i64,) = self.reader.fetch_one(&Sql::new(format!("SELECT COUNT(*) FROM {table}"))).await?;
        Ok(n)
    }
}

impl Snapshot {
    /// Count and checksum of a table as this snapshot sees it.
    pub async fn digest(&mut self, columns: &TableColumns) -> Result<TableDigest> {
        let (select, kinds) = (columns.select(), columns.kinds());
        let mut digest = Digester::default();
        let mut rows = self.rows(&select, &kinds);
        while let Some(row) = rows.try_next().await? {
            digest.add(&convert(row, &kinds)?);
        }
        Ok(digest.finish())
    }

    /// Ends the read transaction.
    pub async fn finish(self) -> Result<()> {
        self.tx.commit().await
    }

    /// The rows of `select`, each cell decoded as `kinds` says.
    fn rows<'s>(
        &'s mut self,
        select: &'s str,
        kinds: &'s [Kind],
    ) -> futures::stream::BoxStream<'s, Result<Vec<Value<'static>>>> {
        match &mut self.tx {
            Tx::Sqlite(tx) => {
                let conn: &mut sqlx::SqliteConnection = tx;
                Box::pin(
                    sqlx::query(select)
                        .fetch(conn)
                        .map_err(StoreError::from)
                        .and_then(move |row: SqliteRow| std::future::ready(sqlite_cells(&row, kinds))),
                )
            }
            Tx::Postgres(tx) => {
                let conn: &mut sqlx::PgConnection = tx;
                Box::pin(
                    sqlx::query(select)
                        .fetch(conn)
                        .map_err(StoreError::from)
                        .and_then(move |row: PgRow| std::future::ready(pg_cells(&row, kinds))),
                )
            }
        }
    }
}

fn kind_of(declared: &str) -> Result<Kind> {
    let t = declared.to_ascii_lowercase();
    Ok(match t.as_str() {
        "text" | "character varying" => Kind::Text,
        "boolean" => Kind::Bool,
        "bigint" | "integer" | "int" | "int8" | "smallint" => Kind::Int,
        "blob" | "bytea" => Kind::Bytes,
        other => return Err(StoreError::corrupt(format!("a column of unexpected type {other}"))),
    })
}

fn sqlite_cells(row: &SqliteRow, kinds: &[Kind]) -> Result<Vec<Value<'static>>> {
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            Ok(match kind {
                Kind::Text => Value::Text(row.try_get::<Option<String>, _>(i)?.map(Into::into)),
                Kind::Bool => Value::Bool(row.try_get::<Option<bool>, _>(i)?),
                Kind::Int => Value::Int(row.try_get::<Option<i64>, _>(i)?),
                Kind::Bytes => Value::Bytes(row.try_get::<Option<Vec<u8>>, _>(i)?.map(Into::into)),
            })
        })
        .collect()
}

fn pg_cells(row: &PgRow, kinds: &[Kind]) -> Result<Vec<Value<'static>>> {
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            Ok(match kind {
                Kind::Text => Value::Text(row.try_get::<Option<String>, _>(i)?.map(Into::into)),
                Kind::Bool => Value::Bool(row.try_get::<Option<bool>, _>(i)?),
                Kind::Int => Value::Int(match row.try_get::<Option<i64>, _>(i) {
                    Ok(v) => v,
                    Err(_) => row.try_get::<Option<i32>, _>(i)?.map(i64::from),
                }),
                Kind::Bytes => Value::Bytes(row.try_get::<Option<Vec<u8>>, _>(i)?.map(Into::into)),
            })
        })
        .collect()
}

/// A source value in the kind of the target column (both schemas use the same kinds; this catches drift).
fn convert(row: Vec<Value<'static>>, kinds: &[Kind]) -> Result<Vec<Value<'static>>> {
    row.into_iter()
        .zip(kinds)
        .map(|(v, k)| match (v, k) {
            (v @ Value::Text(_), Kind::Text)
            | (v @ Value::Bool(_), Kind::Bool)
            | (v @ Value::Int(_), Kind::Int)
            | (v @ Value::Bytes(_), Kind::Bytes) => Ok(v),
            (v, k) => Err(StoreError::corrupt(format!("a {v:?} value for a {k:?} column"))),
        })
        .collect()
}

async fn insert_batch(tx: &mut Tx, insert: &str, rows: Vec<Vec<Value<'static>>>) -> Result<()> {
    let mut sql = Sql::new(insert.to_owned());
    sql.push_rows(rows, |r, row| {
        for cell in row {
            r.bind(cell);
        }
    });
    tx.execute(&sql).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(rows: &[Vec<Value<'static>>]) -> TableDigest {
        let mut d = Digester::default();
        for row in rows {
            d.add(row);
        }
        d.finish()
    }

    fn text(s: &str) -> Value<'static> {
        Value::Text(Some(s.to_owned().into()))
    }

    #[test]
    fn the_checksum_ignores_row_order_but_sees_every_value_kind_and_null() {
        let a = vec![text("b"), Value::Int(Some(1)), Value::Bool(Some(true))];
        let b = vec![text("a"), Value::Int(Some(2)), Value::Bool(None)];
        assert_eq!(digest(&[a.clone(), b.clone()]), digest(&[b.clone(), a.clone()]));
        assert_eq!(digest(std::slice::from_ref(&a)).rows, 1);
        let changed = vec![text("b"), Value::Int(Some(1)), Value::Bool(Some(false))];
        assert_ne!(digest(&[a.clone(), b.clone()]).checksum, digest(&[changed, b.clone()]).checksum);
        // NULL text is not the empty string; bytes are not text.
        assert_ne!(digest(&[vec![Value::Text(None)]]), digest(&[vec![text("")]]));
        assert_ne!(digest(&[vec![Value::Bytes(Some(b"x".to_vec().into()))]]), digest(&[vec![text("x")]]));
        // Cell boundaries count: ("ab", "") is not ("a", "b").
        assert_ne!(digest(&[vec![text("ab"), text("")]]), digest(&[vec![text("a"), text("b")]]));
    }

    #[test]
    fn declared_types_map_to_kinds_and_unknown_ones_are_refused() {
        assert_eq!(kind_of("TEXT").unwrap(), Kind::Text);
        assert_eq!(kind_of("bytea").unwrap(), Kind::Bytes);
        assert_eq!(kind_of("INTEGER").unwrap(), Kind::Int);
        assert_eq!(kind_of("BOOLEAN").unwrap(), Kind::Bool);
        assert!(kind_of("numeric").is_err());
    }
}
