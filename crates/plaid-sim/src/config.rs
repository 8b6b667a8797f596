//! The simulator's configuration (the public contract in `notes/sim-contract.md`).

use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone)]
pub struct SimConfig {
    /// Same seed => same world (ids, accounts, transactions).
    pub seed: u64,
    pub client_id: String,
    pub secret: String,
    /// How long `/accounts/balance/get` takes (a random duration in this range, slept asynchronously).
    pub balance_latency: RangeInclusive<Duration>,
    /// How long after Item creation `/transactions/sync` answers NOT_READY with an empty cursor.
    /// After it the Item's first data is ready (INITIAL_UPDATE_COMPLETE: the last 30 days).
    pub product_ready_delay: Duration,
    /// How long after Item creation the full history is ready (HISTORICAL_UPDATE_COMPLETE). None
    /// (the default): together with the first data, one step, as most tests want. `Some(d)` with
    /// `d` > `product_ready_delay` gives Plaid's two phases (a shorter `d` means one step too).
    pub historical_ready_delay: Option<Duration>,
    /// How long after `/transactions/refresh` the bank's unpulled activity shows up (the bank
    /// answering Plaid), measured on the simulator's clock.
    pub refresh_delay: Duration,
    /// Whether the client has the Transactions Refresh add-on; without it `/transactions/refresh`
    /// answers INVALID_PRODUCT. `POST /sim/client` switches it at runtime.
    pub transactions_refresh_enabled: bool,
    /// Serve logos and category icons from `{asset_base_url}/logos/{slug}.png` and
    /// `{asset_base_url}/categories/{PRIMARY}.svg` (see `plaid_sim::assets::router`) instead of
    /// Plaid's hosts, for offline demos. None: Plaid's URLs.
    pub asset_base_url: Option<String>,
    /// Plaid's sandbox rate limits (plaid-api.md §4).
    pub rate_limits: bool,
    /// Keep every API request/response for `GET /sim/exchanges`.
    pub record_exchanges: bool,
    /// POST webhooks to Items' webhook URLs (attempts are logged either way).
    pub deliver_webhooks: bool,
    /// Where the simulator keeps its state across restarts (see `persist`): None keeps everything
    /// in memory only. Open a simulator with a state directory through `Simulator::open`.
    pub state_dir: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            client_id: "banksync-sim-client".to_owned(),
            secret: "banksync-sim-secret".to_owned(),
            balance_latency: Duration::ZERO..=Duration::ZERO,
            product_ready_delay: Duration::ZERO,
            historical_ready_delay: None,
            refresh_delay: Duration::from_secs(1),
            transactions_refresh_enabled: true,
            asset_base_url: None,
            rate_limits: true,
            record_exchanges: false,
            deliver_webhooks: true,
            state_dir: None,
        }
    }
}

// The secret never appears in Debug output.
impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("seed", &self.seed)
            .field("client_id", &self.client_id)
            .field("secret", &"[redacted]")
            .field("balance_latency", &self.balance_latency)
            .field("product_ready_delay", &self.product_ready_delay)
            .field("historical_ready_delay", &self.historical_ready_delay)
            .field("refresh_delay", &self.refresh_delay)
            .field("transactions_refresh_enabled", &self.transactions_refresh_enabled)
            .field("asset_base_url", &self.asset_base_url)
            .field("rate_limits", &self.rate_limits)
            .field("record_exchanges", &self.record_exchanges)
            .field("deliver_webhooks", &self.deliver_webhooks)
            .field("state_dir", &self.state_dir)
            .finish()
    }
}

impl SimConfig {
    /// When a new Item's full history is ready, after creation (never before its first data).
    pub fn historical_delay(&self) -> Duration {
        self.historical_ready_delay.unwrap_or(self.product_ready_delay).max(self.product_ready_delay)
    }
}
