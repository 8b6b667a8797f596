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

/// One transaction as `/transactions/sync` returns it (serialized through [`TxnJson`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    pub transaction_id: String,
    pub account_id: String,
    pub amount: Decimal,
    pub iso_currency_code: Option<&'static str>,
    pub unofficial_currency_code: Option<&'static str>,
    pub check_number: Option<String>,
    pub date: NaiveDate,
    pub datetime: Option<DateTime<Utc>>,
    pub authorized_date: Option<NaiveDate>,
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

/// Serializes a transaction straight to Plaid's JSON (no intermediate `Value`, which matters for
/// pages of 500 and ground truths of 100k). `original_description` is null unless requested.
pub struct TxnJson<'a> {
    pub txn: &'a Txn,
    pub include_original_description: bool,
}

struct Money(Decimal);

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::arbitrary_precision::serialize(&self.0, s)
    }
}

struct OptDateTime(Option<DateTime<Utc>>);

impl Serialize for OptDateTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        opt_datetime(&self.0, s)
    }
}

impl Serialize for TxnJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let t = self.txn;
        let mut st = s.serialize_struct("Transaction", 29)?;
        st.serialize_field("transaction_id", &t.transaction_id)?;
        st.serialize_field("account_id", &t.account_id)?;
        st.serialize_field("amount", &Money(t.amount))?;
        st.serialize_field("iso_currency_code", &t.iso_currency_code)?;
        st.serialize_field("unofficial_currency_code", &t.unofficial_currency_code)?;
        st.serialize_field("check_number", &t.check_number)?;
        st.serialize_field("date", &t.date)?;
        st.serialize_field("datetime", &OptDateTime(t.datetime))?;
        st.serialize_field("authorized_date", &t.authorized_date)?;
        st.serialize_field("authorized_datetime", &OptDateTime(t.authorized_datetime))?;
        st.serialize_field("location", &t.location)?;
        st.serialize_field("name", &t.name)?;
        st.serialize_field("merchant_name", &t.merchant_name)?;
        st.serialize_field("merchant_entity_id", &t.merchant_entity_id)?;
        let original = if self.include_original_description { t.original_description.as_deref() } else { None };
        st.serialize_field("original_description", &original)?;
        st.serialize_field("logo_url", &t.logo_url)?;
        st.serialize_field("website", &t.website)?;
        st.serialize_field("payment_meta", &t.payment_meta)?;
        st.serialize_field("payment_channel", &t.payment_channel)?;
        st.serialize_field("transaction_type", &t.transaction_type)?;
        st.serialize_field("transaction_code", &t.transaction_code)?;
        st.serialize_field("pending", &t.pending)?;
        st.serialize_field("pending_transaction_id", &t.pending_transaction_id)?;
        st.serialize_field("account_owner", &t.account_owner)?;
        st.serialize_field("personal_finance_category", &t.personal_finance_category)?;
        st.serialize_field("personal_finance_category_icon_url", &t.personal_finance_category_icon_url)?;
        st.serialize_field("counterparties", &t.counterparties)?;
        st.end()
    }
}

impl Txn {
    pub fn json(&self, include_original_description: bool) -> TxnJson<'_> {
        TxnJson { txn: self, include_original_description }
    }

    /// The JSON Plaid sends, as a `Value`.
    pub fn to_json(&self, include_original_description: bool) -> serde_json::Value {
        serde_json::to_value(self.json(include_original_description)).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_every_required_key_with_exact_numbers() {
        let t = Txn {
            transaction_id: "t".into(),
            account_id: "a".into(),
            amount: Decimal::new(-120_050, 2),
            iso_currency_code: Some("USD"),
            unofficial_currency_code: None,
            check_number: None,
            date: NaiveDate::from_ymd_opt(2025, 1, 2).expect("date"),
            datetime: None,
            authorized_date: None,
            authorized_datetime: Some(DateTime::from_timestamp(1_700_000_000, 0).expect("time")),
            location: Location::default(),
            name: "n".into(),
            merchant_name: None,
            merchant_entity_id: None,
            original_description: Some("RAW".into()),
            logo_url: None,
            website: None,
            payment_meta: PaymentMeta::default(),
            payment_channel: "other",
            transaction_type: "special",
            transaction_code: None,
            pending: false,
            pending_transaction_id: None,
            account_owner: None,
            personal_finance_category: Pfc { primary: "INCOME", detailed: "INCOME_WAGES", confidence_level: "HIGH" },
            personal_finance_category_icon_url: "https://plaid-category-icons.plaid.com/PFC_INCOME.png".into(),
            counterparties: Vec::new(),
        };
        let text = serde_json::to_string(&t.json(false)).expect("json");
        assert!(text.contains("\"amount\":-1200.50"), "{text}");
        assert!(text.contains("\"authorized_datetime\":\"2023-11-14T22:13:20Z\""), "{text}");
        assert!(text.contains("\"original_description\":null"));
        assert!(serde_json::to_string(&t.json(true)).expect("json").contains("\"original_description\":\"RAW\""));
        let v = t.to_json(false);
        for key in ["location", "payment_meta", "transaction_code", "authorized_date", "datetime", "account_owner"] {
            assert!(v.get(key).is_some(), "{key}");
        }
        assert_eq!(v["location"].as_object().map(|o| o.len()), Some(8));
        assert_eq!(v["payment_meta"].as_object().map(|o| o.len()), Some(8));
    }
}
