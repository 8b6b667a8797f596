//! A transaction's row: its columns, binds and decoding, derived from the one list of fields in
//! `domain::transactions` (`transaction_fields!`), so a new field needs no edit here.
//!
//! Besides the fields, a row holds `transaction_id`, its owners, and three columns the store derives
//! ([`DERIVED_COLUMNS`]); `transactions` adds the user's own fields and timestamps, `sync_staging` the run and
//! the kind of change.

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

use super::exec::{Row, Value};
use super::{Backend, Result, StoreError, codec, raw_json};
use crate::domain::{AccountId, NewTransaction, Transaction, TransactionFields, TransactionId, transaction_fields};

/// How a field type is stored: what it binds as, the NULL of its column type (PostgreSQL types NULL parameters
/// too; every column is text but the flags), and how it is read back. Money, dates and timestamps are fixed-width
/// text (see `codec`).
trait Column: Sized {
    /// What the database returns for the column.
    type Stored;
    fn value(&self) -> Value<'_>;
    fn null() -> Value<'static> {
        Value::Text(None)
    }
    fn decode(stored: Self::Stored) -> Result<Self>;
    /// The column as an element of SQLite's `json_array` (see [`SELECT_COLUMNS_SQLITE`]): its stored text or NULL.
    fn sqlite_json(column: &str) -> String {
        format!("t.{column}")
    }
}

impl Column for String {
    type Stored = String;
    fn value(&self) -> Value<'_> {
        Value::from(self)
    }
    fn decode(stored: String) -> Result<Self> {
        Ok(stored)
    }
}

impl Column for Option<String> {
    type Stored = Option<String>;
    fn value(&self) -> Value<'_> {
        Value::from(self)
    }
    fn decode(stored: Option<String>) -> Result<Self> {
        Ok(stored)
    }
}

impl Column for bool {
    type Stored = bool;
    fn value(&self) -> Value<'_> {
        Value::from(*self)
    }
    fn null() -> Value<'static> {
        Value::Bool(None)
    }
    fn decode(stored: bool) -> Result<Self> {
        Ok(stored)
    }
    /// SQLite stores a flag as 0 or 1; `json()` makes it a JSON boolean inside `json_array`.
    fn sqlite_json(column: &str) -> String {
        format!("json(CASE WHEN t.{column} THEN 'true' ELSE 'false' END)")
    }
}

impl Column for Decimal {
    type Stored = String;
    fn value(&self) -> Value<'_> {
        Value::from(codec::money(*self))
    }
    fn decode(stored: String) -> Result<Self> {
        codec::parse_money(&stored)
    }
}

impl Column for DateTime<Utc> {
    type Stored = String;
    fn value(&self) -> Value<'_> {
        Value::from(codec::ts(*self))
    }
    fn decode(stored: String) -> Result<Self> {
        codec::parse_ts(&stored)
    }
}

impl Column for NaiveDate {
    type Stored = String;
    fn value(&self) -> Value<'_> {
        Value::from(codec::date(*self))
    }
    fn decode(stored: String) -> Result<Self> {
        codec::parse_date(&stored)
    }
}

impl Column for Option<NaiveDate> {
    type Stored = Option<String>;
    fn value(&self) -> Value<'_> {
        Value::from(self.map(codec::date))
    }
    fn decode(stored: Option<String>) -> Result<Self> {
        codec::parse_date_opt(stored.as_deref())
    }
}

/// Ids are stored as their text.
macro_rules! id_columns {
    ($($id:ty),*) => {$(
        impl Column for $id {
            type Stored = String;
            fn value(&self) -> Value<'_> {
                Value::from(self)
            }
            fn decode(stored: String) -> Result<Self> {
                Ok(stored.into())
            }
        }

        impl Column for Option<$id> {
            type Stored = Option<String>;
            fn value(&self) -> Value<'_> {
                Value::from(self)
            }
            fn decode(stored: Option<String>) -> Result<Self> {
                Ok(stored.map(Into::into))
            }
        }
    )*};
}
id_columns!(AccountId, TransactionId);

macro_rules! stored_fields {
    ($($(#[$attr:meta])* $name:ident: $ty:ty,)*) => {
        /// The columns of [`TransactionFields`], in declaration order.
        const FIELD_COLUMNS: &[&str] = &[$(stringify!($name)),*];

        /// Binds the fields in [`FIELD_COLUMNS`] order, borrowing their text rather than copying it.
        fn bind_fields<'a>(row: &mut Row<'_, 'a>, f: &'a TransactionFields) {
            $(row.bind(Column::value(&f.$name));)*
        }

        /// NULL for every field: a staged removal has only an id.
        fn bind_null_fields(row: &mut Row<'_, '_>) {
            $(row.bind(<$ty as Column>::null());)*
        }

        /// The fields of [`SELECT_COLUMNS_SQLITE`]'s array, in [`FIELD_COLUMNS`] order.
        fn sqlite_json_fields() -> Vec<String> {
            vec![$(<$ty as Column>::sqlite_json(stringify!($name))),*]
        }

        /// The fields as both backends return them: PostgreSQL's as columns, SQLite's as one JSON array.
        #[derive(sqlx::FromRow, serde::Deserialize)]
        struct FieldsRow {
            $($name: <$ty as Column>::Stored,)*
        }

        impl FieldsRow {
            fn decode(self) -> Result<TransactionFields> {
                Ok(TransactionFields { $($name: Column::decode(self.$name)?,)* })
            }
        }
    };
}
transaction_fields!(stored_fields);

/// Stored beside the fields: an order-preserving key of `amount` (range filters compare it) and its band (the
/// amount index leads with it), the name lists show, and Plaid's transaction object as received: compressed in
/// `raw_zstd`, with `raw` (its JSON text in rows written before migration `compressed_raw`) left empty (see
/// [`super::raw_json`]).
const DERIVED_COLUMNS: [&str; 5] = ["amount_key", "amount_band", "display_name", "raw", "raw_zstd"];

/// Binds the fields and then [`DERIVED_COLUMNS`] of `t`.
pub(super) fn bind_new_transaction<'a>(row: &mut Row<'_, 'a>, t: &'a NewTransaction) {
    bind_fields(row, &t.fields);
    // The band is read off the key: every row of a sync passes here, so the key is made once.
    let amount_key = codec::amount_key(t.fields.amount);
    let amount_band = codec::band_of_key(&amount_key);
    row.bind(amount_key).bind(amount_band).bind(t.display_name()).bind("").bind(raw_json::compress(&t.raw));
}

/// NULL for the fields and [`DERIVED_COLUMNS`].
pub(super) fn bind_nulls(row: &mut Row<'_, '_>) {
    bind_null_fields(row);
    row.bind(Value::Text(None)).bind(Value::Int(None)).bind(Value::Text(None)).bind(Value::Text(None));
    row.bind(Value::Bytes(None));
}

/// How many values [`bind_new_transaction`] (and [`bind_nulls`]) binds.
pub(super) const BOUND_PER_TRANSACTION: usize = FIELD_COLUMNS.len() + DERIVED_COLUMNS.len();

/// `account_id, amount, …, raw, raw_zstd`.
pub(super) static DATA_COLUMNS: LazyLock<String> =
    LazyLock::new(|| FIELD_COLUMNS.iter().chain(&DERIVED_COLUMNS).copied().collect::<Vec<_>>().join(", "));

/// `c = excluded.c, …` for the fields and derived columns: the incoming version replaces the stored one.
pub(super) static SET_DATA_FROM_EXCLUDED: LazyLock<String> = LazyLock::new(|| {
    FIELD_COLUMNS.iter().chain(&DERIVED_COLUMNS).map(|c| format!("{c} = excluded.{c}")).collect::<Vec<_>>().join(", ")
});

/// The columns of a [`TxnRow`] from `transactions t JOIN items i`, for the store's backend. Not Plaid's `raw` object
/// (~1.5 KB a row, that no list shows): [`super::Store::get_transaction_raw`] reads it alone.
pub(super) fn select_columns(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => &SELECT_COLUMNS_SQLITE,
        Backend::Postgres => &SELECT_COLUMNS_POSTGRES,
    }
}

/// A [`TxnColumns`]' expressions in its order around `fields` (the [`FieldsRow`] part): on PostgreSQL they are the
/// row's columns, on SQLite the elements of its array, so both backends read one list.
fn txn_columns(fields: &str) -> String {
    format!(
        "t.transaction_id, i.item_id, {fields}, t.display_name, t.user_note, t.user_category, t.created_at, \
        t.updated_at"
    )
}

static SELECT_COLUMNS_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    let fields: Vec<String> = FIELD_COLUMNS.iter().map(|c| format!("t.{c}")).collect();
    txn_columns(&fields.join(", "))
});

/// On SQLite a row is one column, a JSON array of the same values ([`TxnColumns`] in order, the fields nested), that
/// SQLite builds on the connection's thread. sqlx hands each column value over from that thread as a copy SQLite
/// allocates and Rust frees on another thread: 29 per row, 2,900 per page. Under 16 connections, allocating those
/// copies and collecting their frees was ~29 % of all CPU (mimalloc's `_mi_page_free_collect` alone 14 %), decoding
/// them one by one ~15 %; as one array, the newest page serves 1.5-1.8x the requests/s.
static SELECT_COLUMNS_SQLITE: LazyLock<String> = LazyLock::new(|| {
    let fields = format!("json_array({})", sqlite_json_fields().join(", "));
    format!("json_array({}) AS {SQLITE_ROW}", txn_columns(&fields))
});
const SQLITE_ROW: &str = "txn";

/// A stored transaction as both backends return it ([`select_columns`]).
pub(super) struct TxnRow(TxnColumns);

#[derive(sqlx::FromRow, serde::Deserialize)]
struct TxnColumns {
    transaction_id: String,
    item_id: String,
    #[sqlx(flatten)]
    fields: FieldsRow,
    display_name: String,
    user_note: Option<String>,
    user_category: Option<String>,
    created_at: String,
    updated_at: String,
}

impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for TxnRow {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> sqlx::Result<Self> {
        <TxnColumns as sqlx::FromRow<'r, sqlx::postgres::PgRow>>::from_row(row).map(TxnRow)
    }
}

impl<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> for TxnRow {
    fn from_row(row: &'r sqlx::sqlite::SqliteRow) -> sqlx::Result<Self> {
        use sqlx::Row as _;
        let json: &str = row.try_get(SQLITE_ROW)?;
        serde_json::from_str(json)
            .map(TxnRow)
            .map_err(|e| sqlx::Error::ColumnDecode { index: SQLITE_ROW.into(), source: Box::new(e) })
    }
}

impl TxnRow {
    /// Where a listing that ends with this row continues (the stored text, exactly as the keyset compares it).
    pub(super) fn cursor(&self) -> codec::TxnCursor {
        codec::TxnCursor {
            date: self.0.fields.date.clone(),
            datetime: self.0.fields.datetime.clone(),
            transaction_id: self.0.transaction_id.clone(),
        }
    }
}

impl TryFrom<TxnRow> for Transaction {
    type Error = StoreError;
    fn try_from(TxnRow(r): TxnRow) -> Result<Self> {
        Ok(Transaction {
            transaction_id: r.transaction_id.into(),
            item_id: r.item_id.into(),
            fields: r.fields.decode()?,
            display_name: r.display_name,
            user_note: r.user_note,
            user_category: r.user_category,
            created_at: codec::parse_ts(&r.created_at)?,
            updated_at: codec::parse_ts(&r.updated_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_has_a_column_and_one_bind() {
        assert_eq!(FIELD_COLUMNS.len(), 22);
        assert_eq!(BOUND_PER_TRANSACTION, 27);
        assert!(DATA_COLUMNS.starts_with("account_id, amount, currency, "));
        assert!(DATA_COLUMNS.ends_with("account_owner, amount_key, amount_band, display_name, raw, raw_zstd"));
    }
}
