//! Activity at the bank that Plaid has not pulled yet. `advance` with `pulled: false` only moves
//! the bank's calendar on (`unpulled_days`); nothing reaches the log until Plaid pulls: a later
//! pulled `advance`, or a `/transactions/refresh` once the bank has answered (`pull_due`). The days
//! are generated when pulled, which gives the same world as generating them at once: generation is
//! a pure function of the Item's state and the day.

use chrono::{DateTime, Utc};

use super::{AdvanceReport, Item};

/// What `settle` changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Settled {
    /// The Item reached a new phase of its data.
    pub phase_changed: bool,
    /// A refresh's pull completed (with what it brought).
    pub pulled: Option<AdvanceReport>,
}

impl Item {
    /// Brings the Item up to `now`: the phase its readiness times say, and a refresh's pull
    /// whose bank answer is due. Every reader of the Item's data settles it first.
    pub fn settle(&mut self, now: DateTime<Utc>) -> Settled {
        let phase_changed = self.settle_phase(now);
        let pulled = match self.pull_due {
            Some(due) if now >= due => {
                self.pull_due = None;
                let report = self.pull(0);
                // The bank's answer is what Plaid now caches.
                self.refresh_cache();
                self.last_successful_update = due;
                Some(report)
            }
            _ => None,
        };
        Settled { phase_changed, pulled }
    }

    /// The bank moves `days` days on without Plaid noticing.
    pub fn advance_unpulled(&mut self, days: u32) -> u32 {
        self.unpulled_days = self.unpulled_days.saturating_add(days);
        self.unpulled_days
    }

    /// Plaid pulls everything the bank holds, plus `days` more days (a pulled `advance`).
    pub fn pull(&mut self, days: u32) -> AdvanceReport {
        let total = std::mem::take(&mut self.unpulled_days).saturating_add(days);
        if total > 0 { self.advance(total) } else { AdvanceReport::default() }
    }

    /// `/transactions/refresh`: Plaid asks the bank, which answers at `due`. A refresh while one
    /// is outstanding joins it.
    pub fn request_pull(&mut self, due: DateTime<Utc>) {
        if self.pull_due.is_none() {
            self.pull_due = Some(due);
        }
    }
}

impl AdvanceReport {
    pub fn changed(&self) -> bool {
        self.added + self.modified + self.removed > 0
    }
}
