//! `/accounts/get` and `/accounts/balance/get`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::common::{lenient, plaid_datetime};
use super::item::Item;
use crate::secret::AccessToken;
use crate::string_enum::string_enum;

#[derive(Debug, Clone, Serialize)]
pub struct AccountsGetRequest {
    pub access_token: AccessToken,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<AccountsGetOptions>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountsGetOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_ids: Option<Vec<String>>,
}

impl AccountsGetRequest {
    pub fn new(access_token: AccessToken) -> Self {
        AccountsGetRequest { access_token, options: None }
    }

    pub fn account_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options = Some(AccountsGetOptions { account_ids: Some(ids.into_iter().map(Into::into).collect()) });
        self
    }
}

/// Request for the real-time (slow, billed) `/accounts/balance/get`.
#[derive(Debug, Clone, Serialize)]
pub struct AccountsBalanceGetRequest {
    pub access_token: AccessToken,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<AccountsBalanceGetOptions>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AccountsBalanceGetOptions {
    /// Every id must belong to the Item, or Plaid answers INVALID_ACCOUNT_ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_ids: Option<Vec<String>>,
    /// Oldest acceptable balance; mandatory for Capital One (`ins_128026`) non-depository
    /// accounts and ignored elsewhere. Sent as `YYYY-MM-DDTHH:mm:ssZ`.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "plaid_datetime::serialize")]
    pub min_last_updated_datetime: Option<DateTime<Utc>>,
}

impl AccountsBalanceGetRequest {
    pub fn new(access_token: AccessToken) -> Self {
        AccountsBalanceGetRequest { access_token, options: None }
    }

    pub fn account_ids(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options.get_or_insert_with(Default::default).account_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    pub fn min_last_updated_datetime(mut self, at: DateTime<Utc>) -> Self {
        self.options.get_or_insert_with(Default::default).min_last_updated_datetime = Some(at);
        self
    }
}

/// Response of both `/accounts/get` and `/accounts/balance/get`.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountsGetResponse {
    #[serde(default)]
    pub accounts: Vec<AccountBase>,
    pub item: Item,
    #[serde(default)]
    pub request_id: String,
}

string_enum! {
    /// Spec `AccountType`. Plaid's `"other"` is `Other("other")`.
    pub enum AccountType {
        Investment => "investment",
        Credit => "credit",
        Depository => "depository",
        Loan => "loan",
        Brokerage => "brokerage",
    }
}

string_enum! {
    /// Spec `AccountSubtype` (a long list; the common ones are named, the rest kept as text).
    pub enum AccountSubtype {
        Checking => "checking",
        Savings => "savings",
        MoneyMarket => "money market",
        Cd => "cd",
        CashManagement => "cash management",
        Hsa => "hsa",
        Paypal => "paypal",
        Prepaid => "prepaid",
        Ebt => "ebt",
        CreditCard => "credit card",
        Auto => "auto",
        Business => "business",
        Commercial => "commercial",
        Construction => "construction",
        Consumer => "consumer",
        HomeEquity => "home equity",
        LineOfCredit => "line of credit",
        Loan => "loan",
        Mortgage => "mortgage",
        Overdraft => "overdraft",
        Student => "student",
        Brokerage => "brokerage",
        Ira => "ira",
        Roth => "roth",
        K401 => "401k",
        K403b => "403B",
        CryptoExchange => "crypto exchange",
        Pension => "pension",
    }
}

/// An account (spec `AccountBase`).
#[derive(Debug, Clone, Deserialize)]
pub struct AccountBase {
    /// Can change, e.g. when the Item is re-linked.
    pub account_id: String,
    pub balances: AccountBalance,
    #[serde(default)]
    pub mask: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub official_name: Option<String>,
    #[serde(rename = "type")]
    pub account_type: AccountType,
    #[serde(default)]
    pub subtype: Option<AccountSubtype>,
    #[serde(default)]
    pub verification_status: Option<String>,
    #[serde(default)]
    pub persistent_account_id: Option<String>,
    #[serde(default)]
    pub holder_category: Option<String>,
}

/// Spec `AccountBalance`. Amounts are exact decimals in major units.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct AccountBalance {
    /// Spendable amount; null if the institution does not report it.
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision_option")]
    pub available: Option<Decimal>,
    /// Credit/loan: positive means owed. May be null from `/accounts/balance/get`.
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision_option")]
    pub current: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::arbitrary_precision_option")]
    pub limit: Option<Decimal>,
    #[serde(default)]
    pub iso_currency_code: Option<String>,
    #[serde(default)]
    pub unofficial_currency_code: Option<String>,
    /// Only for Capital One (`ins_128026`).
    #[serde(default, deserialize_with = "lenient::datetime")]
    pub last_updated_datetime: Option<DateTime<Utc>>,
}
