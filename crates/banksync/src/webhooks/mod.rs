//! `POST /webhooks/plaid`: Plaid's webhooks, verified, recorded, turned into jobs, answered in milliseconds. The
//! route itself is `crate::http::webhooks`; this module is the receiver behind it.
//!
//! 1. **Verify before reading anything.** The raw body and the `Plaid-Verification` header go through
//!    [`plaid::webhook::verify`] (ES256 only, key by kid from a cache, `iat` at most 5 minutes old, SHA-256 of the
//!    raw bytes in constant time). Any rejection is a 401 with no side effect; the log names the rejection kind,
//!    never the body. The one thing looked at before, and only when the kid is not cached: whether the body's
//!    `item_id` is one of our Items, which decides the key cache's budget class for the fetch — a forger flooding
//!    random kids (and, not knowing our Plaid item ids, random Items) can use only the small unvouched share of the
//!    key-fetch budget, so the first webhook signed with Plaid's next key is still verified at once. Nothing is
//!    acted on before the signature checks out.
//! 2. **Record once.** The delivery is stored under a dedupe key: the body hash plus the token's `iat`, i.e. one
//!    signed delivery. A replay of that delivery (the same token, still within its 5 minutes) is acknowledged and
//!    does nothing. A new delivery with the same body (Plaid's duplicates and retries are signed anew) is recorded
//!    and handled again, which is safe: handling is idempotent and sync jobs coalesce per Item in the queue. A
//!    plain body-hash window would be unsafe: SYNC_UPDATES_AVAILABLE bodies for one Item are identical from one
//!    update to the next, so a second real update inside the window would be lost. Two updates announced in the
//!    same second produce byte-identical signed deliveries that no receiver can tell from a replay, so the first
//!    repeat of a SYNC_UPDATES_AVAILABLE still asks for a sync: it joins the one already queued, or queues one if
//!    the first delivery's sync already started (maybe before the second update). Further repeats are replays (or a
//!    third update in the same second, which the schedule catches): counted, nothing more. A replay storm thus costs
//!    at most one extra sync, and a second real update is never lost.
//! 3. **Enqueue, never sync inline.** SYNC_UPDATES_AVAILABLE becomes a queued sync (coalesced per Item); ITEM
//!    webhooks update the Item's health in one small write. The answer is 200 unless the store failed (then 500,
//!    and Plaid retries).
//! 4. **One commit on the hot path.** For SYNC_UPDATES_AVAILABLE of a known Item (nearly every webhook) the
//!    delivery is recorded, already marked processed, and the sync queued (not before the Item's rate-limit hold
//!    ends) in one store write that also finds the Item ([`JobQueue::record_webhook_sync`]; on PostgreSQL one
//!    statement): on SQLite every webhook goes through the single writer, where three separate commits and a
//!    sync-state read per webhook were the receiver's limit, and on PostgreSQL each statement is a round trip. With
//!    the signing key cached, nothing is read before that write. Other webhooks are recorded, applied, then marked
//!    processed.
//!
//! Unknown Items get a 200 and a warning (Plaid would retry for a day otherwise); the legacy transactions webhooks
//! (INITIAL_UPDATE, HISTORICAL_UPDATE, DEFAULT_UPDATE, TRANSACTIONS_REMOVED) are acknowledged and ignored because
//! banksync uses `/transactions/sync`.

mod keys;
pub mod set_url;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use plaid::webhook::{Jwk, KeySource, Rejection, VerifiedClaims};
use plaid::{Webhook, WebhookEvent};

pub use keys::WebhookKeys;

use crate::domain::{Item, ItemHealth, ItemStatus, NewWebhookEvent, PlaidItemId, WebhookRecord};
use crate::events::{Event, EventHub};
use crate::health::{health_from_error, health_from_item_webhook};
use crate::jobs::{JobQueue, SyncRefused};
use crate::store::{Store, StoreError};
use crate::sync::SyncTrigger;

/// Where Plaid posts (see `Config::webhook_url`).
pub const PATH: &str = "/webhooks/plaid";
/// Plaid's webhook bodies are well under a kilobyte.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A delivery whose signature checked out, with the Item its body names (if it is one of ours).
#[derive(Debug, Clone)]
pub struct Verified {
    pub claims: VerifiedClaims,
    /// `Some((item_id, lookup))` when the body's item_id was looked up before verification, which happens only
    /// before a key fetch (`lookup` `None`: not ours); `None` when it was not (the key was cached, no usable
    /// item_id, or the store failed: [`WebhookReceiver::handle`] finds or reads it then, and a store error becomes
    /// a 500 that Plaid retries, never a silently dropped sync).
    item: Option<(String, Option<Item>)>,
}

/// What the receiver did with a verified delivery (the 200 response's `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// A sync was queued (or joined an already queued one).
    Enqueued,
    /// The same signed delivery had been received before.
    Duplicate,
    /// The Item's health or flags were updated.
    Updated,
    /// Recorded; nothing to do (legacy transactions webhooks, unknown codes, acknowledgements, revoked Items).
    Ignored,
    /// No Item with this item_id.
    UnknownItem,
}

impl Handled {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enqueued => "enqueued",
            Self::Duplicate => "duplicate",
            Self::Updated => "updated",
            Self::Ignored => "ignored",
            Self::UnknownItem => "unknown_item",
        }
    }
}

pub struct WebhookReceiver {
    store: Arc<Store>,
    keys: WebhookKeys,
    queue: JobQueue,
    events: EventHub,
}

/// The receiver's keys for one delivery. A cached key is returned as it is; before a fetch, the Item the body
/// names is read ([`WebhookReceiver::named_item`]) and kept for [`Verified`], and a delivery naming one of our Items
/// may use the whole fetch budget ([`keys::Vouched`]).
struct ItemVouchedKeys<'a> {
    receiver: &'a WebhookReceiver,
    body: &'a [u8],
    item: parking_lot::Mutex<Option<(String, Option<Item>)>>,
}

impl KeySource for ItemVouchedKeys<'_> {
    async fn key(&self, kid: &str) -> Result<Option<Jwk>, plaid::Error> {
        let keys = &self.receiver.keys;
        if let Some(key) = keys.cached(kid) {
            return Ok(Some(key));
        }
        let item = self.receiver.named_item(self.body).await;
        let vouched = matches!(item, Some((_, Some(_))));
        *self.item.lock() = item;
        if vouched { keys::Vouched(keys).key(kid).await } else { keys.key(kid).await }
    }
}

fn log_received(webhook: &Webhook, handled: Handled) {
    tracing::info!(
        webhook_type = %webhook.webhook_type,
        webhook_code = %webhook.webhook_code,
        item_id = webhook.item_id.as_deref().unwrap_or("-"),
        handled = handled.as_str(),
        "webhook received"
    );
}

/// A stable name per rejection for logs and metrics (the messages may quote attacker-controlled text).
fn rejection_kind(r: &Rejection) -> &'static str {
    match r {
        Rejection::MissingHeader => "missing_header",
        Rejection::MalformedJwt(_) => "malformed_jwt",
        Rejection::UnsupportedAlgorithm(_) => "unsupported_algorithm",
        Rejection::MissingKid => "missing_kid",
        Rejection::UnknownKey => "unknown_key",
        Rejection::KeyExpired => "key_expired",
        Rejection::InvalidKey(_) => "invalid_key",
        Rejection::BadSignature => "bad_signature",
        Rejection::Stale => "stale",
        Rejection::IssuedInFuture => "issued_in_future",
        Rejection::BodyMismatch => "body_mismatch",
        Rejection::KeyFetch(_) => "key_fetch_failed",
    }
}

impl WebhookReceiver {
    pub fn new(store: Arc<Store>, keys: WebhookKeys, queue: JobQueue, events: EventHub) -> Self {
        Self { store, keys, queue, events }
    }

    /// Checks the `Plaid-Verification` header (`header`, if sent) against the raw body, before anything reads the
    /// body. A rejection is logged by kind, never with the body. When the key has to be fetched, the Item the body
    /// names is read first (it chooses the key cache's budget class) and comes back with the claims, so
    /// [`WebhookReceiver::handle`] does not read it again; with the key cached (nearly always) nothing is read.
    pub async fn verify(&self, body: &[u8], header: Option<&str>) -> Result<Verified, Rejection> {
        let keys = ItemVouchedKeys { receiver: self, body, item: parking_lot::Mutex::new(None) };
        let verified = plaid::webhook::verify(body, header, &keys, Utc::now()).await;
        match verified {
            Ok(claims) => Ok(Verified { claims, item: keys.item.into_inner() }),
            Err(rejection) => {
                tracing::warn!(rejection = rejection_kind(&rejection), "webhook rejected");
                Err(rejection)
            }
        }
    }

    /// Records and acts on a verified delivery.
    pub async fn handle(&self, body: &[u8], verified: &Verified) -> Result<Handled, StoreError> {
        let webhook = match Webhook::from_slice(body) {
            Ok(webhook) => webhook,
            Err(_) => {
                // Signed by Plaid but not a webhook object: nothing to do, and a retry would not change it.
                tracing::warn!("verified webhook body is not a webhook object; ignored");
                return Ok(Handled::Ignored);
            }
        };
        let claims = &verified.claims;
        let event = NewWebhookEvent {
            dedupe_key: format!("{}:{}", claims.request_body_sha256, claims.issued_at.timestamp()),
            item_id: webhook.item_id.as_deref().map(PlaidItemId::from),
            webhook_type: webhook.webhook_type.as_str().to_owned(),
            webhook_code: webhook.webhook_code.as_str().to_owned(),
            body: String::from_utf8_lossy(body).into_owned(),
        };
        // The Item `verify` read for the same (now verified) body, if it read one.
        let read = match &verified.item {
            Some((item_id, read)) if webhook.item_id.as_ref() == Some(item_id) => Some(read.clone()),
            _ => None,
        };
        // The common case, the hot path: an update for an Item of ours is recorded and its sync queued in one write
        // that finds the Item itself (`None` when it is unknown or revoked). Everything else is recorded first, then
        // applied.
        let syncs = match &read {
            Some(item) => item.as_ref().is_some_and(|item| item.status != ItemStatus::Revoked),
            None => true,
        };
        if let (WebhookEvent::SyncUpdatesAvailable { .. }, Some(item_id), true) =
            (&webhook.event, webhook.item_id.as_deref(), syncs)
        {
            if let Some((record, _)) = self.queue.record_webhook_sync(&event, &PlaidItemId::from(item_id)).await? {
                if !record.is_new {
                    return self.duplicate(&webhook, &record, read.flatten()).await;
                }
                log_received(&webhook, Handled::Enqueued);
                return Ok(Handled::Enqueued);
            }
        }
        let item = match read {
            Some(item) => item,
            None => self.item_of(&webhook).await?,
        };
        let record = self.store.record_webhook_event(&event).await?;
        if !record.is_new {
            return self.duplicate(&webhook, &record, item).await;
        }
        let handled = self.apply(&webhook, item).await?;
        self.store.mark_webhook_processed(&record.id).await?;
        log_received(&webhook, handled);
        Ok(handled)
    }

    /// A delivery recorded before. The first repeat of a SYNC_UPDATES_AVAILABLE still asks for a sync (see the
    /// module header); `item` is the Item if the caller already read it.
    async fn duplicate(
        &self,
        webhook: &Webhook,
        record: &WebhookRecord,
        item: Option<Item>,
    ) -> Result<Handled, StoreError> {
        tracing::debug!(webhook_code = %webhook.webhook_code, "duplicate webhook delivery acknowledged");
        if record.duplicates == 1 && matches!(webhook.event, WebhookEvent::SyncUpdatesAvailable { .. }) {
            let item = match item {
                Some(item) => Some(item),
                None => self.item_of(webhook).await?,
            };
            if let Some(item) = item {
                self.enqueue_sync(&item).await?;
            }
        }
        Ok(Handled::Duplicate)
    }

    async fn apply(&self, webhook: &Webhook, item: Option<Item>) -> Result<Handled, StoreError> {
        if matches!(webhook.event, WebhookEvent::LegacyTransactions { .. } | WebhookEvent::Unknown) {
            return Ok(Handled::Ignored);
        }
        let Some(item_id) = webhook.item_id.as_deref().map(PlaidItemId::from) else {
            tracing::warn!(webhook_code = %webhook.webhook_code, "webhook without item_id ignored");
            return Ok(Handled::Ignored);
        };
        let Some(item) = item else {
            tracing::warn!(%item_id, webhook_code = %webhook.webhook_code, "webhook for an unknown Item");
            return Ok(Handled::UnknownItem);
        };
        match &webhook.event {
            WebhookEvent::SyncUpdatesAvailable { .. } => self.enqueue_sync(&item).await,
            WebhookEvent::ItemError { error } => match error.as_ref().and_then(health_from_error) {
                Some(health) => self.set_health(&item, health).await,
                None => Ok(Handled::Ignored),
            },
            WebhookEvent::PendingExpiration { consent_expiration_time } => {
                self.store.set_item_consent_expiration(&item.id, *consent_expiration_time).await?;
                self.set_code_health(&item, "PENDING_EXPIRATION", *consent_expiration_time).await
            }
            WebhookEvent::PendingDisconnect { disconnect_time, .. } => {
                self.set_code_health(&item, "PENDING_DISCONNECT", *disconnect_time).await
            }
            WebhookEvent::UserPermissionRevoked { .. } => {
                self.set_code_health(&item, "USER_PERMISSION_REVOKED", None).await
            }
            // One account of the Item was revoked, not the Item: a sync refreshes its account list.
            WebhookEvent::UserAccountRevoked { .. } => self.enqueue_sync(&item).await,
            WebhookEvent::LoginRepaired => {
                self.set_health(&item, ItemHealth::good()).await?;
                self.enqueue_sync(&item).await
            }
            WebhookEvent::NewAccountsAvailable { .. } => {
                self.store.set_new_accounts_available(&item.id, true).await?;
                Ok(Handled::Updated)
            }
            WebhookEvent::WebhookUpdateAcknowledged { new_webhook_url, error } => {
                match error {
                    Some(e) => tracing::warn!(%item_id, error_code = %e.error_code, "webhook URL update failed"),
                    None => tracing::info!(
                        %item_id,
                        url = new_webhook_url.as_deref().unwrap_or("-"),
                        "Plaid acknowledged the new webhook URL"
                    ),
                }
                Ok(Handled::Ignored)
            }
            WebhookEvent::LegacyTransactions { .. } | WebhookEvent::Unknown => Ok(Handled::Ignored),
        }
    }

    /// The Item the (not yet verified) body names, if it is one of ours: chooses the key-fetch budget class, and
    /// is used only once the signature checks out. `None` when not looked up: no usable item_id, or a store error
    /// (which only means the smaller budget here).
    async fn named_item(&self, body: &[u8]) -> Option<(String, Option<Item>)> {
        #[derive(serde::Deserialize)]
        struct ItemOnly {
            item_id: Option<String>,
        }
        let item_id = serde_json::from_slice::<ItemOnly>(body).ok().and_then(|b| b.item_id)?;
        if item_id.is_empty() || item_id.len() > 128 {
            return None;
        }
        let item = self.store.get_item_by_plaid_id(&PlaidItemId::from(item_id.as_str())).await.ok()?;
        Some((item_id, item))
    }

    async fn item_of(&self, webhook: &Webhook) -> Result<Option<Item>, StoreError> {
        match webhook.item_id.as_deref() {
            Some(item_id) => self.store.get_item_by_plaid_id(&PlaidItemId::from(item_id)).await,
            None => Ok(None),
        }
    }

    async fn enqueue_sync(&self, item: &Item) -> Result<Handled, StoreError> {
        match self.queue.request_sync(item, SyncTrigger::Webhook, Duration::ZERO).await {
            Ok(_) => Ok(Handled::Enqueued),
            Err(SyncRefused::Store(e)) => Err(e),
            Err(SyncRefused::Revoked | SyncRefused::Cooldown(_)) => Ok(Handled::Ignored),
        }
    }

    async fn set_code_health(&self, item: &Item, code: &str, at: Option<DateTime<Utc>>) -> Result<Handled, StoreError> {
        match health_from_item_webhook(code, None, at) {
            Some(health) => self.set_health(item, health).await,
            None => Ok(Handled::Ignored),
        }
    }

    /// Records the Item's new health and tells its owner when the status changed. A revoked Item stays revoked:
    /// late or out-of-order webhooks must not bring it back (only a new link or a repair does).
    async fn set_health(&self, item: &Item, health: ItemHealth) -> Result<Handled, StoreError> {
        if item.status == ItemStatus::Revoked && health.status != ItemStatus::Revoked {
            return Ok(Handled::Ignored);
        }
        self.store.update_item_status(&item.id, &health).await?;
        if health.status != item.status {
            self.events.publish(
                &item.user_id,
                Event::ItemHealthChanged { item_id: item.item_id.clone(), status: health.status.as_str().to_owned() },
            );
        }
        Ok(Handled::Updated)
    }
}
