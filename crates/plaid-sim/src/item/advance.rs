//! The passage of time: `advance` moves the bank's "today" forward a day at a time, posting
//! pending transactions whose lag has passed, adding the day's new transactions (card purchases
//! pending first) and correcting or removing a few recent ones, all appended to the update log.

use std::collections::HashSet;

use chrono::{Datelike, Duration};
use rand::Rng;

use super::Item;
use crate::ids::{self, mix, tag};
use crate::world::generator::Persona;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AdvanceReport {
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
    pub posted: u64,
}

/// A transaction still pending, posted by `advance` once `lag` days have passed since its date.
#[derive(Debug, Clone)]
pub(super) struct PendingRec {
    pub(super) id: String,
    pub(super) origin: Option<u64>,
    pub(super) lag: i64,
}

const CORRECTION_WINDOW_DAYS: i64 = 7;
const MAX_DAILY_MODIFIED: u64 = 10;
const MAX_DAILY_REMOVED: u64 = 5;

impl Item {
    fn next_key(&mut self, what: &str) -> u64 {
        self.mat_counter += 1;
        mix(mix(self.persona.seed, tag(what)), self.mat_counter)
    }

    /// Moves the bank forward `days` days: pending purchases post, new transactions appear (card
    /// purchases pending first), a few recent ones are corrected or removed.
    pub fn advance(&mut self, days: u32) -> AdvanceReport {
        let mut report = AdvanceReport::default();
        let before = self.log.len();
        for d in 0..days {
            if d + 1 == days {
                // Cached balances lag a day behind: the last refresh happened before today.
                self.refresh_cache();
            }
            self.today += Duration::days(1);
            self.post_pending(&mut report);
            self.new_transactions(&mut report);
            self.corrections(&mut report);
        }
        if self.log.len() != before {
            self.version += 1;
        }
        report
    }

    fn post_pending(&mut self, report: &mut AdvanceReport) {
        let today = self.today;
        let pending = std::mem::take(&mut self.pending);
        for rec in pending {
            let Some(state) = self.state_of(&rec.id, rec.origin) else {
                continue;
            };
            if (today - state.date).num_days() < rec.lag {
                self.pending.push(rec);
                continue;
            }
            let key = self.next_key("post");
            let posted = self.persona.post(&state, key, today);
            let idx = self.account_index(&state.account_id);
            self.accounts[idx].pending_sum -= state.amount;
            self.accounts[idx].posted_delta += posted.amount;
            self.remove(&state, rec.origin);
            self.recent_posted.push((posted.transaction_id.clone(), today));
            self.upsert(posted, None);
            report.removed += 1;
            report.added += 1;
            report.posted += 1;
        }
    }

    fn new_transactions(&mut self, report: &mut AdvanceReport) {
        let today = self.today;
        let plan = self.persona.plan(today);
        for (s, slot) in plan.into_iter().enumerate() {
            let key = mix(mix(self.persona.seed, tag("advance")), ((today.num_days_from_ce() as u64) << 8) | s as u64);
            let pending = slot.starts_pending();
            let t = self.persona.make(slot, today, key, pending);
            let idx = self.account_index(&t.account_id);
            if pending {
                self.accounts[idx].pending_sum += t.amount;
                self.pending.push(PendingRec {
                    id: t.transaction_id.clone(),
                    origin: None,
                    lag: Persona::pending_lag(key),
                });
            } else {
                self.accounts[idx].posted_delta += t.amount;
                self.recent_posted.push((t.transaction_id.clone(), today));
            }
            self.upsert(t, None);
            self.alive += 1;
            report.added += 1;
        }
    }

    /// About 2% of recent posted transactions are modified and 1% removed per day.
    fn corrections(&mut self, report: &mut AdvanceReport) {
        let cutoff = self.today - Duration::days(CORRECTION_WINDOW_DAYS);
        self.recent_posted.retain(|(_, date)| *date >= cutoff);
        let v_lo = if cutoff <= self.history.end { self.history.first_index_from(cutoff) } else { self.history.len() };
        let v_count = self.history.len() - v_lo;
        let total = v_count + self.recent_posted.len() as u64;
        if total == 0 {
            return;
        }
        let mut rng = ids::rng(self.next_key("corrections"));
        // Capped so huge (bulk) histories still change at a bank's pace.
        let mods = ((total as f64 * 0.02 + rng.gen_range(0.0..1.0)) as u64).min(MAX_DAILY_MODIFIED);
        let removals = ((total as f64 * 0.01 + rng.gen_range(0.0..1.0)) as u64).min(MAX_DAILY_REMOVED);
        let mut seen = HashSet::new();
        for n in 0..mods + removals {
            let r = rng.gen_range(0..total);
            let (id, origin) = if r < v_count {
                let i = v_lo + r;
                (self.virtual_id(i), Some(i))
            } else {
                let id = self.recent_posted[(r - v_count) as usize].0.clone();
                let origin = self.overlay.get(&id).and_then(|o| o.origin);
                (id, origin)
            };
            if !seen.insert(id.clone()) {
                continue;
            }
            let Some(state) = self.state_of(&id, origin) else {
                continue;
            };
            if state.pending {
                continue;
            }
            let idx = self.account_index(&state.account_id);
            if n < mods {
                let key = self.next_key("modify");
                let changed = self.persona.modify(&state, key);
                self.accounts[idx].posted_delta += changed.amount - state.amount;
                self.upsert(changed, origin);
                report.modified += 1;
            } else {
                self.accounts[idx].posted_delta -= state.amount;
                self.remove(&state, origin);
                self.alive -= 1;
                report.removed += 1;
            }
        }
    }
}
