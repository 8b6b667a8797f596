use std::process::ExitCode;

use clap::Parser;

use banksync::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    banksync::telemetry::init();
    match Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        // One line with the cause chain, never a backtrace (whatever RUST_BACKTRACE says): the user needs what
        // went wrong and what to do, which every error here says.
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
