//! The API tests' view of the shared harness (tests/common/app.rs): `spawn_app()` starts a banksync server with a
//! fresh SQLite database and its own Plaid simulator, seeds a user with an API token, and captures every log line.

use std::time::Duration;

pub use crate::app::*;

pub async fn spawn_app() -> TestApp {
    TestApp::builder().capture_logs().spawn().await
}

impl TestApp {
    /// Waits (up to 10 s) until `check` holds.
    pub async fn eventually<F, Fut>(&self, what: &str, check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        crate::eventually::eventually(what, Duration::from_secs(10), check).await;
    }
}
