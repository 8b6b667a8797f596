//! "Sync now" asks the bank first. Plaid itself checks a bank for new transactions only 1–4 times a day; a plain
//! sync returns what Plaid already has. `/transactions/refresh` (a paid add-on) makes Plaid check the bank now; its
//! answer comes back later, visible as `/item/get`'s `status.transactions.last_successful_update` moving. So: note
//! that time, ask for the refresh, poll `/item/get` until it moves past the note or 5 minutes pass, then sync.
//!
//! When Plaid answers that the client lacks the add-on (`INVALID_PRODUCT` / `PRODUCTS_NOT_SUPPORTED`), banksync
//! remembers it in the database (`service_facts`) and from then on syncs plainly, for every process. Any other
//! refusal (rate limit, a broken login) also falls back to the plain sync, which reports the Item's real state.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike as _, Utc};
use plaid::{AccessToken, Endpoint, codes};

use crate::budget::Budget;
use crate::domain::Item;
use crate::store::Store;
use crate::vault::Vault;

/// `service_facts` key: set when Plaid refused `/transactions/refresh` as a product the client lacks.
pub const REFRESH_UNSUPPORTED: &str = "transactions_refresh_unsupported";

/// How long "sync now" waits for the bank's answer before syncing what Plaid has.
const BANK_ANSWER_DEADLINE: Duration = Duration::from_secs(300);
/// Pauses between `/item/get` polls while waiting (the last one repeats); well inside Plaid's 40/min per Item.
const POLL_DELAYS: [Duration; 6] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(3),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// `BANKSYNC_TRANSACTIONS_REFRESH`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshMode {
    /// Ask for a refresh unless Plaid said the client lacks the add-on.
    #[default]
    Auto,
    /// Never ask (a plain sync only).
    Off,
}

impl FromStr for RefreshMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "on" => Ok(Self::Auto),
            "off" => Ok(Self::Off),
            other => Err(format!("expected auto or off, got {other:?}")),
        }
    }
}

/// What asking the bank came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankAnswer {
    /// Plaid heard from the bank at this time, after the request.
    Updated(DateTime<Utc>),
    /// No answer within the deadline; the sync takes what Plaid has.
    NoAnswer,
    /// Not asked, or the request was refused (the reason is logged).
    NotAsked(&'static str),
}

pub(super) struct BankRefresh<'a> {
    pub store: &'a Arc<Store>,
    pub plaid: &'a plaid::PlaidClient,
    pub vault: &'a Vault,
    pub budget: Option<&'a Budget>,
    pub mode: RefreshMode,
}

impl BankRefresh<'_> {
    /// Asks the bank for new data and waits for its answer (see the module doc). `while_waiting` is run before the
    /// wait starts (the worker gives up its slot meanwhile).
    pub async fn ask(&self, item: &Item, while_waiting: impl FnOnce()) -> BankAnswer {
        if self.mode == RefreshMode::Off {
            return BankAnswer::NotAsked("disabled by BANKSYNC_TRANSACTIONS_REFRESH=off");
        }
        match self.store.service_fact(REFRESH_UNSUPPORTED).await {
            Ok(Some(_)) => return BankAnswer::NotAsked("the Transactions Refresh add-on is not enabled"),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read service facts; asking for a refresh anyway"),
        }
        let token = match self.vault.decrypt(&item.access_token, item.item_id.as_str()) {
            Ok(secret) => AccessToken::from(secret),
            // The sync will fail the same way and say so.
            Err(_) => return BankAnswer::NotAsked("the access token cannot be decrypted"),
        };
        crate::audit::with_item(&item.item_id, self.ask_with(item, &token, while_waiting)).await
    }

    async fn ask_with(&self, item: &Item, token: &AccessToken, while_waiting: impl FnOnce()) -> BankAnswer {
        // The bank's clock, not ours: what counts is that Plaid's own timestamp moves.
        let before = self.last_update(item, token).await;
        let asked_at = Utc::now();
        if let Some(budget) = self.budget {
            budget.acquire(Endpoint::TransactionsRefresh, &item.item_id).await;
        }
        if let Err(e) = self.plaid.transactions_refresh(token).await {
            if let Some(budget) = self.budget {
                budget.note_rate_limited(Endpoint::TransactionsRefresh, Some(&item.item_id), &e).await;
            }
            if e.has_code(codes::INVALID_PRODUCT) || e.has_code(codes::PRODUCTS_NOT_SUPPORTED) {
                tracing::info!(
                    "Plaid says this client lacks the Transactions Refresh add-on; \"sync now\" syncs without it from \
                     now on"
                );
                if let Err(e) = self.store.set_service_fact(REFRESH_UNSUPPORTED, "true").await {
                    tracing::warn!(error = %e, "cannot remember that refresh is unsupported");
                }
                return BankAnswer::NotAsked("the Transactions Refresh add-on is not enabled");
            }
            tracing::info!(item_id = %item.item_id, error = %e, "transactions refresh refused; syncing what Plaid has");
            return BankAnswer::NotAsked("Plaid refused the refresh");
        }
        while_waiting();
        // Plaid's timestamps have whole seconds. An update stamped in the second of the request counts when the
        // previous one was older; when the previous one is in that same second too, only a later one can be told
        // from it.
        let asked_second = asked_at.with_nanosecond(0).unwrap_or(asked_at);
        let moved = |at: DateTime<Utc>| match before {
            Some(before) => at > before || (before < asked_second && at >= asked_second),
            None => at >= asked_second,
        };
        let deadline = tokio::time::Instant::now() + BANK_ANSWER_DEADLINE;
        for delay in POLL_DELAYS.iter().chain(std::iter::repeat(&POLL_DELAYS[POLL_DELAYS.len() - 1])) {
            if tokio::time::Instant::now() + *delay >= deadline {
                break;
            }
            tokio::time::sleep(*delay).await;
            if let Some(at) = self.last_update(item, token).await.filter(|at| moved(*at)) {
                return BankAnswer::Updated(at);
            }
        }
        tracing::info!(item_id = %item.item_id, "the bank did not answer the refresh within 5 minutes; syncing");
        BankAnswer::NoAnswer
    }

    /// `/item/get`'s last successful update, also recorded for the Item's view. `None` when unknown or on error.
    async fn last_update(&self, item: &Item, token: &AccessToken) -> Option<DateTime<Utc>> {
        last_institution_update(self.store, self.plaid, self.budget, item, token).await
    }
}

/// Asks `/item/get` when Plaid last heard from the bank and records it on the Item.
pub(super) async fn last_institution_update(
    store: &Store,
    plaid: &plaid::PlaidClient,
    budget: Option<&Budget>,
    item: &Item,
    token: &AccessToken,
) -> Option<DateTime<Utc>> {
    if let Some(budget) = budget {
        budget.acquire(Endpoint::ItemGet, &item.item_id).await;
    }
    let response = match plaid.item_get(token).await {
        Ok(response) => response,
        Err(e) => {
            tracing::debug!(error = %e, "/item/get failed");
            return None;
        }
    };
    let at = response.status.and_then(|s| s.transactions).and_then(|t| t.last_successful_update)?;
    if let Err(e) = store.set_institution_updated_at(&item.id, at).await {
        tracing::warn!(error = %e, "cannot record the institution's last update");
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!("auto".parse::<RefreshMode>(), Ok(RefreshMode::Auto));
        assert_eq!(" OFF ".parse::<RefreshMode>(), Ok(RefreshMode::Off));
        assert!("sometimes".parse::<RefreshMode>().is_err());
    }
}
