//! The two phases of a new Item's data, and where each part of the update log sits.
//!
//! Plaid makes a new Item's data ready in two steps: first the last 30 days
//! (INITIAL_UPDATE_COMPLETE), later the full history (HISTORICAL_UPDATE_COMPLETE), which a client
//! that already synced receives as `added` from its cursor. The log therefore starts with the
//! *initial window* (history `split..N`); the older history (`0..split`) joins the log as one
//! segment at its end when the full history becomes ready, after whatever `advance` appended
//! meanwhile. Positions a client has passed never move, so cursors stay valid across the phase
//! change. When both phases arrive at once (no client could have seen the first), `split` is 0 and
//! the layout is the plain one: the whole history, then the materialized entries.
//!
//! Positions: `[0, N−split)` initial window, then materialized entries `log[..older_at]`, then the
//! older history (once joined), then `log[older_at..]`.

use chrono::{DateTime, Duration, Utc};

use super::Item;

/// How many days of history the first phase holds.
pub const INITIAL_DAYS: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    NotReady,
    /// The last [`INITIAL_DAYS`] days are ready.
    Initial,
    /// The full history is ready.
    Historical,
}

impl Phase {
    /// `transactions_update_status` as `/transactions/sync` reports it.
    pub fn update_status(self) -> &'static str {
        match self {
            Phase::NotReady => "NOT_READY",
            Phase::Initial => "INITIAL_UPDATE_COMPLETE",
            Phase::Historical => "HISTORICAL_UPDATE_COMPLETE",
        }
    }

    /// `initial_update_complete` / `historical_update_complete` of SYNC_UPDATES_AVAILABLE.
    pub fn flags(self) -> (bool, bool) {
        (self >= Phase::Initial, self == Phase::Historical)
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "initial" => Some(Phase::Initial),
            "historical" => Some(Phase::Historical),
            _ => None,
        }
    }
}

/// An entry of the update log at some position.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum At {
    /// Virtual history transaction `i`.
    Virtual(u64),
    /// Materialized entry `log[j]`.
    Mat(usize),
}

impl Item {
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// Moves the Item to the phase its readiness times say at `now`; true if it changed.
    pub(super) fn settle_phase(&mut self, now: DateTime<Utc>) -> bool {
        let target = if now >= self.historical_ready_at {
            Phase::Historical
        } else if now >= self.initial_ready_at {
            Phase::Initial
        } else {
            Phase::NotReady
        };
        if target <= self.phase {
            return false;
        }
        match (self.phase, target) {
            (Phase::NotReady, Phase::Initial) => self.split = self.history.initial_from,
            (Phase::NotReady, Phase::Historical) => {
                // Nobody saw a position yet: the plain layout.
                self.split = 0;
                self.older_at = Some(self.log.len());
            }
            _ => {
                self.older_at = Some(self.log.len());
                if self.split > 0 {
                    // The log grew: a pagination cut before this must restart.
                    self.version += 1;
                }
            }
        }
        self.phase = target;
        true
    }

    /// Makes `phase` due now (control route): data that would arrive later is ready at once.
    pub fn make_ready(&mut self, phase: Phase, now: DateTime<Utc>) {
        self.initial_ready_at = self.initial_ready_at.min(now);
        if phase == Phase::Historical {
            self.historical_ready_at = self.historical_ready_at.min(now);
        }
    }

    /// The readiness times of a new Item created at `created_at`.
    pub fn ready_times(
        created_at: DateTime<Utc>,
        initial: std::time::Duration,
        historical: std::time::Duration,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        let at = |d: std::time::Duration| created_at + Duration::from_std(d).unwrap_or(Duration::MAX);
        let initial_at = at(initial);
        (initial_at, at(historical).max(initial_at))
    }

    /// Whether the older history has joined the log.
    fn older_joined(&self) -> bool {
        self.older_at.is_some()
    }

    fn initial_len(&self) -> u64 {
        self.history.len() - self.split
    }

    /// The number of positions in the log.
    pub(super) fn log_len(&self) -> u64 {
        let older = if self.older_joined() { self.split } else { 0 };
        self.initial_len() + older + self.log.len() as u64
    }

    /// Where virtual history transaction `i` sits (None while the older history is hidden).
    pub(super) fn vpos(&self, i: u64) -> Option<u64> {
        if i >= self.split { Some(i - self.split) } else { self.older_at.map(|m| self.initial_len() + m as u64 + i) }
    }

    /// Where materialized entry `j` sits (increasing in `j`).
    pub(super) fn mat_pos(&self, j: usize) -> u64 {
        match self.older_at {
            Some(m) if j >= m => self.initial_len() + self.split + j as u64,
            _ => self.initial_len() + j as u64,
        }
    }

    /// The virtual history in positions `[a, b)`: `(position, history index)` ranges.
    pub(super) fn virtual_in(&self, a: u64, b: u64) -> impl Iterator<Item = (u64, u64)> {
        let initial = (a.min(self.initial_len()), b.min(self.initial_len()));
        let split = self.split;
        let first = (initial.0..initial.1).map(move |p| (p, p + split));
        let (lo, hi, start) = match self.older_at {
            Some(m) if split > 0 => {
                let start = self.initial_len() + m as u64;
                let hi = b.min(start + split);
                (a.max(start).min(hi), hi, start)
            }
            _ => (0, 0, 0),
        };
        first.chain((lo..hi).map(move |p| (p, p - start)))
    }

    /// The entry at a position (for tests of the layout).
    #[cfg(test)]
    pub(super) fn at(&self, pos: u64) -> Option<At> {
        if pos >= self.log_len() {
            return None;
        }
        if pos < self.initial_len() {
            return Some(At::Virtual(pos + self.split));
        }
        if let Some((_, i)) = self.virtual_in(pos, pos + 1).next() {
            return Some(At::Virtual(i));
        }
        (0..self.log.len()).find(|&j| self.mat_pos(j) == pos).map(At::Mat)
    }

    /// Whether part of the history (older than the initial window) is not in the log yet.
    pub(super) fn older_hidden(&self) -> bool {
        !self.older_joined() && self.split > 0
    }

    /// How many virtual history transactions are hidden and untouched by any entry.
    pub(super) fn hidden_count(&self) -> u64 {
        if !self.older_hidden() {
            return 0;
        }
        let touched = self.overlay.values().filter(|o| o.origin.is_some_and(|i| i < self.split)).count() as u64;
        self.split - touched
    }
}
