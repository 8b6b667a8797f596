use clap::Parser;

use banksync::cli::Cli;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    banksync::telemetry::init();
    Cli::parse().run().await
}
