//! What every request handler can reach: one cheap-to-clone context (the realworld-axum pattern), built once by
//! [`crate::startup::Application::build`].

use std::sync::Arc;

use crate::balances::BalanceRefresher;
use crate::events::EventHub;
use crate::jobs::JobQueue;
use crate::link::LinkService;
use crate::store::Store;
use crate::sync::SyncEngine;
use crate::vault::Vault;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    pub vault: Arc<Vault>,
    /// Reports every call to the audit trail.
    pub plaid: plaid::PlaidClient,
    pub sync: SyncEngine,
    pub balances: BalanceRefresher,
    pub link: Arc<LinkService>,
    pub web: Arc<WebSettings>,
    /// Failed-login counter per user name.
    pub login_throttle: Arc<crate::auth::throttle::LoginThrottle>,
    /// Live events for `GET /api/events`.
    pub events: EventHub,
    /// The durable job queue: every sync goes through it, by its rules (cooldown, holds, follow-ups).
    pub jobs: JobQueue,
    /// `POST /webhooks/plaid`.
    pub webhooks: Arc<crate::webhooks::WebhookReceiver>,
    /// `GET /api/logos/{id}`: merchant logos fetched and cached by banksync.
    pub logos: Arc<crate::logos::LogoProxy>,
}

/// Settings the HTTP layer needs, resolved at startup.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Mark the session cookie `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// The Link script the page loads: Plaid's CDN, or the simulator's drop-in copy.
    pub link_script_url: String,
    /// "simulator" or "plaid", shown on the page.
    pub plaid_mode: &'static str,
    /// Whether transactions carry a `logo_path` and `/api/logos/{id}` serves logos.
    pub merchant_logos: crate::config::MerchantLogos,
}
