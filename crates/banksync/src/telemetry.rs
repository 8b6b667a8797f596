//! Logging setup: one `tracing` subscriber for the whole process, filtered by `RUST_LOG`.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. The default level is `info` for our crates and `warn` for
/// dependencies, so a fresh `banksync` prints a handful of useful lines and nothing else.
pub fn init() {
    init_with_default("warn,banksync=info,plaid=info,plaid_sim=info");
}

/// Like [`init`] with another default filter (`RUST_LOG` still wins): the terminal user's data commands log only
/// warnings, so their tables and progress are not buried in service logs.
pub fn init_with_default(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Logs go to stderr: stdout carries command output that scripts read (`banksync token create` prints the token).
    // `try_init` so tests that call into the CLI twice do not panic.
    // Colour only on a terminal: a log redirected to a file or a journal must not carry ANSI escape codes.
    let ansi = std::io::stderr().is_terminal();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}
