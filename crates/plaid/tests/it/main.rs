//! Integration tests for the Plaid client against a wiremock server. One binary, several
//! modules, so the suite links once.

mod common;
mod decoding;
mod errors;
mod fuzz_corpus;
mod requests;
mod retries;
mod tracing_output;
mod webhooks;
