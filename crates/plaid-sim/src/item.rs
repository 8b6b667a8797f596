//! One Item: its accounts, its transaction history and update log, cursor pagination and the
//! passage of time (`advance`).
//!
//! The update log has two parts. Positions `0..N` are the *virtual* history: entry `i` adds
//! transaction `i`, generated on demand from the Item's seed, so an Item with a million
//! transactions costs a few kilobytes. Positions `N..` are *materialized* entries appended by
//! `advance` (new, posted, modified and removed transactions). A sync page over the window
//! `[a, b)` returns the net effect of that window on a client that has applied `[0, a)`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use rand::Rng;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::cursor::Cursor;
use crate::ids::{self, ID_LEN, mix, tag};
use crate::model::Txn;
use crate::world::generator::{AccountKind, Persona, Slot};
use crate::world::institutions::Institution;

/// Everything needed to create an Item.
pub struct NewItem {
    pub seed: u64,
    pub item_id: String,
    pub access_token: String,
    pub institution: &'static Institution,
    pub webhook: Option<String>,
    pub created_at: DateTime<Utc>,
    pub username: String,
    pub products: Vec<String>,
    /// How many days of history the Item holds (transactions.days_requested).
    pub days: u32,
    /// `user_bulk_<N>`: exactly N historical transactions.
    pub bulk: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Account {
    pub account_id: String,
    pub kind: AccountKind,
    /// The current balance at creation; the implied opening balance is `base ± Σ history`.
    base: Decimal,
    limit: Option<Decimal>,
    /// Σ posted amounts added, changed or removed since creation.
    posted_delta: Decimal,
    /// Σ amounts of the currently pending transactions.
    pending_sum: Decimal,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Balances {
    pub available: Option<Decimal>,
    pub current: Option<Decimal>,
    pub limit: Option<Decimal>,
}

#[derive(Debug, Clone)]
enum Entry {
    Upsert(Arc<Txn>),
    Removed { transaction_id: String, account_id: String },
}

impl Entry {
    fn id(&self) -> &str {
        match self {
            Entry::Upsert(t) => &t.transaction_id,
            Entry::Removed { transaction_id, .. } => transaction_id,
        }
    }

    fn state(&self) -> Option<&Arc<Txn>> {
        match self {
            Entry::Upsert(t) => Some(t),
            Entry::Removed { .. } => None,
        }
    }
}

/// The latest state of a transaction touched by a materialized entry.
#[derive(Debug, Clone)]
struct Overlay {
    /// Its index in the virtual history, if it came from there.
    origin: Option<u64>,
    current: Option<Arc<Txn>>,
}

#[derive(Debug, Clone)]
struct PendingRec {
    id: String,
    origin: Option<u64>,
    lag: i64,
}

/// Virtual history layout: `offsets[d]` is the index of the first transaction of day `d`.
#[derive(Debug, Clone)]
struct History {
    start: NaiveDate,
    end: NaiveDate,
    offsets: Vec<u64>,
    bulk: bool,
}

impl History {
    fn len(&self) -> u64 {
        self.offsets.last().copied().unwrap_or(0)
    }

    fn day_of(&self, i: u64) -> usize {
        self.offsets.partition_point(|&o| o <= i).saturating_sub(1)
    }

    fn date(&self, day: usize) -> NaiveDate {
        self.start + Duration::days(day as i64)
    }

    /// Index of the first transaction dated on or after `date`.
    fn first_index_from(&self, date: NaiveDate) -> u64 {
        let day = (date - self.start).num_days().clamp(0, self.offsets.len() as i64 - 1);
        self.offsets[day as usize]
    }
}

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

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct AdvanceReport {
    pub added: u64,
    pub modified: u64,
    pub removed: u64,
    pub posted: u64,
}

pub struct Item {
    pub item_id: String,
    pub access_token: String,
    pub institution: &'static Institution,
    pub webhook: Option<String>,
    pub created_at: DateTime<Utc>,
    pub username: String,
    pub products: Vec<String>,
    pub login_required: bool,
    /// Plaid only sends SYNC_UPDATES_AVAILABLE once sync has been called on the Item.
    pub sync_called: bool,
    /// A SYNC_UPDATES_AVAILABLE is due when the data becomes ready (sync was called too early).
    pub ready_webhook_scheduled: bool,
    pub last_successful_update: DateTime<Utc>,
    pub last_webhook: Option<(DateTime<Utc>, String)>,
    /// The bank's "today" for this Item; `advance` moves it.
    pub today: NaiveDate,
    /// Bumped whenever the log grows: mid-pagination cursors from older versions are rejected.
    pub version: u64,
    persona: Persona,
    accounts: Vec<Account>,
    history: History,
    log: Vec<Entry>,
    overlay: HashMap<String, Overlay>,
    pending: Vec<PendingRec>,
    /// Materialized posted transactions of the last days (candidates for modify/remove).
    recent_posted: Vec<(String, NaiveDate)>,
    mat_counter: u64,
    alive: u64,
    cached: Vec<Balances>,
}

const PENDING_TAIL_DAYS: i64 = 3;
const CORRECTION_WINDOW_DAYS: i64 = 7;
const MAX_DAILY_MODIFIED: u64 = 10;
const MAX_DAILY_REMOVED: u64 = 5;

impl Item {
    pub fn new(n: NewItem) -> Self {
        let account_count = if n.institution.has_crypto { 4 } else { 3 };
        let account_ids: Vec<String> =
            (0..account_count).map(|k| ids::base62(mix(n.seed, tag("account") + k), ID_LEN)).collect();
        let persona = Persona::new(n.seed, n.institution, account_ids.clone());
        let mut rng = ids::rng(mix(n.seed, tag("balances")));
        let accounts = persona
            .kinds
            .iter()
            .zip(account_ids)
            .map(|(kind, account_id)| {
                let (base, limit) = match kind {
                    AccountKind::Checking => (Decimal::new(rng.gen_range(120_000..800_000), 2), None),
                    AccountKind::Savings => (Decimal::new(rng.gen_range(500_000..4_000_000), 2), None),
                    AccountKind::Credit => (
                        Decimal::new(rng.gen_range(30_000..250_000), 2),
                        Some(Decimal::new([500_000, 800_000, 1_200_000][rng.gen_range(0..3)], 2)),
                    ),
                    AccountKind::Crypto => (Decimal::new(rng.gen_range(20_000_000..150_000_000), 8), None),
                };
                Account {
                    account_id,
                    kind: *kind,
                    base,
                    limit,
                    posted_delta: Decimal::ZERO,
                    pending_sum: Decimal::ZERO,
                }
            })
            .collect();
        let days = n.days.max(1) as usize;
        let start = n.created_at.date_naive() - Duration::days(days as i64 - 1);
        let mut offsets = Vec::with_capacity(days + 1);
        offsets.push(0u64);
        for d in 0..days {
            let count = match n.bulk {
                Some(total) => total / days as u64 + u64::from((d as u64) < total % days as u64),
                None => persona.plan(start + Duration::days(d as i64)).len() as u64,
            };
            let last = offsets.last().copied().unwrap_or(0);
            offsets.push(last + count);
        }
        let history = History { start, end: n.created_at.date_naive(), offsets, bulk: n.bulk.is_some() };
        let alive = history.len();
        let mut item = Self {
            item_id: n.item_id,
            access_token: n.access_token,
            institution: n.institution,
            webhook: n.webhook,
            created_at: n.created_at,
            username: n.username,
            products: n.products,
            login_required: false,
            sync_called: false,
            ready_webhook_scheduled: false,
            last_successful_update: n.created_at,
            last_webhook: None,
            today: n.created_at.date_naive(),
            version: 0,
            persona,
            accounts,
            history,
            log: Vec::new(),
            overlay: HashMap::new(),
            pending: Vec::new(),
            recent_posted: Vec::new(),
            mat_counter: 0,
            alive,
            cached: Vec::new(),
        };
        // Recent card purchases are still pending at creation.
        if !item.history.bulk {
            let from = item.history.first_index_from(item.history.end - Duration::days(PENDING_TAIL_DAYS));
            for i in from..item.history.len() {
                let t = item.generate(i);
                if t.pending {
                    let idx = item.account_index(&t.account_id);
                    item.accounts[idx].pending_sum += t.amount;
                    item.pending.push(PendingRec {
                        id: t.transaction_id.clone(),
                        origin: Some(i),
                        lag: Persona::pending_lag(item.history_key(i)),
                    });
                }
            }
        }
        item.cached = item.live_balances();
        item
    }

    fn history_key(&self, i: u64) -> u64 {
        mix(mix(self.persona.seed, tag("history")), i)
    }

    /// Virtual history transaction `i` (a pure function of the seed and `i`).
    fn generate(&self, i: u64) -> Txn {
        let day = self.history.day_of(i);
        let date = self.history.date(day);
        let key = self.history_key(i);
        let slot = if self.history.bulk {
            Slot::Purchase
        } else {
            let plan = self.persona.plan(date);
            plan.get((i - self.history.offsets[day]) as usize).copied().unwrap_or(Slot::Purchase)
        };
        let age = (self.history.end - date).num_days();
        let pending = !self.history.bulk && slot.starts_pending() && age < Persona::pending_lag(key);
        self.persona.make(slot, date, key, pending)
    }

    fn virtual_id(&self, i: u64) -> String {
        self.persona.txn_id(self.history_key(i))
    }

    fn account_index(&self, account_id: &str) -> usize {
        self.accounts.iter().position(|a| a.account_id == account_id).unwrap_or(0)
    }

    pub fn account_ids(&self) -> impl Iterator<Item = &str> {
        self.accounts.iter().map(|a| a.account_id.as_str())
    }

    pub fn has_account(&self, account_id: &str) -> bool {
        self.accounts.iter().any(|a| a.account_id == account_id)
    }

    pub fn transactions_count(&self) -> u64 {
        self.alive
    }

    fn log_len(&self) -> u64 {
        self.history.len() + self.log.len() as u64
    }

    fn stream(&self, account: Option<&str>) -> u64 {
        mix(tag(&self.item_id), account.map_or(0, tag))
    }

    // ---------------------------------------------------------------- sync

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
        let n = self.history.len();
        if b <= n {
            // Only virtual history (an initial sync): every transaction of the window is new to
            // the client, in history order (what the general path below computes, without maps).
            let added = (a..b).map(|i| Arc::new(self.generate(i))).collect();
            return (added, Vec::new(), Vec::new());
        }
        // Transactions touched in the window, with the position of their last touch.
        let mut touched: HashMap<String, (u64, Option<u64>)> = HashMap::new();
        let mut generated: HashMap<u64, Arc<Txn>> = HashMap::new();
        for i in a..b.min(n) {
            let t = Arc::new(self.generate(i));
            touched.insert(t.transaction_id.clone(), (i, Some(i)));
            generated.insert(i, t);
        }
        let mut at_a: HashMap<&str, Option<&Arc<Txn>>> = HashMap::new();
        let mut at_b: HashMap<&str, Option<&Arc<Txn>>> = HashMap::new();
        let mut removed_account: HashMap<&str, &str> = HashMap::new();
        for j in n..b {
            let e = &self.log[(j - n) as usize];
            let id = e.id();
            if j < a {
                at_a.insert(id, e.state());
            }
            at_b.insert(id, e.state());
            if j >= a {
                if let Entry::Removed { account_id, .. } = e {
                    removed_account.insert(id, account_id);
                }
                let origin = self.overlay.get(id).and_then(|o| o.origin);
                touched.insert(id.to_owned(), (j, origin));
            }
        }
        let mut order: Vec<(u64, String, Option<u64>)> =
            touched.into_iter().map(|(id, (pos, origin))| (pos, id, origin)).collect();
        order.sort_unstable_by_key(|(pos, _, _)| *pos);

        let (mut added, mut modified, mut removed) = (Vec::new(), Vec::new(), Vec::new());
        for (_, id, origin) in order {
            let before = match at_a.get(id.as_str()) {
                Some(s) => s.is_some(),
                None => origin.is_some_and(|o| o < a),
            };
            let after: Option<Arc<Txn>> = match at_b.get(id.as_str()) {
                Some(s) => s.cloned(),
                None => origin
                    .filter(|&o| o < b)
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

    /// The latest state of a transaction (None if removed or unknown).
    fn state_of(&self, id: &str, origin: Option<u64>) -> Option<Arc<Txn>> {
        match self.overlay.get(id) {
            Some(o) => o.current.clone(),
            None => origin.map(|i| Arc::new(self.generate(i))),
        }
    }

    /// Ground truth: every current transaction, ordered by transaction_id.
    pub fn transactions(&self) -> Vec<Arc<Txn>> {
        let mut out: Vec<Arc<Txn>> = Vec::with_capacity(self.alive as usize);
        for i in 0..self.history.len() {
            let id = self.virtual_id(i);
            match self.overlay.get(&id) {
                Some(o) => out.extend(o.current.clone()),
                None => out.push(Arc::new(self.generate(i))),
            }
        }
        out.extend(self.overlay.values().filter(|o| o.origin.is_none()).filter_map(|o| o.current.clone()));
        out.sort_unstable_by(|x, y| x.transaction_id.cmp(&y.transaction_id));
        out
    }

    // ---------------------------------------------------------------- balances

    pub fn live_balances(&self) -> Vec<Balances> {
        self.accounts
            .iter()
            .map(|a| match a.kind {
                AccountKind::Credit => {
                    let current = a.base + a.posted_delta;
                    Balances {
                        available: a.limit.map(|l| l - current - a.pending_sum),
                        current: Some(current),
                        limit: a.limit,
                    }
                }
                _ => {
                    let current = a.base - a.posted_delta;
                    Balances { available: Some(current - a.pending_sum), current: Some(current), limit: None }
                }
            })
            .collect()
    }

    pub fn cached_balances(&self) -> &[Balances] {
        &self.cached
    }

    /// Stores live balances as the cached ones (what a bank refresh does).
    pub fn refresh_cache(&mut self) {
        self.cached = self.live_balances();
    }

    pub fn account_json(&self, idx: usize, balances: &Balances) -> Value {
        let a = &self.accounts[idx];
        let (name, official, ty, subtype, mask) = match a.kind {
            AccountKind::Checking => {
                ("Plaid Checking", Some("Plaid Gold Standard 0% Interest Checking"), "depository", "checking", "0000")
            }
            AccountKind::Savings => {
                ("Plaid Saving", Some("Plaid Silver Standard 0.1% Interest Saving"), "depository", "savings", "1111")
            }
            AccountKind::Credit => (
                "Plaid Credit Card",
                Some("Plaid Diamond 12.5% APR Interest Credit Card"),
                "credit",
                "credit card",
                "3333",
            ),
            AccountKind::Crypto => ("Plaid Bitcoin Wallet", None, "depository", "cash management", "7777"),
        };
        let (iso, unofficial) = if a.kind == AccountKind::Crypto { (None, Some("BTC")) } else { (Some("USD"), None) };
        json!({
            "account_id": a.account_id,
            "balances": {
                "available": balances.available.map(decimal_json),
                "current": balances.current.map(decimal_json),
                "limit": balances.limit.map(decimal_json),
                "iso_currency_code": iso,
                "unofficial_currency_code": unofficial,
            },
            "mask": mask,
            "name": name,
            "official_name": official,
            "type": ty,
            "subtype": subtype,
        })
    }

    /// Link's `metadata.accounts` entries.
    pub fn link_accounts_json(&self) -> Vec<Value> {
        let b = self.live_balances();
        (0..self.accounts.len())
            .map(|i| {
                let full = self.account_json(i, &b[i]);
                json!({
                    "id": full["account_id"],
                    "name": full["name"],
                    "mask": full["mask"],
                    "type": full["type"],
                    "subtype": full["subtype"],
                    "verification_status": null,
                    "class_type": null,
                })
            })
            .collect()
    }

    pub fn accounts_json(&self, balances: &[Balances], only: Option<&[String]>) -> Vec<Value> {
        (0..self.accounts.len())
            .filter(|&i| only.is_none_or(|ids| ids.contains(&self.accounts[i].account_id)))
            .map(|i| self.account_json(i, &balances[i]))
            .collect()
    }

    pub fn item_json(&self) -> Value {
        let products: Vec<&str> = self.products.iter().map(String::as_str).collect();
        let available: Vec<&str> =
            ["assets", "auth", "balance", "identity", "investments", "liabilities", "transactions"]
                .into_iter()
                .filter(|p| !products.contains(p))
                .collect();
        json!({
            "item_id": self.item_id,
            "institution_id": self.institution.id,
            "institution_name": self.institution.name,
            "webhook": self.webhook,
            "auth_method": null,
            "error": if self.login_required { crate::api::errors::ApiError::item_login_required().to_item_error() } else { Value::Null },
            "available_products": available,
            "billed_products": products,
            "products": products,
            "consented_products": products,
            "consent_expiration_time": null,
            "update_type": "background",
        })
    }

    // ---------------------------------------------------------------- time

    fn next_key(&mut self, what: &str) -> u64 {
        self.mat_counter += 1;
        mix(mix(self.persona.seed, tag(what)), self.mat_counter)
    }

    fn upsert(&mut self, txn: Txn, origin: Option<u64>) {
        let t = Arc::new(txn);
        self.log.push(Entry::Upsert(t.clone()));
        let o = self.overlay.entry(t.transaction_id.clone()).or_insert(Overlay { origin, current: None });
        o.current = Some(t);
    }

    fn remove(&mut self, t: &Txn, origin: Option<u64>) {
        self.log.push(Entry::Removed { transaction_id: t.transaction_id.clone(), account_id: t.account_id.clone() });
        self.overlay.entry(t.transaction_id.clone()).or_insert(Overlay { origin, current: None }).current = None;
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

    pub fn is_ready(&self, now: DateTime<Utc>, delay: std::time::Duration) -> bool {
        now >= self.created_at + Duration::from_std(delay).unwrap_or(Duration::zero())
    }
}

pub fn decimal_json(d: Decimal) -> Value {
    rust_decimal::serde::arbitrary_precision::serialize(&d, serde_json::value::Serializer).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::institutions;

    fn item(seed: u64, bulk: Option<u64>) -> Item {
        Item::new(new_item(seed, bulk))
    }

    fn new_item(seed: u64, bulk: Option<u64>) -> NewItem {
        NewItem {
            seed,
            item_id: ids::base62(seed, ID_LEN),
            access_token: "access-sandbox-x".into(),
            institution: institutions::find("ins_109508").expect("known institution"),
            webhook: None,
            created_at: DateTime::parse_from_rfc3339("2025-06-15T12:00:00Z")
                .expect("valid timestamp")
                .with_timezone(&Utc),
            username: "user_good".into(),
            products: vec!["transactions".into()],
            days: 730,
            bulk,
        }
    }

    /// Applies every page from `cursor` and returns the final cursor.
    fn drain(item: &Item, state: &mut HashMap<String, Arc<Txn>>, mut cursor: String, count: u64) -> String {
        loop {
            let page = item.sync(Some(&cursor), count, None).expect("page");
            assert!((page.added.len() + page.modified.len() + page.removed.len()) as u64 <= count);
            for t in page.added.iter().chain(page.modified.iter()) {
                state.insert(t.transaction_id.clone(), t.clone());
            }
            for (id, _) in &page.removed {
                assert!(state.remove(id).is_some(), "removed unknown {id}");
            }
            cursor = page.next_cursor;
            if !page.has_more {
                return cursor;
            }
        }
    }

    fn truth(item: &Item) -> Vec<Arc<Txn>> {
        item.transactions()
    }

    fn sorted(state: &HashMap<String, Arc<Txn>>) -> Vec<Arc<Txn>> {
        let mut v: Vec<_> = state.values().cloned().collect();
        v.sort_by(|a, b| a.transaction_id.cmp(&b.transaction_id));
        v
    }

    #[test]
    fn sync_converges_through_advances_for_any_page_size() {
        for count in [1, 7, 100, 500] {
            let mut it = item(5, None);
            let mut state = HashMap::new();
            let mut cursor = drain(&it, &mut state, String::new(), count);
            assert_eq!(sorted(&state), truth(&it));
            for days in [1, 3, 10] {
                let r = it.advance(days);
                assert!(r.added > 0);
                cursor = drain(&it, &mut state, cursor, count);
                assert_eq!(sorted(&state), truth(&it), "count {count}");
            }
        }
    }

    #[test]
    fn a_late_first_sync_sees_only_the_net_effect() {
        let mut it = item(6, None);
        it.advance(20);
        let page = it.sync(None, 1_000_000, None).expect("page");
        assert!(page.modified.is_empty() && page.removed.is_empty());
        assert_eq!(page.added.len() as u64, it.transactions_count());
    }

    #[test]
    fn mutation_mid_pagination_is_detected() {
        let mut it = item(7, None);
        let first = it.sync(None, 10, None).expect("page");
        assert!(first.has_more);
        it.advance(1);
        assert_eq!(it.sync(Some(&first.next_cursor), 10, None).err(), Some(SyncError::MutationDuringPagination));
    }

    #[test]
    fn balances_follow_transactions() {
        let mut it = item(8, None);
        let before = it.live_balances();
        let r = it.advance(5);
        assert!(r.posted > 0);
        let after = it.live_balances();
        assert_ne!(before, after);
        // Checking: current = base − Σ posted changes.
        let a = &it.accounts[0];
        assert_eq!(after[0].current, Some(a.base - a.posted_delta));
        assert_eq!(after[0].available, Some(a.base - a.posted_delta - a.pending_sum));
    }

    #[test]
    fn bulk_items_converge_after_advance() {
        let mut it = item(10, Some(5_000));
        let mut state = HashMap::new();
        let cursor = drain(&it, &mut state, String::new(), 500);
        assert_eq!(state.len(), 5_000);
        let r = it.advance(3);
        assert!(r.modified + r.removed > 0 && r.modified <= 30 && r.removed <= 15 + r.posted);
        drain(&it, &mut state, cursor, 500);
        assert_eq!(sorted(&state), truth(&it));
    }

    /// Sync pages and ground truth use `Txn::write_json`; it must give serde's exact bytes for
    /// everything the world generates (every slot, pending, posted, modified, crypto, both datetime
    /// styles of institutions).
    #[test]
    fn written_json_matches_serde_for_generated_transactions() {
        for institution in ["ins_109508", "ins_109511"] {
            let mut it = Item::new(NewItem {
                institution: institutions::find(institution).expect("known institution"),
                days: 400,
                ..new_item(11, None)
            });
            it.advance(12);
            let page = it.sync(None, 1_000_000, None).expect("page");
            let all: Vec<Arc<Txn>> = truth(&it).into_iter().chain(page.added).collect();
            assert!(all.iter().any(|t| t.pending) && all.iter().any(|t| t.pending_transaction_id.is_some()));
            for t in &all {
                for original in [false, true] {
                    let mut out = Vec::new();
                    t.write_json(&mut out, original);
                    let expected = serde_json::to_vec(&t.json(original)).expect("json");
                    assert_eq!(out, expected, "{}", String::from_utf8_lossy(&expected));
                }
            }
        }
    }

    #[test]
    fn bulk_items_are_lazy() {
        let it = item(9, Some(1_000_000));
        assert_eq!(it.transactions_count(), 1_000_000);
        let page = it.sync(None, 500, None).expect("page");
        assert_eq!(page.added.len(), 500);
        assert!(page.has_more);
        let mut c = Cursor::decode(&page.next_cursor).expect("cursor");
        c.pos = 999_900;
        let last = it.sync(Some(&c.encode()), 500, None).expect("page");
        assert_eq!(last.added.len(), 100);
        assert!(!last.has_more);
    }
}
