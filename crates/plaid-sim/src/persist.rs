//! The simulator's state on disk, so a restart keeps Items, tokens and cursors valid.
//!
//! An Item is a deterministic function of its creation parameters and of what happened to it
//! since (`Item::new` generates the history from the seed, `advance` the new days), so the state
//! is saved as a **journal of operations**, not as a dump of the internal structures: one JSON
//! line per state change (`journal.jsonl` in `SimConfig::state_dir`), written and fsynced before
//! the change is applied and before the response is sent. Opening the directory replays the
//! journal through the very code that applied each operation the first time, with the clock pinned
//! to the operation's recorded time, so the replayed state is the state that was left: histories,
//! materialized log entries, the pending→posted life cycle, versions (cursors stay valid), token
//! counters (new ids never collide), the webhook signing keys (old JWT `kid`s still verify) and
//! the clock offset.
//!
//! **Adding a state change.** Every mutation of persistent state goes through one of two narrow
//! functions, each a single line at the place where the change happens:
//! - [`SimState::change_item`] for a change to one Item (the caller holds the Item's lock, so the
//!   journal keeps each Item's changes in order): add an [`ItemChange`] variant and its arm in
//!   [`ItemChange::apply`];
//! - [`SimState::commit`] for everything else (Items created or removed, tokens, clock, keys): add
//!   an [`Op`] variant and its arm in `SimState::apply`.
//!
//! Logic that runs *inside* an existing operation (what `advance` generates, how an Item is built
//! from its parameters) needs nothing: replay runs it again. Inside an operation, read the time
//! from the `at` it is given (or `state.clock.now()`, pinned to `at` during replay), never from
//! `Utc::now()`, and derive randomness from seeds or record it in the operation.
//!
//! Not saved (runtime only): injected faults, rate-limit windows, recorded exchanges, the webhook
//! delivery log, and a pending "transactions ready" webhook (the next early sync schedules it again).
//!
//! **Format.** The first line is a header `{"format":"plaid-sim-state","version":1,"seed":…}`: a
//! newer version or another seed is refused with a clear error rather than replayed into garbage.
//! Each following line is `{"at":"<RFC 3339, ns>","op":{…}}`. A last line without its newline was
//! torn by a crash mid-write: it is dropped with a warning (its change was never acknowledged). A
//! complete line that does not parse is damage and stops the open. The directory is made 0700 and
//! the file 0600 (it holds bank-like data and the webhook signing keys). The journal grows only
//! with real changes (no-op changes are not written); one process uses a directory at a time.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::errors::ApiError;
use crate::item::{AdvanceReport, Item};
use crate::state::{LinkToken, PublicToken, SimState};
use crate::webhooks::KeyMaterial;

/// The journal's format name and the newest version this build reads and writes.
pub const FORMAT: &str = "plaid-sim-state";
pub const VERSION: u64 = 1;
/// The journal's file name inside the state directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// A change to simulator-wide state (see the module doc for adding one).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Item number `n` was created (`at` is its `created_at`). `item_id` is checked on replay: a
    /// different id means the world generator changed since the state was saved.
    CreateItem {
        n: u64,
        item_id: String,
        institution_id: String,
        username: String,
        bulk: Option<u64>,
        webhook: Option<String>,
        days: u32,
        products: Vec<String>,
    },
    /// Public token number `n` for an Item (it expires 30 minutes after `at`).
    PublicToken {
        n: u64,
        token: String,
        item_id: String,
    },
    /// A public token was exchanged (it is single-use).
    Exchange {
        token: String,
    },
    /// Link token number `n`.
    LinkToken {
        n: u64,
        token: String,
        link: LinkToken,
    },
    /// A Link session started for a link token.
    LinkSession {
        session: String,
        link_token: String,
    },
    RemoveItem {
        item_id: String,
    },
    /// `POST /sim/clock/advance`.
    ClockAdvance {
        seconds: i64,
    },
    /// The first webhook signing key (replaces the random one a new simulator starts with).
    SigningKey {
        key: KeyMaterial,
    },
    /// A key rotation: `key` signs from now on, older keys expire.
    RotateKey {
        key: KeyMaterial,
    },
    /// A change to one Item.
    Item {
        item_id: String,
        change: ItemChange,
    },
}

/// A change to one Item, applied under its lock by [`SimState::change_item`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemChange {
    /// The bank moves `days` days forward (`Item::advance`).
    Advance {
        days: u32,
    },
    /// Cached balances become the live ones (a bank refresh).
    RefreshCache,
    /// `last_successful_update` becomes the operation's time.
    Updated,
    /// `/transactions/sync` was called: SYNC_UPDATES_AVAILABLE is armed, Transactions initialized.
    SyncCalled,
    /// The bank moves `days` days on without Plaid noticing (`advance` with `pulled: false`).
    AdvanceUnpulled {
        days: u32,
    },
    /// Plaid pulls what the bank holds, plus `days` more days (a pulled `advance`).
    Pull {
        days: u32,
    },
    /// A data phase made due now (`POST /sim/items/{id}/ready`): the full history when `historical`.
    MakeReady {
        historical: bool,
    },
    /// `/transactions/refresh`: the bank answers at `due`.
    RequestPull {
        due: DateTime<Utc>,
    },
    LoginRequired {
        required: bool,
    },
    Webhook {
        url: Option<String>,
    },
    /// A webhook was sent (`/item/get`'s `status.last_webhook`).
    WebhookSent {
        code: String,
    },
}

impl ItemChange {
    /// Whether applying the change to `item` would change nothing (such changes are not written).
    fn is_noop(&self, item: &Item) -> bool {
        match self {
            Self::RefreshCache => item.cached_balances() == item.live_balances().as_slice(),
            Self::SyncCalled => item.sync_called && item.products.iter().any(|p| p == "transactions"),
            Self::LoginRequired { required } => item.login_required == *required,
            Self::Webhook { url } => item.webhook == *url,
            Self::RequestPull { .. } => item.pull_due.is_some(),
            Self::Advance { .. }
            | Self::AdvanceUnpulled { .. }
            | Self::Pull { .. }
            | Self::MakeReady { .. }
            | Self::Updated
            | Self::WebhookSent { .. } => false,
        }
    }

    /// Applies the change at time `at` (live and on replay); returns what it added to the update
    /// log (nothing, except for `Advance`).
    pub fn apply(&self, item: &mut Item, at: DateTime<Utc>) -> AdvanceReport {
        // What the clock made due (a data phase, a refresh's pull) happens before the change, live and on replay
        // alike, so the update log grows in the same order both times (settling is a pure function of the time).
        item.settle(at);
        match self {
            Self::Advance { days } => return item.advance(*days),
            Self::AdvanceUnpulled { days } => {
                item.advance_unpulled(*days);
            }
            Self::Pull { days } => return item.pull(*days),
            Self::RequestPull { due } => item.request_pull(*due),
            Self::MakeReady { historical } => {
                let phase = if *historical { crate::item::Phase::Historical } else { crate::item::Phase::Initial };
                item.make_ready(phase, at);
            }
            Self::RefreshCache => item.refresh_cache(),
            Self::Updated => item.last_successful_update = at,
            Self::SyncCalled => {
                if !item.sync_called {
                    // Phase changes are announced from now on, starting after the one this sync reports.
                    item.sync_called = true;
                    item.announced = item.phase();
                }
                if !item.products.iter().any(|p| p == "transactions") {
                    item.products.push("transactions".to_owned());
                }
            }
            Self::LoginRequired { required } => item.login_required = *required,
            Self::Webhook { url } => item.webhook = url.clone(),
            Self::WebhookSent { code } => item.last_webhook = Some((at, code.clone())),
        }
        AdvanceReport::default()
    }
}

/// One journal line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub at: DateTime<Utc>,
    pub op: Op,
}

#[derive(Serialize)]
struct RecordRef<'a> {
    at: DateTime<Utc>,
    op: &'a Op,
}

#[derive(Serialize)]
struct Header {
    format: &'static str,
    version: u64,
    seed: u64,
}

/// The open journal: appends are serialized and fsynced.
pub struct Journal {
    path: PathBuf,
    /// The file (opened for appending) and its length after the last complete line.
    file: Mutex<(File, u64)>,
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Creates `dir` if needed and makes it private (0700): it holds bank-like data and signing keys.
fn private_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| with_path(e, "cannot create the simulator state directory", dir))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| with_path(e, "cannot make private the simulator state directory", dir))?;
    }
    Ok(())
}

/// Opens (creating, 0600) the journal for reading and appending.
fn private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path).map_err(|e| with_path(e, "cannot open the simulator journal", path))?;
    // An existing file keeps its mode on open: tighten it too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| with_path(e, "cannot make private the simulator journal", path))?;
    }
    Ok(file)
}

impl Journal {
    /// Opens the journal in `dir` (creating both), checks its header against this build and
    /// `seed`, drops a torn last line, and returns the journal with the records to replay.
    pub fn open(dir: &Path, seed: u64) -> io::Result<(Self, Vec<Record>)> {
        private_dir(dir)?;
        let path = dir.join(JOURNAL_FILE);
        let mut file = private_file(&path)?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(|e| with_path(e, "cannot read the simulator journal", &path))?;
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if complete < text.len() {
            tracing::warn!(
                path = %path.display(),
                bytes = text.len() - complete,
                "the simulator journal ends with a torn line (a crash mid-write); dropping it"
            );
            file.set_len(complete as u64).map_err(|e| with_path(e, "cannot repair the simulator journal", &path))?;
            text.truncate(complete);
        }
        let mut lines = text.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty());
        let mut len = complete as u64;
        let records = match lines.next() {
            None => {
                let mut header = serde_json::to_vec(&Header { format: FORMAT, version: VERSION, seed })
                    .map_err(|e| invalid(e.to_string()))?;
                header.push(b'\n');
                file.write_all(&header)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| with_path(e, "cannot write the simulator journal", &path))?;
                // The new file's directory entry must be durable too.
                File::open(dir).and_then(|d| d.sync_all()).map_err(|e| with_path(e, "cannot sync", dir))?;
                len = header.len() as u64;
                Vec::new()
            }
            Some((_, header)) => {
                check_header(header, seed, &path)?;
                lines
                    .map(|(k, line)| {
                        serde_json::from_slice::<Record>(line).map_err(|e| {
                            invalid(format!(
                                "line {} of the simulator journal {} cannot be read ({e}): the state directory is \
                                 damaged; move it away to start with a fresh simulator",
                                k + 1,
                                path.display()
                            ))
                        })
                    })
                    .collect::<io::Result<Vec<_>>>()?
            }
        };
        Ok((Self { path, file: Mutex::new((file, len)) }, records))
    }

    /// Appends one record and waits until it is on disk. A failed write is cut off again so the
    /// journal never keeps half a line in the middle.
    pub fn append(&self, at: DateTime<Utc>, op: &Op) -> io::Result<()> {
        let mut line = serde_json::to_vec(&RecordRef { at, op }).map_err(|e| invalid(e.to_string()))?;
        line.push(b'\n');
        let mut guard = self.file.lock();
        let (file, len) = &mut *guard;
        match file.write_all(&line).and_then(|()| file.sync_data()) {
            Ok(()) => {
                *len += line.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = file.set_len(*len);
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn check_header(line: &[u8], seed: u64, path: &Path) -> io::Result<()> {
    let header: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
    if header.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(invalid(format!("{} is not a plaid-sim state journal", path.display())));
    }
    match header.get("version").and_then(Value::as_u64) {
        Some(VERSION) => {}
        Some(v) if v > VERSION => {
            return Err(invalid(format!(
                "the simulator state in {} was written by a newer plaid-sim (format version {v}; this build reads \
                 version {VERSION}): use that version, or move the directory away to start over",
                path.display()
            )));
        }
        _ => return Err(invalid(format!("{} has no valid format version", path.display()))),
    }
    match header.get("seed").and_then(Value::as_u64) {
        Some(s) if s == seed => Ok(()),
        Some(s) => Err(invalid(format!(
            "the simulator state in {} was made with seed {s}, but the simulator is configured with seed {seed}: \
             its Items would not come back the same; use the same seed or another state directory",
            path.display()
        ))),
        None => Err(invalid(format!("{} has no seed in its header", path.display()))),
    }
}

/// Journal failures reach the client as a Plaid internal error; the cause goes to the log only.
fn save_failed(e: &io::Error) -> ApiError {
    tracing::error!(error = %e, "cannot save the simulator state; the change was not applied");
    ApiError::internal()
}

impl SimState {
    /// A simulator with the state saved in `config.state_dir` (None: a fresh in-memory one).
    pub fn open(config: crate::SimConfig) -> io::Result<Self> {
        let dir = config.state_dir.clone();
        let mut state = Self::new(config);
        let Some(dir) = dir else {
            return Ok(state);
        };
        let (journal, records) = Journal::open(&dir, state.config.seed)?;
        let started = std::time::Instant::now();
        let mut has_key = false;
        for (k, rec) in records.iter().enumerate() {
            has_key |= matches!(rec.op, Op::SigningKey { .. });
            state.clock.pin(Some(rec.at));
            let applied = state.apply(&rec.op, rec.at);
            state.clock.pin(None);
            applied.map_err(|e| {
                invalid(format!(
                    "cannot replay operation {} of the simulator journal {}: {e}",
                    k + 1,
                    journal.path().display()
                ))
            })?;
        }
        state.journal = Some(journal);
        if !has_key {
            // A fresh directory: keep the signing key the simulator started with.
            if let Some(key) = state.webhooks.current_key() {
                state.save(&Op::SigningKey { key })?;
            }
        }
        tracing::info!(
            dir = %dir.display(),
            operations = records.len(),
            items = state.items.read().len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "plaid-sim state restored"
        );
        Ok(state)
    }

    /// Writes `op` to the journal (when there is one) and returns its time.
    fn save(&self, op: &Op) -> io::Result<DateTime<Utc>> {
        let at = self.clock.now();
        if let Some(journal) = &self.journal {
            journal.append(at, op)?;
        }
        Ok(at)
    }

    /// Records `op` without applying it: for a check-and-set that must happen under a lock the
    /// caller already holds (the caller then makes the change `apply` makes on replay).
    pub fn record(&self, op: &Op) -> Result<DateTime<Utc>, ApiError> {
        self.save(op).map_err(|e| save_failed(&e))
    }

    /// Saves a simulator-wide change, then applies it. Changes are saved and applied in one
    /// order, so replay sees them in the order they happened. Never call it while holding an
    /// Item's lock.
    pub fn commit(&self, op: &Op) -> Result<(), ApiError> {
        let _order = self.commit_order.lock();
        let at = self.record(op)?;
        self.apply(op, at).map_err(|e| {
            tracing::error!(error = %e, "a saved simulator operation did not apply");
            ApiError::internal()
        })
    }

    /// Saves a change to `item` (whose lock the caller holds), then applies it; changes that
    /// would change nothing are not written.
    pub fn change_item(&self, item: &mut Item, change: ItemChange) -> Result<AdvanceReport, ApiError> {
        if change.is_noop(item) {
            return Ok(AdvanceReport::default());
        }
        let op = Op::Item { item_id: item.item_id.clone(), change };
        let at = self.record(&op)?;
        let Op::Item { change, .. } = op else {
            return Err(ApiError::internal());
        };
        Ok(change.apply(item, at))
    }

    /// Applies a saved operation (live, after saving it, and on replay).
    fn apply(&self, op: &Op, at: DateTime<Utc>) -> Result<(), String> {
        use std::sync::atomic::Ordering::SeqCst;
        match op {
            Op::CreateItem { n, item_id, institution_id, username, bulk, webhook, days, products } => {
                let institution = SimState::institution(institution_id)
                    .ok_or_else(|| format!("unknown institution {institution_id}"))?;
                self.item_counter.fetch_max(n + 1, SeqCst);
                let got = self.insert_item(crate::state::ItemParams {
                    n: *n,
                    institution,
                    username,
                    bulk: *bulk,
                    webhook: webhook.clone(),
                    days: *days,
                    products: products.clone(),
                    created_at: at,
                });
                if got != *item_id {
                    return Err(format!(
                        "Item {n} comes back as {got}, not {item_id}: the simulated world changed since this state \
                         was saved"
                    ));
                }
            }
            Op::PublicToken { n, token, item_id } => {
                self.token_counter.fetch_max(n + 1, SeqCst);
                let expires_at = at + chrono::Duration::minutes(crate::state::PUBLIC_TOKEN_TTL_MINUTES);
                self.public_tokens
                    .lock()
                    .insert(token.clone(), PublicToken { item_id: item_id.clone(), expires_at, used: false });
            }
            Op::Exchange { token } => {
                if let Some(rec) = self.public_tokens.lock().get_mut(token) {
                    rec.used = true;
                }
            }
            Op::LinkToken { n, token, link } => {
                self.token_counter.fetch_max(n + 1, SeqCst);
                self.link_tokens.lock().insert(token.clone(), link.clone());
            }
            Op::LinkSession { session, link_token } => {
                self.link_sessions.lock().insert(session.clone(), link_token.clone());
            }
            Op::RemoveItem { item_id } => {
                if let Some(item) = self.items.write().remove(item_id) {
                    let token = item.lock().access_token.clone();
                    self.access_tokens.write().remove(&token);
                }
            }
            Op::ClockAdvance { seconds } => {
                self.clock.advance(*seconds);
            }
            Op::SigningKey { key } => self.webhooks.install(key, true)?,
            Op::RotateKey { key } => self.webhooks.install(key, false)?,
            Op::Item { item_id, change } => {
                // A change can be saved just after its Item was removed (the handler held the Item
                // already): it has no effect, then as now.
                if let Some(item) = self.item_by_id(item_id) {
                    change.apply(&mut item.lock(), at);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(op: Op) -> Record {
        let line = serde_json::to_vec(&RecordRef { at: Utc::now(), op: &op }).expect("json");
        serde_json::from_slice(&line).expect("parses back")
    }

    #[test]
    fn records_round_trip_through_json() {
        let rec = record(Op::Item { item_id: "i".into(), change: ItemChange::Advance { days: 3 } });
        assert!(matches!(rec.op, Op::Item { change: ItemChange::Advance { days: 3 }, .. }));
        let rec = record(Op::CreateItem {
            n: 7,
            item_id: "x".into(),
            institution_id: "ins_109508".into(),
            username: "user_bulk_5".into(),
            bulk: Some(5),
            webhook: None,
            days: 90,
            products: vec!["transactions".into()],
        });
        assert!(matches!(rec.op, Op::CreateItem { n: 7, bulk: Some(5), days: 90, .. }));
    }

    #[test]
    fn times_keep_their_nanoseconds() {
        let at = DateTime::from_timestamp(1_700_000_000, 123_456_789).expect("time");
        let line = serde_json::to_vec(&RecordRef { at, op: &Op::ClockAdvance { seconds: 1 } }).expect("json");
        let back: Record = serde_json::from_slice(&line).expect("parses");
        assert_eq!(back.at, at);
    }

    #[test]
    fn headers_from_other_formats_versions_and_seeds_are_refused() {
        let path = Path::new("/x/journal.jsonl");
        assert!(check_header(br#"{"format":"plaid-sim-state","version":1,"seed":42}"#, 42, path).is_ok());
        let newer = check_header(br#"{"format":"plaid-sim-state","version":2,"seed":42}"#, 42, path).unwrap_err();
        assert!(newer.to_string().contains("newer plaid-sim"), "{newer}");
        let seed = check_header(br#"{"format":"plaid-sim-state","version":1,"seed":7}"#, 42, path).unwrap_err();
        assert!(seed.to_string().contains("seed 7"), "{seed}");
        let other = check_header(br#"{"hello":1}"#, 42, path).unwrap_err();
        assert!(other.to_string().contains("not a plaid-sim state journal"), "{other}");
    }
}
