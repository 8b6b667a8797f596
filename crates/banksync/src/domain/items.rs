//! Items (one login at one bank, as Plaid links it) and their health.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{ItemRef, MergeReport, PlaidItemId, UserId};
use crate::vault::Sealed;

/// Health of an Item, as Plaid reports it through errors and webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Good,
    LoginRequired,
    PendingDisconnect,
    PendingExpiration,
    Revoked,
    Error,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Good => "good",
            Self::LoginRequired => "login_required",
            Self::PendingDisconnect => "pending_disconnect",
            Self::PendingExpiration => "pending_expiration",
            Self::Revoked => "revoked",
            Self::Error => "error",
        }
    }
}

impl FromStr for ItemStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "good" => Self::Good,
            "login_required" => Self::LoginRequired,
            "pending_disconnect" => Self::PendingDisconnect,
            "pending_expiration" => Self::PendingExpiration,
            "revoked" => Self::Revoked,
            "error" => Self::Error,
            other => return Err(format!("unknown item status {other:?}")),
        })
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A linked Item. `id` is ours (foreign keys use it); `item_id` is Plaid's (URLs and webhooks use it).
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub id: ItemRef,
    pub item_id: PlaidItemId,
    pub user_id: UserId,
    pub institution_id: Option<String>,
    pub institution_name: Option<String>,
    #[serde(skip)]
    pub access_token: Sealed,
    /// The `/transactions/sync` cursor of the last committed sync; `None` before the first one.
    #[serde(skip)]
    pub cursor: Option<String>,
    pub status: ItemStatus,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub display_message: Option<String>,
    pub consent_expires_at: Option<DateTime<Utc>>,
    pub disconnect_at: Option<DateTime<Utc>>,
    pub new_accounts_available: bool,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub last_successful_sync_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when this Item was linked to replace another of the user's Items at the same institution (Plaid's
    /// item_id of that one); kept after the merge as its record.
    pub replaces_item_id: Option<PlaidItemId>,
    /// What the merge of the replaced Item did; `None` while it has not run.
    pub relink_report: Option<MergeReport>,
}

#[derive(Debug, Clone)]
pub struct NewItem {
    pub item_id: PlaidItemId,
    pub user_id: UserId,
    pub institution_id: Option<String>,
    pub institution_name: Option<String>,
    pub access_token: Sealed,
}

/// Replaces an Item's health fields as a whole (a reset to `Good` clears the error fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemHealth {
    pub status: ItemStatus,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    /// Plaid's `display_message`: safe to show to the user.
    pub display_message: Option<String>,
    /// PENDING_DISCONNECT: when the connection will stop working.
    pub disconnect_at: Option<DateTime<Utc>>,
}

impl ItemHealth {
    pub fn good() -> Self {
        Self {
            status: ItemStatus::Good,
            error_code: None,
            error_message: None,
            display_message: None,
            disconnect_at: None,
        }
    }
}
