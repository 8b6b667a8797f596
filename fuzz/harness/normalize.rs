//! Fuzz harness: the normalizer (`banksync::normalize::transaction`) on a Plaid transaction decoded from untrusted
//! bytes, exactly as the sync engine decodes `/transactions/sync` pages (`plaid::Transaction::from_raw`).
//!
//! Shared by `fuzz/fuzz_targets/normalize.rs` and the replay test `crates/banksync/tests/fuzz_corpus.rs`.
//! Properties (ARCHITECTURE.md "Normalization rules"): no panic; the amount is Plaid's, exactly; the currency is
//! `iso_currency_code` else `unofficial_currency_code` (blank = absent), flagged; the date is Plaid's; `time_unknown` exactly when
//! Plaid gave no datetime; the raw JSON is kept byte for byte; ids carried over.

use banksync::normalize;
use serde_json::value::RawValue;

/// Returns whether the input normalized.
pub fn run(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else { return false };
    let Ok(raw) = RawValue::from_string(text.to_owned()) else { return false };
    let Ok(t) = plaid::Transaction::from_raw(raw) else { return false };
    let n = match normalize::transaction(&t) {
        Ok(n) => n,
        Err(normalize::NormalizeError::MissingId(_)) => {
            assert!(t.transaction_id.is_empty() || t.account_id.is_empty());
            return false;
        }
        Err(_) => return false,
    };
    let f = &n.fields;
    assert_eq!(n.transaction_id.as_str(), t.transaction_id);
    assert_eq!(f.account_id.as_str(), t.account_id);
    assert_eq!(f.amount, t.amount);
    // A blank code counts as none.
    let present = |c: &Option<String>| c.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned);
    let (iso, unofficial) = (present(&t.iso_currency_code), present(&t.unofficial_currency_code));
    assert_eq!(f.currency, iso.clone().or(unofficial));
    assert_eq!(f.currency_is_official, iso.is_some());
    assert_eq!(f.date, t.date);
    assert_eq!(f.pending, t.pending);
    assert_eq!(f.name, t.name);
    assert_eq!(f.time_unknown, t.datetime.is_none() && t.authorized_datetime.is_none());
    if let Some(dt) = t.datetime {
        assert_eq!(f.datetime, dt);
    }
    // Byte for byte, but the whitespace around the object is not part of it (serde's RawValue drops it).
    assert_eq!(n.raw, text.trim_matches([' ', '\t', '\n', '\r']), "the raw object is kept byte for byte");
    // What is stored as JSON text is JSON.
    for json in [&f.counterparties, &f.location].into_iter().flatten() {
        serde_json::from_str::<serde_json::Value>(json).expect("stored JSON columns hold JSON");
    }
    true
}
