//! Plaid's transaction object as stored: zstd-compressed in `raw_zstd` (migration `compressed_raw`), or, in rows
//! written before that migration, as JSON text in `raw`.
//!
//! The object is ~1.5 KB of JSON, the largest part of a stored transaction, and only
//! `GET /api/transactions/{id}/raw` reads it. Alone, one object compresses only ~2x (zstd finds little to repeat in
//! 1.5 KB); most of it is the field names and fixed values every object repeats, so it is compressed against a
//! dictionary of two typical objects (`raw_json_dictionary.v1.json`, used as raw content): ~4.5x. A stored value is
//! a format byte and a zstd frame; the dictionary of a format never changes (a test pins it), so a better one is a
//! new format byte, and old rows stay readable.

use std::cell::RefCell;
use std::io::Read as _;

use super::{Result, StoreError};

/// The format byte of values compressed with [`DICTIONARY_V1`].
const FORMAT_V1: u8 = 1;
/// Two typical transaction objects, with Plaid's field order and common values. Never edit: rows hold frames that
/// need exactly these bytes.
const DICTIONARY_V1: &[u8] = include_bytes!("raw_json_dictionary.v1.json");
/// zstd's default level: on objects this small level 1 is ~7 % larger, and compressing runs beside the database
/// thread (while it writes the previous statement), not in its way.
const LEVEL: i32 = 3;

thread_local! {
    /// A compression context per thread, with the dictionary loaded: making one per row would cost more than
    /// compressing the row.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

/// `json` compressed for `raw_zstd`.
pub(super) fn compress(json: &str) -> Vec<u8> {
    COMPRESSOR.with_borrow_mut(|compressor| {
        let compressor = compressor.get_or_insert_with(|| {
            zstd::bulk::Compressor::with_dictionary(LEVEL, DICTIONARY_V1)
                .expect("a zstd context with a raw-content dictionary (memory allocation only)")
        });
        let frame = compressor.compress(json.as_bytes()).expect("zstd compresses into a buffer it sizes itself");
        let mut stored = Vec::with_capacity(1 + frame.len());
        stored.push(FORMAT_V1);
        stored.extend_from_slice(&frame);
        stored
    })
}

/// The JSON text of a stored transaction's `raw` and `raw_zstd` columns.
pub(super) fn stored(raw: String, raw_zstd: Option<Vec<u8>>) -> Result<String> {
    let Some(compressed) = raw_zstd else {
        return Ok(raw);
    };
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Other(anyhow::anyhow!("stored raw transaction: {e}"));
    let Some((&FORMAT_V1, frame)) = compressed.split_first() else {
        return Err(corrupt(&format_args!("unknown format {:?}", compressed.first())));
    };
    let mut json = Vec::with_capacity(4 * frame.len());
    zstd::stream::read::Decoder::with_dictionary(frame, DICTIONARY_V1)
        .and_then(|mut decoder| decoder.read_to_end(&mut json))
        .map_err(|e| corrupt(&e))?;
    String::from_utf8(json).map_err(|e| corrupt(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compressed_json_reads_back_and_old_text_reads_as_is() {
        let json = r#"{"transaction_id":"abc","amount":12.3,"name":"Café ☕","location":{"city":null}}"#;
        let compressed = compress(json);
        assert_eq!(stored(String::new(), Some(compressed)).unwrap(), json);
        assert_eq!(stored(json.to_owned(), None).unwrap(), json);
        assert!(stored(String::new(), Some(b"not zstd".to_vec())).is_err());
        assert!(stored(String::new(), Some(vec![FORMAT_V1, 1, 2, 3])).is_err());
        assert!(stored(String::new(), Some(Vec::new())).is_err());
    }

    /// Rows hold frames compressed against these exact bytes.
    #[test]
    fn the_first_dictionary_never_changes() {
        use sha2::Digest as _;
        assert_eq!(
            hex::encode(sha2::Sha256::digest(DICTIONARY_V1)),
            "aa69eb5c53f1b0a595a2e5ba7fa55f0027a19b9659abc88764050baab1ea869a"
        );
    }

    #[test]
    fn a_transaction_object_takes_under_a_third_of_its_text() {
        let json = serde_json::json!({
            "account_id": "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp", "account_owner": null, "amount": 2307.21,
            "authorized_date": "2026-11-27", "authorized_datetime": null, "category": ["Shops", "Computers and Electronics"],
            "category_id": "19013000", "check_number": null, "counterparties": [{"name": "Apple", "type": "merchant",
            "logo_url": "https://plaid-merchant-logos.plaid.com/apple_44.png", "website": "apple.com",
            "entity_id": "Bn8dDmkb2bzX5bbKYCzMyXTqWuAAbnRYKB", "confidence_level": "VERY_HIGH"}],
            "date": "2026-11-28", "datetime": null, "iso_currency_code": "USD", "location": {"address": "300 Post St",
            "city": "San Francisco", "country": "US", "lat": 40.740352, "lon": -74.001761, "postal_code": "94108",
            "region": "CA", "store_number": "1235"}, "logo_url": "https://plaid-merchant-logos.plaid.com/apple_44.png",
            "merchant_entity_id": "Bn8dDmkb2bzX5bbKYCzMyXTqWuAAbnRYKB", "merchant_name": "Apple", "name": "Apple Store",
            "payment_channel": "in store", "payment_meta": {"by_order_of": null, "payee": null, "payer": null,
            "payment_method": null, "payment_processor": null, "ppd_id": null, "reason": null, "reference_number": null},
            "pending": false, "pending_transaction_id": null, "personal_finance_category": {"confidence_level": "VERY_HIGH",
            "detailed": "GENERAL_MERCHANDISE_ELECTRONICS", "primary": "GENERAL_MERCHANDISE"},
            "personal_finance_category_icon_url": "https://plaid-category-icons.plaid.com/PFC_GENERAL_MERCHANDISE.png",
            "transaction_code": null, "transaction_id": "lPNjeW1nR6CDn5okmGQ6hEpMo4lLNoSrzqDje", "transaction_type": "place",
            "unofficial_currency_code": null, "website": "apple.com"
        })
        .to_string();
        let compressed = compress(&json);
        assert!(compressed.len() * 3 < json.len(), "{} of {} bytes", compressed.len(), json.len());
    }
}
