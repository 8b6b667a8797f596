use std::process::ExitCode;

use clap::Parser;

use banksync::cli::Cli;

/// mimalloc rather than glibc's malloc: the server allocates small values at a high rate from many threads (decoded
/// rows, JSON), where glibc's arenas showed up as ~30 % of the CPU in a profile of the transaction list under 16
/// connections. The benchmarks that run the server in-process use it too (`benches/support`, `queries`, `load`).
/// Its `override` feature makes it C's `malloc` too: SQLite allocates a copy of every column value sqlx reads on
/// the connection's thread and Rust frees it on another, glibc's slowest path (~12 % of the newest page's profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
