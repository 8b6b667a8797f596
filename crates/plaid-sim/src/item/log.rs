//! The materialized part of the update log (positions `N..`, appended by `advance`) and the
//! overlay it maintains: the latest state of every transaction an entry touched. From those and
//! the virtual history come the latest state of any transaction and the ground truth.

use std::sync::Arc;

use super::Item;
use crate::model::Txn;

#[derive(Debug, Clone)]
pub(super) enum Entry {
    Upsert(Arc<Txn>),
    Removed { transaction_id: String, account_id: String },
}

impl Entry {
    pub(super) fn id(&self) -> &str {
        match self {
            Entry::Upsert(t) => &t.transaction_id,
            Entry::Removed { transaction_id, .. } => transaction_id,
        }
    }

    pub(super) fn state(&self) -> Option<&Arc<Txn>> {
        match self {
            Entry::Upsert(t) => Some(t),
            Entry::Removed { .. } => None,
        }
    }
}

/// The latest state of a transaction touched by a materialized entry.
#[derive(Debug, Clone)]
pub(super) struct Overlay {
    /// Its index in the virtual history, if it came from there.
    pub(super) origin: Option<u64>,
    pub(super) current: Option<Arc<Txn>>,
}

impl Item {
    pub(super) fn upsert(&mut self, txn: Txn, origin: Option<u64>) {
        let t = Arc::new(txn);
        self.log.push(Entry::Upsert(t.clone()));
        let o = self.overlay.entry(t.transaction_id.clone()).or_insert(Overlay { origin, current: None });
        o.current = Some(t);
    }

    pub(super) fn remove(&mut self, t: &Txn, origin: Option<u64>) {
        self.log.push(Entry::Removed { transaction_id: t.transaction_id.clone(), account_id: t.account_id.clone() });
        self.overlay.entry(t.transaction_id.clone()).or_insert(Overlay { origin, current: None }).current = None;
    }

    /// The latest state of a transaction (None if removed or unknown).
    pub(super) fn state_of(&self, id: &str, origin: Option<u64>) -> Option<Arc<Txn>> {
        match self.overlay.get(id) {
            Some(o) => o.current.clone(),
            None => origin.map(|i| Arc::new(self.generate(i))),
        }
    }

    /// Ground truth: every current transaction a complete sync reaches now (the whole log),
    /// ordered by transaction_id. Before the first data is ready a sync reaches nothing.
    pub fn transactions(&self) -> Vec<Arc<Txn>> {
        if self.phase() == super::Phase::NotReady {
            return Vec::new();
        }
        self.current(false)
    }

    /// Every current transaction once the full history is ready, whatever the phase now.
    pub fn transactions_full(&self) -> Vec<Arc<Txn>> {
        self.current(true)
    }

    fn current(&self, with_hidden: bool) -> Vec<Arc<Txn>> {
        let mut out: Vec<Arc<Txn>> = Vec::with_capacity(self.alive as usize);
        for i in 0..self.history.len() {
            let id = self.virtual_id(i);
            match self.overlay.get(&id) {
                Some(o) => out.extend(o.current.clone()),
                None if with_hidden || self.vpos(i).is_some() => out.push(Arc::new(self.generate(i))),
                None => {}
            }
        }
        out.extend(self.overlay.values().filter(|o| o.origin.is_none()).filter_map(|o| o.current.clone()));
        out.sort_unstable_by(|x, y| x.transaction_id.cmp(&y.transaction_id));
        out
    }
}
