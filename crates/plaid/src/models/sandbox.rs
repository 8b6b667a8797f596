//! Sandbox-only endpoints: `/sandbox/public_token/create`, `/sandbox/item/fire_webhook`,
//! `/sandbox/item/reset_login`.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::common::Product;
use super::webhooks::{WebhookCode, WebhookType};
use crate::secret::{AccessToken, PublicToken};

/// Creates an Item without Link. Sandbox only.
#[derive(Debug, Clone, Serialize)]
pub struct SandboxPublicTokenCreateRequest {
    pub institution_id: String,
    pub initial_products: Vec<Product>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<SandboxPublicTokenCreateOptions>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SandboxPublicTokenCreateOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Default `user_good`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_username: Option<String>,
    /// Default `pass_good`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub override_password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<SandboxTransactionsOptions>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SandboxTransactionsOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_requested: Option<u32>,
}

impl SandboxPublicTokenCreateRequest {
    pub fn new(institution_id: impl Into<String>, initial_products: impl IntoIterator<Item = Product>) -> Self {
        SandboxPublicTokenCreateRequest {
            institution_id: institution_id.into(),
            initial_products: initial_products.into_iter().collect(),
            options: None,
        }
    }

    fn options_mut(&mut self) -> &mut SandboxPublicTokenCreateOptions {
        self.options.get_or_insert_with(Default::default)
    }

    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.options_mut().webhook = Some(url.into());
        self
    }

    pub fn credentials(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        let options = self.options_mut();
        options.override_username = Some(username.into());
        options.override_password = Some(password.into());
        self
    }

    pub fn days_requested(mut self, days: u32) -> Self {
        self.options_mut().transactions.get_or_insert_with(Default::default).days_requested = Some(days);
        self
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct SandboxPublicTokenCreateResponse {
    pub public_token: PublicToken,
    #[serde(default)]
    pub request_id: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SandboxItemFireWebhookRequest {
    pub access_token: AccessToken,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_type: Option<WebhookType>,
    pub webhook_code: WebhookCode,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SandboxItemFireWebhookResponse {
    #[serde(default)]
    pub webhook_fired: bool,
    #[serde(default)]
    pub request_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SandboxItemResetLoginResponse {
    #[serde(default)]
    pub reset_login: bool,
    #[serde(default)]
    pub request_id: String,
}
