use std::process::ExitCode;

use clap::Parser;

use banksync::cli::Cli;

/// Errors end as one line on standard error (the causes joined with ": ") and exit code 1, never a backtrace
/// (whatever RUST_BACKTRACE says); clap's usage errors exit with 2.
#[tokio::main]
async fn main() -> ExitCode {
    // First thing: every file this process creates (database, WAL, keys, backups, the simulator's journal) is
    // owner-only from birth; see `banksync::file_modes`.
    banksync::file_modes::restrict_umask();
    let cli = Cli::parse();
    if cli.is_data_command() {
        // A table or JSON on stdout: only warnings in the log unless RUST_LOG asks for more.
        banksync::telemetry::init_with_default("warn");
    } else {
        banksync::telemetry::init();
    }
    match cli.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
