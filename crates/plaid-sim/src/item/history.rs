//! The virtual history: positions `0..N` of the update log, where entry `i` adds transaction `i`,
//! a pure function of the Item's seed and `i` (nothing is stored but the per-day layout).

use chrono::{Datelike, Duration, NaiveDate};

use super::Item;
use crate::ids::{mix, tag};
use crate::model::Txn;
use crate::world::generator::{Persona, Slot};

/// Virtual history layout: `offsets[d]` is the index of the first transaction of day `d`.
#[derive(Debug, Clone)]
pub(super) struct History {
    pub(super) start: NaiveDate,
    pub(super) end: NaiveDate,
    pub(super) offsets: Vec<u64>,
    pub(super) bulk: bool,
    /// The first transaction of the initial window (the last `INITIAL_DAYS` days).
    pub(super) initial_from: u64,
}

impl History {
    pub(super) fn len(&self) -> u64 {
        self.offsets.last().copied().unwrap_or(0)
    }

    fn day_of(&self, i: u64) -> usize {
        self.offsets.partition_point(|&o| o <= i).saturating_sub(1)
    }

    fn date(&self, day: usize) -> NaiveDate {
        self.start + Duration::days(day as i64)
    }

    /// Index of the first transaction dated on or after `date`.
    pub(super) fn first_index_from(&self, date: NaiveDate) -> u64 {
        let day = (date - self.start).num_days().clamp(0, self.offsets.len() as i64 - 1);
        self.offsets[day as usize]
    }
}

impl Item {
    /// The content key of history transaction `i`: its date and its slot within that day, not its index, so
    /// two Items of one persona with different history lengths or start dates (a relink, another
    /// `days_requested`) generate the same transaction for the same day and slot.
    pub(super) fn history_key(&self, i: u64) -> u64 {
        let day = self.history.day_of(i);
        self.day_slot_key(day, i - self.history.offsets[day])
    }

    fn day_slot_key(&self, day: usize, slot: u64) -> u64 {
        let date = self.history.date(day).num_days_from_ce() as u64;
        mix(mix(self.persona.seed, tag("history")), (date << 32) | slot)
    }

    /// Virtual history transaction `i` (a pure function of the seed and `i`).
    pub(super) fn generate(&self, i: u64) -> Txn {
        let day = self.history.day_of(i);
        let date = self.history.date(day);
        let slot_index = i - self.history.offsets[day];
        let key = self.day_slot_key(day, slot_index);
        let slot = if self.history.bulk {
            Slot::Purchase
        } else {
            let plan = self.persona.plan(date);
            plan.get(slot_index as usize).copied().unwrap_or(Slot::Purchase)
        };
        let age = (self.history.end - date).num_days();
        let pending = !self.history.bulk && slot.starts_pending() && age < Persona::pending_lag(key);
        self.persona.make(slot, date, key, pending)
    }

    pub(super) fn virtual_id(&self, i: u64) -> String {
        self.persona.txn_id(self.history_key(i))
    }
}
