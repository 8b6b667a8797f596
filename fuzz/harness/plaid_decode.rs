//! Fuzz harness: the Plaid client's JSON decoders, i.e. every response model banksync reads from Plaid (or from a
//! webhook body), decoded from untrusted bytes.
//!
//! Shared by `fuzz/fuzz_targets/plaid_decode.rs` and the replay test `crates/plaid/tests/it/fuzz_corpus.rs`.
//! Properties: no panic; a transaction decoded by `Transaction::from_raw` keeps its text as `raw`, and what it
//! serializes decodes again to an equal transaction; a decoded webhook re-decodes from its own `raw` value alike.

use plaid::{
    AccountsGetResponse, ItemGetResponse, ItemPublicTokenExchangeResponse, LinkTokenCreateResponse, PlaidError,
    Transaction, TransactionsSyncResponse, WebhookVerificationKeyGetResponse, webhook::Jwk,
};

/// Runs one input through every decoder; returns how many accepted it.
pub fn run(data: &[u8]) -> usize {
    let mut accepted = 0;
    macro_rules! decode {
        ($($ty:ty),*) => {$(
            if serde_json::from_slice::<$ty>(data).is_ok() {
                accepted += 1;
            }
        )*};
    }
    decode!(
        TransactionsSyncResponse,
        AccountsGetResponse,
        ItemGetResponse,
        ItemPublicTokenExchangeResponse,
        LinkTokenCreateResponse,
        WebhookVerificationKeyGetResponse,
        Jwk,
        PlaidError
    );
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(raw) = serde_json::value::RawValue::from_string(text.to_owned())
        && let Ok(transaction) = Transaction::from_raw(raw)
    {
        accepted += 1;
        assert_eq!(transaction.raw.get(), text, "raw keeps the bytes received");
        let again: Transaction = serde_json::from_str(&serde_json::to_string(&transaction).unwrap())
            .expect("a transaction's own serialization decodes");
        assert_eq!(again, transaction);
    }
    if let Ok(webhook) = plaid::Webhook::from_slice(data) {
        accepted += 1;
        let again = plaid::Webhook::from_value(webhook.raw.clone()).expect("a webhook's raw value decodes again");
        assert_eq!(again, webhook);
    }
    accepted
}
