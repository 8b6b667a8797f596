//! Running one sync job: the rules that apply when it runs, the sync, and what follows from its outcome.
//!
//! - Before: a removed or revoked Item is skipped; an Item under a rate-limit hold is put back until the hold ends
//!   (no attempt used); "sync now" asks the bank first ([`super::bank_refresh`]).
//! - After: Plaid's data phase is recorded by the sync itself; while data is still coming a follow-up is queued
//!   ([`super::follow_up`]), and a wait past 6 h marks the Item stalled. A sync that brought nothing gives the user's
//!   cooldown back. A Plaid rate limit holds the Item (in the database, for every process) and retries after it.
//!   Errors that describe the Item (login required, revoked, …) are not retried: the engine recorded the Item's
//!   health and only the user can fix it. Other failures retry with the store's backoff.
//!
//! The job's `result` is a [`SyncJobResult`] (JSON), also while a failed attempt waits to be retried, so a waiter
//! can answer at once.

use std::time::Duration;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::bank_refresh::{BankAnswer, BankRefresh};
use super::follow_up::{STALLED_AFTER, follow_up_delay, stalled_message};
use super::worker::{Ctx, Outcome};
use super::{SyncJobPayload, SyncRefused};
use crate::domain::{Item, ItemStatus, Job, SyncPhase};
use crate::sync::{SyncError, SyncSummary, SyncTrigger};

/// A sync job's `result`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SyncJobResult {
    Synced {
        summary: SyncSummary,
        /// Whether the bank was asked for new data first, and what came of it (`updated`, `no_answer`, or why not).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bank: Option<String>,
    },
    /// The attempt failed; `will_retry` says whether the job runs again by itself.
    Failed { error: SyncFailure, will_retry: bool },
    /// Nothing to do (the Item is gone or revoked).
    Skipped { reason: String },
}

/// A failed sync, as kept in the job record: enough to answer the user as if the sync had run in their request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncFailure {
    /// Plaid's error and the HTTP status it came with, when Plaid answered with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaid: Option<plaid::PlaidError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaid_status: Option<u16>,
    /// TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION kept restarting the sync this many times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<u32>,
    /// Safe to show the user.
    pub message: String,
}

impl SyncFailure {
    pub fn of(e: &SyncError) -> Self {
        let (plaid, plaid_status) = match e {
            // The request id stays in the audit trail; answers never carry Plaid's request details.
            SyncError::Plaid(plaid::Error::Api { status, error }) => {
                (Some(plaid::PlaidError { request_id: None, ..(**error).clone() }), Some(*status))
            }
            _ => (None, None),
        };
        let restarts = match e {
            SyncError::TooManyRestarts(n) => Some(*n),
            _ => None,
        };
        Self { plaid, plaid_status, restarts, message: crate::sync::sync_error_message(e) }
    }

    /// The error again, as the sync engine would have returned it (exact for Plaid's errors and restarts).
    pub fn into_error(self) -> SyncError {
        match (self.plaid, self.plaid_status, self.restarts) {
            (Some(error), Some(status), _) => SyncError::Plaid(plaid::Error::Api { status, error: Box::new(error) }),
            (_, _, Some(n)) => SyncError::TooManyRestarts(n),
            _ => SyncError::Other(self.message),
        }
    }
}

fn json(result: &SyncJobResult) -> String {
    serde_json::to_string(result).expect("a sync job result serializes")
}

fn skipped(reason: &str) -> Outcome {
    Outcome::Done(json(&SyncJobResult::Skipped { reason: reason.to_owned() }))
}

pub(super) async fn run(ctx: &Ctx, job: &Job, permit: &mut super::worker::Slot) -> Outcome {
    let store = ctx.queue.store();
    let Some(item_id) = job.item_id.as_ref() else {
        return skipped("no item");
    };
    let payload = SyncJobPayload::parse(&job.payload);
    let item = match store.get_item_by_plaid_id(item_id).await {
        Ok(Some(item)) => item,
        Ok(None) => return skipped("item removed"),
        Err(e) => return Outcome::retry(format!("store: {e}"), None, None),
    };
    if item.status == ItemStatus::Revoked {
        return skipped("item revoked");
    }
    match store.sync_state(&item.id).await {
        Ok(state) => {
            let hold = state.hold_remaining(Utc::now());
            if !hold.is_zero() {
                return Outcome::Reschedule { after: hold };
            }
        }
        Err(e) => return Outcome::retry(format!("store: {e}"), None, None),
    }

    let bank = if payload.refresh {
        let refresh = BankRefresh {
            store,
            plaid: ctx.engine.plaid(),
            vault: ctx.engine.vault(),
            budget: ctx.engine.budget(),
            mode: ctx.queue.rules().refresh,
        };
        // Waiting for the bank is not work: the worker slot goes to other jobs meanwhile.
        let answer = refresh.ask(&item, || permit.release()).await;
        permit.reacquire().await;
        Some(answer)
    } else {
        None
    };

    let mut result = ctx.engine.sync_item(&item, payload.trigger).await;
    // Joining a sync that was already running is not enough: it may have fetched its pages before the change this
    // job announces (a webhook that arrived mid-run, the bank's answer to a refresh). Run once more after it.
    for _ in 0..2 {
        if !matches!(&result, Ok(summary) if summary.coalesced) {
            break;
        }
        let Ok(Some(fresh)) = store.get_item_by_plaid_id(item_id).await else { break };
        result = ctx.engine.sync_item(&fresh, payload.trigger).await;
    }

    match result {
        Ok(summary) => {
            // Asking the bank already read /item/get, while it waited for the bank's answer.
            let institution_known = matches!(bank, Some(BankAnswer::Updated(_) | BankAnswer::NoAnswer));
            after_success(ctx, &item, payload.trigger, &summary, institution_known).await;
            let bank = bank.map(|answer| match answer {
                BankAnswer::Updated(_) => "updated".to_owned(),
                BankAnswer::NoAnswer => "no_answer".to_owned(),
                BankAnswer::NotAsked(why) => format!("not_asked: {why}"),
            });
            Outcome::Done(json(&SyncJobResult::Synced { summary, bank }))
        }
        Err(e) => after_failure(ctx, job, &item, payload.trigger, &e).await,
    }
}

async fn after_success(ctx: &Ctx, item: &Item, trigger: SyncTrigger, summary: &SyncSummary, institution_known: bool) {
    let store = ctx.queue.store();
    if trigger.is_user_request() && summary.not_ready {
        // Nothing came: the user may ask again at once.
        if let Err(e) = store.release_sync_cooldown(&item.id).await {
            tracing::warn!(item_id = %item.item_id, error = %e, "cannot release the sync cooldown");
        }
    }
    if summary.phase.awaits_data() {
        if let Err(e) = queue_follow_up(ctx, item, summary.phase).await {
            tracing::warn!(item_id = %item.item_id, error = %e, "cannot queue a follow-up sync");
        }
        return;
    }
    merge_replaced_item(ctx, item).await;
    if !institution_known {
        // When Plaid last heard from the bank, for the Item's view beside banksync's own last sync.
        record_institution_update(ctx, item).await;
    }
}

/// A relinked Item takes over the Item it replaces once its own history is complete (`relink`): the merge needs the
/// whole overlap to match transactions exactly. It runs once; a merge that found both Items busy is tried again
/// after the next sync.
async fn merge_replaced_item(ctx: &Ctx, item: &Item) {
    if item.replaces_item_id.is_none() || item.relink_report.is_some() {
        return;
    }
    let relinker =
        crate::relink::Relinker::new(ctx.queue.store().clone(), ctx.engine.plaid().clone(), ctx.engine.vault().clone());
    match relinker.merge_replaced(item).await {
        Ok(Some(report)) => tracing::info!(item_id = %item.item_id, ?report, "relinked Item merged"),
        Ok(None) => {}
        Err(crate::relink::RelinkError::Busy) => {
            tracing::info!(item_id = %item.item_id, "relink merge found the Items busy; trying again shortly");
            if let Err(e) = ctx.queue.request_sync(item, SyncTrigger::FollowUp, Duration::from_secs(30)).await {
                tracing::warn!(item_id = %item.item_id, error = %e, "cannot queue the relink merge's retry");
            }
        }
        Err(e) => tracing::warn!(item_id = %item.item_id, error = %e, "relink merge failed"),
    }
}

/// Queues the next look while Plaid's data is still coming; marks the wait stalled after [`STALLED_AFTER`].
async fn queue_follow_up(ctx: &Ctx, item: &Item, phase: SyncPhase) -> Result<(), SyncRefused> {
    let store = ctx.queue.store();
    let state = store.sync_state(&item.id).await?;
    let waited = state.waiting_since.and_then(|since| (Utc::now() - since).to_std().ok()).unwrap_or_default();
    if waited >= STALLED_AFTER && state.stalled_at.is_none() {
        let history_only = phase == SyncPhase::InitialUpdateComplete;
        store.mark_sync_stalled(&item.id, stalled_message(history_only)).await?;
        tracing::warn!(item_id = %item.item_id, phase = phase.as_str(), "still waiting for Plaid's data after 6 h");
    }
    let n = store.count_follow_up(&item.id).await?;
    let delay = follow_up_delay(n, waited);
    let fresh = store.get_item_by_plaid_id(&item.item_id).await?.unwrap_or_else(|| item.clone());
    match ctx.queue.request_sync(&fresh, SyncTrigger::FollowUp, delay).await {
        Ok(_) => {}
        Err(SyncRefused::Store(e)) => return Err(e.into()),
        // Revoked meanwhile: nothing more will come.
        Err(refused) => {
            tracing::debug!(item_id = %item.item_id, %refused, "no follow-up");
            return Ok(());
        }
    }
    tracing::debug!(item_id = %item.item_id, follow_up = n, delay_ms = delay.as_millis() as u64, "follow-up queued");
    Ok(())
}

async fn record_institution_update(ctx: &Ctx, item: &Item) {
    let Ok(secret) = ctx.engine.vault().decrypt(&item.access_token, item.item_id.as_str()) else { return };
    let token = plaid::AccessToken::from(secret);
    crate::audit::with_item(
        &item.item_id,
        super::bank_refresh::last_institution_update(
            ctx.queue.store(),
            ctx.engine.plaid(),
            ctx.engine.budget(),
            item,
            &token,
        ),
    )
    .await;
}

async fn after_failure(ctx: &Ctx, job: &Job, item: &Item, trigger: SyncTrigger, e: &SyncError) -> Outcome {
    let store = ctx.queue.store();
    if trigger.is_user_request() {
        if let Err(e) = store.release_sync_cooldown(&item.id).await {
            tracing::warn!(item_id = %item.item_id, error = %e, "cannot release the sync cooldown");
        }
    }
    let failure = SyncFailure::of(e);
    if e.is_rate_limited() {
        let after = rate_limit_backoff(job.attempts);
        let until = Utc::now() + chrono::Duration::from_std(after).unwrap_or_default();
        // Every process sees the hold: webhooks and schedules for this Item wait for it too.
        if let Err(e) = store.hold_syncs(&item.id, until).await {
            tracing::warn!(item_id = %item.item_id, error = %e, "cannot record the Item's rate-limit hold");
        }
        tracing::warn!(item_id = %item.item_id, retry_in = ?after, "Plaid rate limit: holding the Item's syncs");
        let result = json(&SyncJobResult::Failed { error: failure, will_retry: true });
        return Outcome::retry(e.to_string(), Some(after), Some(result));
    }
    if let Some(p) = e.plaid_error() {
        if crate::health::health_from_error(p).is_some() {
            // An Item problem (the engine updated its health): retrying cannot help until the user acts.
            return Outcome::Done(json(&SyncJobResult::Failed { error: failure, will_retry: false }));
        }
    }
    let will_retry = job.attempts < job.max_attempts;
    Outcome::retry(e.to_string(), None, Some(json(&SyncJobResult::Failed { error: failure, will_retry })))
}

/// Delay before retrying a sync that hit a rate limit: one minute, doubling per attempt, at most an hour (Plaid's
/// per-Item sync limit is per minute).
fn rate_limit_backoff(attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 6)).unwrap_or(6);
    Duration::from_secs(60 * 2u64.pow(exp)).min(Duration::from_secs(3600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limit_backoff_grows_and_is_capped() {
        assert_eq!(rate_limit_backoff(1), Duration::from_secs(60));
        assert_eq!(rate_limit_backoff(2), Duration::from_secs(120));
        assert_eq!(rate_limit_backoff(20), Duration::from_secs(3600));
    }

    #[test]
    fn a_failure_comes_back_as_the_same_error() {
        let plaid_error = plaid::PlaidError {
            error_type: plaid::ErrorType::ItemError,
            error_code: "ITEM_LOGIN_REQUIRED".into(),
            error_message: "the login details of this item have changed".into(),
            display_message: Some("Log in again".into()),
            ..Default::default()
        };
        let e = SyncError::Plaid(plaid::Error::Api { status: 400, error: Box::new(plaid_error.clone()) });
        let stored: SyncFailure = serde_json::from_str(&serde_json::to_string(&SyncFailure::of(&e)).unwrap()).unwrap();
        match stored.into_error() {
            SyncError::Plaid(plaid::Error::Api { status, error }) => {
                assert_eq!(status, 400);
                assert_eq!(*error, plaid_error);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(SyncFailure::of(&SyncError::TooManyRestarts(3)).into_error(), SyncError::TooManyRestarts(3)));
    }
}
