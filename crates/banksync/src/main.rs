use clap::Parser;

use banksync::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    banksync::telemetry::init();
    let cli = Cli::parse();
    match cli.command {
        Command::Sim(args) => banksync::cli::run_sim(args).await,
    }
}
