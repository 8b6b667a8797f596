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

impl KeySource for WebhookKeys {
    async fn key(&self, kid: &str) -> Result<Option<Jwk>, plaid::Error> {
        match self {
            Self::Plaid(cache) => cache.key(kid).await,
            Self::Static(keys) => keys.key(kid).await,
        }
    }
}
