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
    pub product_ready_delay: Duration,
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
            .field("rate_limits", &self.rate_limits)
            .field("record_exchanges", &self.record_exchanges)
            .field("deliver_webhooks", &self.deliver_webhooks)
            .field("state_dir", &self.state_dir)
            .finish()
    }
}
