//! `banksync webhook set-url URL` (the command is in `crate::cli`): points every Item's webhook at a new URL through
//! `/item/webhook/update`, for when the public URL changes. Plaid then sends WEBHOOK_UPDATE_ACKNOWLEDGED to the new
//! URL.

use std::sync::Arc;

use plaid::AccessToken;
use serde::Serialize;

use crate::domain::PlaidItemId;
use crate::store::Store;
use crate::vault::Vault;

/// What happened to one Item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReport {
    pub item_id: PlaidItemId,
    pub institution: Option<String>,
    /// `None` on success; a message safe to print otherwise.
    pub error: Option<String>,
}

/// Updates every Item's webhook to `url`, one Item after the other (a failure does not stop the rest).
pub async fn set_webhook_url(
    store: &Arc<Store>,
    vault: &Vault,
    plaid: &plaid::PlaidClient,
    url: &url::Url,
) -> anyhow::Result<Vec<ItemReport>> {
    let items = store.list_all_items().await?;
    let mut reports = Vec::with_capacity(items.len());
    for item in items {
        let error = match vault.decrypt(&item.access_token, item.item_id.as_str()) {
            Err(e) => Some(format!("cannot decrypt the access token: {e}")),
            Ok(token) => {
                let token = AccessToken::from(token);
                let call = plaid.item_webhook_update(&token, Some(url.as_str()));
                match crate::audit::with_item(&item.item_id, call).await {
                    Ok(_) => None,
                    Err(e) => Some(match e.plaid_error() {
                        Some(p) => format!("{}: {}", p.error_code, p.user_message()),
                        None => e.to_string(),
                    }),
                }
            }
        };
        reports.push(ItemReport { item_id: item.item_id, institution: item.institution_name, error });
    }
    Ok(reports)
}
