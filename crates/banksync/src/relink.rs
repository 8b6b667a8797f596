//! Relink without duplicates: when the user links an institution again to replace an Item that broke or was
//! revoked (`POST /api/link/exchange` with `replaces_item_id`), the new Item gets the old one's history and the
//! user's notes and categories, and the old Item goes away — here and at Plaid — without leaving a transaction
//! twice or guessing where an edit belongs.
//!
//! [`Relinker::merge_replaced`] runs once the new Item's history is complete (its first sync reported
//! HISTORICAL_UPDATE_COMPLETE):
//! 1. **Accounts** pair by `persistent_account_id` (the same across Items), else by mask + type + subtype (the
//!    institution is the same by construction); a pairing that is not one-to-one is refused. An old account
//!    without a counterpart is *kept*: moved to the new Item as a removed (closed) account with its history, so
//!    the merge loses nothing.
//! 2. **Transactions** of a paired account: the old ones dated before the new account's first transaction are
//!    older than the new Item's history and move over (kept). The others meet the new ones on (date, amount,
//!    name), as multisets: equal keys pair in order of time; a key with *different* counts on the two sides
//!    cannot be paired without guessing, so it is refused and reported. An old transaction left unpaired is
//!    dropped with the old Item (Plaid's new data is the truth for those days); a note or category on it, like
//!    one on a refused key, is listed in the report (`edits_not_carried`) instead of being lost.
//! 3. **Edits** (`user_note`, `user_category`) of paired old transactions are copied to the new ones, unless the
//!    new one already has its own.
//! 4. All of it, the old Item's deletion and the stored [`MergeReport`] happen in one database transaction that
//!    applies only if neither Item changed since the rows were read (a sync or an edit in between makes it plan
//!    again): never half-merged, never merged twice. Then `/item/remove` retires the old Item at Plaid; a failure
//!    there (a revoked Item answers an error) is logged and recorded in the report, not fatal.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use plaid::{AccessToken, ItemRemoveRequest};

use crate::domain::{
    AccountId, AccountMatch, AccountMatchedBy, AccountMove, Ambiguity, Carry, Item, MergeOutcome, MergeReport,
    PlaidItemId, RelinkAccount, RelinkPlan, RelinkSnapshot, RelinkTransaction, UncarriedEdit,
};
use crate::store::{Store, StoreError};
use crate::vault::{Vault, VaultError};

/// How often a merge re-plans when an Item changed under it before giving up for now (the next call retries).
const ATTEMPTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum RelinkError {
    /// The new Item has not committed its first sync: merging now would drop the old history it does not have yet.
    #[error("the new Item's history is not synced yet; merge after its first sync")]
    NotReady,
    /// Both Items kept changing while the merge was planned; nothing was changed. Try again later.
    #[error("the Items kept changing during the merge; nothing was merged")]
    Busy,
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("token vault: {0}")]
    Vault(#[from] VaultError),
}

/// Merges a replaced Item into the Item that replaces it (see the module docs).
#[derive(Clone)]
pub struct Relinker {
    store: Arc<Store>,
    plaid: plaid::PlaidClient,
    vault: Arc<Vault>,
}

impl Relinker {
    pub fn new(store: Arc<Store>, plaid: plaid::PlaidClient, vault: Arc<Vault>) -> Self {
        Self { store, plaid, vault }
    }

    /// Merges the Item `new_item` replaces into it, once. `None` when it replaces nothing or the merge already
    /// ran (idempotent: call it after every completed history sync). `NotReady` before its first sync commits.
    pub async fn merge_replaced(&self, new_item: &Item) -> Result<Option<MergeReport>, RelinkError> {
        for _ in 0..ATTEMPTS {
            let item = match self.store.get_item(&new_item.user_id, &new_item.item_id).await {
                Ok(item) => item,
                Err(StoreError::NotFound) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let (Some(old_id), None) = (item.replaces_item_id.clone(), &item.relink_report) else {
                return Ok(None);
            };
            if item.cursor.is_none() {
                return Err(RelinkError::NotReady);
            }
            let old = match self.store.get_item(&item.user_id, &old_id).await {
                Ok(old) => old,
                Err(StoreError::NotFound) => {
                    let report = MergeReport::nothing(old_id, MergeOutcome::ReplacedItemGone, Utc::now());
                    let recorded = self.store.record_relink_report(&item.id, &report).await?;
                    return Ok(recorded.then_some(report));
                }
                Err(e) => return Err(e.into()),
            };
            let snapshot = self.store.relink_snapshot(&item, &old).await?;
            let plan = plan(&item, &old, snapshot, Utc::now());
            let Some(applied) = self.store.apply_relink(&plan).await? else {
                // Merged meanwhile (the next loop returns None) or an Item changed: read again.
                continue;
            };
            let mut report = plan.report;
            if applied.moved != report.kept_old || applied.carried != report.notes_carried {
                tracing::error!(item_id = %item.item_id, ?applied, kept_old = report.kept_old,
                    notes_carried = report.notes_carried, "merge changed other rows than planned");
            }
            self.remove_at_plaid(&old, &mut report).await;
            self.store.update_relink_report(&item.id, &report).await?;
            tracing::info!(item_id = %item.item_id, replaced = %old.item_id,
                accounts = report.accounts_matched.len(), matched = report.transactions_matched,
                kept_old = report.kept_old, dropped_old = report.dropped_old, ambiguous = report.ambiguous.len(),
                "replaced Item merged");
            return Ok(Some(report));
        }
        Err(RelinkError::Busy)
    }

    /// Retires the old Item at Plaid so it is no longer billed. Its failure does not undo the merge.
    async fn remove_at_plaid(&self, old: &Item, report: &mut MergeReport) {
        let token = match self.vault.decrypt(&old.access_token, old.item_id.as_str()) {
            Ok(token) => AccessToken::from(token),
            Err(e) => {
                tracing::warn!(item_id = %old.item_id, error = %e, "cannot unseal the replaced Item's token");
                report.plaid_error = Some("token_unreadable".into());
                return;
            }
        };
        let request = ItemRemoveRequest::new(token);
        match crate::audit::with_item(&old.item_id, self.plaid.item_remove(&request)).await {
            Ok(_) => report.removed_at_plaid = true,
            Err(e) => {
                tracing::warn!(item_id = %old.item_id, error = %e, "could not remove the replaced Item at Plaid");
                report.plaid_error =
                    Some(e.plaid_error().map_or_else(|| "request_failed".to_owned(), |p| p.error_code.clone()));
            }
        }
    }
}

impl MergeReport {
    /// A report of a merge that changed nothing.
    pub fn nothing(replaced_item_id: PlaidItemId, outcome: MergeOutcome, at: DateTime<Utc>) -> Self {
        MergeReport {
            replaced_item_id,
            outcome,
            merged_at: at,
            accounts_matched: Vec::new(),
            accounts_kept: Vec::new(),
            transactions_matched: 0,
            notes_carried: 0,
            kept_old: 0,
            dropped_old: 0,
            ambiguous: Vec::new(),
            edits_not_carried: Vec::new(),
            removed_at_plaid: false,
            plaid_error: None,
        }
    }
}

/// What a transaction is matched on.
type Key = (NaiveDate, String, String);

fn key(t: &RelinkTransaction) -> Key {
    (t.date, t.amount.clone(), t.name.clone())
}

/// Decides the merge from both Items' rows (pure: the store applies the result).
pub fn plan(new: &Item, old: &Item, snapshot: RelinkSnapshot, now: DateTime<Utc>) -> RelinkPlan {
    let mut report = MergeReport::nothing(old.item_id.clone(), MergeOutcome::Merged, now);
    let pairs = match_accounts(&snapshot.old_accounts, &snapshot.new_accounts, &mut report);

    let mut old_by_account: HashMap<&AccountId, Vec<&RelinkTransaction>> = HashMap::new();
    for t in &snapshot.old_transactions {
        old_by_account.entry(&t.account_id).or_default().push(t);
    }
    let mut new_by_account: HashMap<&AccountId, Vec<&RelinkTransaction>> = HashMap::new();
    for t in &snapshot.new_transactions {
        new_by_account.entry(&t.account_id).or_default().push(t);
    }

    let mut account_moves = Vec::new();
    let mut carries = Vec::new();
    for m in &pairs {
        let old_txns = old_by_account.remove(&m.old_account_id).unwrap_or_default();
        let new_txns = new_by_account.get(&m.new_account_id).cloned().unwrap_or_default();
        let first_new = new_txns.iter().map(|t| t.date).min();
        account_moves.push(AccountMove {
            old_account_id: m.old_account_id.clone(),
            new_account_id: m.new_account_id.clone(),
            keep_before: first_new,
        });
        let (older, overlap): (Vec<_>, Vec<_>) =
            old_txns.into_iter().partition(|t| first_new.is_none_or(|first| t.date < first));
        report.kept_old += older.len() as u64;
        match_transactions(&m.old_account_id, overlap, new_txns, &mut report, &mut carries);
    }
    for account in &report.accounts_kept {
        report.kept_old += old_by_account.remove(account).map_or(0, |t| t.len()) as u64;
    }
    // Rows whose account the old Item does not list (never expected): nowhere to put them.
    for (_, txns) in old_by_account {
        for t in txns {
            report.dropped_old += 1;
            not_carried(&mut report, t, "its account is not among the replaced Item's accounts");
        }
    }
    report.notes_carried = carries.len() as u64;
    RelinkPlan {
        user_id: new.user_id.clone(),
        new_item: new.id.clone(),
        old_item: old.id.clone(),
        guard: snapshot.guard,
        account_moves,
        kept_accounts: report.accounts_kept.clone(),
        carries,
        report,
    }
}

/// Pairs old accounts with new ones, one to one; the rest of the old ones are kept (`report.accounts_kept`).
fn match_accounts(olds: &[RelinkAccount], news: &[RelinkAccount], report: &mut MergeReport) -> Vec<AccountMatch> {
    let news: Vec<&RelinkAccount> = news.iter().filter(|a| !a.removed).collect();
    let mut matches = Vec::new();
    let mut old_done: HashSet<&AccountId> = HashSet::new();
    let mut new_done: HashSet<&AccountId> = HashSet::new();

    // By persistent_account_id.
    let pid = |a: &&RelinkAccount| a.persistent_account_id.clone();
    let old_groups = group(olds.iter(), pid);
    let new_groups = group(news.iter().copied(), pid);
    for (id, old_group) in &old_groups {
        let Some(id) = id else { continue };
        let new_group = new_groups.get(&Some(id.clone())).map_or(&[][..], Vec::as_slice);
        match (old_group.as_slice(), new_group) {
            ([], _) | (_, []) => {}
            ([o], [n]) => {
                matches.push(AccountMatch {
                    old_account_id: o.account_id.clone(),
                    new_account_id: n.account_id.clone(),
                    matched_by: AccountMatchedBy::PersistentAccountId,
                });
                old_done.insert(&o.account_id);
                new_done.insert(&n.account_id);
            }
            (os, ns) => {
                for o in os {
                    old_done.insert(&o.account_id);
                    report.ambiguous.push(account_ambiguity(o, os.len(), ns.len(), "persistent_account_id"));
                }
                new_done.extend(ns.iter().map(|n| &n.account_id));
            }
        }
    }

    // By mask + type + subtype, where the accounts do not both carry (different) persistent ids.
    let shape = |a: &&RelinkAccount| a.mask.as_ref().map(|m| (m.clone(), a.account_type.clone(), a.subtype.clone()));
    let old_left: Vec<&RelinkAccount> = olds.iter().filter(|a| !old_done.contains(&a.account_id)).collect();
    let new_left: Vec<&RelinkAccount> = news.iter().copied().filter(|a| !new_done.contains(&a.account_id)).collect();
    let old_groups = group(old_left.iter().copied(), shape);
    let new_groups = group(new_left.iter().copied(), shape);
    for (s, old_group) in &old_groups {
        let Some(s) = s else { continue };
        let new_group = new_groups.get(&Some(s.clone())).map_or(&[][..], Vec::as_slice);
        match (old_group.as_slice(), new_group) {
            ([], _) | (_, []) => {}
            ([o], [n]) if o.persistent_account_id.is_none() || n.persistent_account_id.is_none() => {
                matches.push(AccountMatch {
                    old_account_id: o.account_id.clone(),
                    new_account_id: n.account_id.clone(),
                    matched_by: AccountMatchedBy::MaskAndSubtype,
                });
                old_done.insert(&o.account_id);
            }
            ([_], [_]) => {}
            (os, ns) => {
                for o in os {
                    report.ambiguous.push(account_ambiguity(o, os.len(), ns.len(), "mask, type and subtype"));
                }
            }
        }
    }
    // Unpaired (including refused) old accounts are kept.
    report.accounts_kept = olds
        .iter()
        .filter(|o| matches.iter().all(|m| m.old_account_id != o.account_id))
        .map(|o| o.account_id.clone())
        .collect();
    report.accounts_matched = matches.clone();
    matches
}

/// Groups in a stable order (by key, then input order).
fn group<'a, K: Ord>(
    items: impl Iterator<Item = &'a RelinkAccount>,
    key: impl Fn(&&'a RelinkAccount) -> K,
) -> BTreeMap<K, Vec<&'a RelinkAccount>> {
    let mut out: BTreeMap<K, Vec<&'a RelinkAccount>> = BTreeMap::new();
    for item in items {
        out.entry(key(&item)).or_default().push(item);
    }
    out
}

fn account_ambiguity(o: &RelinkAccount, old_count: usize, new_count: usize, on: &str) -> Ambiguity {
    Ambiguity {
        account_id: o.account_id.clone(),
        date: None,
        amount: None,
        name: None,
        old_count: old_count as u64,
        new_count: new_count as u64,
        reason: format!(
            "{old_count} old and {new_count} new accounts share the {on}: which is which cannot be told, so the old \
             account is kept as a closed account with its transactions"
        ),
    }
}

/// Pairs one account's overlapping transactions (multiset match on [`Key`]).
fn match_transactions(
    account: &AccountId,
    overlap: Vec<&RelinkTransaction>,
    new_txns: Vec<&RelinkTransaction>,
    report: &mut MergeReport,
    carries: &mut Vec<Carry>,
) {
    let mut olds: BTreeMap<Key, Vec<&RelinkTransaction>> = BTreeMap::new();
    for t in overlap {
        olds.entry(key(t)).or_default().push(t);
    }
    let mut news: HashMap<Key, Vec<&RelinkTransaction>> = HashMap::new();
    for t in new_txns {
        news.entry(key(t)).or_default().push(t);
    }
    let in_time = |a: &&RelinkTransaction, b: &&RelinkTransaction| {
        (a.datetime, &a.transaction_id).cmp(&(b.datetime, &b.transaction_id))
    };
    for (k, mut old_group) in olds {
        let mut new_group = news.remove(&k).unwrap_or_default();
        if new_group.is_empty() {
            report.dropped_old += old_group.len() as u64;
            for t in old_group {
                not_carried(report, t, "the new Item has no transaction with this account, date, amount and name");
            }
            continue;
        }
        if new_group.len() != old_group.len() {
            report.ambiguous.push(Ambiguity {
                account_id: account.clone(),
                date: Some(k.0),
                amount: Some(k.1.clone()),
                name: Some(k.2.clone()),
                old_count: old_group.len() as u64,
                new_count: new_group.len() as u64,
                reason: format!(
                    "{} old and {} new transactions share this account, date, amount and name: which is which \
                     cannot be told, so none is paired (the new Item's stay, the old ones go with the replaced Item)",
                    old_group.len(),
                    new_group.len()
                ),
            });
            report.dropped_old += old_group.len() as u64;
            for t in old_group {
                not_carried(report, t, "ambiguous: see `ambiguous`");
            }
            continue;
        }
        old_group.sort_by(in_time);
        new_group.sort_by(in_time);
        for (o, n) in old_group.into_iter().zip(new_group) {
            report.transactions_matched += 1;
            let note = o.user_note.clone().filter(|_| n.user_note.is_none());
            let category = o.user_category.clone().filter(|_| n.user_category.is_none());
            if note.is_some() || category.is_some() {
                carries.push(Carry { new: n.transaction_id.clone(), user_note: note, user_category: category });
            }
            let lost_note = o.user_note.clone().filter(|v| n.user_note.as_ref().is_some_and(|own| own != v));
            let lost_category =
                o.user_category.clone().filter(|v| n.user_category.as_ref().is_some_and(|own| own != v));
            if lost_note.is_some() || lost_category.is_some() {
                report.edits_not_carried.push(UncarriedEdit {
                    user_note: lost_note,
                    user_category: lost_category,
                    ..uncarried(o, &format!("transaction {} has its own", n.transaction_id))
                });
            }
        }
    }
}

/// Records `t`'s edits (if any) as not carried.
fn not_carried(report: &mut MergeReport, t: &RelinkTransaction, reason: &str) {
    if t.user_note.is_some() || t.user_category.is_some() {
        report.edits_not_carried.push(uncarried(t, reason));
    }
}

fn uncarried(t: &RelinkTransaction, reason: &str) -> UncarriedEdit {
    UncarriedEdit {
        transaction_id: t.transaction_id.clone(),
        account_id: t.account_id.clone(),
        date: t.date,
        amount: t.amount.clone(),
        name: t.name.clone(),
        user_note: t.user_note.clone(),
        user_category: t.user_category.clone(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests;
