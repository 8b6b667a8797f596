//! `/transactions/sync` and `/transactions/refresh`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::accounts::AccountBase;
use super::common::lenient;
use crate::secret::AccessToken;
use crate::string_enum::string_enum;

/// Request for `/transactions/sync`.
#[derive(Debug, Clone, Serialize)]
pub struct TransactionsSyncRequest {
    pub access_token: AccessToken,
    /// Omit on the first call to get the whole history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// 1..=500, Plaid's default is 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<TransactionsSyncOptions>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TransactionsSyncOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_original_description: Option<bool>,
    /// `"v1"` or `"v2"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personal_finance_category_version: Option<String>,
    /// Only effective if Transactions was not initialized on the Item yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_requested: Option<u32>,
    /// Starts a separate cursor stream for one account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl TransactionsSyncRequest {
    pub fn new(access_token: AccessToken) -> Self {
        TransactionsSyncRequest { access_token, cursor: None, count: None, options: None }
    }

    /// Continue from a stored cursor. An empty cursor is the same as none.
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        let cursor = cursor.into();
        self.cursor = (!cursor.is_empty()).then_some(cursor);
        self
    }

    pub fn count(mut self, count: u32) -> Self {
        self.count = Some(count);
        self
    }

    pub fn include_original_description(mut self, include: bool) -> Self {
        self.options.get_or_insert_with(Default::default).include_original_description = Some(include);
        self
    }

    pub fn days_requested(mut self, days: u32) -> Self {
        self.options.get_or_insert_with(Default::default).days_requested = Some(days);
        self
    }
}

string_enum! {
    /// Spec `TransactionsUpdateStatus`.
    #[derive(Default)]
    pub enum TransactionsUpdateStatus {
        #[default]
        Unknown => "TRANSACTIONS_UPDATE_STATUS_UNKNOWN",
        NotReady => "NOT_READY",
        InitialUpdateComplete => "INITIAL_UPDATE_COMPLETE",
        HistoricalUpdateComplete => "HISTORICAL_UPDATE_COMPLETE",
    }
}

/// One page of `/transactions/sync`.
#[derive(Debug, Clone, Deserialize)]
pub struct TransactionsSyncResponse {
    #[serde(default)]
    pub transactions_update_status: TransactionsUpdateStatus,
    #[serde(default)]
    pub accounts: Vec<AccountBase>,
    #[serde(default)]
    pub added: Vec<Transaction>,
    #[serde(default)]
    pub modified: Vec<Transaction>,
    #[serde(default)]
    pub removed: Vec<RemovedTransaction>,
    /// Empty while the Item's transactions are not ready yet.
    #[serde(default)]
    pub next_cursor: String,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub request_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RemovedTransaction {
    pub transaction_id: String,
    #[serde(default)]
    pub account_id: String,
}

string_enum! {
    /// Spec `Transaction.payment_channel`. Plaid's `"other"` is `Other("other")`.
    pub enum PaymentChannel {
        Online => "online",
        InStore => "in store",
    }
}

impl Default for PaymentChannel {
    fn default() -> Self {
        PaymentChannel::Other("other".into())
    }
}

string_enum! {
    /// Spec `TransactionCode` (mostly European institutions).
    pub enum TransactionCode {
        Adjustment => "adjustment",
        Atm => "atm",
        BankCharge => "bank charge",
        BillPayment => "bill payment",
        Cash => "cash",
        Cashback => "cashback",
        Cheque => "cheque",
        DirectDebit => "direct debit",
        Interest => "interest",
        Payment => "payment",
        Purchase => "purchase",
        Refund => "refund",
        StandingOrder => "standing order",
        Transfer => "transfer",
    }
}

string_enum! {
    /// Confidence of an enrichment (PFC, counterparty).
    pub enum ConfidenceLevel {
        VeryHigh => "VERY_HIGH",
        High => "HIGH",
        Medium => "MEDIUM",
        Low => "LOW",
        Unknown => "UNKNOWN",
    }
}

string_enum! {
    /// Spec `CounterpartyType`.
    pub enum CounterpartyType {
        Merchant => "merchant",
        FinancialInstitution => "financial_institution",
        PaymentApp => "payment_app",
        Marketplace => "marketplace",
        PaymentTerminal => "payment_terminal",
        IncomeSource => "income_source",
    }
}

/// Spec `PersonalFinanceCategory`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PersonalFinanceCategory {
    pub primary: String,
    pub detailed: String,
    #[serde(default)]
    pub confidence_level: Option<ConfidenceLevel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Spec `TransactionCounterparty`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Counterparty {
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type")]
    pub counterparty_type: CounterpartyType,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub logo_url: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    pub confidence_level: Option<ConfidenceLevel>,
}

/// Spec `Location`; every field may be null, and often all are.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Location {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub postal_code: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub lat: Option<f64>,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub store_number: Option<String>,
}

/// A transaction from `/transactions/sync` `added` / `modified` (spec `Transaction`).
///
/// The typed fields are what a consumer normally needs; `raw` is the JSON object exactly as
/// received (the bytes Plaid sent, so numbers keep their original text), so data this crate
/// does not model is never lost and the transaction can be re-interpreted later. `Serialize`
/// writes `raw` back. Equality compares the typed fields and `raw` as JSON values (key order
/// and whitespace of the text do not matter).
#[derive(Debug, Clone, Deserialize)]
#[serde(remote = "Self")]
pub struct Transaction {
    pub transaction_id: String,
    pub account_id: String,
    /// Positive = money out of the account, negative = money in.
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub amount: Decimal,
    #[serde(default)]
    pub iso_currency_code: Option<String>,
    #[serde(default)]
    pub unofficial_currency_code: Option<String>,
    /// Posted date (or occurrence date while pending).
    pub date: NaiveDate,
    #[serde(default, deserialize_with = "lenient::datetime")]
    pub datetime: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::date")]
    pub authorized_date: Option<NaiveDate>,
    #[serde(default, deserialize_with = "lenient::datetime")]
    pub authorized_datetime: Option<DateTime<Utc>>,
    #[serde(default)]
    pub pending: bool,
    /// On a posted transaction: the id of the pending one it replaces.
    #[serde(default)]
    pub pending_transaction_id: Option<String>,
    /// Deprecated by Plaid but always present.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub merchant_name: Option<String>,
    #[serde(default)]
    pub merchant_entity_id: Option<String>,
    #[serde(default)]
    pub logo_url: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    #[serde(default)]
    pub payment_channel: PaymentChannel,
    #[serde(default)]
    pub personal_finance_category: Option<PersonalFinanceCategory>,
    #[serde(default)]
    pub personal_finance_category_icon_url: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub counterparties: Vec<Counterparty>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub location: Location,
    #[serde(default)]
    pub account_owner: Option<String>,
    /// Only with `include_original_description`.
    #[serde(default)]
    pub original_description: Option<String>,
    #[serde(default)]
    pub check_number: Option<String>,
    #[serde(default)]
    pub transaction_code: Option<TransactionCode>,
    /// The object as received, byte for byte; [`Transaction::raw_value`] parses it.
    #[serde(skip, default = "null_raw")]
    pub raw: Box<RawValue>,
}

impl Transaction {
    /// `iso_currency_code`, else `unofficial_currency_code`.
    pub fn currency(&self) -> Option<&str> {
        self.iso_currency_code.as_deref().or(self.unofficial_currency_code.as_deref())
    }

    /// Builds a transaction from the JSON text of one object, keeping that text as `raw`.
    pub fn from_raw(raw: Box<RawValue>) -> Result<Self, serde_json::Error> {
        // The typed fields are parsed from the kept text; with arbitrary_precision the number
        // tokens reach `Decimal` as text, so `amount` stays exact.
        let mut de = serde_json::Deserializer::from_str(raw.get());
        let mut transaction = Transaction::deserialize(&mut de)?;
        de.end()?;
        transaction.raw = raw;
        Ok(transaction)
    }

    /// Builds a transaction from a JSON object, keeping the object (as compact text) as `raw`.
    pub fn from_value(value: serde_json::Value) -> Result<Self, serde_json::Error> {
        Transaction::from_raw(serde_json::value::to_raw_value(&value)?)
    }

    /// `raw` parsed into a JSON tree (numbers keep their text).
    pub fn raw_value(&self) -> serde_json::Value {
        serde_json::from_str(self.raw.get()).expect("a RawValue holds valid JSON")
    }
}

impl<'de> Deserialize<'de> for Transaction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Capture the object's bytes once (no Value tree), then decode the typed fields from them.
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Transaction::from_raw(raw).map_err(serde::de::Error::custom)
    }
}

impl PartialEq for Transaction {
    fn eq(&self, other: &Self) -> bool {
        let Transaction {
            transaction_id,
            account_id,
            amount,
            iso_currency_code,
            unofficial_currency_code,
            date,
            datetime,
            authorized_date,
            authorized_datetime,
            pending,
            pending_transaction_id,
            name,
            merchant_name,
            merchant_entity_id,
            logo_url,
            website,
            payment_channel,
            personal_finance_category,
            personal_finance_category_icon_url,
            counterparties,
            location,
            account_owner,
            original_description,
            check_number,
            transaction_code,
            raw,
        } = self;
        *transaction_id == other.transaction_id
            && *account_id == other.account_id
            && *amount == other.amount
            && *iso_currency_code == other.iso_currency_code
            && *unofficial_currency_code == other.unofficial_currency_code
            && *date == other.date
            && *datetime == other.datetime
            && *authorized_date == other.authorized_date
            && *authorized_datetime == other.authorized_datetime
            && *pending == other.pending
            && *pending_transaction_id == other.pending_transaction_id
            && *name == other.name
            && *merchant_name == other.merchant_name
            && *merchant_entity_id == other.merchant_entity_id
            && *logo_url == other.logo_url
            && *website == other.website
            && *payment_channel == other.payment_channel
            && *personal_finance_category == other.personal_finance_category
            && *personal_finance_category_icon_url == other.personal_finance_category_icon_url
            && *counterparties == other.counterparties
            && *location == other.location
            && *account_owner == other.account_owner
            && *original_description == other.original_description
            && *check_number == other.check_number
            && *transaction_code == other.transaction_code
            // The same text is the same JSON; different text may still be (key order, spaces).
            && (raw.get() == other.raw.get() || self.raw_value() == other.raw_value())
    }
}

impl Serialize for Transaction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

/// Placeholder for `raw` while the typed fields are decoded; replaced right after.
fn null_raw() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
