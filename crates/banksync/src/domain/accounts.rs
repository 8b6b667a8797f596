//! Accounts of an Item and their balances.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use super::{AccountId, PlaidItemId};

/// Where a balance came from: `/accounts/balance/get` (live) or Plaid's cached `/accounts/get` data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BalanceSource {
    Live,
    Cached,
}

impl BalanceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Cached => "cached",
        }
    }
}

impl FromStr for BalanceSource {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "live" => Ok(Self::Live),
            "cached" => Ok(Self::Cached),
            other => Err(format!("unknown balance source {other:?}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Balances {
    #[serde(with = "rust_decimal::serde::arbitrary_precision_option")]
    pub available: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::arbitrary_precision_option")]
    pub current: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::arbitrary_precision_option")]
    pub limit: Option<Decimal>,
    /// `iso_currency_code`, else `unofficial_currency_code`.
    pub currency: Option<String>,
    /// True when `currency` is an ISO code.
    pub currency_is_official: bool,
}

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub account_id: AccountId,
    /// Plaid's `persistent_account_id`: the same account across Items (relink matches on it).
    pub persistent_account_id: Option<String>,
    pub name: String,
    pub official_name: Option<String>,
    pub mask: Option<String>,
    pub account_type: String,
    pub subtype: Option<String>,
    pub balances: Balances,
    pub balance_as_of: Option<DateTime<Utc>>,
    pub balance_source: BalanceSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub account_id: AccountId,
    pub persistent_account_id: Option<String>,
    /// Plaid's item_id of the owning Item.
    pub item_id: PlaidItemId,
    pub name: String,
    pub official_name: Option<String>,
    pub mask: Option<String>,
    #[serde(rename = "type")]
    pub account_type: String,
    pub subtype: Option<String>,
    pub balances: Balances,
    pub balance_as_of: Option<DateTime<Utc>>,
    pub balance_source: BalanceSource,
    pub removed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// Plaid's item_id.
    pub item_id: Option<PlaidItemId>,
    pub include_removed: bool,
}

#[derive(Debug, Clone)]
pub struct BalanceUpdate {
    pub account_id: AccountId,
    pub balances: Balances,
    pub as_of: DateTime<Utc>,
    pub source: BalanceSource,
}
