//! Where the receiver gets webhook verification keys: Plaid's `/webhook_verification_key/get` through the
//! client's [`KeyCache`] (production), or a fixed set (tests and benchmarks).

use plaid::webhook::{Jwk, KeyCache, KeySource, StaticKeys};

pub enum WebhookKeys {
    Plaid(Box<KeyCache>),
    Static(StaticKeys),
}

impl WebhookKeys {
    pub fn plaid(client: plaid::PlaidClient) -> Self {
        Self::Plaid(Box::new(KeyCache::new(client)))
    }
}

impl WebhookKeys {
    /// The key for `kid` if it is at hand without a fetch (see [`KeyCache::cached`]).
    pub fn cached(&self, kid: &str) -> Option<Jwk> {
        match self {
            Self::Plaid(cache) => cache.cached(kid),
            Self::Static(keys) => keys.cached(kid),
        }
    }

    /// A missing kid may use the key cache's whole fetch budget (see [`KeyCache::key_vouched`]).
    pub async fn key_vouched(&self, kid: &str) -> Result<Option<Jwk>, plaid::Error> {
        match self {
            Self::Plaid(cache) => cache.key_vouched(kid).await,
            Self::Static(keys) => keys.key(kid).await,
        }
    }
}

/// The keys, looked up as vouched for: for a delivery that names one of our Items.
pub struct Vouched<'a>(pub &'a WebhookKeys);

impl KeySource for Vouched<'_> {
    async fn key(&self, kid: &str) -> Result<Option<Jwk>, plaid::Error> {
        self.0.key_vouched(kid).await
    }
}

impl KeySource for WebhookKeys {
    async fn key(&self, kid: &str) -> Result<Option<Jwk>, plaid::Error> {
        match self {
            Self::Plaid(cache) => cache.key(kid).await,
            Self::Static(keys) => keys.key(kid).await,
        }
    }
}
