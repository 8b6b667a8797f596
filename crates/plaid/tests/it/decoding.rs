//! Success decoding with realistic bodies: exact money, raw JSON kept, tolerance for unknown
//! fields and enum values.

use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use plaid::{
    AccountSubtype, AccountType, AccountsBalanceGetRequest, ConfidenceLevel, CounterpartyType, PaymentChannel, Product,
    Transaction, TransactionsSyncRequest, TransactionsUpdateStatus, UpdateType,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer};

use crate::common::*;

/// The spec's `/transactions/sync` example, with an exact long amount, a field Plaid may add
/// later, and enum values this crate does not know.
const SYNC_PAGE: &str = r#"{
  "accounts": [{
    "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp",
    "balances": {"available": 110.94, "current": 110.94, "iso_currency_code": "USD", "limit": null, "unofficial_currency_code": null},
    "mask": "0000", "name": "Plaid Checking", "official_name": "Plaid Gold Standard 0% Interest Checking",
    "subtype": "checking", "type": "depository"
  }],
  "added": [{
    "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp",
    "account_owner": null,
    "amount": 1234.5678901,
    "iso_currency_code": "USD",
    "unofficial_currency_code": null,
    "check_number": null,
    "counterparties": [{
      "name": "Walmart", "type": "merchant",
      "logo_url": "https://plaid-merchant-logos.plaid.com/walmart_1100.png",
      "website": "walmart.com", "entity_id": "O5W5j4dN9OR3E6ypQmjdkWZZRoXEzVMz2ByWM",
      "confidence_level": "VERY_HIGH", "phone_number": "+18009256278"
    }],
    "date": "2023-09-24",
    "datetime": "2023-09-24T11:01:01Z",
    "authorized_date": "2023-09-22",
    "authorized_datetime": "2023-09-22T10:34:50Z",
    "location": {"address": "13425 Community Rd", "city": "Poway", "region": "CA", "postal_code": "92064", "country": "US", "lat": 32.959068, "lon": -117.037666, "store_number": "1700"},
    "name": "PURCHASE WM SUPERCENTER #1700",
    "merchant_name": "Walmart",
    "merchant_entity_id": "O5W5j4dN9OR3E6ypQmjdkWZZRoXEzVMz2ByWM",
    "logo_url": "https://plaid-merchant-logos.plaid.com/walmart_1100.png",
    "website": "walmart.com",
    "payment_meta": {"by_order_of": null, "payee": null, "payer": null, "payment_method": null, "payment_processor": null, "ppd_id": null, "reason": null, "reference_number": null},
    "payment_channel": "in store",
    "pending": false,
    "pending_transaction_id": "no86Eox18VHMvaOVL7gPUM9ap3aR1LsAVZ5nc",
    "personal_finance_category": {"primary": "GENERAL_MERCHANDISE", "detailed": "GENERAL_MERCHANDISE_SUPERSTORES", "confidence_level": "VERY_HIGH", "version": "v2"},
    "personal_finance_category_icon_url": "https://plaid-category-icons.plaid.com/PFC_GENERAL_MERCHANDISE.png",
    "transaction_id": "lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje",
    "transaction_code": null,
    "transaction_type": "place",
    "some_future_field": {"nested": [1, 2.50, "x"]}
  }],
  "modified": [{
    "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp",
    "account_owner": null,
    "amount": -28.340,
    "iso_currency_code": null,
    "unofficial_currency_code": "BTC",
    "check_number": null,
    "counterparties": [
      {"name": "DoorDash", "type": "a_brand_new_counterparty_type", "logo_url": null, "website": null, "entity_id": null, "confidence_level": "EXTREMELY_HIGH"}
    ],
    "date": "2023-09-28",
    "datetime": null,
    "authorized_date": null,
    "authorized_datetime": null,
    "location": {"address": null, "city": null, "region": null, "postal_code": null, "country": null, "lat": null, "lon": null, "store_number": null},
    "name": "Dd Doordash Burgerkin",
    "merchant_name": null,
    "payment_meta": {},
    "payment_channel": "teleportation",
    "pending": true,
    "pending_transaction_id": null,
    "personal_finance_category": null,
    "transaction_id": "yhnUVvtcGGcCKU0bcz8PDQr5ZUxUXebUvbKC0",
    "transaction_code": "bank charge"
  }],
  "removed": [{"account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp", "transaction_id": "CmdQTNgems8BT1B7ibkoUXVPyAeehT3Tmzk0l"}],
  "next_cursor": "tVUUL15lYQN5rBnfDIc1I8xudpGdIlw9nsgeXWvhOfkECvUeR663i3Dt1uf/94S8ASkitgLcIiOSqNwzzp+bh89kirazha5vuZHBb2ZA5NtCDkkV",
  "has_more": false,
  "request_id": "Wvhy9PZHQLV8njG",
  "transactions_update_status": "HISTORICAL_UPDATE_COMPLETE"
}"#;

#[tokio::test]
async fn sync_page_decodes_every_normalization_field() {
    let server = MockServer::start().await;
    Mock::given(path("/transactions/sync")).respond_with(json(SYNC_PAGE)).mount(&server).await;
    let page = client(&server).transactions_sync(&TransactionsSyncRequest::new(token())).await.unwrap();

    assert_eq!(page.transactions_update_status, TransactionsUpdateStatus::HistoricalUpdateComplete);
    assert!(!page.has_more);
    assert_eq!(page.request_id, "Wvhy9PZHQLV8njG");
    assert_eq!(page.removed[0].transaction_id, "CmdQTNgems8BT1B7ibkoUXVPyAeehT3Tmzk0l");
    assert_eq!(page.accounts[0].balances.current, Some(dec!(110.94)));

    let t = &page.added[0];
    assert_eq!(t.transaction_id, "lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje");
    assert_eq!(t.account_id, "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp");
    assert_eq!(t.amount, dec!(1234.5678901));
    assert_eq!(t.amount.to_string(), "1234.5678901");
    assert_eq!(t.currency(), Some("USD"));
    assert_eq!(t.date, NaiveDate::from_ymd_opt(2023, 9, 24).unwrap());
    assert_eq!(t.datetime, Some(Utc.with_ymd_and_hms(2023, 9, 24, 11, 1, 1).unwrap()));
    assert_eq!(t.authorized_date, NaiveDate::from_ymd_opt(2023, 9, 22));
    assert_eq!(t.authorized_datetime, Some(Utc.with_ymd_and_hms(2023, 9, 22, 10, 34, 50).unwrap()));
    assert!(!t.pending);
    assert_eq!(t.pending_transaction_id.as_deref(), Some("no86Eox18VHMvaOVL7gPUM9ap3aR1LsAVZ5nc"));
    assert_eq!(t.name, "PURCHASE WM SUPERCENTER #1700");
    assert_eq!(t.merchant_name.as_deref(), Some("Walmart"));
    assert_eq!(t.merchant_entity_id.as_deref(), Some("O5W5j4dN9OR3E6ypQmjdkWZZRoXEzVMz2ByWM"));
    assert_eq!(t.logo_url.as_deref(), Some("https://plaid-merchant-logos.plaid.com/walmart_1100.png"));
    assert_eq!(t.website.as_deref(), Some("walmart.com"));
    assert_eq!(t.payment_channel, PaymentChannel::InStore);
    let pfc = t.personal_finance_category.as_ref().unwrap();
    assert_eq!(pfc.primary, "GENERAL_MERCHANDISE");
    assert_eq!(pfc.detailed, "GENERAL_MERCHANDISE_SUPERSTORES");
    assert_eq!(pfc.confidence_level, Some(ConfidenceLevel::VeryHigh));
    assert_eq!(
        t.personal_finance_category_icon_url.as_deref(),
        Some("https://plaid-category-icons.plaid.com/PFC_GENERAL_MERCHANDISE.png")
    );
    assert_eq!(t.counterparties.len(), 1);
    assert_eq!(t.counterparties[0].counterparty_type, CounterpartyType::Merchant);
    assert_eq!(t.location.city.as_deref(), Some("Poway"));
    assert_eq!(t.location.lat, Some(32.959068));
    assert_eq!(t.location.store_number.as_deref(), Some("1700"));
    assert_eq!(t.account_owner, None);
    assert_eq!(t.transaction_code, None);

    // The raw object is kept, with fields this crate does not model and numbers as sent.
    assert_eq!(t.raw_value()["transaction_type"], "place");
    assert_eq!(t.raw_value()["some_future_field"]["nested"][1].to_string(), "2.50");
    assert_eq!(t.raw_value()["amount"].to_string(), "1234.5678901");
    assert_eq!(t.raw_value()["counterparties"][0]["phone_number"], "+18009256278");

    // Unknown enum values are kept, not rejected.
    let m = &page.modified[0];
    assert_eq!(m.amount, dec!(-28.340));
    assert_eq!(m.amount.to_string(), "-28.340", "scale of the JSON text is kept");
    assert_eq!(m.currency(), Some("BTC"));
    assert_eq!(m.payment_channel, PaymentChannel::Other("teleportation".into()));
    assert_eq!(m.counterparties[0].counterparty_type, CounterpartyType::Other("a_brand_new_counterparty_type".into()));
    assert_eq!(m.counterparties[0].confidence_level, Some(ConfidenceLevel::Other("EXTREMELY_HIGH".into())));
    assert_eq!(m.transaction_code, Some(plaid::TransactionCode::BankCharge));
    assert_eq!(m.datetime, None);
    assert!(m.pending);
}

#[test]
fn amounts_stay_exact_for_every_json_number_shape() {
    for text in ["1234.5678901", "0.1", "72.10", "-0.000000001", "56302.06", "12345678901234567.123456789", "100", "0"]
    {
        let body = format!(
            r#"{{"transaction_id":"t","account_id":"a","amount":{text},"date":"2024-01-02","pending":false,"name":"n","payment_channel":"online"}}"#
        );
        let t: Transaction = serde_json::from_str(&body).unwrap();
        assert_eq!(t.amount, Decimal::from_str(text).unwrap(), "{text}");
        assert_eq!(t.amount.to_string(), text, "{text}");
        assert_eq!(t.raw_value()["amount"].to_string(), text);
        assert_eq!(t.raw.get(), body, "raw is the text as received");
        // Serializing writes the raw object back unchanged.
        let back = serde_json::to_string(&t).unwrap();
        assert!(back.contains(&format!("\"amount\":{text}")), "{back}");
    }
}

#[test]
fn transaction_tolerates_missing_optional_fields_and_bad_optional_dates() {
    let t: Transaction = serde_json::from_str(
        r#"{"transaction_id":"t","account_id":"a","amount":1,"date":"2024-01-02","authorized_datetime":"yesterday-ish","counterparties":null,"location":null}"#,
    )
    .unwrap();
    assert_eq!(t.authorized_datetime, None);
    assert_eq!(t.raw_value()["authorized_datetime"], "yesterday-ish");
    assert!(t.counterparties.is_empty());
    assert_eq!(t.location, plaid::Location::default());
    assert_eq!(t.payment_channel, PaymentChannel::Other("other".into()));
    // Required fields are still required.
    assert!(
        serde_json::from_str::<Transaction>(r#"{"transaction_id":"t","account_id":"a","date":"2024-01-02"}"#).is_err()
    );
}

#[tokio::test]
async fn item_get_example_decodes() {
    let server = MockServer::start().await;
    Mock::given(path("/item/get"))
        .respond_with(json(
            r#"{"item":{"created_at":"2019-01-22T04:32:00Z","available_products":["balance","auth"],"billed_products":["identity","transactions"],"products":["identity","transactions"],"error":{"error_type":"ITEM_ERROR","error_code":"ITEM_LOGIN_REQUIRED","error_message":"the login details of this item have changed","display_message":"Please update your credentials.","request_id":null},"institution_id":"ins_109508","institution_name":"First Platypus Bank","item_id":"Ed6bjNrDLJfGvZWwnkQlfxwoNz54B5C97ejBr","update_type":"background","webhook":"https://plaid.com/example/hook","auth_method":null,"consented_products":["identity","transactions","a_new_product"],"consented_data_scopes":["account_balance_info"],"consented_use_cases":["Verify your account"],"consent_expiration_time":"2024-03-16T15:53:00Z"},"status":{"transactions":{"last_successful_update":"2019-02-15T15:52:39Z","last_failed_update":"2019-01-22T04:32:00Z"},"last_webhook":{"sent_at":"2019-02-15T15:53:00Z","code_sent":"DEFAULT_UPDATE"}},"request_id":"m8MDnv9okwxFNBV"}"#,
        ))
        .mount(&server)
        .await;
    let response = client(&server).item_get(&token()).await.unwrap();
    let item = response.item;
    assert_eq!(item.item_id, "Ed6bjNrDLJfGvZWwnkQlfxwoNz54B5C97ejBr");
    assert_eq!(item.institution_name.as_deref(), Some("First Platypus Bank"));
    assert_eq!(item.update_type, Some(UpdateType::Background));
    assert_eq!(item.available_products, vec![Product::Balance, Product::Auth]);
    assert_eq!(item.consented_products.last(), Some(&Product::Other("a_new_product".into())));
    let error = item.error.expect("item error");
    assert_eq!(error.error_code, "ITEM_LOGIN_REQUIRED");
    assert!(error.requires_user_action());
    assert_eq!(error.user_message(), "Please update your credentials.");
    assert_eq!(
        response.status.and_then(|s| s.transactions).and_then(|t| t.last_successful_update),
        Some(Utc.with_ymd_and_hms(2019, 2, 15, 15, 52, 39).unwrap())
    );
}

#[tokio::test]
async fn balance_example_decodes_with_exact_nullable_balances() {
    let server = MockServer::start().await;
    Mock::given(path("/accounts/balance/get"))
        .respond_with(json(
            r#"{"accounts":[
              {"account_id":"BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp","balances":{"available":100,"current":110,"iso_currency_code":"USD","limit":null,"unofficial_currency_code":null},"holder_category":"personal","mask":"0000","name":"Plaid Checking","official_name":"Plaid Gold Standard 0% Interest Checking","subtype":"checking","type":"depository"},
              {"account_id":"dVzbVMLjrxTnLjX4G66XUp5GLklm4oiZy88yK","balances":{"available":null,"current":410.1234567,"iso_currency_code":"USD","limit":2000,"unofficial_currency_code":null,"last_updated_datetime":"2024-05-01T08:00:00Z"},"mask":"3333","name":"Plaid Credit Card","official_name":null,"subtype":"credit card","type":"credit"},
              {"account_id":"x","balances":{"current":1},"mask":null,"name":"Odd","official_name":null,"subtype":"space station","type":"other"}
            ],
            "item":{"available_products":["balance"],"billed_products":["transactions"],"consent_expiration_time":null,"error":null,"institution_id":"ins_3","institution_name":"Chase","item_id":"eVBnVMp7zdTJLkRNr33Rs6zr7KNJqBFL9DrE6","update_type":"background","webhook":"https://www.genericwebhookurl.com/webhook","auth_method":"INSTANT_AUTH"},
            "request_id":"qk5Bxes3gDfv4F2"}"#,
        ))
        .mount(&server)
        .await;
    let response = client(&server).accounts_balance_get(&AccountsBalanceGetRequest::new(token())).await.unwrap();
    let [checking, card, odd] = &response.accounts[..] else { panic!("three accounts expected") };
    assert_eq!(checking.account_type, AccountType::Depository);
    assert_eq!(checking.subtype, Some(AccountSubtype::Checking));
    assert_eq!(checking.balances.available, Some(dec!(100)));
    assert_eq!(card.subtype, Some(AccountSubtype::CreditCard));
    assert_eq!(card.balances.available, None);
    assert_eq!(card.balances.current, Some(dec!(410.1234567)));
    assert_eq!(card.balances.limit, Some(dec!(2000)));
    assert!(card.balances.last_updated_datetime.is_some());
    assert_eq!(odd.account_type, AccountType::Other("other".into()));
    assert_eq!(odd.subtype, Some(AccountSubtype::Other("space station".into())));
    assert_eq!(odd.balances.available, None);
    assert_eq!(odd.balances.iso_currency_code, None);
    assert_eq!(response.item.auth_method.as_deref(), Some("INSTANT_AUTH"));
}
