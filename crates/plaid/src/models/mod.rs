//! Wire models, one module per endpoint family.
//!
//! Requests serialize only the fields that are set (`None` is skipped, except where Plaid gives
//! `null` a meaning, which is documented on the field). Responses are tolerant: unknown fields
//! are ignored, optional fields default when missing, and every enum Plaid may extend has an
//! `Other(String)` catch-all. Money is `rust_decimal::Decimal`, read from the JSON number's
//! exact text (serde_json `arbitrary_precision`), never through `f64`.

pub mod accounts;
pub mod common;
pub mod item;
pub mod link;
pub mod sandbox;
pub mod transactions;
pub mod webhook_key;
pub mod webhooks;

pub use accounts::*;
pub use common::*;
pub use item::*;
pub use link::*;
pub use sandbox::*;
pub use transactions::*;
pub use webhook_key::*;
pub use webhooks::*;

/// A response body: every Plaid response carries a `request_id`, which the call record takes from the decoded value
/// (rather than parsing a large body a second time just for it).
pub(crate) trait PlaidResponse: serde::de::DeserializeOwned {
    fn request_id(&self) -> &str;
}

macro_rules! plaid_responses {
    ($($t:ty),* $(,)?) => {
        $(impl PlaidResponse for $t {
            fn request_id(&self) -> &str {
                &self.request_id
            }
        })*
    };
}

plaid_responses!(
    TransactionsSyncResponse,
    AccountsGetResponse,
    ItemPublicTokenExchangeResponse,
    ItemGetResponse,
    RequestIdResponse,
    ItemWebhookUpdateResponse,
    SandboxPublicTokenCreateResponse,
    SandboxItemFireWebhookResponse,
    SandboxItemResetLoginResponse,
    WebhookVerificationKeyGetResponse,
    LinkTokenCreateResponse,
);
