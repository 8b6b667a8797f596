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

/// Hand-written JSON output for the hot paths (sync pages, ground truth): the same bytes as
/// `serde_json` writes for the `Serialize` impls above, without escaping every key and going
/// through chrono's and rust_decimal's formatters. `tests::fast_writer_matches_serde` holds the two
/// together.
pub mod write {
    use chrono::{DateTime, NaiveDate, Utc};
    use rust_decimal::Decimal;

    /// A JSON string, escaped exactly as serde_json escapes it.
    pub fn str(out: &mut Vec<u8>, s: &str) {
        if needs_escape(s.as_bytes()) {
            // Rare (none of the generated text needs it): serde_json's own escaping.
            let _ = serde_json::to_writer(&mut *out, s);
            return;
        }
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }

    /// Whether serde_json would escape any byte (control characters, `"` and `\\`). Checks 16
    /// bytes at a time without branching, which the compiler vectorizes.
    fn needs_escape(s: &[u8]) -> bool {
        let bad = |b: u8| (b < 0x20) | (b == b'"') | (b == b'\\');
        let mut chunks = s.chunks_exact(16);
        for chunk in &mut chunks {
            if chunk.iter().fold(false, |acc, &b| acc | bad(b)) {
                return true;
            }
        }
        chunks.remainder().iter().any(|&b| bad(b))
    }

    pub fn opt_str(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            Some(s) => str(out, s),
            None => out.extend_from_slice(b"null"),
        }
    }

    pub fn bool(out: &mut Vec<u8>, b: bool) {
        out.extend_from_slice(if b { b"true" } else { b"false" });
    }

    /// A number with exactly the digits of the decimal's `Display` (what
    /// `rust_decimal::serde::arbitrary_precision` writes): scale kept, `-` on any negative value.
    pub fn decimal(out: &mut Vec<u8>, d: Decimal) {
        let scale = d.scale() as usize;
        let mut digits = [0u8; 40];
        let mut n = 0;
        let m = d.mantissa().unsigned_abs();
        if let Ok(mut v) = u64::try_from(m) {
            while v != 0 {
                digits[n] = b'0' + (v % 10) as u8;
                v /= 10;
                n += 1;
            }
        } else {
            let mut v = m;
            while v != 0 {
                digits[n] = b'0' + (v % 10) as u8;
                v /= 10;
                n += 1;
            }
        }
        while n < scale {
            digits[n] = b'0';
            n += 1;
        }
        if d.is_sign_negative() {
            out.push(b'-');
        }
        let whole = n - scale;
        if whole == 0 {
            out.push(b'0');
        }
        out.extend(digits[scale..n].iter().rev());
        if scale > 0 {
            out.push(b'.');
            out.extend(digits[..scale].iter().rev());
        }
    }

    pub fn opt_decimal(out: &mut Vec<u8>, d: Option<Decimal>) {
        match d {
            Some(d) => decimal(out, d),
            None => out.extend_from_slice(b"null"),
        }
    }

    pub fn opt_date(out: &mut Vec<u8>, d: Option<NaiveDate>) {
        match d {
            Some(d) => date(out, d),
            None => out.extend_from_slice(b"null"),
        }
    }

    pub fn date(out: &mut Vec<u8>, d: NaiveDate) {
        out.push(b'"');
        crate::clock::write_date(out, d);
        out.push(b'"');
    }

    pub fn opt_datetime(out: &mut Vec<u8>, t: Option<DateTime<Utc>>) {
        match t {
            Some(t) => {
                out.push(b'"');
                crate::clock::write_rfc3339(out, t);
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
    }
}

impl Txn {
    /// Appends the JSON that `self.json(include_original_description)` serializes to.
    pub fn write_json(&self, out: &mut Vec<u8>, include_original_description: bool) {
        let t = self;
        out.extend_from_slice(b"{\"transaction_id\":");
        write::str(out, &t.transaction_id);
        out.extend_from_slice(b",\"account_id\":");
        write::str(out, &t.account_id);
        out.extend_from_slice(b",\"amount\":");
        write::decimal(out, t.amount);
        out.extend_from_slice(b",\"iso_currency_code\":");
        write::opt_str(out, t.iso_currency_code);
        out.extend_from_slice(b",\"unofficial_currency_code\":");
        write::opt_str(out, t.unofficial_currency_code);
        out.extend_from_slice(b",\"check_number\":");
        write::opt_str(out, t.check_number.as_deref());
        out.extend_from_slice(b",\"date\":");
        write::date(out, t.date);
        out.extend_from_slice(b",\"datetime\":");
        write::opt_datetime(out, t.datetime);
        out.extend_from_slice(b",\"authorized_date\":");
        write::opt_date(out, t.authorized_date);
        out.extend_from_slice(b",\"authorized_datetime\":");
        write::opt_datetime(out, t.authorized_datetime);
        let l = &t.location;
        out.extend_from_slice(b",\"location\":{\"address\":");
        write::opt_str(out, l.address);
        out.extend_from_slice(b",\"city\":");
        write::opt_str(out, l.city);
        out.extend_from_slice(b",\"region\":");
        write::opt_str(out, l.region);
        out.extend_from_slice(b",\"postal_code\":");
        write::opt_str(out, l.postal_code);
        out.extend_from_slice(b",\"country\":");
        write::opt_str(out, l.country);
        out.extend_from_slice(b",\"lat\":");
        write::opt_decimal(out, l.lat);
        out.extend_from_slice(b",\"lon\":");
        write::opt_decimal(out, l.lon);
        out.extend_from_slice(b",\"store_number\":");
        write::opt_str(out, l.store_number);
        out.extend_from_slice(b"},\"name\":");
        write::str(out, &t.name);
        out.extend_from_slice(b",\"merchant_name\":");
        write::opt_str(out, t.merchant_name.as_deref());
        out.extend_from_slice(b",\"merchant_entity_id\":");
        write::opt_str(out, t.merchant_entity_id.as_deref());
        out.extend_from_slice(b",\"original_description\":");
        let original = if include_original_description { t.original_description.as_deref() } else { None };
        write::opt_str(out, original);
        out.extend_from_slice(b",\"logo_url\":");
        write::opt_str(out, t.logo_url.as_deref());
        out.extend_from_slice(b",\"website\":");
        write::opt_str(out, t.website);
        let p = &t.payment_meta;
        out.extend_from_slice(b",\"payment_meta\":{\"reference_number\":");
        write::opt_str(out, p.reference_number.as_deref());
        out.extend_from_slice(b",\"ppd_id\":");
        write::opt_str(out, p.ppd_id.as_deref());
        out.extend_from_slice(b",\"payee\":");
        write::opt_str(out, p.payee.as_deref());
        out.extend_from_slice(b",\"by_order_of\":");
        write::opt_str(out, p.by_order_of.as_deref());
        out.extend_from_slice(b",\"payer\":");
        write::opt_str(out, p.payer.as_deref());
        out.extend_from_slice(b",\"payment_method\":");
        write::opt_str(out, p.payment_method);
        out.extend_from_slice(b",\"payment_processor\":");
        write::opt_str(out, p.payment_processor);
        out.extend_from_slice(b",\"reason\":");
        write::opt_str(out, p.reason);
        out.extend_from_slice(b"},\"payment_channel\":");
        write::str(out, t.payment_channel);
        out.extend_from_slice(b",\"transaction_type\":");
        write::str(out, t.transaction_type);
        out.extend_from_slice(b",\"transaction_code\":");
        write::opt_str(out, t.transaction_code);
        out.extend_from_slice(b",\"pending\":");
        write::bool(out, t.pending);
        out.extend_from_slice(b",\"pending_transaction_id\":");
        write::opt_str(out, t.pending_transaction_id.as_deref());
        out.extend_from_slice(b",\"account_owner\":");
        write::opt_str(out, t.account_owner.as_deref());
        let c = &t.personal_finance_category;
        out.extend_from_slice(b",\"personal_finance_category\":{\"primary\":");
        write::str(out, c.primary);
        out.extend_from_slice(b",\"detailed\":");
        write::str(out, c.detailed);
        out.extend_from_slice(b",\"confidence_level\":");
        write::str(out, c.confidence_level);
        out.extend_from_slice(b"},\"personal_finance_category_icon_url\":");
        write::str(out, &t.personal_finance_category_icon_url);
        out.extend_from_slice(b",\"counterparties\":[");
        for (k, cp) in t.counterparties.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write::str(out, &cp.name);
            out.extend_from_slice(b",\"type\":");
            write::str(out, cp.kind);
            out.extend_from_slice(b",\"website\":");
            write::opt_str(out, cp.website);
            out.extend_from_slice(b",\"logo_url\":");
            write::opt_str(out, cp.logo_url.as_deref());
            out.extend_from_slice(b",\"entity_id\":");
            write::opt_str(out, cp.entity_id.as_deref());
            out.extend_from_slice(b",\"confidence_level\":");
            write::opt_str(out, cp.confidence_level);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }

    /// A JSON array of transactions (`[t,t,…]`) appended to `out`.
    pub fn write_json_array<'a>(
        out: &mut Vec<u8>,
        txns: impl IntoIterator<Item = &'a Txn>,
        include_original_description: bool,
    ) {
        out.push(b'[');
        for (k, t) in txns.into_iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            t.write_json(out, include_original_description);
        }
        out.push(b']');
    }

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

        // The hand-written writer gives serde's bytes, escapes and odd values included.
        let mut odd = t.clone();
        odd.name = "quote \" backslash \\ tab \t nl \n ctl \u{1} del \u{7f} é ✓ long enough to span chunks".into();
        odd.merchant_name = Some("\"".into());
        odd.location.lat = Some(Decimal::new(37_774_929, 6));
        odd.location.lon = Some(Decimal::new(-122_419_416, 6));
        odd.counterparties.push(Counterparty {
            name: "C\\".into(),
            kind: "merchant",
            website: Some("x.com"),
            logo_url: None,
            entity_id: Some("e".into()),
            confidence_level: None,
        });
        odd.counterparties.push(odd.counterparties[0].clone());
        odd.datetime = Some(DateTime::from_timestamp(-1, 0).expect("time"));
        odd.pending = true;
        for txn in [&t, &odd] {
            for original in [false, true] {
                let mut out = Vec::new();
                txn.write_json(&mut out, original);
                assert_eq!(
                    String::from_utf8(out).expect("utf8"),
                    serde_json::to_string(&txn.json(original)).expect("json")
                );
            }
        }
    }

    #[test]
    fn decimals_are_written_like_display() {
        let mut values: Vec<Decimal> = Vec::new();
        for m in [0i64, 1, -1, 5, -7, 10, 99, 100, 101, -120_050, 123_456_789, i64::MAX, i64::MIN + 1] {
            for scale in [0, 1, 2, 3, 8, 12, 28] {
                values.push(Decimal::new(m, scale));
            }
        }
        values.extend([Decimal::MAX, Decimal::MIN, Decimal::from_i128_with_scale(i128::from(u64::MAX) * 1000 + 7, 5)]);
        let mut negative_zero = Decimal::new(0, 2);
        negative_zero.set_sign_negative(true);
        values.push(negative_zero);
        for d in values {
            let mut out = Vec::new();
            write::decimal(&mut out, d);
            assert_eq!(String::from_utf8(out).expect("utf8"), d.to_string(), "{d:?}");
        }
    }
}
