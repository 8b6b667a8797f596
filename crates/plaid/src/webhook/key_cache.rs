//! A [`KeySource`] over `/webhook_verification_key/get` with caching and flood protection.
//!
//! * Known keys are cached by `kid`. Keys without `expired_at` are re-fetched after
//!   [`KeyCacheConfig::ttl`] so that a key Plaid retires is noticed; keys with `expired_at`
//!   are final and stay cached (and are rejected by verification).
//! * A kid Plaid does not know is remembered for [`KeyCacheConfig::negative_ttl`].
//! * Fetches are single-flight (one at a time) and limited to
//!   [`KeyCacheConfig::max_fetches_per_minute`], so a flood of forged kids cannot hammer
//!   Plaid; beyond the limit the lookup fails with [`Error::Throttled`] and the webhook is
//!   rejected (Plaid retries deliveries for 24 hours).
//! * Forged kids cannot use up what genuine webhooks need: a kid nobody vouched for ([`KeySource::key`])
//!   may only use [`KeyCacheConfig::unvouched_fetches_per_minute`] of that budget; the rest is a
//!   reserve for refreshing known keys and for kids the caller vouches for ([`KeyCache::key_vouched`],
//!   e.g. banksync when the delivery names one of its Items). Each unknown kid is fetched once and
//!   then remembered as unknown, and a kid that cannot be one of Plaid's (empty, over 64 characters,
//!   characters other than letters, digits, `-` and `_`) is refused without a fetch.
//! * If a refresh of a known key fails for a transient reason, the cached copy is used.
//! * Fetches are serialized through one lock: simple, and enough for a webhook endpoint,
//!   where keys change rarely and nearly every lookup is a cache hit.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::client::PlaidClient;
use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorType};
use crate::models::Jwk;
use crate::webhook::KeySource;

/// Tuning for [`KeyCache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCacheConfig {
    /// How long an unexpired key is trusted before it is fetched again.
    pub ttl: Duration,
    /// How long an unknown kid is remembered as unknown.
    pub negative_ttl: Duration,
    /// Upper bound on calls to `/webhook_verification_key/get` per rolling minute.
    pub max_fetches_per_minute: usize,
    /// The share of `max_fetches_per_minute` that never-seen kids nobody vouched for may use; the
    /// rest is kept for refreshes and vouched kids.
    pub unvouched_fetches_per_minute: usize,
    /// Upper bound on remembered unknown kids (the oldest are dropped first).
    pub max_unknown_kids: usize,
}

impl Default for KeyCacheConfig {
    fn default() -> Self {
        KeyCacheConfig {
            ttl: Duration::from_secs(60 * 60),
            negative_ttl: Duration::from_secs(5 * 60),
            max_fetches_per_minute: 10,
            unvouched_fetches_per_minute: 4,
            max_unknown_kids: 1024,
        }
    }
}

/// Caching key source backed by a [`PlaidClient`]. Share one per process (e.g. in an `Arc`).
pub struct KeyCache {
    client: PlaidClient,
    config: KeyCacheConfig,
    state: parking_lot::Mutex<State>,
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, (Jwk, Instant)>,
    unknown: HashMap<String, Instant>,
    fetches: VecDeque<Instant>,
    /// The unvouched subset of `fetches`.
    unvouched_fetches: VecDeque<Instant>,
}

/// Which share of the fetch budget a lookup may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FetchClass {
    /// A never-seen kid from a request nobody vouched for: the small share.
    Unvouched,
    /// A refresh of a known key, or a kid the caller vouched for: the whole budget.
    Vouched,
}

/// Whether `kid` can be one of Plaid's key ids (UUIDs in practice): anything else is not worth a fetch.
pub fn plausible_kid(kid: &str) -> bool {
    (1..=64).contains(&kid.len()) && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

enum Cached {
    Fresh(Jwk),
    Unknown,
    Stale(Jwk),
    Missing,
}

impl KeyCache {
    pub fn new(client: PlaidClient) -> Self {
        KeyCache::with_config(client, KeyCacheConfig::default())
    }

    pub fn with_config(client: PlaidClient, config: KeyCacheConfig) -> Self {
        KeyCache {
            client,
            config,
            state: parking_lot::Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    /// Adds a key without fetching it (e.g. keys persisted from a previous run).
    pub fn insert(&self, key: Jwk) {
        self.state.lock().keys.insert(key.kid.clone(), (key, Instant::now()));
    }

    /// The key for `kid` if it is cached and fresh: what [`KeySource::key`] answers without fetching (or counting
    /// against any budget). Lets a caller skip work it needs only before a fetch.
    pub fn cached(&self, kid: &str) -> Option<Jwk> {
        match self.lookup(kid, Instant::now()) {
            Cached::Fresh(key) => Some(key),
            Cached::Stale(_) | Cached::Unknown | Cached::Missing => None,
        }
    }

    fn lookup(&self, kid: &str, now: Instant) -> Cached {
        let state = self.state.lock();
        if let Some((key, fetched_at)) = state.keys.get(kid) {
            // An expired key never becomes valid again: no need to refresh it.
            if key.expired_at.is_some() || now.duration_since(*fetched_at) < self.config.ttl {
                return Cached::Fresh(key.clone());
            }
            return Cached::Stale(key.clone());
        }
        match state.unknown.get(kid) {
            Some(at) if now.duration_since(*at) < self.config.negative_ttl => Cached::Unknown,
            _ => Cached::Missing,
        }
    }

    /// Takes a slot in the rolling-minute fetch budget (in its class's share), if one is free.
    fn take_fetch_slot(&self, now: Instant, class: FetchClass) -> bool {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        for window in [&mut state.fetches, &mut state.unvouched_fetches] {
            while window.front().is_some_and(|oldest| now.duration_since(*oldest) >= Duration::from_secs(60)) {
                window.pop_front();
            }
        }
        if state.fetches.len() >= self.config.max_fetches_per_minute {
            return false;
        }
        if class == FetchClass::Unvouched {
            if state.unvouched_fetches.len() >= self.config.unvouched_fetches_per_minute {
                return false;
            }
            state.unvouched_fetches.push_back(now);
        }
        state.fetches.push_back(now);
        true
    }

    /// Like [`KeySource::key`], for a kid the caller vouches for (the delivery passed checks a forger
    /// is unlikely to pass, such as naming one of the caller's Items): a missing kid may use the whole
    /// fetch budget, not only the unvouched share.
    pub async fn key_vouched(&self, kid: &str) -> Result<Option<Jwk>, Error> {
        self.key_in_class(kid, FetchClass::Vouched).await
    }

    async fn key_in_class(&self, kid: &str, class: FetchClass) -> Result<Option<Jwk>, Error> {
        match self.lookup(kid, Instant::now()) {
            Cached::Fresh(key) => Ok(Some(key)),
            Cached::Unknown => Ok(None),
            Cached::Stale(_) => self.fetch(kid, FetchClass::Vouched).await,
            Cached::Missing if !plausible_kid(kid) => Ok(None),
            Cached::Missing => self.fetch(kid, class).await,
        }
    }

    fn remember_unknown(&self, kid: &str, now: Instant) {
        let mut state = self.state.lock();
        state.keys.remove(kid);
        if state.unknown.len() >= self.config.max_unknown_kids {
            let negative_ttl = self.config.negative_ttl;
            state.unknown.retain(|_, at| now.duration_since(*at) < negative_ttl);
            if state.unknown.len() >= self.config.max_unknown_kids {
                state.unknown.clear();
            }
        }
        state.unknown.insert(kid.to_owned(), now);
    }

    async fn fetch(&self, kid: &str, class: FetchClass) -> Result<Option<Jwk>, Error> {
        let _single_flight = self.fetching.lock().await;
        let now = Instant::now();
        // Another task may have fetched this kid while we waited.
        let stale = match self.lookup(kid, now) {
            Cached::Fresh(key) => return Ok(Some(key)),
            Cached::Unknown => return Ok(None),
            Cached::Stale(key) => Some(key),
            Cached::Missing => None,
        };
        if !self.take_fetch_slot(now, class) {
            return match stale {
                Some(key) => Ok(Some(key)),
                None => Err(Error::Throttled { endpoint: Endpoint::WebhookVerificationKeyGet }),
            };
        }
        match self.client.webhook_verification_key_get(kid).await {
            Ok(response) => {
                let key = response.key;
                let mut state = self.state.lock();
                state.unknown.remove(kid);
                state.keys.insert(kid.to_owned(), (key.clone(), Instant::now()));
                Ok(Some(key))
            }
            // Plaid answers INVALID_WEBHOOK_VERIFICATION_KEY_ID (INVALID_INPUT) for a kid it
            // does not know; any other request-level rejection means the same for us.
            Err(Error::Api { error, .. })
                if matches!(error.error_type, ErrorType::InvalidInput | ErrorType::InvalidRequest) =>
            {
                self.remember_unknown(kid, Instant::now());
                Ok(None)
            }
            Err(error) => match stale {
                Some(key) => {
                    tracing::warn!(
                        error = %error,
                        "could not refresh webhook verification key; using the cached copy"
                    );
                    Ok(Some(key))
                }
                None => Err(error),
            },
        }
    }
}

impl KeySource for KeyCache {
    async fn key(&self, kid: &str) -> Result<Option<Jwk>, Error> {
        self.key_in_class(kid, FetchClass::Unvouched).await
    }
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state.lock();
        f.debug_struct("KeyCache")
            .field("keys", &state.keys.len())
            .field("unknown", &state.unknown.len())
            .field("config", &self.config)
            .finish()
    }
}
