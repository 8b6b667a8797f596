//! Shared simulator state. Locks are parking_lot locks held only for short synchronous sections,
//! never across an `.await`; each Item has its own lock so Items never wait for each other.
//! Lock order: `commit_order`, then the maps, then an Item, then the journal.
//!
//! State that outlives a restart changes only through `commit` and `change_item` (`persist`).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use parking_lot::{Mutex, RwLock};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::errors::ApiError;
use crate::assets::AssetUrls;
use crate::clock::Clock;
use crate::config::SimConfig;
use crate::faults::Faults;
use crate::ids::{self, ID_LEN, mix, tag};
use crate::item::{Item, NewItem};
use crate::persist::{ItemChange, Journal, Op};
use crate::rate_limit::RateLimiter;
use crate::webhooks::Webhooks;
use crate::world::institutions::{self, Institution};

pub type SharedItem = Arc<Mutex<Item>>;

/// Public tokens are single-use and live 30 minutes.
pub const PUBLIC_TOKEN_TTL_MINUTES: i64 = 30;
/// The largest `user_bulk_<N>` history.
pub const MAX_BULK: u64 = 1_000_000;

pub struct PublicToken {
    pub item_id: String,
    pub expires_at: DateTime<Utc>,
    pub used: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMode {
    Create { webhook: Option<String>, days: u32, products: Vec<String> },
    Update { item_id: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkToken {
    pub client_name: String,
    pub expires_at: DateTime<Utc>,
    pub mode: LinkMode,
    /// Where an OAuth institution sends the browser back (`redirect_uri` of `/link/token/create`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

/// An OAuth login in progress: Link sent the browser to the bank's page (`/sim/oauth/authorize`), which sends it
/// back to the link token's `redirect_uri` once approved. Kept in memory only: a restart mid-login starts over.
#[derive(Debug, Clone)]
pub struct OAuthState {
    pub link_token: String,
    pub link_session_id: String,
    pub institution_id: &'static str,
    pub approved: bool,
    /// Set once Link resumed with it and created the Item (a state is used once).
    pub used: bool,
}

/// What creating an Item needs, from `/sandbox/public_token/create` or a Link session.
pub struct CreateItem<'a> {
    pub institution: &'static Institution,
    pub username: &'a str,
    pub password: &'a str,
    pub webhook: Option<String>,
    pub days: u32,
    pub products: Vec<String>,
}

pub struct SimState {
    pub config: SimConfig,
    pub clock: Clock,
    pub items: RwLock<HashMap<String, SharedItem>>,
    pub access_tokens: RwLock<HashMap<String, String>>,
    pub public_tokens: Mutex<HashMap<String, PublicToken>>,
    pub link_tokens: Mutex<HashMap<String, LinkToken>>,
    /// link_session_id → link_token
    pub link_sessions: Mutex<HashMap<String, String>>,
    /// OAuth logins in progress, by `oauth_state_id`.
    pub oauth_states: Mutex<HashMap<String, OAuthState>>,
    pub webhooks: Arc<Webhooks>,
    pub faults: Faults,
    pub rate_limits: RateLimiter,
    pub exchanges: Mutex<Vec<Value>>,
    pub latency_rng: Mutex<ChaCha8Rng>,
    /// Logo and category-icon URLs (`config.asset_base_url`).
    pub assets: AssetUrls,
    /// Whether the client has the Transactions Refresh add-on (`POST /sim/client` switches it).
    pub transactions_refresh_enabled: AtomicBool,
    pub(crate) item_counter: AtomicU64,
    pub(crate) token_counter: AtomicU64,
    /// Where changes are saved (`SimConfig::state_dir`); None keeps them in memory only.
    pub(crate) journal: Option<Journal>,
    /// Serializes `commit`, so simulator-wide changes are saved in the order they are applied.
    pub(crate) commit_order: Mutex<()>,
}

/// Item number `n`'s creation parameters, from a live request or the journal.
pub(crate) struct ItemParams<'a> {
    pub n: u64,
    pub institution: &'static Institution,
    pub username: &'a str,
    pub bulk: Option<u64>,
    pub webhook: Option<String>,
    pub days: u32,
    pub products: Vec<String>,
    pub created_at: DateTime<Utc>,
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let seed = config.seed;
        Self {
            clock: Clock::default(),
            items: RwLock::new(HashMap::new()),
            access_tokens: RwLock::new(HashMap::new()),
            public_tokens: Mutex::new(HashMap::new()),
            link_tokens: Mutex::new(HashMap::new()),
            link_sessions: Mutex::new(HashMap::new()),
            oauth_states: Mutex::new(HashMap::new()),
            webhooks: Arc::new(Webhooks::new(config.deliver_webhooks)),
            faults: Faults::new(seed),
            rate_limits: RateLimiter::new(config.rate_limits),
            exchanges: Mutex::new(Vec::new()),
            latency_rng: Mutex::new(ids::rng(mix(seed, tag("latency")))),
            assets: AssetUrls::new(config.asset_base_url.as_deref()),
            transactions_refresh_enabled: AtomicBool::new(config.transactions_refresh_enabled),
            item_counter: AtomicU64::new(0),
            token_counter: AtomicU64::new(0),
            journal: None,
            commit_order: Mutex::new(()),
            config,
        }
    }

    /// A deterministic token such as `public-sandbox-<uuid>`, with its counter value.
    pub fn new_token(&self, prefix: &str) -> (u64, String) {
        let n = self.token_counter.fetch_add(1, Ordering::SeqCst);
        let id = ids::uuid(mix(mix(self.config.seed, tag(prefix)), n));
        (n, format!("{prefix}-sandbox-{id}"))
    }

    /// Sandbox credentials: `user_good`/`pass_good`, `user_transactions_dynamic` or
    /// `user_bulk_<N>` with any non-empty password. Returns the bulk size, if any.
    pub fn check_credentials(username: &str, password: &str) -> Result<Option<u64>, ApiError> {
        match username {
            "user_good" if password == "pass_good" => Ok(None),
            "user_transactions_dynamic" if !password.trim().is_empty() => Ok(None),
            _ => match username.strip_prefix("user_bulk_").map(str::parse::<u64>) {
                Some(Ok(n)) if (1..=MAX_BULK).contains(&n) && !password.trim().is_empty() => Ok(Some(n)),
                _ => Err(ApiError::invalid_credentials()),
            },
        }
    }

    /// Creates an Item (the one path shared by the sandbox endpoint and Link).
    pub fn create_item(&self, req: CreateItem<'_>) -> Result<String, ApiError> {
        let bulk = Self::check_credentials(req.username, req.password)?;
        let n = self.item_counter.fetch_add(1, Ordering::SeqCst);
        let item_id = ids::base62(mix(self.item_seed(n, req.institution, req.username), tag("item")), ID_LEN);
        self.commit(&Op::CreateItem {
            n,
            item_id: item_id.clone(),
            institution_id: req.institution.id.to_owned(),
            username: req.username.to_owned(),
            bulk,
            webhook: req.webhook,
            days: req.days,
            products: req.products,
        })?;
        Ok(item_id)
    }

    fn item_seed(&self, n: u64, institution: &Institution, username: &str) -> u64 {
        mix(mix(self.config.seed, n), mix(tag(institution.id), tag(username)))
    }

    /// Builds Item number `n` and makes it reachable (the `Op::CreateItem` of `create_item` and
    /// of replay); returns its item_id.
    pub(crate) fn insert_item(&self, p: ItemParams<'_>) -> String {
        let seed = self.item_seed(p.n, p.institution, p.username);
        // The persona (what the bank holds for this login) depends on who logs in where, not on which Item
        // this is: linking the same login again (a relink) finds the same accounts and history. Ids come
        // from the per-Item seed, so each Item's are new.
        let persona_seed = mix(self.config.seed, mix(tag(p.institution.id), tag(p.username)));
        let item_id = ids::base62(mix(seed, tag("item")), ID_LEN);
        let access_token = format!("access-sandbox-{}", ids::uuid(mix(seed, tag("access"))));
        let created_at = p.created_at;
        let (initial_ready_at, historical_ready_at) =
            Item::ready_times(created_at, self.config.product_ready_delay, self.config.historical_delay());
        let item = Item::new(NewItem {
            seed,
            persona_seed,
            item_id: item_id.clone(),
            access_token: access_token.clone(),
            institution: p.institution,
            webhook: p.webhook,
            created_at,
            username: p.username.to_owned(),
            products: p.products,
            days: p.days,
            bulk: p.bulk,
            initial_ready_at,
            historical_ready_at,
            assets: self.assets.clone(),
        });
        self.access_tokens.write().insert(access_token, item_id.clone());
        self.items.write().insert(item_id.clone(), Arc::new(Mutex::new(item)));
        item_id
    }

    pub fn issue_public_token(&self, item_id: &str) -> Result<String, ApiError> {
        let (n, token) = self.new_token("public");
        self.commit(&Op::PublicToken { n, token: token.clone(), item_id: item_id.to_owned() })?;
        Ok(token)
    }

    /// Exchanges a public token once; returns (access_token, item_id).
    pub fn exchange_public_token(&self, token: &str) -> Result<(String, String), ApiError> {
        if !token.starts_with("public-") {
            return Err(ApiError::invalid_public_token(
                "provided public token is in an invalid format. expected format: public-<environment>-<identifier>",
            ));
        }
        let item_id = {
            let mut tokens = self.public_tokens.lock();
            let Some(rec) = tokens.get_mut(token) else {
                return Err(ApiError::invalid_public_token("could not find matching public token"));
            };
            if rec.used {
                return Err(ApiError::invalid_public_token("provided public token has already been exchanged"));
            }
            if self.clock.now() >= rec.expires_at {
                return Err(ApiError::invalid_public_token(
                    "provided public token is expired. Public tokens expire 30 minutes after creation at which point they can no longer be exchanged",
                ));
            }
            // Saved under the lock, so a token is exchanged once; replay marks it used the same way.
            self.record(&Op::Exchange { token: token.to_owned() })?;
            rec.used = true;
            rec.item_id.clone()
        };
        let item = self
            .item_by_id(&item_id)
            .ok_or_else(|| ApiError::invalid_public_token("could not find matching public token"))?;
        let access_token = item.lock().access_token.clone();
        Ok((access_token, item_id))
    }

    pub fn item_by_id(&self, item_id: &str) -> Option<SharedItem> {
        self.items.read().get(item_id).cloned()
    }

    pub fn item_by_token(&self, token: &str) -> Result<SharedItem, ApiError> {
        if !token.starts_with("access-") || token.split('-').count() < 3 {
            return Err(ApiError::malformed_access_token());
        }
        let item_id = self.access_tokens.read().get(token).cloned().ok_or_else(ApiError::invalid_access_token)?;
        self.item_by_id(&item_id).ok_or_else(ApiError::invalid_access_token)
    }

    pub fn remove_item(&self, item_id: &str) -> Result<(), ApiError> {
        self.commit(&Op::RemoveItem { item_id: item_id.to_owned() })
    }

    /// Sends `body` to the Item's webhook; false if the Item has none.
    pub fn fire_item_webhook(&self, item: &mut Item, body: Value) -> Result<bool, ApiError> {
        let Some(url) = item.webhook.clone() else {
            return Ok(false);
        };
        let code = body.get("webhook_code").and_then(Value::as_str).unwrap_or_default().to_owned();
        self.change_item(item, ItemChange::WebhookSent { code })?;
        self.webhooks.send(&url, body);
        Ok(true)
    }

    /// A new webhook signing key signs from now on; returns its kid.
    pub fn rotate_key(&self) -> Result<String, ApiError> {
        let key = crate::webhooks::Webhooks::new_key();
        let kid = key.kid.clone();
        self.commit(&Op::RotateKey { key })?;
        Ok(kid)
    }

    /// Moves the clock forward; returns the total offset.
    pub fn advance_clock(&self, seconds: i64) -> Result<i64, ApiError> {
        self.commit(&Op::ClockAdvance { seconds })?;
        Ok(self.clock.offset_seconds())
    }

    pub fn institution(id: &str) -> Option<&'static Institution> {
        institutions::find(id)
    }
}
