//! Merchant logos through banksync: the browser asks `/api/logos/{id}` and never a third party, so no logo host
//! learns which merchants the user pays (`BANKSYNC_MERCHANT_LOGOS=proxy`, the default; `off`: no logos).
//!
//! - **Ids, not URLs.** A logo's id is a prefix of the SHA-256 of its URL ([`logo_id`]). The route resolves an id
//!   only to a `logo_url` stored in the caller's own visible transactions, so it can never be made to fetch an
//!   arbitrary URL (no SSRF) nor reveal another user's merchants.
//! - **What is fetched.** Only `https` URLs, except the origins in [`LogoOptions::http_origins`] (the embedded
//!   simulator's assets in demo mode; a test's stand-in host), as URL prefixes. No redirects (one could point anywhere), a short
//!   timeout, at most [`MAX_LOGO_BYTES`], and only PNG, JPEG, WebP or GIF — declared by `Content-Type` and
//!   confirmed by the file's magic bytes. SVG is refused: it can carry script.
//! - **Cache.** Images and failures are kept in the database (`logo_cache`, bounded, see `store/logos.rs`), so
//!   every instance sharing it benefits and a backup carries them; an image for [`SUCCESS_TTL`], a failure for
//!   [`FAILURE_TTL`] (the page shows the category icon meanwhile instead of asking again and again).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sha2::{Digest as _, Sha256};

use crate::domain::UserId;
use crate::store::{CachedLogo, LogoImage, Store, StoreError};

/// Largest logo accepted.
pub const MAX_LOGO_BYTES: usize = 256 * 1024;
/// How long one fetch may take in all.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a fetched image is served before it is fetched again.
pub const SUCCESS_TTL: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// How long a failed fetch is remembered.
pub const FAILURE_TTL: chrono::TimeDelta = chrono::TimeDelta::hours(1);
/// Hex digits of the SHA-256 in an id (128 bits: no collision among a user's few thousand merchants).
const ID_HEX_LEN: usize = 32;

/// The id of the logo at `url`.
pub fn logo_id(url: &str) -> String {
    let mut id = hex::encode(Sha256::digest(url.as_bytes()));
    id.truncate(ID_HEX_LEN);
    id
}

/// The path the page loads a logo from.
pub fn logo_path(url: &str) -> String {
    format!("/api/logos/{}", logo_id(url))
}

#[derive(Debug, thiserror::Error)]
pub enum LogoError {
    /// Not an id of one of the caller's logos (or logos are off).
    #[error("logo not found")]
    NotFound,
    /// The logo could not be fetched, or is not an accepted image; remembered for a while.
    #[error("the merchant's logo is not available")]
    Unavailable,
    #[error("store: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct LogoOptions {
    /// URL prefixes (`http://host:port/path/`) that may be fetched over plain http besides https URLs.
    pub http_prefixes: Vec<String>,
}

pub struct LogoProxy {
    store: Arc<Store>,
    client: reqwest::Client,
    options: LogoOptions,
}

impl LogoProxy {
    pub fn new(store: Arc<Store>, options: LogoOptions) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .user_agent("banksync-logo-proxy")
            .build()?;
        Ok(Self { store, client, options })
    }

    /// The image with id `id`, when it is the logo of one of `user_id`'s visible transactions.
    pub async fn get(&self, user_id: &UserId, id: &str) -> Result<LogoImage, LogoError> {
        if id.len() != ID_HEX_LEN || !id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(LogoError::NotFound);
        }
        let cached = self.store.get_logo(id).await?;
        let url = match &cached {
            Some(c) => c.url.clone(),
            // First time anyone asks for this id: find the URL among the caller's own logo URLs.
            None => self
                .store
                .user_logo_urls(user_id)
                .await?
                .into_iter()
                .find(|url| logo_id(url) == id)
                .ok_or(LogoError::NotFound)?,
        };
        // A cached id is only served to a user who has a transaction with its URL.
        if cached.is_some() && !self.store.user_has_logo_url(user_id, &url).await? {
            return Err(LogoError::NotFound);
        }
        if let Some(c) = cached.filter(|c| c.expires_at > Utc::now()) {
            return c.content.map_err(|_| LogoError::Unavailable);
        }
        let fetched_at = Utc::now();
        let content = self.fetch(&url).await;
        if let Err(reason) = &content {
            tracing::info!(logo_id = id, reason = %reason, "merchant logo unavailable");
        }
        let ttl = if content.is_ok() { SUCCESS_TTL } else { FAILURE_TTL };
        let logo = CachedLogo { id: id.to_owned(), url, content, fetched_at, expires_at: fetched_at + ttl };
        self.store.put_logo(&logo).await?;
        logo.content.map_err(|_| LogoError::Unavailable)
    }

    /// Fetches and checks one image; the error is a reason for the log (never shown to the user).
    async fn fetch(&self, raw: &str) -> Result<LogoImage, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
        let allowed = match url.scheme() {
            "https" => true,
            // The parsed URL is normalized (no `..`), so a prefix match stays under the prefix.
            "http" => self.options.http_prefixes.iter().any(|p| url.as_str().starts_with(p.as_str())),
            _ => false,
        };
        if !allowed || url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
            return Err("only https logo URLs are fetched".into());
        }
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "image/png, image/jpeg, image/webp, image/gif")
            .send()
            .await
            .map_err(|e| format!("fetch failed: {e}"))?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(format!("the logo host answered {}", response.status()));
        }
        let declared = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !ACCEPTED.iter().any(|(mime, _)| *mime == declared) {
            return Err(format!("content type {declared:?} is not an accepted image type"));
        }
        if response.content_length().is_some_and(|n| n > MAX_LOGO_BYTES as u64) {
            return Err("larger than the logo size limit".into());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("reading failed: {e}"))? {
            if body.len() + chunk.len() > MAX_LOGO_BYTES {
                return Err("larger than the logo size limit".into());
            }
            body.extend_from_slice(&chunk);
        }
        match sniff(&body) {
            Some(actual) if actual == declared => {}
            other => return Err(format!("declared {declared}, but the bytes are {}", other.unwrap_or("unknown"))),
        }
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
        Ok(LogoImage { content_type: declared, body, etag })
    }
}

/// The accepted types and their magic bytes.
const ACCEPTED: &[(&str, &[&[u8]])] = &[
    ("image/png", &[b"\x89PNG\r\n\x1a\n"]),
    ("image/jpeg", &[b"\xff\xd8\xff"]),
    ("image/gif", &[b"GIF87a", b"GIF89a"]),
    ("image/webp", &[]), // RIFF....WEBP, checked below
];

/// The accepted image type `body` is, by its magic bytes.
fn sniff(body: &[u8]) -> Option<&'static str> {
    if body.len() >= 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    ACCEPTED.iter().find(|(_, magics)| magics.iter().any(|m| body.starts_with(m))).map(|(mime, _)| *mime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_fixed_length_prefix_of_the_urls_sha256() {
        let id = logo_id("https://plaid-merchant-logos.plaid.com/starbucks_956.png");
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(id, logo_id("https://plaid-merchant-logos.plaid.com/starbucks_956.png"));
        assert_ne!(id, logo_id("https://plaid-merchant-logos.plaid.com/starbucks_957.png"));
        assert_eq!(logo_path("x"), format!("/api/logos/{}", logo_id("x")));
    }

    #[test]
    fn only_accepted_images_are_recognized_and_never_svg() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0"), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a.."), Some("image/gif"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>"), None);
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><svg/>"), None);
        assert_eq!(sniff(b""), None);
    }
}
