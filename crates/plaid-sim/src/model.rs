//! Plaid's wire objects as the simulator produces them (spec: Transaction, Location, PaymentMeta,
//! PersonalFinanceCategory, TransactionCounterparty). Every `required` key is always serialized.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

fn opt_datetime<S: Serializer>(v: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => s.serialize_str(&crate::clock::rfc3339(*t)),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Location {
    pub address: Option<&'static str>,
    pub city: Option<&'static str>,
    pub region: Option<&'static str>,
    pub postal_code: Option<&'static str>,
    pub country: Option<&'static str>,
    #[serde(with = "rust_decimal::serde::arbitrary_precision_option")]
    pub lat: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::arbitrary_precision_option")]
    pub lon: Option<Decimal>,
    pub store_number: Option<&'static str>,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PaymentMeta {
    pub reference_number: Option<String>,
    pub ppd_id: Option<String>,
    pub payee: Option<String>,
    pub by_order_of: Option<String>,
    pub payer: Option<String>,
    pub payment_method: Option<&'static str>,
    pub payment_processor: Option<&'static str>,
    pub reason: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Pfc {
    pub primary: &'static str,
    pub detailed: &'static str,
    pub confidence_level: &'static str,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Counterparty {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub website: Option<&'static str>,
    pub logo_url: Option<String>,
    pub entity_id: Option<String>,
    pub confidence_level: Option<&'static str>,
}

/// One transaction exactly as `/transactions/sync` returns it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Txn {
    pub transaction_id: String,
    pub account_id: String,
    #[serde(with = "rust_decimal::serde::arbitrary_precision")]
    pub amount: Decimal,
    pub iso_currency_code: Option<&'static str>,
    pub unofficial_currency_code: Option<&'static str>,
    pub check_number: Option<String>,
    pub date: NaiveDate,
    #[serde(serialize_with = "opt_datetime")]
    pub datetime: Option<DateTime<Utc>>,
    pub authorized_date: Option<NaiveDate>,
    #[serde(serialize_with = "opt_datetime")]
    pub authorized_datetime: Option<DateTime<Utc>>,
    pub location: Location,
    pub name: String,
    pub merchant_name: Option<String>,
    pub merchant_entity_id: Option<String>,
    /// Kept always; only shown when the request asks for `include_original_description`.
    pub original_description: Option<String>,
    pub logo_url: Option<String>,
    pub website: Option<&'static str>,
    pub payment_meta: PaymentMeta,
    pub payment_channel: &'static str,
    pub transaction_type: &'static str,
    pub transaction_code: Option<&'static str>,
    pub pending: bool,
    pub pending_transaction_id: Option<String>,
    pub account_owner: Option<String>,
    pub personal_finance_category: Pfc,
    pub personal_finance_category_icon_url: String,
    pub counterparties: Vec<Counterparty>,
}

impl Txn {
    /// The JSON Plaid sends; `original_description` is null unless it was requested.
    pub fn to_json(&self, include_original_description: bool) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if !include_original_description {
            if let Some(obj) = v.as_object_mut() {
                obj.insert("original_description".to_owned(), serde_json::Value::Null);
            }
        }
        v
    }
}
