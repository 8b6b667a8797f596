//! The merchant logo cache (`logo_cache`) and the questions the logo route asks about a user's transactions.
//!
//! A cache row is either an image or a remembered failure, each until its `expires_at`. The table is bounded by
//! [`Store::put_logo`]: past [`MAX_CACHE_BYTES`] of images or [`MAX_CACHE_ROWS`] rows, the oldest rows go.

use chrono::{DateTime, Utc};

use super::codec::{self, parse_ts};
use super::exec::Sql;
use super::{Result, Store, StoreError};
use crate::domain::UserId;

/// Bytes of images the cache keeps at most (a logo is at most a few hundred KiB, usually a few KiB).
pub const MAX_CACHE_BYTES: i64 = 64 * 1024 * 1024;
/// Rows (images and remembered failures) the cache keeps at most.
pub const MAX_CACHE_ROWS: i64 = 20_000;

/// One cached logo or remembered failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedLogo {
    /// Derived from `url` (see `crate::logos::logo_id`).
    pub id: String,
    pub url: String,
    /// `Ok((content_type, body, etag))`, or the failure to remember.
    pub content: Result<LogoImage, String>,
    pub fetched_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoImage {
    pub content_type: String,
    pub body: Vec<u8>,
    pub etag: String,
}

const UPSERT_LOGO: &str = "INSERT INTO logo_cache (id, url, content_type, body, etag, failure, size, fetched_at, \
    expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO UPDATE SET url = excluded.url, \
    content_type = excluded.content_type, body = excluded.body, etag = excluded.etag, failure = excluded.failure, \
    size = excluded.size, fetched_at = excluded.fetched_at, expires_at = excluded.expires_at";

#[derive(sqlx::FromRow)]
struct LogoRow {
    id: String,
    url: String,
    content_type: Option<String>,
    body: Option<Vec<u8>>,
    etag: Option<String>,
    failure: Option<String>,
    fetched_at: String,
    expires_at: String,
}

impl TryFrom<LogoRow> for CachedLogo {
    type Error = StoreError;
    fn try_from(r: LogoRow) -> Result<Self, StoreError> {
        let content = match (r.failure, r.content_type, r.body, r.etag) {
            (Some(failure), ..) => Err(failure),
            (None, Some(content_type), Some(body), Some(etag)) => Ok(LogoImage { content_type, body, etag }),
            _ => return Err(StoreError::corrupt(format!("logo_cache row {} has neither image nor failure", r.id))),
        };
        Ok(CachedLogo {
            id: r.id,
            url: r.url,
            content,
            fetched_at: parse_ts(&r.fetched_at)?,
            expires_at: parse_ts(&r.expires_at)?,
        })
    }
}

impl Store {
    /// The distinct logo URLs of the user's visible transactions (read from the `transactions_user_logo` index).
    pub async fn user_logo_urls(&self, user_id: &UserId) -> Result<Vec<String>> {
        let select = Sql::new(
            "SELECT DISTINCT t.logo_url FROM transactions t JOIN items i ON i.id = t.item_ref \
             WHERE t.user_id = $1 AND t.logo_url IS NOT NULL AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL",
        )
        .bind(user_id);
        let rows: Vec<(String,)> = self.reader.fetch_all(&select).await?;
        Ok(rows.into_iter().map(|(url,)| url).collect())
    }

    /// Whether one of the user's visible transactions carries `url` as its logo.
    pub async fn user_has_logo_url(&self, user_id: &UserId, url: &str) -> Result<bool> {
        let select = Sql::new(
            "SELECT CAST(1 AS BIGINT) FROM transactions t JOIN items i ON i.id = t.item_ref WHERE t.user_id = $1 AND t.logo_url = $2 \
             AND t.deleted_at IS NULL AND i.initial_sync_run IS NULL LIMIT 1",
        )
        .bind(user_id)
        .bind(url);
        let row: Option<(i64,)> = self.reader.fetch_optional(&select).await?;
        Ok(row.is_some())
    }

    pub async fn get_logo(&self, id: &str) -> Result<Option<CachedLogo>> {
        let select = Sql::new(
            "SELECT id, url, content_type, body, etag, failure, fetched_at, expires_at FROM logo_cache WHERE id = $1",
        )
        .bind(id);
        let row: Option<LogoRow> = self.writer.fetch_optional(&select).await?;
        row.map(TryInto::try_into).transpose()
    }

    /// Stores (or replaces) a logo or a failure, then evicts the oldest rows past the cache's bounds.
    pub async fn put_logo(&self, logo: &CachedLogo) -> Result<()> {
        let (content_type, body, etag, failure, size) = match &logo.content {
            Ok(image) => (
                Some(image.content_type.as_str()),
                Some(image.body.as_slice()),
                Some(image.etag.as_str()),
                None,
                i64::try_from(image.body.len()).unwrap_or(i64::MAX),
            ),
            Err(failure) => (None, None, None, Some(failure.as_str()), 0),
        };
        let upsert = Sql::new(UPSERT_LOGO)
            .bind(logo.id.as_str())
            .bind(logo.url.as_str())
            .bind(content_type)
            .bind(exec_bytes(body))
            .bind(etag)
            .bind(failure)
            .bind(size)
            .bind(codec::ts(logo.fetched_at))
            .bind(codec::ts(logo.expires_at));
        self.writer.execute(&upsert).await?;
        self.evict_logos(MAX_CACHE_BYTES, MAX_CACHE_ROWS).await
    }

    /// Deletes the oldest rows until the images total at most `max_bytes` and the rows number at most `max_rows`.
    pub async fn evict_logos(&self, max_bytes: i64, max_rows: i64) -> Result<()> {
        let totals = Sql::new("SELECT COUNT(*), CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM logo_cache");
        let (rows, bytes): (i64, i64) = self.writer.fetch_one(&totals).await?;
        if rows <= max_rows && bytes <= max_bytes {
            return Ok(());
        }
        let oldest = Sql::new("SELECT id, size FROM logo_cache ORDER BY fetched_at, id");
        let candidates: Vec<(String, i64)> = self.writer.fetch_all(&oldest).await?;
        let (mut rows, mut bytes) = (rows, bytes);
        let mut doomed = Vec::new();
        for (id, size) in candidates {
            if rows <= max_rows && bytes <= max_bytes {
                break;
            }
            rows -= 1;
            bytes -= size;
            doomed.push(id);
        }
        for chunk in doomed.chunks(500) {
            let mut delete = Sql::new("DELETE FROM logo_cache WHERE id IN (");
            for (i, id) in chunk.iter().enumerate() {
                delete.push(if i == 0 { "" } else { ", " }).push_bind(id.as_str());
            }
            delete.push(")");
            self.writer.execute(&delete).await?;
        }
        Ok(())
    }
}

fn exec_bytes(body: Option<&[u8]>) -> super::exec::Value<'_> {
    super::exec::Value::Bytes(body.map(std::borrow::Cow::Borrowed))
}
