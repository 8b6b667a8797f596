//! The link flow: link tokens (new Items and update mode), the public token exchange, repair after update mode, and
//! removal.
//!
//! Exchange order matters for "nothing stored half-way" and for billing: exchange → `/accounts/get` (accounts and
//! the authoritative institution id, never the browser's metadata) → refuse a second Item at the same institution
//! unless asked to keep both or to replace the existing one ([`SameInstitution`]) → seal the token and store Item +
//! accounts (+ the pointer to the Item it replaces) → first sync queued (it also arms SYNC_UPDATES_AVAILABLE
//! webhooks; while Plaid's data is not ready, the sync job keeps looking on its own). Whenever we give up after the
//! exchange, the new Item is removed at Plaid so it is not billed. A replacing Item's merge (`relink.rs`) runs once
//! its history is complete.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use plaid::{AccessToken, AccountsGetRequest, ItemRemoveRequest, LinkTokenCreateRequest, Product, PublicToken, codes};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::domain::{
    Account, AccountFilter, BalanceSource, Item, ItemHealth, ItemStatus, NewItem, PlaidItemId, UserId,
};
use crate::jobs::{JobQueue, SyncRefused};
use crate::normalize;
use crate::store::{Store, StoreError};
use crate::sync::SyncTrigger;
use crate::vault::{Vault, VaultError};

/// History requested at link time; it cannot be changed later without linking again.
pub const DAYS_REQUESTED: u32 = 730;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("Plaid: {0}")]
    Plaid(plaid::Error),
    /// Unknown Item, or another user's.
    #[error("not found")]
    NotFound,
    /// A second Item at an institution the user already linked; the message says what to do (and names the
    /// existing Item's id, to replace it).
    #[error("{0}")]
    Conflict(String),
    /// `replaces_item_id` names no Item of this user.
    #[error("the Item to replace was not found")]
    ReplacedNotFound,
    /// `replaces_item_id` names an Item that cannot be replaced by this one (another institution).
    #[error("{0}")]
    InvalidReplace(String),
    /// The Item to replace already has a replacement waiting for its merge.
    #[error("{0}")]
    ReplaceConflict(String),
    #[error("store: {0}")]
    Store(StoreError),
    #[error("token vault: {0}")]
    Vault(#[from] VaultError),
}

impl From<plaid::Error> for LinkError {
    fn from(e: plaid::Error) -> Self {
        Self::Plaid(e)
    }
}

impl From<StoreError> for LinkError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            other => Self::Store(other),
        }
    }
}

impl LinkError {
    pub fn plaid_error(&self) -> Option<&plaid::PlaidError> {
        match self {
            Self::Plaid(e) => e.plaid_error(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkToken {
    pub link_token: String,
    pub expiration: DateTime<Utc>,
    /// Set for an update-mode token: the Item it repairs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<PlaidItemId>,
}

/// Link's `onSuccess` metadata, as the browser sends it. Informational only: the institution is taken from Plaid.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct LinkMetadata {
    #[serde(default)]
    pub institution: Option<LinkInstitution>,
    #[serde(default)]
    pub accounts: Vec<LinkAccount>,
    #[serde(default)]
    pub link_session_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct LinkInstitution {
    #[serde(default)]
    pub institution_id: String,
    #[serde(default)]
    pub name: String,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct LinkAccount {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub mask: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkedItem {
    pub item: Item,
    pub accounts: Vec<Account>,
}

/// What to do when the user already has an Item at the institution just linked.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SameInstitution {
    /// Refuse (409) and remove the new Item at Plaid: a second connection is billed separately.
    #[default]
    Refuse,
    /// Keep both connections (the user confirmed).
    KeepBoth,
    /// The new Item replaces this one of the user's Items (same institution required): its history, notes and
    /// categories are merged into the new Item and it is removed (`relink.rs`).
    Replace(PlaidItemId),
}

pub struct LinkService {
    store: Arc<Store>,
    plaid: plaid::PlaidClient,
    vault: Arc<Vault>,
    jobs: JobQueue,
    webhook_url: Url,
    client_name: String,
    /// Where OAuth banks send the browser back (`BANKSYNC_OAUTH_REDIRECT_URI`); without it they cannot be linked.
    redirect_uri: Option<Url>,
}

impl LinkService {
    pub fn new(
        store: Arc<Store>,
        plaid: plaid::PlaidClient,
        vault: Arc<Vault>,
        jobs: JobQueue,
        webhook_url: Url,
        client_name: String,
    ) -> Self {
        Self { store, plaid, vault, jobs, webhook_url, client_name, redirect_uri: None }
    }

    /// Link tokens carry `redirect_uri` (OAuth banks send the browser there, and the page resumes Link); Plaid
    /// requires it to be registered in its dashboard. Used for new links and update mode alike: repairing an OAuth
    /// Item goes through the bank's OAuth page too.
    pub fn with_redirect_uri(mut self, redirect_uri: Option<Url>) -> Self {
        self.redirect_uri = redirect_uri;
        self
    }

    /// user.client_user_id = user id; webhook = config; transactions.days_requested = 730; products [transactions];
    /// redirect_uri when configured; with Some(item_id): update mode for that Item (NotFound if not the user's).
    pub async fn create_link_token(
        &self,
        user_id: &UserId,
        item_id: Option<&PlaidItemId>,
    ) -> Result<LinkToken, LinkError> {
        let mut request =
            LinkTokenCreateRequest::new(self.client_name.clone(), user_id.as_str()).webhook(self.webhook_url.as_str());
        if let Some(uri) = &self.redirect_uri {
            request = request.redirect_uri(uri.as_str());
        }
        let (request, item) = match item_id {
            None => (request.products([Product::Transactions]).days_requested(DAYS_REQUESTED), None),
            Some(item_id) => {
                let item = self.store.get_item(user_id, item_id).await?;
                let request = request.update_mode(self.access_token(&item)?);
                // NEW_ACCOUNTS_AVAILABLE: let the user pick the new accounts in update mode.
                let request =
                    if item.new_accounts_available { request.account_selection_enabled(true) } else { request };
                (request, Some(item))
            }
        };
        let response = match &item {
            Some(item) => crate::audit::with_item(&item.item_id, self.plaid.link_token_create(&request)).await?,
            None => self.plaid.link_token_create(&request).await?,
        };
        Ok(LinkToken {
            link_token: response.link_token,
            expiration: response.expiration,
            item_id: item.map(|i| i.item_id),
        })
    }

    /// [`Self::exchange_with`] with `allow_duplicate` as [`SameInstitution::KeepBoth`], else `Refuse`.
    pub async fn exchange(
        &self,
        user_id: &UserId,
        public_token: &str,
        metadata: Option<LinkMetadata>,
        allow_duplicate: bool,
    ) -> Result<LinkedItem, LinkError> {
        let policy = if allow_duplicate { SameInstitution::KeepBoth } else { SameInstitution::Refuse };
        self.exchange_with(user_id, public_token, metadata, policy).await
    }

    /// Exchanges, handles a second Item of the same institution for this user as `same_institution` says (refused:
    /// 409, clear message; the new Item is removed at Plaid so it is not billed), stores the sealed token + item +
    /// accounts, runs the first sync in the background (spawned), returns the Item with its accounts.
    pub async fn exchange_with(
        &self,
        user_id: &UserId,
        public_token: &str,
        metadata: Option<LinkMetadata>,
        same_institution: SameInstitution,
    ) -> Result<LinkedItem, LinkError> {
        // An unknown Item to replace is refused before anything is created at Plaid.
        if let SameInstitution::Replace(old) = &same_institution {
            self.check_replaceable(user_id, old).await?;
        }
        let exchanged = self.plaid.item_public_token_exchange(&PublicToken::new(public_token)).await?;
        let item_id = PlaidItemId::from(exchanged.item_id.clone());
        let token = exchanged.access_token;
        let result = crate::audit::with_item(
            &item_id,
            self.store_new_item(user_id, &item_id, &token, metadata.as_ref(), &same_institution),
        )
        .await;
        match result {
            Ok(linked) => {
                // The Item is linked either way; the scheduler would pick it up later if this fails.
                if let Err(e) = self.jobs.request_sync(&linked.item, SyncTrigger::Link, Duration::ZERO).await {
                    tracing::warn!(%item_id, error = %e, "could not queue the first sync");
                }
                Ok(linked)
            }
            Err(e) => {
                // Nothing of it is kept here, so do not let Plaid keep (and bill) it either; unless the Item is in
                // fact stored (linked before), which must keep working.
                if !matches!(self.store.get_item_by_plaid_id(&item_id).await, Ok(Some(_)) | Err(_)) {
                    if let Err(remove) = crate::audit::with_item(&item_id, self.remove_at_plaid(&token)).await {
                        tracing::warn!(%item_id, error = %remove, "could not remove an Item that was not kept");
                    }
                }
                Err(e)
            }
        }
    }

    async fn store_new_item(
        &self,
        user_id: &UserId,
        item_id: &PlaidItemId,
        token: &AccessToken,
        metadata: Option<&LinkMetadata>,
        same_institution: &SameInstitution,
    ) -> Result<LinkedItem, LinkError> {
        let accounts = self.plaid.accounts_get(&AccountsGetRequest::new(token.clone())).await?;
        let institution_id = accounts.item.institution_id.clone();
        let meta_institution = metadata.and_then(|m| m.institution.as_ref());
        let institution_name = accounts.item.institution_name.clone().or_else(|| {
            meta_institution
                .filter(|m| Some(&m.institution_id) == institution_id.as_ref() && !m.name.is_empty())
                .map(|m| m.name.clone())
        });
        match (same_institution, &institution_id) {
            (SameInstitution::Refuse, Some(institution)) => {
                if let Some(existing) = self.store.find_item_by_institution(user_id, institution).await? {
                    let name = existing.institution_name.or(institution_name).unwrap_or_else(|| institution.clone());
                    return Err(LinkError::Conflict(format!(
                        "{name} is already linked (Item {id}). Linking it again would create a second connection \
                         that Plaid bills separately: repair the existing one, replace it with this one (send \
                         replaces_item_id \"{id}\"; its history, notes and categories move over), or confirm that \
                         you want a second connection (allow_duplicate).",
                        id = existing.item_id
                    )));
                }
            }
            (SameInstitution::Replace(old), _) => {
                let old = self.check_replaceable(user_id, old).await?;
                if old.institution_id.is_none() || old.institution_id != institution_id {
                    let name = |i: &Option<String>| i.clone().unwrap_or_else(|| "an unknown institution".into());
                    return Err(LinkError::InvalidReplace(format!(
                        "Item {} is at {}, the new connection at {}: an Item can only be replaced by a connection to \
                         the same institution.",
                        old.item_id,
                        name(&old.institution_id),
                        name(&institution_id)
                    )));
                }
            }
            _ => {}
        }
        let secret = SecretString::from(token.expose_secret().to_owned());
        let sealed = self.vault.encrypt(&secret, item_id.as_str())?;
        let item = self
            .store
            .insert_item(&NewItem {
                item_id: item_id.clone(),
                user_id: user_id.clone(),
                institution_id,
                institution_name,
                access_token: sealed,
            })
            .await?;
        let replaces = match same_institution {
            SameInstitution::Replace(old) => Some(old),
            _ => None,
        };
        let now = Utc::now();
        let new_accounts: Vec<_> =
            accounts.accounts.iter().map(|a| normalize::account(a, BalanceSource::Cached, now)).collect();
        let stored = match replaces {
            Some(old) => self.store.set_item_replaces(&item.id, old).await,
            None => Ok(()),
        };
        if let Err(e) = match stored {
            Ok(()) => self.store.upsert_accounts(&item, &new_accounts, true).await,
            Err(e) => Err(e),
        } {
            // Keep "all or nothing": without its accounts the Item is not linked.
            if let Err(cleanup) = self.store.delete_item(user_id, item_id).await {
                tracing::error!(%item_id, error = %cleanup, "could not undo a half-stored Item");
            }
            return Err(e.into());
        }
        let accounts = self
            .store
            .list_accounts(user_id, &AccountFilter { item_id: Some(item_id.clone()), include_removed: false })
            .await?;
        let item = if replaces.is_some() { self.store.get_item(user_id, item_id).await? } else { item };
        tracing::info!(%item_id, institution = ?item.institution_id, accounts = accounts.len(), replaces = ?replaces,
            "Item linked");
        Ok(LinkedItem { item, accounts })
    }

    /// The user's Item `old`, if a new Item may replace it: it exists and no other replacement awaits its merge.
    async fn check_replaceable(&self, user_id: &UserId, old: &PlaidItemId) -> Result<Item, LinkError> {
        let item = match self.store.get_item(user_id, old).await {
            Err(StoreError::NotFound) => return Err(LinkError::ReplacedNotFound),
            other => other?,
        };
        if let Some(pending) = self.store.pending_replacement_of(user_id, old).await? {
            return Err(LinkError::ReplaceConflict(format!(
                "Item {old} is already being replaced by Item {pending}, whose history is still syncing; wait for \
                 it, or remove Item {pending} first."
            )));
        }
        Ok(item)
    }

    /// After update mode succeeded: mark the Item good again and queue a sync, which confirms the repair (if the
    /// bank still refuses, it sets the health back). The sync claims the Item's manual cooldown: a repair repeated
    /// in a loop syncs once per cooldown, not once per call.
    pub async fn repaired(&self, user_id: &UserId, item_id: &PlaidItemId) -> Result<(), LinkError> {
        let mut item = self.store.get_item(user_id, item_id).await?;
        self.store.update_item_status(&item.id, &ItemHealth::good()).await?;
        if item.new_accounts_available {
            self.store.set_new_accounts_available(&item.id, false).await?;
        }
        item.status = ItemStatus::Good;
        match self.jobs.request_sync(&item, SyncTrigger::Repair, Duration::ZERO).await {
            Ok(_) => {}
            Err(SyncRefused::Store(e)) => return Err(e.into()),
            Err(refused) => tracing::info!(%item_id, %refused, "no sync after this repair"),
        }
        Ok(())
    }

    /// DELETE: /item/remove at Plaid, then delete local data (if Plaid says the token is already invalid, delete
    /// anyway).
    pub async fn remove(&self, user_id: &UserId, item_id: &PlaidItemId) -> Result<(), LinkError> {
        let item = self.store.get_item(user_id, item_id).await?;
        let token = self.access_token(&item)?;
        match crate::audit::with_item(item_id, self.remove_at_plaid(&token)).await {
            Ok(()) => {}
            Err(e) if e.has_code(codes::ITEM_NOT_FOUND) || e.has_code(codes::INVALID_ACCESS_TOKEN) => {
                tracing::info!(%item_id, "Item already gone at Plaid; deleting local data");
            }
            // Keep local data: deleting it would leave an Item Plaid still bills with no way to remove it.
            Err(e) => return Err(e.into()),
        }
        self.store.delete_item(user_id, item_id).await?;
        tracing::info!(%item_id, "Item removed");
        Ok(())
    }

    async fn remove_at_plaid(&self, token: &AccessToken) -> Result<(), plaid::Error> {
        self.plaid.item_remove(&ItemRemoveRequest::new(token.clone())).await.map(|_| ())
    }

    fn access_token(&self, item: &Item) -> Result<AccessToken, LinkError> {
        Ok(AccessToken::from(self.vault.decrypt(&item.access_token, item.item_id.as_str())?))
    }
}
