//! Audit trails: Plaid calls and received webhooks.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::PlaidItemId;

/// One row of the Plaid call audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct PlaidCall {
    pub endpoint: String,
    /// Plaid's item_id, when the call concerned one Item.
    pub item_id: Option<PlaidItemId>,
    pub request_id: Option<String>,
    pub http_status: Option<i64>,
    /// e.g. "ok", "plaid_error", "timeout", "transport_error".
    pub outcome: String,
    pub error_type: Option<String>,
    pub error_code: Option<String>,
    pub latency_ms: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewWebhookEvent {
    /// Identifies one delivery so Plaid's retries and duplicates are recorded once (e.g. SHA-256 of the body).
    pub dedupe_key: String,
    pub item_id: Option<PlaidItemId>,
    pub webhook_type: String,
    pub webhook_code: String,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: String,
    /// False when this delivery had been recorded before.
    pub is_new: bool,
    /// How many times it had been received again, this time included (0 when new).
    pub duplicates: i64,
}
