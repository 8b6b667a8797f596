//! The one place that knows there are two sqlx backends.
//!
//! Store code builds a backend-neutral statement ([`Sql`]: text with `$n` placeholders, which both SQLite and
//! PostgreSQL accept, plus its values) and runs it on a [`Pool`] or a [`Tx`]; only this module matches on the
//! backend to hand the statement to sqlx. Being generic over `sqlx::Database` instead would need higher-ranked
//! `Executor`/`Encode`/`IntoArguments` bounds on every function (Rust does not imply a trait's where-clauses), and
//! the number of rows a statement changed has no generic accessor; `sqlx::Any` cannot carry our row types and
//! would hide the SQLite connection whose TEMP table stages syncs. The values we bind are few kinds (text, bool,
//! integer, bytes, each nullable), so one small enum carries them.

use std::borrow::Cow;
use std::fmt::Write as _;

use sqlx::FromRow;
use sqlx::postgres::{PgArguments, PgConnection, PgPool, PgRow, Postgres};
use sqlx::sqlite::{Sqlite, SqliteArguments, SqliteConnection, SqlitePool, SqliteRow};

use super::{Result, StoreError};
use crate::domain::{AccountId, ItemRef, JobId, PlaidItemId, TransactionId, UserId};

/// One bound value. `None` binds SQL NULL of the variant's type (PostgreSQL checks a parameter's type even when it
/// is NULL, so a nullable boolean column needs `Bool(None)`, not a text NULL).
#[derive(Debug, Clone)]
pub enum Value<'a> {
    Text(Option<Cow<'a, str>>),
    Bool(Option<bool>),
    Int(Option<i64>),
    Bytes(Option<Cow<'a, [u8]>>),
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(v)))
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(Some(Cow::Borrowed(v)))
    }
}
impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Some(Cow::Owned(v)))
    }
}
impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Value::Text(v.map(Cow::Borrowed))
    }
}
impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Value::Text(v.as_deref().map(Cow::Borrowed))
    }
}
impl From<Option<String>> for Value<'_> {
    fn from(v: Option<String>) -> Self {
        Value::Text(v.map(Cow::Owned))
    }
}
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Bool(Some(v))
    }
}
impl From<Option<bool>> for Value<'_> {
    fn from(v: Option<bool>) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}
impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}
impl<'a> From<&'a [u8]> for Value<'a> {
    fn from(v: &'a [u8]) -> Self {
        Value::Bytes(Some(Cow::Borrowed(v)))
    }
}
impl From<Vec<u8>> for Value<'_> {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(Some(Cow::Owned(v)))
    }
}
impl<'a> From<&'a Vec<u8>> for Value<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Value::Bytes(Some(Cow::Borrowed(v)))
    }
}

/// Ids bind as their text.
macro_rules! id_values {
    ($($id:ty),*) => {$(
        impl<'a> From<&'a $id> for Value<'a> {
            fn from(v: &'a $id) -> Self {
                Value::Text(Some(Cow::Borrowed(v.as_str())))
            }
        }
        impl<'a> From<Option<&'a $id>> for Value<'a> {
            fn from(v: Option<&'a $id>) -> Self {
                Value::Text(v.map(|v| Cow::Borrowed(v.as_str())))
            }
        }
        impl<'a> From<&'a Option<$id>> for Value<'a> {
            fn from(v: &'a Option<$id>) -> Self {
                Value::Text(v.as_ref().map(|v| Cow::Borrowed(v.as_str())))
            }
        }
    )*};
}
id_values!(UserId, ItemRef, PlaidItemId, AccountId, TransactionId, JobId);

/// A statement and its values. Constant SQL names its placeholders (`$1`, `$2`, …) and [`Sql::bind`] fills them
/// in order; dynamic SQL is assembled with [`Sql::push`] and [`Sql::push_bind`], which writes the next `$n`.
#[derive(Debug, Clone)]
pub struct Sql<'a> {
    text: Cow<'a, str>,
    values: Vec<Value<'a>>,
    /// [`Sql::sqlite_text`], made once.
    sqlite_text: std::sync::OnceLock<String>,
    /// See [`Sql::planned_per_call`].
    per_call_plan: bool,
}

impl<'a> Sql<'a> {
    pub fn new(text: impl Into<Cow<'a, str>>) -> Self {
        Self { text: text.into(), values: Vec::new(), sqlite_text: std::sync::OnceLock::new(), per_call_plan: false }
    }

    /// Room for `n` values (a multi-row insert knows its size).
    pub fn with_capacity(text: impl Into<Cow<'a, str>>, n: usize) -> Self {
        Self { values: Vec::with_capacity(n), ..Self::new(text) }
    }

    /// The value of the next placeholder the text already names.
    pub fn bind(mut self, value: impl Into<Value<'a>>) -> Self {
        self.values.push(value.into());
        self
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.sqlite_text.take();
        self.text.to_mut().push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn push_bind(&mut self, value: impl Into<Value<'a>>) -> &mut Self {
        self.values.push(value.into());
        let n = self.values.len();
        self.sqlite_text.take();
        let _ = write!(self.text.to_mut(), "${n}");
        self
    }

    /// Appends `(…), (…)` with one row per item: `row` binds each column value of one row with [`Row::bind`].
    pub fn push_rows<T>(&mut self, items: impl IntoIterator<Item = T>, mut row: impl FnMut(&mut Row<'_, 'a>, T)) {
        for (i, item) in items.into_iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            let mut r = Row { sql: self, first: true };
            row(&mut r, item);
            self.push(")");
        }
    }

    /// The same statement after `prefix` (e.g. `EXPLAIN `).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.text = Cow::Owned(format!("{prefix}{}", self.text));
        self.sqlite_text.take();
        self
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text for SQLite, whose `$n` is a *named* parameter: every name is looked up in a list of those seen so
    /// far, and binding asks each parameter's name, which makes a 30,000-value insert quadratic (measured: the
    /// initial sync of 100,000 transactions took 106 s instead of 3 s). When the placeholders are `$1, $2, …` in
    /// order, each once (every statement built with `push_bind`), they become anonymous `?`; otherwise (a few
    /// constant statements use one value twice) numbered `?n`. Our SQL never has `$` inside a string literal.
    fn sqlite_text(&self) -> &str {
        self.sqlite_text.get_or_init(|| {
            let text = self.text.as_ref();
            let in_order = placeholders(text).enumerate().all(|(i, n)| n == i + 1);
            let mut out = String::with_capacity(text.len());
            let mut rest = text;
            while let Some(at) = rest.find('$') {
                let (before, from_dollar) = rest.split_at(at);
                let digits = from_dollar[1..].bytes().take_while(u8::is_ascii_digit).count();
                out.push_str(before);
                out.push_str(if digits == 0 { "$" } else { "?" });
                if !in_order {
                    out.push_str(&from_dollar[1..=digits]);
                }
                rest = &from_dollar[1 + digits..];
            }
            out.push_str(rest);
            out
        })
    }

    /// PostgreSQL plans this statement anew on every call, for its values (an unnamed statement, not the
    /// connection's cache). For a statement whose best plan depends on its values: after five calls of a cached
    /// statement PostgreSQL may switch to a generic plan made without them, and for a search that plan intersected
    /// the whole GIN match set with a whole account (206 ms, against 5 ms planned for the values; issue 12). SQLite
    /// never looks at the values when it plans, so it keeps its cache.
    pub fn planned_per_call(mut self) -> Self {
        self.per_call_plan = true;
        self
    }

    /// Makes the SQLite text now (it is made on first use otherwise): a statement built while another runs (the
    /// initial sync's pipeline) then costs nothing more on the way to the database.
    pub fn prepared(self) -> Self {
        self.sqlite_text();
        self
    }

    /// Whether PostgreSQL may keep the statement prepared (see [`Sql::planned_per_call`]).
    fn cached(&self) -> bool {
        !self.per_call_plan
    }

    fn sqlite_args(&self) -> Result<SqliteArguments<'_>> {
        arguments(&self.values)
    }

    fn pg_args(&self) -> Result<PgArguments> {
        arguments(&self.values)
    }
}

/// `values` as one backend's arguments (the same four kinds of value for both).
fn arguments<'q, DB, A>(values: &'q [Value<'_>]) -> Result<A>
where
    DB: sqlx::Database,
    A: sqlx::Arguments<'q, Database = DB> + Default,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<bool>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q [u8]>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut args = A::default();
    args.reserve(values.len(), 0);
    for v in values {
        let added = match v {
            Value::Text(t) => args.add(t.as_deref()),
            Value::Bool(b) => args.add(*b),
            Value::Int(i) => args.add(*i),
            Value::Bytes(b) => args.add(b.as_deref()),
        };
        added.map_err(bind_error)?;
    }
    Ok(args)
}

/// The numbers of the `$n` placeholders of `text`, in order.
fn placeholders(text: &str) -> impl Iterator<Item = usize> + '_ {
    text.split('$').skip(1).filter_map(|after| {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        after[..digits].parse().ok()
    })
}

/// One row of a multi-row `VALUES` list being written.
pub struct Row<'s, 'a> {
    sql: &'s mut Sql<'a>,
    first: bool,
}

impl<'a> Row<'_, 'a> {
    pub fn bind(&mut self, value: impl Into<Value<'a>>) -> &mut Self {
        if !std::mem::take(&mut self.first) {
            self.sql.push(", ");
        }
        self.sql.push_bind(value);
        self
    }
}

fn bind_error(e: sqlx::error::BoxDynError) -> StoreError {
    StoreError::Other(anyhow::anyhow!("cannot bind a statement value: {e}"))
}

/// A row type both backends can decode (`#[derive(sqlx::FromRow)]` gives both).
pub trait DbRow: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}
impl<T> DbRow for T where T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin {}

/// A connection pool of either backend.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// A database transaction of either backend; dropped without [`Tx::commit`], it rolls back.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Where a statement runs: a pool (any connection) or the connection of a transaction.
enum On<'a> {
    SqlitePool(&'a SqlitePool),
    PgPool(&'a PgPool),
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl On<'_> {
    /// Rows changed.
    async fn execute(self, sql: &Sql<'_>) -> Result<u64> {
        Ok(match self {
            On::SqlitePool(p) => {
                sqlx::query_with(sql.sqlite_text(), sql.sqlite_args()?).execute(p).await?.rows_affected()
            }
            On::PgPool(p) => {
                sqlx::query_with(sql.text(), sql.pg_args()?).persistent(sql.cached()).execute(p).await?.rows_affected()
            }
            On::Sqlite(c) => sqlx::query_with(sql.sqlite_text(), sql.sqlite_args()?).execute(c).await?.rows_affected(),
            On::Postgres(c) => {
                sqlx::query_with(sql.text(), sql.pg_args()?).persistent(sql.cached()).execute(c).await?.rows_affected()
            }
        })
    }

    async fn fetch_all<T: DbRow>(self, sql: &Sql<'_>) -> Result<Vec<T>> {
        Ok(match self {
            On::SqlitePool(p) => sqlx::query_as_with(sql.sqlite_text(), sql.sqlite_args()?).fetch_all(p).await?,
            On::PgPool(p) => {
                sqlx::query_as_with(sql.text(), sql.pg_args()?).persistent(sql.cached()).fetch_all(p).await?
            }
            On::Sqlite(c) => sqlx::query_as_with(sql.sqlite_text(), sql.sqlite_args()?).fetch_all(c).await?,
            On::Postgres(c) => {
                sqlx::query_as_with(sql.text(), sql.pg_args()?).persistent(sql.cached()).fetch_all(c).await?
            }
        })
    }

    async fn fetch_optional<T: DbRow>(self, sql: &Sql<'_>) -> Result<Option<T>> {
        Ok(match self {
            // Run to the end: an autocommitted `INSERT/UPDATE … RETURNING` yields its row before SQLite commits, and
            // stopping at the first row drops the commit's error (a full disk, a read-only file) — the caller would
            // get the id of a row that was never stored.
            On::SqlitePool(p) => {
                sqlx::query_as_with(sql.sqlite_text(), sql.sqlite_args()?).fetch_all(p).await?.into_iter().next()
            }
            On::PgPool(p) => {
                sqlx::query_as_with(sql.text(), sql.pg_args()?).persistent(sql.cached()).fetch_optional(p).await?
            }
            On::Sqlite(c) => sqlx::query_as_with(sql.sqlite_text(), sql.sqlite_args()?).fetch_optional(c).await?,
            On::Postgres(c) => {
                sqlx::query_as_with(sql.text(), sql.pg_args()?).persistent(sql.cached()).fetch_optional(c).await?
            }
        })
    }
}

impl Pool {
    fn on(&self) -> On<'_> {
        match self {
            Pool::Sqlite(p) => On::SqlitePool(p),
            Pool::Postgres(p) => On::PgPool(p),
        }
    }

    /// Rows changed.
    pub async fn execute(&self, sql: &Sql<'_>) -> Result<u64> {
        self.on().execute(sql).await
    }

    pub async fn fetch_all<T: DbRow>(&self, sql: &Sql<'_>) -> Result<Vec<T>> {
        self.on().fetch_all(sql).await
    }

    pub async fn fetch_optional<T: DbRow>(&self, sql: &Sql<'_>) -> Result<Option<T>> {
        self.on().fetch_optional(sql).await
    }

    /// `NotFound` when no row comes back.
    pub async fn fetch_one<T: DbRow>(&self, sql: &Sql<'_>) -> Result<T> {
        self.on().fetch_optional(sql).await?.ok_or(StoreError::NotFound)
    }

    pub async fn begin(&self) -> Result<Tx> {
        Ok(match self {
            Pool::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Pool::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    pub async fn migrate(&self, migrator: &sqlx::migrate::Migrator) -> Result<()> {
        match self {
            Pool::Sqlite(p) => migrator.run(p).await?,
            Pool::Postgres(p) => migrator.run(p).await?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

impl Tx {
    fn on(&mut self) -> On<'_> {
        match self {
            Tx::Sqlite(tx) => On::Sqlite(tx),
            Tx::Postgres(tx) => On::Postgres(tx),
        }
    }

    /// Rows changed.
    pub async fn execute(&mut self, sql: &Sql<'_>) -> Result<u64> {
        self.on().execute(sql).await
    }

    pub async fn fetch_optional<T: DbRow>(&mut self, sql: &Sql<'_>) -> Result<Option<T>> {
        self.on().fetch_optional(sql).await
    }

    pub async fn commit(self) -> Result<()> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await?,
            Tx::Postgres(tx) => tx.commit().await?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_bind_numbers_placeholders_after_the_bound_ones() {
        let mut sql = Sql::new("SELECT 1 WHERE a = $1").bind("x");
        sql.push(" AND b = ").push_bind(2_i64);
        sql.push(" VALUES ");
        sql.push_rows([1_i64, 2], |r, v| {
            r.bind(v).bind(true);
        });
        assert_eq!(sql.text(), "SELECT 1 WHERE a = $1 AND b = $2 VALUES ($3, $4), ($5, $6)");
        assert_eq!(sql.sqlite_text(), "SELECT 1 WHERE a = ? AND b = ? VALUES (?, ?), (?, ?)");
        let reused = Sql::new("UPDATE t SET a = $2, b = $2 WHERE id = $1").bind("id").bind("v");
        assert_eq!(reused.sqlite_text(), "UPDATE t SET a = ?2, b = ?2 WHERE id = ?1");
        assert_eq!(sql.values.len(), 6);
    }
}
