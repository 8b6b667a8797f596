//! When an Item may or should sync next: Plaid's data phase, the wait for data, the manual cooldown and the rate-limit
//! hold. Stored per Item so every banksync process sharing the database obeys the same rules.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Plaid's `transactions_update_status` as of the Item's last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncPhase {
    /// Plaid is still pulling the Item's first transactions (an empty `next_cursor`).
    NotReady,
    /// About the last 30 days are in; the rest of the history is still being pulled.
    InitialUpdateComplete,
    /// The whole history is in; from now on only updates.
    HistoricalUpdateComplete,
    /// Plaid could not say.
    Unknown,
}

impl SyncPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotReady => "not_ready",
            Self::InitialUpdateComplete => "initial_update_complete",
            Self::HistoricalUpdateComplete => "historical_update_complete",
            Self::Unknown => "unknown",
        }
    }

    /// Whether more of the Item's data is still to come from Plaid on its own (so banksync keeps asking).
    pub fn awaits_data(self) -> bool {
        matches!(self, Self::NotReady | Self::InitialUpdateComplete)
    }

    /// From Plaid's status; a sync that found nothing ready is `NotReady` whatever the status says.
    pub fn of(status: &plaid::TransactionsUpdateStatus, not_ready: bool) -> Self {
        if not_ready {
            return Self::NotReady;
        }
        match status {
            plaid::TransactionsUpdateStatus::NotReady => Self::NotReady,
            plaid::TransactionsUpdateStatus::InitialUpdateComplete => Self::InitialUpdateComplete,
            plaid::TransactionsUpdateStatus::HistoricalUpdateComplete => Self::HistoricalUpdateComplete,
            _ => Self::Unknown,
        }
    }
}

impl FromStr for SyncPhase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "not_ready" => Self::NotReady,
            "initial_update_complete" => Self::InitialUpdateComplete,
            "historical_update_complete" => Self::HistoricalUpdateComplete,
            "unknown" => Self::Unknown,
            other => return Err(format!("unknown sync phase {other:?}")),
        })
    }
}

/// An Item's sync rules and progress; all empty for an Item that never synced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncState {
    pub phase: Option<SyncPhase>,
    /// Since when banksync has been waiting for Plaid's data (not ready, or the history incomplete).
    pub waiting_since: Option<DateTime<Utc>>,
    /// Follow-up syncs queued while waiting.
    pub follow_ups: i64,
    /// Set after waiting too long; `stalled_message` says what to do.
    pub stalled_at: Option<DateTime<Utc>>,
    pub stalled_message: Option<String>,
    /// No manual (or repair) sync before this.
    pub cooldown_until: Option<DateTime<Utc>>,
    /// No sync at all before this (Plaid rate-limited the Item).
    pub hold_until: Option<DateTime<Utc>>,
    /// When Plaid last heard from the bank (`/item/get` `status.transactions.last_successful_update`).
    pub institution_updated_at: Option<DateTime<Utc>>,
}

impl SyncState {
    /// How long the Item's syncs are still held back after a rate limit (zero when they are not).
    pub fn hold_remaining(&self, now: DateTime<Utc>) -> std::time::Duration {
        remaining(self.hold_until, now)
    }

    pub fn cooldown_remaining(&self, now: DateTime<Utc>) -> std::time::Duration {
        remaining(self.cooldown_until, now)
    }
}

fn remaining(until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> std::time::Duration {
    until.and_then(|u| (u - now).to_std().ok()).unwrap_or_default()
}
