//! Command-line interface: argument parsing and the subcommands' entry points.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "banksync", version, about = "Your bank data, in your own database, through Plaid")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the offline Plaid simulator as a standalone HTTP server.
    Sim(SimArgs),
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, env = "BANKSYNC_SIM_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// Seed of the simulated bank world: the same seed gives the same institutions, Items and transactions.
    #[arg(long, env = "BANKSYNC_SIM_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Client id the simulator accepts (sent by clients as PLAID-CLIENT-ID).
    #[arg(long, env = "BANKSYNC_SIM_CLIENT_ID", default_value = "banksync-sim-client")]
    pub client_id: String,
    /// Secret the simulator accepts (sent by clients as PLAID-SECRET). A simulator secret is not a real secret.
    #[arg(long, env = "BANKSYNC_SIM_SECRET", default_value = "banksync-sim-secret")]
    pub secret: String,
    /// Latency range of /accounts/balance/get, e.g. `2s..8s` or `500ms`. Real Plaid takes 3 s typically, up to 30 s.
    #[arg(long, env = "BANKSYNC_SIM_BALANCE_LATENCY", default_value = "1s..3s", value_parser = parse_duration_range)]
    pub balance_latency: RangeInclusive<Duration>,
    /// How long a new Item's transactions stay "not ready" (empty next_cursor), like Plaid's first seconds.
    #[arg(long, env = "BANKSYNC_SIM_PRODUCT_READY_DELAY", default_value = "2s", value_parser = parse_duration)]
    pub product_ready_delay: Duration,
    /// Disable Plaid's sandbox rate limits.
    #[arg(long)]
    pub no_rate_limits: bool,
    /// Keep every API request/response for `GET /sim/exchanges` (for conformance checks).
    #[arg(long)]
    pub record_exchanges: bool,
}

impl SimArgs {
    pub fn to_config(&self) -> plaid_sim::SimConfig {
        plaid_sim::SimConfig {
            seed: self.seed,
            client_id: self.client_id.clone(),
            secret: self.secret.clone(),
            balance_latency: self.balance_latency.clone(),
            product_ready_delay: self.product_ready_delay,
            rate_limits: !self.no_rate_limits,
            record_exchanges: self.record_exchanges,
            ..plaid_sim::SimConfig::default()
        }
    }
}

/// Runs the standalone simulator until Ctrl-C or SIGTERM.
pub async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let sim = plaid_sim::Simulator::new(args.to_config());
    let running = sim.spawn(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        url = %running.url(),
        client_id = %args.client_id,
        "Plaid simulator listening; point PLAID_BASE_URL here (Link script: {}/link/v2/stable/link-initialize.js)",
        running.url()
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Parses `1500ms`, `2s`, `1m` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Parses `MIN..MAX` (e.g. `2s..8s`) or a single duration meaning a fixed value.
pub fn parse_duration_range(s: &str) -> Result<RangeInclusive<Duration>, String> {
    let (min, max) = match s.split_once("..") {
        Some((a, b)) => (parse_duration(a)?, parse_duration(b)?),
        None => {
            let d = parse_duration(s)?;
            (d, d)
        }
    };
    if min > max {
        return Err(format!("invalid range {s:?}: the minimum is above the maximum"));
    }
    Ok(min..=max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_ranges_parse_both_forms_and_reject_inverted_ones() {
        assert_eq!(parse_duration_range("2s..8s").unwrap(), Duration::from_secs(2)..=Duration::from_secs(8));
        assert_eq!(parse_duration_range("500ms").unwrap(), Duration::from_millis(500)..=Duration::from_millis(500));
        assert!(parse_duration_range("8s..2s").is_err());
        assert!(parse_duration_range("fast").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
