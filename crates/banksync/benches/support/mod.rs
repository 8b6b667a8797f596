//! What the benchmarks share: linking an Item through the simulator's sandbox route and storing it with its accounts
//! the way the link flow does (without the link flow's queued first sync, so a benchmark times only what it means to).

use banksync::domain::{BalanceSource, Item, NewItem, User};
use banksync::store::Store;
use banksync::vault::Vault;
use plaid::{AccountsGetRequest, PlaidClient, Product, SandboxPublicTokenCreateRequest};
use secrecy::SecretString;

/// The simulated institution every benchmark links.
pub const INSTITUTION: &str = "ins_109508";

/// Links `username` at [`INSTITUTION`] (730 days) for `user` and stores the Item with its accounts.
pub async fn link_item(
    store: &Store,
    plaid: &PlaidClient,
    vault: &Vault,
    user: &User,
    username: &str,
    password: &str,
) -> Item {
    let request = SandboxPublicTokenCreateRequest::new(INSTITUTION, [Product::Transactions])
        .credentials(username, password)
        .days_requested(730);
    let public_token = plaid.sandbox_public_token_create(&request).await.unwrap().public_token;
    let exchanged = plaid.item_public_token_exchange(&public_token).await.unwrap();
    let secret = SecretString::from(exchanged.access_token.expose_secret().to_owned());
    let item = store
        .insert_item(&NewItem {
            item_id: exchanged.item_id.clone().into(),
            user_id: user.id.clone(),
            institution_id: Some(INSTITUTION.into()),
            institution_name: None,
            access_token: vault.encrypt(&secret, &exchanged.item_id).unwrap(),
        })
        .await
        .unwrap();
    let accounts = plaid.accounts_get(&AccountsGetRequest::new(exchanged.access_token)).await.unwrap();
    let now = chrono::Utc::now();
    let accounts: Vec<_> =
        accounts.accounts.iter().map(|a| banksync::normalize::account(a, BalanceSource::Cached, now)).collect();
    store.upsert_accounts(&item, &accounts, true).await.unwrap();
    item
}
