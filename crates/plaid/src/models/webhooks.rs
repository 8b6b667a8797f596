//! Webhook bodies Plaid POSTs to an Item's webhook URL.
//!
//! [`Webhook::from_slice`] parses any body: the common fields are typed, the event is typed
//! for the codes this crate knows, and anything else becomes [`WebhookEvent::Unknown`] rather
//! than an error, because Plaid adds webhook types and codes over time. Verify the body first
//! (see [`crate::webhook`]); parse only what verified.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::lenient;
use crate::error::PlaidError;
use crate::string_enum::string_enum;

string_enum! {
    /// `webhook_type`.
    pub enum WebhookType {
        Transactions => "TRANSACTIONS",
        Item => "ITEM",
        Auth => "AUTH",
        Holdings => "HOLDINGS",
        InvestmentsTransactions => "INVESTMENTS_TRANSACTIONS",
        Liabilities => "LIABILITIES",
        Assets => "ASSETS",
        Link => "LINK",
    }
}

string_enum! {
    /// `webhook_code`.
    pub enum WebhookCode {
        SyncUpdatesAvailable => "SYNC_UPDATES_AVAILABLE",
        InitialUpdate => "INITIAL_UPDATE",
        HistoricalUpdate => "HISTORICAL_UPDATE",
        DefaultUpdate => "DEFAULT_UPDATE",
        TransactionsRemoved => "TRANSACTIONS_REMOVED",
        RecurringTransactionsUpdate => "RECURRING_TRANSACTIONS_UPDATE",
        Error => "ERROR",
        PendingExpiration => "PENDING_EXPIRATION",
        PendingDisconnect => "PENDING_DISCONNECT",
        UserPermissionRevoked => "USER_PERMISSION_REVOKED",
        UserAccountRevoked => "USER_ACCOUNT_REVOKED",
        LoginRepaired => "LOGIN_REPAIRED",
        NewAccountsAvailable => "NEW_ACCOUNTS_AVAILABLE",
        WebhookUpdateAcknowledged => "WEBHOOK_UPDATE_ACKNOWLEDGED",
        ProductReady => "PRODUCT_READY",
        AuthorizationGranted => "AUTHORIZATION_GRANTED",
        SmsMicrodepositsVerification => "SMS_MICRODEPOSITS_VERIFICATION",
        SessionFinished => "SESSION_FINISHED",
    }
}

string_enum! {
    /// `PENDING_DISCONNECT` `reason`.
    pub enum PendingDisconnectReason {
        InstitutionMigration => "INSTITUTION_MIGRATION",
        InstitutionTokenExpiration => "INSTITUTION_TOKEN_EXPIRATION",
    }
}

/// A parsed webhook body.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub webhook_type: WebhookType,
    pub webhook_code: WebhookCode,
    /// Present on every Item and Transactions webhook.
    pub item_id: Option<String>,
    /// `sandbox` or `production`.
    pub environment: Option<String>,
    pub user_id: Option<String>,
    pub event: WebhookEvent,
    /// The body as received.
    pub raw: Value,
}

/// The typed part of a webhook, by (`webhook_type`, `webhook_code`).
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    /// TRANSACTIONS / SYNC_UPDATES_AVAILABLE: run the sync loop.
    SyncUpdatesAvailable { initial_update_complete: bool, historical_update_complete: bool },
    /// TRANSACTIONS / INITIAL_UPDATE, HISTORICAL_UPDATE, DEFAULT_UPDATE, TRANSACTIONS_REMOVED:
    /// legacy `/transactions/get` webhooks, still sent; acknowledge and ignore with sync.
    LegacyTransactions { new_transactions: Option<u64>, removed_transactions: Vec<String>, error: Option<PlaidError> },
    /// ITEM / ERROR: typically ITEM_LOGIN_REQUIRED.
    ItemError { error: Option<PlaidError> },
    /// ITEM / PENDING_EXPIRATION (EU/UK consent expires in 7 days).
    PendingExpiration { consent_expiration_time: Option<DateTime<Utc>> },
    /// ITEM / PENDING_DISCONNECT (US/CA, 7 days ahead).
    PendingDisconnect { reason: Option<PendingDisconnectReason>, disconnect_time: Option<DateTime<Utc>> },
    /// ITEM / USER_PERMISSION_REVOKED.
    UserPermissionRevoked { error: Option<PlaidError> },
    /// ITEM / USER_ACCOUNT_REVOKED: one account's access was revoked.
    UserAccountRevoked { account_id: Option<String> },
    /// ITEM / LOGIN_REPAIRED: the Item left ITEM_LOGIN_REQUIRED on its own.
    LoginRepaired,
    /// ITEM / NEW_ACCOUNTS_AVAILABLE.
    NewAccountsAvailable { error: Option<PlaidError> },
    /// ITEM / WEBHOOK_UPDATE_ACKNOWLEDGED, sent to the new URL.
    WebhookUpdateAcknowledged { new_webhook_url: Option<String>, error: Option<PlaidError> },
    /// A type/code this crate does not model; see [`Webhook::raw`].
    Unknown,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    webhook_type: Option<WebhookType>,
    #[serde(default)]
    webhook_code: Option<WebhookCode>,
    #[serde(default)]
    item_id: Option<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct Fields {
    #[serde(default)]
    initial_update_complete: bool,
    #[serde(default)]
    historical_update_complete: bool,
    #[serde(default)]
    new_transactions: Option<u64>,
    #[serde(default)]
    removed_transactions: Option<Vec<String>>,
    #[serde(default)]
    error: Option<PlaidError>,
    #[serde(default, deserialize_with = "lenient::datetime")]
    consent_expiration_time: Option<DateTime<Utc>>,
    #[serde(default)]
    reason: Option<PendingDisconnectReason>,
    #[serde(default, deserialize_with = "lenient::datetime")]
    disconnect_time: Option<DateTime<Utc>>,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    new_webhook_url: Option<String>,
}

impl Webhook {
    /// Parses a webhook body. Fails only if the body is not a JSON object with string
    /// `webhook_type` and `webhook_code`; unknown types, codes and fields are accepted.
    pub fn from_slice(body: &[u8]) -> Result<Webhook, serde_json::Error> {
        let value: Value = serde_json::from_slice(body)?;
        Webhook::from_value(value)
    }

    pub fn from_value(raw: Value) -> Result<Webhook, serde_json::Error> {
        use serde::de::Error as _;
        let envelope = Envelope::deserialize(&raw)?;
        let webhook_type = envelope.webhook_type.ok_or_else(|| serde_json::Error::missing_field("webhook_type"))?;
        let webhook_code = envelope.webhook_code.ok_or_else(|| serde_json::Error::missing_field("webhook_code"))?;
        // Field-level problems in a known webhook (say, a malformed `error`) degrade to
        // `Unknown` instead of failing: the caller still has the raw body and the envelope.
        let fields = Fields::deserialize(&raw).ok();
        let event = match fields {
            Some(f) => event_for(&webhook_type, &webhook_code, f),
            None => WebhookEvent::Unknown,
        };
        Ok(Webhook {
            webhook_type,
            webhook_code,
            item_id: envelope.item_id,
            environment: envelope.environment,
            user_id: envelope.user_id,
            event,
            raw,
        })
    }
}

fn event_for(webhook_type: &WebhookType, code: &WebhookCode, f: Fields) -> WebhookEvent {
    match (webhook_type, code) {
        (WebhookType::Transactions, WebhookCode::SyncUpdatesAvailable) => WebhookEvent::SyncUpdatesAvailable {
            initial_update_complete: f.initial_update_complete,
            historical_update_complete: f.historical_update_complete,
        },
        (
            WebhookType::Transactions,
            WebhookCode::InitialUpdate
            | WebhookCode::HistoricalUpdate
            | WebhookCode::DefaultUpdate
            | WebhookCode::TransactionsRemoved,
        ) => WebhookEvent::LegacyTransactions {
            new_transactions: f.new_transactions,
            removed_transactions: f.removed_transactions.unwrap_or_default(),
            error: f.error,
        },
        (WebhookType::Item, WebhookCode::Error) => WebhookEvent::ItemError { error: f.error },
        (WebhookType::Item, WebhookCode::PendingExpiration) => {
            WebhookEvent::PendingExpiration { consent_expiration_time: f.consent_expiration_time }
        }
        (WebhookType::Item, WebhookCode::PendingDisconnect) => {
            WebhookEvent::PendingDisconnect { reason: f.reason, disconnect_time: f.disconnect_time }
        }
        (WebhookType::Item, WebhookCode::UserPermissionRevoked) => {
            WebhookEvent::UserPermissionRevoked { error: f.error }
        }
        (WebhookType::Item, WebhookCode::UserAccountRevoked) => {
            WebhookEvent::UserAccountRevoked { account_id: f.account_id }
        }
        (WebhookType::Item, WebhookCode::LoginRepaired) => WebhookEvent::LoginRepaired,
        (WebhookType::Item, WebhookCode::NewAccountsAvailable) => WebhookEvent::NewAccountsAvailable { error: f.error },
        (WebhookType::Item, WebhookCode::WebhookUpdateAcknowledged) => {
            WebhookEvent::WebhookUpdateAcknowledged { new_webhook_url: f.new_webhook_url, error: f.error }
        }
        _ => WebhookEvent::Unknown,
    }
}

impl<'de> Deserialize<'de> for Webhook {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Webhook::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Webhook {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Webhook {
        Webhook::from_slice(body.as_bytes()).unwrap()
    }

    #[test]
    fn sync_updates_available() {
        let w = parse(
            r#"{
  "webhook_type": "TRANSACTIONS",
  "webhook_code": "SYNC_UPDATES_AVAILABLE",
  "item_id": "wz666MBjYWTp2PDzzggYhM6oWWmBb",
  "initial_update_complete": true,
  "historical_update_complete": false,
  "environment": "production"
}"#,
        );
        assert_eq!(w.item_id.as_deref(), Some("wz666MBjYWTp2PDzzggYhM6oWWmBb"));
        assert_eq!(w.environment.as_deref(), Some("production"));
        assert_eq!(
            w.event,
            WebhookEvent::SyncUpdatesAvailable { initial_update_complete: true, historical_update_complete: false }
        );
    }

    #[test]
    fn item_error_carries_the_plaid_error() {
        let w = parse(
            r#"{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"i1","environment":"sandbox",
                "error":{"display_message":"The user’s OAuth connection to this product has expired.",
                "error_code":"ITEM_LOGIN_REQUIRED","error_message":"the login details of this item have changed",
                "error_type":"ITEM_ERROR","status":400}}"#,
        );
        let WebhookEvent::ItemError { error: Some(error) } = &w.event else { panic!("unexpected {:?}", w.event) };
        assert_eq!(error.error_code, "ITEM_LOGIN_REQUIRED");
        assert_eq!(error.status, Some(400));
        assert!(error.requires_user_action());
    }

    #[test]
    fn item_codes() {
        let w = parse(
            r#"{"webhook_type":"ITEM","webhook_code":"PENDING_DISCONNECT","item_id":"i","reason":"INSTITUTION_MIGRATION","disconnect_time":"2024-01-08T00:00:00Z","environment":"sandbox"}"#,
        );
        assert!(matches!(
            w.event,
            WebhookEvent::PendingDisconnect {
                reason: Some(PendingDisconnectReason::InstitutionMigration),
                disconnect_time: Some(_)
            }
        ));
        let w = parse(
            r#"{"webhook_type":"ITEM","webhook_code":"PENDING_EXPIRATION","item_id":"i","consent_expiration_time":"2020-01-15T13:25:17.766Z","environment":"sandbox"}"#,
        );
        assert!(matches!(w.event, WebhookEvent::PendingExpiration { consent_expiration_time: Some(_) }));
        let w =
            parse(r#"{"webhook_type":"ITEM","webhook_code":"LOGIN_REPAIRED","item_id":"i","environment":"sandbox"}"#);
        assert_eq!(w.event, WebhookEvent::LoginRepaired);
        let w = parse(
            r#"{"webhook_type":"ITEM","webhook_code":"USER_PERMISSION_REVOKED","item_id":"i","error":null,"environment":"sandbox"}"#,
        );
        assert_eq!(w.event, WebhookEvent::UserPermissionRevoked { error: None });
        let w = parse(
            r#"{"webhook_type":"ITEM","webhook_code":"USER_ACCOUNT_REVOKED","item_id":"i","account_id":"a1","environment":"sandbox"}"#,
        );
        assert_eq!(w.event, WebhookEvent::UserAccountRevoked { account_id: Some("a1".into()) });
        let w = parse(
            r#"{"webhook_type":"ITEM","webhook_code":"NEW_ACCOUNTS_AVAILABLE","item_id":"i","environment":"sandbox"}"#,
        );
        assert_eq!(w.event, WebhookEvent::NewAccountsAvailable { error: None });
        let w = parse(
            r#"{"webhook_type":"ITEM","webhook_code":"WEBHOOK_UPDATE_ACKNOWLEDGED","item_id":"i","new_webhook_url":"https://x.example/h","environment":"sandbox"}"#,
        );
        assert_eq!(
            w.event,
            WebhookEvent::WebhookUpdateAcknowledged {
                new_webhook_url: Some("https://x.example/h".into()),
                error: None
            }
        );
    }

    #[test]
    fn legacy_transaction_codes() {
        let w = parse(
            r#"{"webhook_type":"TRANSACTIONS","webhook_code":"DEFAULT_UPDATE","item_id":"i","new_transactions":3,"environment":"sandbox"}"#,
        );
        assert_eq!(
            w.event,
            WebhookEvent::LegacyTransactions { new_transactions: Some(3), removed_transactions: vec![], error: None }
        );
        let w = parse(
            r#"{"webhook_type":"TRANSACTIONS","webhook_code":"TRANSACTIONS_REMOVED","item_id":"i","removed_transactions":["t1","t2"],"environment":"sandbox"}"#,
        );
        assert!(
            matches!(w.event, WebhookEvent::LegacyTransactions { ref removed_transactions, .. } if removed_transactions.len() == 2)
        );
    }

    #[test]
    fn unknown_types_and_codes_are_tolerated() {
        let w = parse(r#"{"webhook_type":"BRAND_NEW","webhook_code":"SHINY","item_id":"i","extra":{"x":1.000001}}"#);
        assert_eq!(w.webhook_type, WebhookType::Other("BRAND_NEW".into()));
        assert_eq!(w.webhook_code, WebhookCode::Other("SHINY".into()));
        assert_eq!(w.event, WebhookEvent::Unknown);
        assert_eq!(w.raw["extra"]["x"].to_string(), "1.000001");
        // A known code with a malformed field still parses, as Unknown.
        let w = parse(r#"{"webhook_type":"ITEM","webhook_code":"ERROR","item_id":"i","error":"not an object"}"#);
        assert_eq!(w.event, WebhookEvent::Unknown);
    }

    #[test]
    fn missing_type_is_an_error() {
        assert!(Webhook::from_slice(br#"{"webhook_code":"ERROR"}"#).is_err());
        assert!(Webhook::from_slice(b"[]").is_err());
    }
}
