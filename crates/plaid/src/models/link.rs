//! `/link/token/create`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{CountryCode, Product};
use crate::secret::AccessToken;

/// Request for `/link/token/create`. Build with [`LinkTokenCreateRequest::new`] and the
/// chained setters, or fill the public fields directly.
#[derive(Debug, Clone, Serialize)]
pub struct LinkTokenCreateRequest {
    /// Shown in Link; at most 30 characters are displayed.
    pub client_name: String,
    pub language: String,
    pub country_codes: Vec<CountryCode>,
    pub user: LinkTokenUser,
    /// Must be omitted in update mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub products: Option<Vec<Product>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_if_supported_products: Option<Vec<Product>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub optional_products: Option<Vec<Product>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub additional_consented_products: Option<Vec<Product>>,
    /// The Item's webhook URL (no effect in update mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// Set to start Link in update mode for an existing Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<AccessToken>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<LinkTokenTransactions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<LinkTokenUpdate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_customization_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hosted_link: Option<HostedLink>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkTokenUser {
    /// Your stable id for the end user; must not contain PII.
    pub client_user_id: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkTokenTransactions {
    /// 1..=730, default 90. Cannot be changed once Transactions is on the Item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_requested: Option<u32>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct LinkTokenUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_selection_enabled: Option<bool>,
}

/// Sending this (even empty) enables Hosted Link.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostedLink {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_redirect_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url_lifetime_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_mobile_app: Option<bool>,
}

impl LinkTokenCreateRequest {
    /// A request for a new Item, in English, for US institutions, with no products yet.
    pub fn new(client_name: impl Into<String>, client_user_id: impl Into<String>) -> Self {
        LinkTokenCreateRequest {
            client_name: client_name.into(),
            language: "en".into(),
            country_codes: vec![CountryCode::Us],
            user: LinkTokenUser { client_user_id: client_user_id.into() },
            products: None,
            required_if_supported_products: None,
            optional_products: None,
            additional_consented_products: None,
            webhook: None,
            redirect_uri: None,
            access_token: None,
            transactions: None,
            update: None,
            link_customization_name: None,
            hosted_link: None,
        }
    }

    pub fn products(mut self, products: impl IntoIterator<Item = Product>) -> Self {
        self.products = Some(products.into_iter().collect());
        self
    }

    pub fn country_codes(mut self, codes: impl IntoIterator<Item = CountryCode>) -> Self {
        self.country_codes = codes.into_iter().collect();
        self
    }

    pub fn language(mut self, language: impl Into<String>) -> Self {
        self.language = language.into();
        self
    }

    pub fn webhook(mut self, url: impl Into<String>) -> Self {
        self.webhook = Some(url.into());
        self
    }

    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    pub fn days_requested(mut self, days: u32) -> Self {
        self.transactions = Some(LinkTokenTransactions { days_requested: Some(days) });
        self
    }

    /// Update mode: repair or extend the Item behind `access_token`. Clears `products`, which
    /// Plaid rejects in update mode.
    pub fn update_mode(mut self, access_token: AccessToken) -> Self {
        self.access_token = Some(access_token);
        self.products = None;
        self
    }

    pub fn account_selection_enabled(mut self, enabled: bool) -> Self {
        self.update = Some(LinkTokenUpdate { account_selection_enabled: Some(enabled) });
        self
    }
}

/// Response of `/link/token/create`.
#[derive(Debug, Clone, Deserialize)]
pub struct LinkTokenCreateResponse {
    /// Short-lived and meant for the browser, so not treated as a secret.
    pub link_token: String,
    pub expiration: DateTime<Utc>,
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub hosted_link_url: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
}
