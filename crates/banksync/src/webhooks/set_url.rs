//! `banksync webhook set-url URL`: points every Item's webhook at a new URL through `/item/webhook/update`, for
//! when the public URL changes. Plaid then sends WEBHOOK_UPDATE_ACKNOWLEDGED to the new URL.

use std::sync::Arc;

use plaid::AccessToken;
use serde::Serialize;

use crate::store::Store;
use crate::vault::Vault;

/// What happened to one Item.
#[derive(Debug, Clone, Serialize)]
pub struct ItemReport {
    pub item_id: String,
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
        let error = match vault.decrypt(&item.access_token, &item.item_id) {
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

/// The `banksync webhook set-url URL` command: prints one line per Item and fails if any Item failed.
pub async fn run(url: &str, config: &crate::config::Config) -> anyhow::Result<()> {
    use anyhow::Context as _;

    let url = url::Url::parse(url.trim()).with_context(|| format!("{url:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        anyhow::bail!(
            "the webhook URL must be an http(s) URL with a host, e.g. https://bank.example.org/webhooks/plaid"
        );
    }
    let crate::config::PlaidTarget::Remote { client_id, secret, environment, base_url } = &config.plaid else {
        anyhow::bail!(
            "no PLAID_CLIENT_ID/PLAID_SECRET configured: the embedded simulator's Items live only while \
             `banksync serve` runs, so there is nothing to update"
        );
    };
    let env = match (base_url, environment) {
        (Some(base), _) => plaid::Environment::Custom(base.clone()),
        (None, crate::config::PlaidEnvironment::Sandbox) => plaid::Environment::Sandbox,
        (None, crate::config::PlaidEnvironment::Production) => plaid::Environment::Production,
    };
    let store = crate::startup::open_store(config).await?;
    let plaid = plaid::PlaidClient::new(plaid::ClientConfig::new(env, client_id, secret.clone()))
        .context("invalid Plaid client settings")?
        .with_observer(crate::audit::observer(store.clone()));
    let vault: Vault =
        crate::keys::server_vault(config).context("cannot load the master keys that encrypt Plaid access tokens")?;

    let reports = set_webhook_url(&store, &vault, &plaid, &url).await?;
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    for r in &reports {
        let name = r.institution.as_deref().unwrap_or("-");
        match &r.error {
            None => println!("{}  {name}: webhook set to {url}", r.item_id),
            Some(e) => println!("{}  {name}: FAILED: {e}", r.item_id),
        }
    }
    println!("{} Item(s) updated, {failed} failed", reports.len() - failed);
    // Let the audit writer flush the recorded calls.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    if failed > 0 {
        anyhow::bail!("{failed} Item(s) could not be updated");
    }
    Ok(())
}
