//! One Item: its accounts, its transaction history and update log, cursor pagination and the
//! passage of time (`advance`).
//!
//! The update log has two parts. Positions `0..N` are the *virtual* history: entry `i` adds
//! transaction `i`, generated on demand from the Item's seed, so an Item with a million
//! transactions costs a few kilobytes. Positions `N..` are *materialized* entries appended by
//! `advance` (new, posted, modified and removed transactions). A sync page over the window
//! `[a, b)` returns the net effect of that window on a client that has applied `[0, a)`.
//!
//! This module owns the [`Item`] type and its constructor; the rest is split by concern:
//! - `history`: the virtual history (its day layout and the generation of transaction `i`);
//! - `log`: the materialized entries, the latest state of each transaction, ground truth;
//! - `sync`: `/transactions/sync` pages over a window of the log;
//! - `balances`: accounts' balances, live and cached;
//! - `advance`: the passage of time (posting, new transactions, corrections);
//! - `phase`: the two phases of a new Item's data and where each part sits in the log;
//! - `bank`: activity at the bank Plaid has not pulled yet, refresh pulls, `settle`;
//! - `render`: JSON of accounts, Link's account metadata and the Item.

mod advance;
mod balances;
mod bank;
mod history;
mod log;
mod phase;
mod render;
mod sync;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::assets::AssetUrls;
use crate::ids::{self, ID_LEN, mix, tag};
use crate::world::generator::Persona;
use crate::world::institutions::Institution;

pub use advance::AdvanceReport;
pub use balances::{Account, Balances};
pub use bank::Settled;
pub use phase::{INITIAL_DAYS, Phase};
pub use render::decimal_json;
pub use sync::{SyncError, SyncPage};

use advance::PendingRec;
use history::History;
use log::{Entry, Overlay};

/// Everything needed to create an Item.
pub struct NewItem {
    /// Names this Item's things (item, account and transaction ids); unique per Item.
    pub seed: u64,
    /// Shapes its content (accounts, balances, history, `persistent_account_id`s): shared by every Item of one
    /// login at one institution, so linking it again shows the same person with new ids.
    pub persona_seed: u64,
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
    /// When the last 30 days, then the full history, are ready (see `Item::ready_times`).
    pub initial_ready_at: DateTime<Utc>,
    pub historical_ready_at: DateTime<Utc>,
    /// Where logo and category-icon URLs point.
    pub assets: AssetUrls,
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
    /// The phase of the data the client has been told about (by SYNC_UPDATES_AVAILABLE, or by
    /// the status of its first sync): a later phase is announced.
    pub announced: Phase,
    /// A background task is watching the Item for due phase changes and pulls.
    pub watching: bool,
    /// When the first data (last 30 days) and the full history are ready.
    pub initial_ready_at: DateTime<Utc>,
    pub historical_ready_at: DateTime<Utc>,
    /// Days the bank has moved on that Plaid has not pulled (`advance` with `pulled: false`).
    pub unpulled_days: u32,
    /// When the bank answers an outstanding `/transactions/refresh`.
    pub pull_due: Option<DateTime<Utc>>,
    pub last_successful_update: DateTime<Utc>,
    pub last_webhook: Option<(DateTime<Utc>, String)>,
    /// The bank's "today" for this Item; `advance` moves it.
    pub today: NaiveDate,
    /// Bumped whenever the log grows: mid-pagination cursors from older versions are rejected.
    pub version: u64,
    phase: Phase,
    /// The history index the log starts at (see `phase`).
    split: u64,
    /// How many materialized entries preceded the older history when it joined the log.
    older_at: Option<usize>,
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

impl Item {
    pub fn new(n: NewItem) -> Self {
        let account_count = if n.institution.has_crypto { 4 } else { 3 };
        let account_ids: Vec<String> =
            (0..account_count).map(|k| ids::base62(mix(n.seed, tag("account") + k), ID_LEN)).collect();
        let persona = Persona::new(n.persona_seed, n.seed, n.institution, account_ids.clone(), n.assets);
        let mut rng = ids::rng(mix(n.persona_seed, tag("balances")));
        let accounts = persona
            .kinds
            .iter()
            .zip(account_ids)
            .enumerate()
            .map(|(k, (kind, account_id))| {
                let persistent_id = ids::hex(mix(n.persona_seed, tag("persistent-account") + k as u64), 56);
                Account::open(*kind, account_id, persistent_id, &mut rng)
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
        let mut history =
            History { start, end: n.created_at.date_naive(), offsets, bulk: n.bulk.is_some(), initial_from: 0 };
        history.initial_from = history.first_index_from(history.end - Duration::days(phase::INITIAL_DAYS - 1));
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
            announced: Phase::NotReady,
            watching: false,
            initial_ready_at: n.initial_ready_at,
            historical_ready_at: n.historical_ready_at,
            unpulled_days: 0,
            pull_due: None,
            last_successful_update: n.created_at,
            last_webhook: None,
            today: n.created_at.date_naive(),
            version: 0,
            phase: Phase::NotReady,
            split: 0,
            older_at: None,
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
        item.settle_phase(n.created_at);
        item
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

    /// How many transactions a complete sync reaches now (0 before the first data is ready).
    pub fn transactions_count(&self) -> u64 {
        if self.phase == Phase::NotReady { 0 } else { self.alive - self.hidden_count() }
    }

    /// How many transactions the Item holds once its full history is ready.
    pub fn transactions_count_full(&self) -> u64 {
        self.alive
    }
}
