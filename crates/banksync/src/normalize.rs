//! Plaid's wire objects → banksync's store types, following ARCHITECTURE.md "Normalization rules" exactly:
//!
//! - `amount`: the exact decimal, Plaid's sign (positive = money out of the account).
//! - `currency`: `iso_currency_code`, else `unofficial_currency_code`; `currency_is_official` says which.
//! - `datetime`: `datetime`, else `authorized_datetime`, else the date (`authorized_date`, else `date`) at midnight
//!   UTC with `time_unknown` set.
//! - display name: `merchant_name`, else `name`; both are kept (the store derives `display_name`).
//! - `personal_finance_category` {primary, detailed, confidence_level} and its icon URL, `logo_url`, `website`,
//!   `payment_channel`, `pending`, `pending_transaction_id`, `account_owner` are kept; `counterparties` and
//!   `location` as JSON text (copied from the raw object so fields this crate does not model survive).
//! - the raw object is kept as JSON text, so a transaction can be re-normalized without calling Plaid.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use crate::domain::{BalanceSource, BalanceUpdate, Balances, NewAccount, NewTransaction, TransactionFields};

#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    /// Plaid sent a transaction without the ids everything else hangs on.
    #[error("transaction without {0}")]
    MissingId(&'static str),
    #[error("transaction JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A Plaid transaction (from `added` or `modified`) as banksync stores it.
pub fn transaction(t: &plaid::Transaction) -> Result<NewTransaction, NormalizeError> {
    if t.transaction_id.is_empty() {
        return Err(NormalizeError::MissingId("transaction_id"));
    }
    if t.account_id.is_empty() {
        return Err(NormalizeError::MissingId("account_id"));
    }
    let (currency, currency_is_official) =
        currency(t.iso_currency_code.as_deref(), t.unofficial_currency_code.as_deref());
    let (datetime, time_unknown) = when(t.datetime, t.authorized_datetime, t.authorized_date, t.date);
    let pfc = t.personal_finance_category.as_ref();

    // Counterparties and location are copied as text from the raw object (it keeps every field Plaid sent);
    // a hand-built transaction whose raw JSON lacks them falls back to the typed values.
    let built_in_code = t.raw.get() == "null";
    let RawExtras { counterparties: raw_counterparties, location: raw_location } =
        if built_in_code { RawExtras::default() } else { serde_json::from_str(t.raw.get())? };
    let counterparties = match raw_counterparties {
        // The typed list decodes one entry per raw entry, so an empty typed list means an empty raw array.
        Some(_) if t.counterparties.is_empty() => None,
        Some(v) => Some(v.get().to_owned()),
        None if t.counterparties.is_empty() => None,
        None => Some(serde_json::to_string(&t.counterparties)?),
    };
    let location = match raw_location {
        Some(v) if t.location == plaid::Location::default() && all_null(v)? => None,
        Some(v) => Some(v.get().to_owned()),
        None if t.location == plaid::Location::default() => None,
        None => Some(serde_json::to_string(&t.location)?),
    };
    let raw = if built_in_code { serde_json::to_string(&typed_raw(t))? } else { t.raw.get().to_owned() };

    Ok(NewTransaction {
        transaction_id: t.transaction_id.clone().into(),
        fields: TransactionFields {
            account_id: t.account_id.clone().into(),
            amount: t.amount,
            currency,
            currency_is_official,
            datetime,
            time_unknown,
            date: t.date,
            authorized_date: t.authorized_date,
            name: t.name.clone(),
            merchant_name: t.merchant_name.clone(),
            logo_url: t.logo_url.clone(),
            website: t.website.clone(),
            pfc_primary: pfc.map(|c| c.primary.clone()),
            pfc_detailed: pfc.map(|c| c.detailed.clone()),
            pfc_confidence: pfc.and_then(|c| c.confidence_level.as_ref()).map(|c| c.as_str().to_owned()),
            pfc_icon_url: t.personal_finance_category_icon_url.clone(),
            payment_channel: Some(t.payment_channel.as_str().to_owned()),
            pending: t.pending,
            pending_transaction_id: t.pending_transaction_id.clone().filter(|id| !id.is_empty()).map(Into::into),
            counterparties,
            location,
            account_owner: t.account_owner.clone(),
        },
        raw,
    })
}

/// The raw object's fields stored as JSON text, borrowed from it; a JSON `null` reads as absent.
#[derive(Default, serde::Deserialize)]
struct RawExtras<'a> {
    #[serde(borrow, default)]
    counterparties: Option<&'a RawValue>,
    #[serde(borrow, default)]
    location: Option<&'a RawValue>,
}

/// Whether a JSON object has only null members (an all-null location carries no information); checked
/// on the raw text because it may have members the typed `Location` does not model.
fn all_null(object: &RawValue) -> Result<bool, serde_json::Error> {
    struct AllNull;
    impl<'de> serde::de::Visitor<'de> for AllNull {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut all_null = true;
            // `Option` reads `null` as `None`; every entry is consumed so the object is fully checked.
            while let Some((_, value)) = map.next_entry::<IgnoredAny, Option<IgnoredAny>>()? {
                all_null &= value.is_none();
            }
            Ok(all_null)
        }
    }
    serde::Deserializer::deserialize_map(&mut serde_json::Deserializer::from_str(object.get()), AllNull)
}

/// An account with its balances from `source` (`/accounts/balance/get` = live, anything else = cached), as of
/// `as_of` unless Plaid says when the bank last updated the balance.
pub fn account(a: &plaid::AccountBase, source: BalanceSource, as_of: DateTime<Utc>) -> NewAccount {
    NewAccount {
        account_id: a.account_id.clone().into(),
        persistent_account_id: a.persistent_account_id.clone().filter(|p| !p.trim().is_empty()),
        name: a.name.clone(),
        official_name: a.official_name.clone(),
        mask: a.mask.clone(),
        account_type: a.account_type.as_str().to_owned(),
        subtype: a.subtype.as_ref().map(|s| s.as_str().to_owned()),
        balances: balances(&a.balances),
        balance_as_of: Some(a.balances.last_updated_datetime.unwrap_or(as_of)),
        balance_source: source,
    }
}

/// Only the balance part of [`account`], for refreshing balances of accounts already stored.
pub fn balance_update(a: &plaid::AccountBase, source: BalanceSource, as_of: DateTime<Utc>) -> BalanceUpdate {
    BalanceUpdate {
        account_id: a.account_id.clone().into(),
        balances: balances(&a.balances),
        as_of: a.balances.last_updated_datetime.unwrap_or(as_of),
        source,
    }
}

pub fn balances(b: &plaid::AccountBalance) -> Balances {
    let (currency, currency_is_official) =
        currency(b.iso_currency_code.as_deref(), b.unofficial_currency_code.as_deref());
    Balances { available: b.available, current: b.current, limit: b.limit, currency, currency_is_official }
}

/// ISO code, else the unofficial one (crypto, loyalty points); the flag is true only for an ISO code.
fn currency(iso: Option<&str>, unofficial: Option<&str>) -> (Option<String>, bool) {
    let present = |c: Option<&str>| c.map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned);
    match (present(iso), present(unofficial)) {
        (Some(iso), _) => (Some(iso), true),
        (None, Some(unofficial)) => (Some(unofficial), false),
        (None, None) => (None, false),
    }
}

/// The best-known moment of a transaction, and whether its time of day is unknown.
fn when(
    datetime: Option<DateTime<Utc>>,
    authorized_datetime: Option<DateTime<Utc>>,
    authorized_date: Option<NaiveDate>,
    date: NaiveDate,
) -> (DateTime<Utc>, bool) {
    match datetime.or(authorized_datetime) {
        Some(at) => (at, false),
        None => (authorized_date.unwrap_or(date).and_time(NaiveTime::MIN).and_utc(), true),
    }
}

/// The typed fields as a JSON object, for a transaction built in code (no raw object to keep).
fn typed_raw(t: &plaid::Transaction) -> serde_json::Value {
    serde_json::json!({
        "transaction_id": t.transaction_id,
        "account_id": t.account_id,
        "amount": serde_json::Value::String(t.amount.to_string()),
        "iso_currency_code": t.iso_currency_code,
        "unofficial_currency_code": t.unofficial_currency_code,
        "date": t.date.to_string(),
        "datetime": t.datetime.map(|d| d.to_rfc3339()),
        "authorized_date": t.authorized_date.map(|d| d.to_string()),
        "authorized_datetime": t.authorized_datetime.map(|d| d.to_rfc3339()),
        "pending": t.pending,
        "pending_transaction_id": t.pending_transaction_id,
        "name": t.name,
        "merchant_name": t.merchant_name,
        "payment_channel": t.payment_channel.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use rust_decimal::Decimal;
    use serde_json::{Value, json};

    use super::*;

    /// Parsed from text so numbers keep their exact text (the `json!` macro goes through f64).
    fn base() -> Value {
        serde_json::from_str(
            r#"{
            "transaction_id": "tx1",
            "account_id": "acc1",
            "amount": 12.30,
            "iso_currency_code": "USD",
            "unofficial_currency_code": null,
            "date": "2026-11-20",
            "datetime": null,
            "authorized_date": null,
            "authorized_datetime": null,
            "pending": false,
            "pending_transaction_id": null,
            "name": "UBER 063015 SF**POOL**",
            "merchant_name": "Uber",
            "payment_channel": "online",
            "personal_finance_category": {
                "primary": "TRANSPORTATION", "detailed": "TRANSPORTATION_TAXIS_AND_RIDE_SHARES",
                "confidence_level": "VERY_HIGH"
            },
            "personal_finance_category_icon_url": "https://plaid-category-icons.plaid.com/PFC_TRANSPORTATION.png",
            "logo_url": "https://plaid-merchant-logos.plaid.com/uber_1060.png",
            "website": "uber.com",
            "counterparties": [{"name": "Uber", "type": "merchant", "website": "uber.com", "logo_url": null,
                "entity_id": "eyg8o776k0QmNgVpAmaQj4WgzW9Qzo6O51gdd", "confidence_level": "VERY_HIGH",
                "phone_number": null}],
            "location": {"address": null, "city": null, "region": null, "postal_code": null, "country": null,
                "lat": null, "lon": null, "store_number": null},
            "account_owner": null,
            "brand_new_field": {"kept": true}
        }"#,
        )
        .unwrap()
    }

    fn exact(number: &str) -> Value {
        serde_json::from_str(number).unwrap()
    }

    fn normalize(v: Value) -> NewTransaction {
        transaction(&plaid::Transaction::from_value(v).unwrap()).unwrap()
    }

    fn with(changes: Value) -> NewTransaction {
        let mut v = base();
        for (k, val) in changes.as_object().unwrap() {
            v[k] = val.clone();
        }
        normalize(v)
    }

    #[test]
    fn amount_is_exact_and_keeps_plaids_sign() {
        let t = with(json!({"amount": exact("-1234567.89")}));
        assert_eq!(t.fields.amount, Decimal::from_str("-1234567.89").unwrap());
        let t = with(json!({"amount": exact("0.10")}));
        assert_eq!(t.fields.amount.to_string(), "0.10");
    }

    #[test]
    fn currency_prefers_iso_and_flags_unofficial() {
        let t = with(json!({"iso_currency_code": "EUR", "unofficial_currency_code": "BTC"}));
        assert_eq!((t.fields.currency.as_deref(), t.fields.currency_is_official), (Some("EUR"), true));
        let t = with(json!({"iso_currency_code": null, "unofficial_currency_code": "BTC"}));
        assert_eq!((t.fields.currency.as_deref(), t.fields.currency_is_official), (Some("BTC"), false));
        let t = with(json!({"iso_currency_code": null, "unofficial_currency_code": null}));
        assert_eq!((t.fields.currency.as_deref(), t.fields.currency_is_official), (None, false));
    }

    #[test]
    fn datetime_prefers_datetime_then_authorized_datetime() {
        let t = with(json!({"datetime": "2026-11-20T14:05:00Z", "authorized_datetime": "2026-11-19T10:00:00Z"}));
        assert_eq!(t.fields.datetime.to_rfc3339(), "2026-11-20T14:05:00+00:00");
        assert!(!t.fields.time_unknown);
        let t = with(json!({"authorized_datetime": "2026-11-19T10:00:00Z", "authorized_date": "2026-11-18"}));
        assert_eq!(t.fields.datetime.to_rfc3339(), "2026-11-19T10:00:00+00:00");
        assert!(!t.fields.time_unknown);
    }

    #[test]
    fn datetime_falls_back_to_authorized_date_then_date_at_midnight() {
        let t = with(json!({"authorized_date": "2026-11-18"}));
        assert_eq!(t.fields.datetime.to_rfc3339(), "2026-11-18T00:00:00+00:00");
        assert!(t.fields.time_unknown);
        assert_eq!(t.fields.date.to_string(), "2026-11-20");
        assert_eq!(t.fields.authorized_date.map(|d| d.to_string()).as_deref(), Some("2026-11-18"));
        let t = normalize(base());
        assert_eq!(t.fields.datetime.to_rfc3339(), "2026-11-20T00:00:00+00:00");
        assert!(t.fields.time_unknown);
    }

    #[test]
    fn display_name_is_merchant_else_name_and_both_are_kept() {
        let t = normalize(base());
        assert_eq!(t.display_name(), "Uber");
        assert_eq!(t.fields.name, "UBER 063015 SF**POOL**");
        let t = with(json!({"merchant_name": null}));
        assert_eq!(t.display_name(), "UBER 063015 SF**POOL**");
        assert_eq!(t.fields.merchant_name, None);
    }

    #[test]
    fn enrichment_fields_are_kept() {
        let t = normalize(base());
        assert_eq!(t.fields.pfc_primary.as_deref(), Some("TRANSPORTATION"));
        assert_eq!(t.fields.pfc_detailed.as_deref(), Some("TRANSPORTATION_TAXIS_AND_RIDE_SHARES"));
        assert_eq!(t.fields.pfc_confidence.as_deref(), Some("VERY_HIGH"));
        assert_eq!(
            t.fields.pfc_icon_url.as_deref(),
            Some("https://plaid-category-icons.plaid.com/PFC_TRANSPORTATION.png")
        );
        assert_eq!(t.fields.logo_url.as_deref(), Some("https://plaid-merchant-logos.plaid.com/uber_1060.png"));
        assert_eq!(t.fields.website.as_deref(), Some("uber.com"));
        assert_eq!(t.fields.payment_channel.as_deref(), Some("online"));
        let t =
            with(json!({"payment_channel": "in store", "account_owner": "Alberta", "personal_finance_category": null}));
        assert_eq!(t.fields.payment_channel.as_deref(), Some("in store"));
        assert_eq!(t.fields.account_owner.as_deref(), Some("Alberta"));
        assert_eq!((t.fields.pfc_primary, t.fields.pfc_detailed, t.fields.pfc_confidence), (None, None, None));
    }

    #[test]
    fn pending_fields_are_kept() {
        let t = with(json!({"pending": true}));
        assert!(t.fields.pending);
        assert_eq!(t.fields.pending_transaction_id, None);
        let t = with(json!({"pending_transaction_id": "tx0"}));
        assert!(!t.fields.pending);
        assert_eq!(t.fields.pending_transaction_id.as_ref().map(crate::domain::TransactionId::as_str), Some("tx0"));
        // An empty id names nothing.
        assert_eq!(with(json!({"pending_transaction_id": ""})).fields.pending_transaction_id, None);
    }

    #[test]
    fn counterparties_and_location_are_json_text_with_every_field() {
        let t = normalize(base());
        let cps: Value = serde_json::from_str(t.fields.counterparties.as_deref().unwrap()).unwrap();
        assert_eq!(cps[0]["name"], "Uber");
        assert!(cps[0].as_object().unwrap().contains_key("phone_number"), "unmodelled fields survive");
        // An all-null location carries no information.
        assert_eq!(t.fields.location, None);
        let t = with(json!({"location": {"city": "San Francisco", "lat": 37.7749, "lon": null}, "counterparties": []}));
        let loc: Value = serde_json::from_str(t.fields.location.as_deref().unwrap()).unwrap();
        assert_eq!(loc["city"], "San Francisco");
        assert_eq!(loc["lat"].to_string(), "37.7749");
        assert_eq!(t.fields.counterparties, None);
        // A location whose only value is in a field the client does not model still carries information.
        let t = with(json!({"location": {"city": null, "plus_code": "849VQHFJ+X6"}}));
        let loc: Value = serde_json::from_str(t.fields.location.as_deref().unwrap()).unwrap();
        assert_eq!(loc["plus_code"], "849VQHFJ+X6");
    }

    #[test]
    fn raw_json_is_kept_verbatim() {
        let t = normalize(base());
        let raw: Value = serde_json::from_str(&t.raw).unwrap();
        assert_eq!(raw["brand_new_field"]["kept"], true);
        assert!(t.raw.contains("\"amount\":12.30"), "{}", t.raw);
        // Decoded from the wire, the stored text is exactly the bytes received.
        let text =
            r#"{"transaction_id": "tx1", "account_id": "acc1", "amount": 1.50, "date": "2026-11-20", "x": [1, 2]}"#;
        let t = transaction(&serde_json::from_str(text).unwrap()).unwrap();
        assert_eq!(t.raw, text);
    }

    #[test]
    fn missing_ids_are_refused() {
        let mut v = base();
        v["account_id"] = json!("");
        let t = plaid::Transaction::from_value(v).unwrap();
        assert!(matches!(transaction(&t), Err(NormalizeError::MissingId("account_id"))));
    }

    #[test]
    fn accounts_and_balances() {
        let a: plaid::AccountBase = serde_json::from_str(
            r#"{"account_id": "acc1", "name": "Plaid Checking", "official_name": "Plaid Gold Standard Checking",
            "mask": "0000", "type": "depository", "subtype": "checking",
            "balances": {"available": 100.10, "current": 110, "limit": null, "iso_currency_code": null,
                "unofficial_currency_code": "BTC"}}"#,
        )
        .unwrap();
        let now = Utc::now();
        let n = account(&a, BalanceSource::Live, now);
        assert_eq!(n.account_type, "depository");
        assert_eq!(n.subtype.as_deref(), Some("checking"));
        assert_eq!(n.balances.available.unwrap().to_string(), "100.10");
        assert_eq!(n.balances.current, Some(Decimal::from(110)));
        assert_eq!(n.balances.limit, None);
        assert_eq!((n.balances.currency.as_deref(), n.balances.currency_is_official), (Some("BTC"), false));
        assert_eq!(n.balance_as_of, Some(now));
        assert_eq!(n.balance_source, BalanceSource::Live);
        let u = balance_update(&a, BalanceSource::Cached, now);
        assert_eq!((u.account_id.as_str(), u.as_of, u.source), ("acc1", now, BalanceSource::Cached));
    }
}
