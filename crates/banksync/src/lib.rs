//! banksync: link bank accounts through Plaid and keep balances and transactions in your own database.
//!
//! The binary (`src/main.rs`) is a thin shell over this library so that integration tests and the CLI
//! share one code path.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod balances;
pub mod budget;
pub mod cli;
pub mod config;
pub mod data_lock;
pub mod domain;
pub mod events;
pub mod export;
pub mod file_modes;
pub mod health;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod link;
pub mod logos;
pub mod normalize;
pub mod relink;
pub mod retention;
pub mod startup;
pub mod state;
pub mod store;
pub mod sync;
pub mod telemetry;
pub mod vault;
pub mod web;
pub mod webhooks;

/// mimalloc rather than glibc's malloc: the server allocates small values at a high rate from many threads (decoded
/// rows, JSON), where glibc's arenas showed up as ~30 % of the CPU in a profile of the transaction list under 16
/// connections. Declared here in the library, not in `main.rs`, so every binary that runs this code uses it: the
/// server, the benchmarks that run it in-process (their figures are the shipped server's) and the tests.
/// Its `override` feature makes it C's `malloc` too: SQLite allocates a copy of every column value sqlx reads on
/// the connection's thread and Rust frees it on another, glibc's slowest path (~12 % of the newest page's profile).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
