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
