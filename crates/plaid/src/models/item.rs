//! `/item/public_token/exchange`, `/item/get`, `/item/remove`, `/item/webhook/update`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{Product, lenient};
use crate::error::PlaidError;
use crate::secret::AccessToken;
use crate::string_enum::string_enum;

/// Holds the new access token; its `Debug` is redacted.
#[derive(Debug, Clone, Deserialize)]
pub struct ItemPublicTokenExchangeResponse {
    pub access_token: AccessToken,
    pub item_id: String,
    #[serde(default)]
    pub request_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ItemGetResponse {
    pub item: Item,
    #[serde(default)]
    pub status: Option<ItemStatus>,
    #[serde(default)]
    pub request_id: String,
}

string_enum! {
    /// How the Item is updated (spec `Item.update_type`).
    pub enum UpdateType {
        Background => "background",
        UserPresentRequired => "user_present_required",
    }
}

/// A login at a financial institution (spec `Item` / `ItemWithConsentFields`).
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub item_id: String,
    #[serde(default)]
    pub institution_id: Option<String>,
    #[serde(default)]
    pub institution_name: Option<String>,
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default)]
    pub auth_method: Option<String>,
    /// Non-null when the Item needs attention, e.g. ITEM_LOGIN_REQUIRED. Only `/item/get`
    /// reports Item errors this way.
    #[serde(default)]
    pub error: Option<PlaidError>,
    #[serde(default)]
    pub available_products: Vec<Product>,
    #[serde(default)]
    pub billed_products: Vec<Product>,
    #[serde(default)]
    pub products: Vec<Product>,
    #[serde(default)]
    pub consented_products: Vec<Product>,
    #[serde(default, deserialize_with = "lenient::datetime")]
    pub consent_expiration_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub update_type: Option<UpdateType>,
    /// Only in `/item/get`.
    #[serde(default, deserialize_with = "lenient::datetime")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `/item/get` `status`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ItemStatus {
    #[serde(default)]
    pub transactions: Option<ProductStatus>,
    #[serde(default)]
    pub investments: Option<ProductStatus>,
    #[serde(default)]
    pub last_webhook: Option<LastWebhook>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProductStatus {
    #[serde(default, deserialize_with = "lenient::datetime")]
    pub last_successful_update: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::datetime")]
    pub last_failed_update: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct LastWebhook {
    #[serde(default, deserialize_with = "lenient::datetime")]
    pub sent_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub code_sent: Option<String>,
}

string_enum! {
    /// Why an Item is removed (spec `ItemRemoveReasonCode`). Plaid's `OTHER` is `Other("OTHER")`.
    pub enum ItemRemoveReason {
        FraudFirstParty => "FRAUD_FIRST_PARTY",
        FraudFalseIdentity => "FRAUD_FALSE_IDENTITY",
        FraudAbuse => "FRAUD_ABUSE",
        FraudOther => "FRAUD_OTHER",
        ConnectionIsNonFunctional => "CONNECTION_IS_NON_FUNCTIONAL",
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ItemRemoveRequest {
    pub access_token: AccessToken,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<ItemRemoveReason>,
    /// At most 512 characters, no PII.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_note: Option<String>,
}

impl ItemRemoveRequest {
    pub fn new(access_token: AccessToken) -> Self {
        ItemRemoveRequest { access_token, reason_code: None, reason_note: None }
    }
}

/// Responses that carry nothing but `request_id` (`/item/remove`, `/transactions/refresh`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestIdResponse {
    #[serde(default)]
    pub request_id: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ItemWebhookUpdateResponse {
    pub item: Item,
    #[serde(default)]
    pub request_id: String,
}
