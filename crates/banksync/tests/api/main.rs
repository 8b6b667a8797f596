//! API integration tests: one binary, one module per area. Each test starts its own banksync (random port, fresh
//! SQLite database in a temp dir) and its own Plaid simulator, through the harness shared with tests/lifecycle.

#[path = "../common/app.rs"]
mod app;
mod auth;
mod authz;
mod bad_input;
mod balances;
mod browser;
mod cli;
mod cli_data;
#[path = "../common/eventually.rs"]
mod eventually;
mod freshness;
mod hardening;
mod health;
mod helpers;
mod openapi;
mod relink;
mod startup;
mod sync;
mod tokens;
mod webdata;
