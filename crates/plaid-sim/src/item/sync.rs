//! `/transactions/sync` pages: a cursor names a window `[a, b)` of the update log (and the log
//! version, mid-pagination), and a page is the net effect of that window on a client that applied
//! `[0, a)`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Item;
use super::log::Entry;
use crate::cursor::Cursor;
use crate::ids::{mix, tag};
use crate::model::Txn;

/// One page of `/transactions/sync`.
pub struct SyncPage {
    pub added: Vec<Arc<Txn>>,
    pub modified: Vec<Arc<Txn>>,
    pub removed: Vec<(String, String)>,
    pub next_cursor: String,
    pub has_more: bool,
    /// Indices of the accounts that have transactions in this page.
    pub accounts: Vec<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SyncError {
    InvalidCursor,
    MutationDuringPagination,
}

impl Item {
    fn stream(&self, account: Option<&str>) -> u64 {
        mix(tag(&self.item_id), account.map_or(0, tag))
    }

    /// One `/transactions/sync` page starting at `cursor` (None or "" = from the beginning).
    pub fn sync(&self, cursor: Option<&str>, count: u64, account: Option<&str>) -> Result<SyncPage, SyncError> {
        let stream = self.stream(account);
        let total = self.log_len();
        let (pos, end) = match cursor {
            None | Some("") => (0, total),
            Some("now") => (total, total),
            Some(s) => {
                let c = Cursor::decode(s).ok_or(SyncError::InvalidCursor)?;
                if c.stream != stream || c.pos > total || (c.mid && c.end > total) {
                    return Err(SyncError::InvalidCursor);
                }
                if c.mid {
                    if c.version != self.version {
                        return Err(SyncError::MutationDuringPagination);
                    }
                    (c.pos, c.end)
                } else {
                    (c.pos, total)
                }
            }
        };
        let b = pos.saturating_add(count).min(end);
        let (mut added, mut modified, mut removed) = self.window(pos, b);
        if let Some(acc) = account {
            added.retain(|t| t.account_id == acc);
            modified.retain(|t| t.account_id == acc);
            removed.retain(|(_, a)| a == acc);
        }
        let mut accounts: Vec<usize> = added
            .iter()
            .chain(modified.iter())
            .map(|t| self.account_index(&t.account_id))
            .chain(removed.iter().map(|(_, a)| self.account_index(a)))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        accounts.sort_unstable();
        let has_more = b < end;
        let next = Cursor { stream, pos: b, end, version: self.version, mid: has_more };
        Ok(SyncPage { added, modified, removed, next_cursor: next.encode(), has_more, accounts })
    }

    /// Net effect of log window `[a, b)` on a client that applied `[0, a)`.
    #[allow(clippy::type_complexity)]
    fn window(&self, a: u64, b: u64) -> (Vec<Arc<Txn>>, Vec<Arc<Txn>>, Vec<(String, String)>) {
        let initial = self.history.len() - self.split;
        if b <= initial {
            // Only the initial window of the history (an initial sync): every transaction of the
            // window is new to the client, in history order (what the general path below
            // computes, without maps).
            let added = (a..b).map(|p| Arc::new(self.generate(p + self.split))).collect();
            return (added, Vec::new(), Vec::new());
        }
        // Transactions touched in the window, with the position of their last touch.
        let mut touched: HashMap<String, (u64, Option<u64>)> = HashMap::new();
        let mut touch = |id: &str, pos: u64, origin: Option<u64>| match touched.get_mut(id) {
            Some(t) if t.0 >= pos => {}
            Some(t) => *t = (pos, origin),
            None => {
                touched.insert(id.to_owned(), (pos, origin));
            }
        };
        let mut generated: HashMap<u64, Arc<Txn>> = HashMap::new();
        for (pos, i) in self.virtual_in(a, b) {
            let t = Arc::new(self.generate(i));
            touch(&t.transaction_id, pos, Some(i));
            generated.insert(i, t);
        }
        let mut at_a: HashMap<&str, Option<&Arc<Txn>>> = HashMap::new();
        let mut at_b: HashMap<&str, Option<&Arc<Txn>>> = HashMap::new();
        let mut removed_account: HashMap<&str, &str> = HashMap::new();
        for (j, e) in self.log.iter().enumerate() {
            let pos = self.mat_pos(j);
            if pos >= b {
                break;
            }
            let id = e.id();
            if pos < a {
                at_a.insert(id, e.state());
            }
            at_b.insert(id, e.state());
            if pos >= a {
                if let Entry::Removed { account_id, .. } = e {
                    removed_account.insert(id, account_id);
                }
                let origin = self.overlay.get(id).and_then(|o| o.origin);
                touch(id, pos, origin);
            }
        }
        let mut order: Vec<(u64, String, Option<u64>)> =
            touched.into_iter().map(|(id, (pos, origin))| (pos, id, origin)).collect();
        order.sort_unstable_by_key(|(pos, _, _)| *pos);

        // A transaction's state at a position is its last materialized state before it, else
        // its generated state once its history entry is before it.
        let (mut added, mut modified, mut removed) = (Vec::new(), Vec::new(), Vec::new());
        for (_, id, origin) in order {
            let before = match at_a.get(id.as_str()) {
                Some(s) => s.is_some(),
                None => origin.and_then(|o| self.vpos(o)).is_some_and(|p| p < a),
            };
            let after: Option<Arc<Txn>> = match at_b.get(id.as_str()) {
                Some(s) => s.cloned(),
                None => origin
                    .filter(|&o| self.vpos(o).is_some_and(|p| p < b))
                    .map(|o| generated.get(&o).cloned().unwrap_or_else(|| Arc::new(self.generate(o)))),
            };
            match (before, after) {
                (false, Some(t)) => added.push(t),
                (true, Some(t)) => modified.push(t),
                (true, None) => {
                    let account = match removed_account.get(id.as_str()) {
                        Some(acc) => (*acc).to_owned(),
                        None => self.state_of(&id, origin).map_or_else(String::new, |t| t.account_id.clone()),
                    };
                    removed.push((id, account));
                }
                (false, None) => {}
            }
        }
        (added, modified, removed)
    }
}
