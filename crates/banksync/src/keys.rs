//! Master-key rotation and status (`banksync key rotate | reseal | status`).
//!
//! Every Item's Plaid access token is sealed by the [`Vault`] under one key and names that key's id. Rotation moves
//! all of them to a fresh key without ever leaving a record that no configured key opens:
//!
//! **Key file** (`DATA_DIR/master.key`), one run of `banksync key rotate`:
//! 1. every Item is checked to open with the current keys (else nothing changes);
//! 2. the current key is copied to `DATA_DIR/master.key.old.<id>` (0600, atomic, synced);
//! 3. a new key replaces `DATA_DIR/master.key` (0600, temporary file + rename, synced);
//! 4. every Item sealed under another key is re-sealed under the new one.
//!
//! A crash after step 2 leaves the old key as primary *and* old key; after step 3 the new key is primary and the
//! old one opens what is not re-sealed yet. A process that starts at any point (the server, or a rerun) loads the
//! primary and every old key, so every record still opens. A rerun sees Items not under the primary and finishes
//! the rotation (step 4) instead of starting another one.
//!
//! **`BANKSYNC_MASTER_KEY`**: banksync cannot change the environment, so rotation takes two runs. The first prints
//! a new key (stdout) and changes nothing; the operator sets `BANKSYNC_MASTER_KEY` to it and adds the previous key
//! to `BANKSYNC_OLD_MASTER_KEYS`, restarts, and runs `banksync key reseal` (or `key rotate` again, which finishes).
//! Records are only re-sealed under a key that is already configured, so none depends on a key seen only once on
//! a terminal.
//!
//! Old keys can be dropped once `banksync key status` shows no Item under them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::config::Config;
use crate::domain::{Item, ItemRef};
use crate::store::Store;
use crate::vault::{
    KEY_FILE_NAME, KeyOrigin, Keyring, MasterKey, OLD_KEY_FILE_PREFIX, TEMP_KEY_FILE_PREFIX, Vault, VaultError,
};

/// Loads the keys named by the configuration. `create` makes `DATA_DIR/master.key` when it is missing (the server
/// does; the key commands do not).
pub fn load_keyring(config: &Config, create: bool) -> Result<Keyring, VaultError> {
    Keyring::load(config.master_key.as_ref(), &config.old_master_keys, &config.data_dir, create)
}

/// The server's vault: every configured key, and (with a key file) a reload of the key files when a record names a
/// key added since start, e.g. by a rotation run next to the server.
pub fn server_vault(config: &Config) -> Result<Vault, VaultError> {
    let keyring = load_keyring(config, true)?;
    let vault = keyring.vault();
    Ok(match keyring.primary_origin {
        KeyOrigin::File(_) => {
            let config = config.clone();
            vault.reload_keys_from(move || {
                let keyring = load_keyring(&config, false)?;
                Ok((keyring.primary, keyring.old.into_iter().map(|(k, _)| k).collect()))
            })
        }
        _ => vault,
    })
}

/// Points in a rotation after which a crash leaves a state the next run recovers from. Tests stop there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The current key is saved as an old-key file.
    OldKeySaved,
    /// The new key is the key file.
    NewKeyInstalled,
    /// That many Items are re-sealed so far.
    Resealed(usize),
}

/// What a `key rotate` run did.
#[derive(Debug)]
pub enum RotateOutcome {
    /// Key file: a new primary is installed and Items were re-sealed under it.
    Rotated { from: String, to: String, old_key_file: PathBuf, resealed: usize },
    /// An earlier rotation was unfinished: Items were re-sealed under the current primary, no new key was made.
    Finished { to: String, resealed: usize },
    /// `BANKSYNC_MASTER_KEY`: a new key for the operator to configure; nothing was changed.
    NewEnvKey { current: String, new_key: MasterKey },
}

/// Re-seal counts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ResealReport {
    pub resealed: usize,
    /// Items whose record no configured key opens: (internal id, key id).
    pub failed: Vec<(ItemRef, String)>,
    /// Re-seals not written because the Item's token changed after it was read (then read again and re-sealed if
    /// still needed).
    pub raced: usize,
}

/// What [`reseal_item`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resealed {
    /// Written under the primary key.
    Written,
    /// The Item's token changed after `item` was read (e.g. a new token from an update-mode relink): nothing was
    /// written, so the new token stands; read the Item again to re-seal it.
    Changed,
}

/// Re-seals one Item as read in `item` under the primary key. The write is a compare-and-set on the record that
/// was read, so a token replaced meanwhile is never overwritten by the re-seal of the old one.
pub async fn reseal_item(store: &Store, vault: &Vault, item: &Item) -> anyhow::Result<Resealed> {
    let sealed = vault.reseal(&item.access_token, item.item_id.as_str())?;
    let written = store
        .reseal_item_access_token(&item.id, &item.access_token, &sealed)
        .await
        .with_context(|| format!("cannot store the re-sealed token of Item {}", item.id))?;
    Ok(if written { Resealed::Written } else { Resealed::Changed })
}

/// Passes over the Items before giving up on one whose token keeps changing under the re-seal.
const RESEAL_PASSES: usize = 3;

/// Re-seals every Item not sealed under the vault's primary key. Items that cannot be opened are reported, not
/// touched; the others are still re-sealed. An Item whose token changed while it was being re-sealed is read again
/// in another pass (up to [`RESEAL_PASSES`]); a later run picks up any still left.
pub async fn reseal_all(
    store: &Store,
    vault: &Vault,
    step: &mut dyn FnMut(Step) -> anyhow::Result<()>,
) -> anyhow::Result<ResealReport> {
    let mut report = ResealReport::default();
    for _ in 0..RESEAL_PASSES {
        let items = store.list_all_items().await.context("cannot list the Items")?;
        let mut raced = 0;
        for item in items.iter().filter(|i| vault.needs_rotation(&i.access_token)) {
            if report.failed.iter().any(|(id, _)| id == &item.id) {
                continue;
            }
            match reseal_item(store, vault, item).await {
                Ok(Resealed::Written) => {
                    report.resealed += 1;
                    step(Step::Resealed(report.resealed))?;
                }
                Ok(Resealed::Changed) => {
                    tracing::info!(item = %item.id, "the token changed while re-sealing it; reading it again");
                    raced += 1;
                }
                Err(e) if e.downcast_ref::<VaultError>().is_some() => {
                    tracing::warn!(item = %item.id, key_id = %item.access_token.key_id, error = %e, "cannot re-seal");
                    report.failed.push((item.id.clone(), item.access_token.key_id.clone()));
                }
                Err(e) => return Err(e),
            }
        }
        report.raced += raced;
        if raced == 0 {
            break;
        }
    }
    Ok(report)
}

fn check_report(report: &ResealReport) -> anyhow::Result<()> {
    if report.failed.is_empty() {
        return Ok(());
    }
    let mut ids: Vec<&str> = report.failed.iter().map(|(_, k)| k.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    anyhow::bail!(
        "{} Item(s) could not be re-sealed: their tokens are sealed with key(s) {} that no configured key opens \
         (add the old key to BANKSYNC_OLD_MASTER_KEYS or DATA_DIR/{OLD_KEY_FILE_PREFIX}<id>); {} re-sealed",
        report.failed.len(),
        ids.join(", "),
        report.resealed
    )
}

/// `banksync key reseal`: moves Items to the primary key; a no-op when all are there.
pub async fn reseal(store: &Store, config: &Config) -> anyhow::Result<ResealReport> {
    let keyring = load_keyring(config, false).context("cannot load the master keys")?;
    let report = reseal_all(store, &keyring.vault(), &mut |_| Ok(())).await?;
    check_report(&report)?;
    Ok(report)
}

/// `banksync key rotate` (see the module docs). `step` is called after each durable step.
pub async fn rotate(
    store: &Store,
    config: &Config,
    step: &mut dyn FnMut(Step) -> anyhow::Result<()>,
) -> anyhow::Result<RotateOutcome> {
    let keyring = load_keyring(config, false).context("cannot load the master keys")?;
    let vault = keyring.vault();
    let items = store.list_all_items().await.context("cannot list the Items")?;

    // An unfinished rotation (or records under an old key for any reason): finish it, do not start another one.
    if items.iter().any(|i| vault.needs_rotation(&i.access_token)) {
        let report = reseal_all(store, &vault, step).await?;
        check_report(&report)?;
        return Ok(RotateOutcome::Finished { to: vault.primary_key_id(), resealed: report.resealed });
    }
    // Nothing may depend on a key that turns out not to open the records.
    check_all_open(&vault, &items)?;

    let current = keyring.primary.id().to_owned();
    let key_file = match &keyring.primary_origin {
        KeyOrigin::File(path) => path.clone(),
        _ => return Ok(RotateOutcome::NewEnvKey { current, new_key: MasterKey::generate() }),
    };
    let data_dir = config.data_dir.as_path();
    remove_stale_temp_files(data_dir);

    let old_key_file = save_old_key(&keyring.primary, data_dir)?;
    step(Step::OldKeySaved)?;

    let new_key = MasterKey::generate();
    new_key.write_file_atomic(&key_file).context("cannot install the new master key")?;
    tracing::info!(from = %current, to = %new_key.id(), "new master key installed");
    step(Step::NewKeyInstalled)?;

    let to = new_key.id().to_owned();
    let vault = Vault::with_old_keys(
        new_key,
        std::iter::once(keyring.primary).chain(keyring.old.into_iter().map(|(k, _)| k)).collect(),
    );
    let report = reseal_all(store, &vault, step).await?;
    check_report(&report)?;
    Ok(RotateOutcome::Rotated { from: current, to, old_key_file, resealed: report.resealed })
}

fn check_all_open(vault: &Vault, items: &[Item]) -> anyhow::Result<()> {
    let broken = items.iter().filter(|i| vault.decrypt(&i.access_token, i.item_id.as_str()).is_err()).count();
    if broken > 0 {
        anyhow::bail!(
            "{broken} Item(s) do not open with the current master key (wrong key, or tampered records); \
             nothing was changed"
        );
    }
    Ok(())
}

/// Writes `key` to `DATA_DIR/master.key.old.<id>` unless that file already holds it.
pub fn save_old_key(key: &MasterKey, data_dir: &Path) -> anyhow::Result<PathBuf> {
    let path = data_dir.join(format!("{OLD_KEY_FILE_PREFIX}{}", key.id()));
    if path.exists() {
        let existing = MasterKey::load_file(&path).context("an old-key file is unusable")?;
        if existing.id() != key.id() {
            anyhow::bail!("{} holds another key than its name says; move it away and retry", path.display());
        }
        return Ok(path);
    }
    key.write_file_atomic(&path).context("cannot keep the current master key as an old key")?;
    Ok(path)
}

/// Temporary key files are left only by a crash in the middle of a write; they hold a key nothing uses.
fn remove_stale_temp_files(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_name().to_str().is_some_and(|n| n.starts_with(TEMP_KEY_FILE_PREFIX)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// `banksync key status`: keys by id and where they come from, and how many Items each one sealed.
#[derive(Debug)]
pub struct KeyStatus {
    /// None when there is no key yet (no `BANKSYNC_MASTER_KEY`, no key file).
    pub primary: Option<(String, KeyOrigin)>,
    pub old: Vec<(String, KeyOrigin)>,
    /// Items per key id.
    pub items_by_key: BTreeMap<String, usize>,
}

impl KeyStatus {
    fn has(&self, key_id: &str) -> bool {
        self.primary.as_ref().is_some_and(|(id, _)| id == key_id) || self.old.iter().any(|(id, _)| id == key_id)
    }

    /// Items sealed with keys that are configured but not the primary.
    pub fn pending(&self) -> usize {
        let primary = self.primary.as_ref().map(|(id, _)| id.as_str());
        self.items_by_key.iter().filter(|(id, _)| Some(id.as_str()) != primary && self.has(id)).map(|(_, n)| n).sum()
    }

    /// Items sealed with keys no configured key matches.
    pub fn missing(&self) -> usize {
        self.items_by_key.iter().filter(|(id, _)| !self.has(id)).map(|(_, n)| n).sum()
    }

    /// Human-readable report, no secrets.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        match &self.primary {
            Some((id, origin)) => writeln!(out, "primary key: {id} ({origin})"),
            None => writeln!(out, "primary key: none yet (DATA_DIR/{KEY_FILE_NAME} is created on first start)"),
        }
        .ok();
        if self.old.is_empty() {
            writeln!(out, "old keys: none").ok();
        } else {
            writeln!(out, "old keys:").ok();
            for (id, origin) in &self.old {
                writeln!(out, "  {id} ({origin})").ok();
            }
        }
        writeln!(out, "items by key:").ok();
        if self.items_by_key.is_empty() {
            writeln!(out, "  (no Items)").ok();
        }
        let primary = self.primary.as_ref().map(|(id, _)| id.as_str());
        for (id, count) in &self.items_by_key {
            let note = if Some(id.as_str()) == primary {
                "primary"
            } else if self.has(id) {
                "old key; run `banksync key reseal`"
            } else {
                "MISSING KEY: these tokens cannot be decrypted"
            };
            writeln!(out, "  {id}  {count}  ({note})").ok();
        }
        out
    }
}

pub async fn status(store: &Store, config: &Config) -> anyhow::Result<KeyStatus> {
    let (primary, old) = match load_keyring(config, false) {
        Ok(keyring) => (
            Some((keyring.primary.id().to_owned(), keyring.primary_origin.clone())),
            keyring.old.iter().map(|(k, o)| (k.id().to_owned(), o.clone())).collect(),
        ),
        Err(VaultError::KeyFile { ref path, .. })
            if config.master_key.is_none() && *path == config.data_dir.join(KEY_FILE_NAME) && !path.exists() =>
        {
            (None, Vec::new())
        }
        Err(e) => return Err(anyhow::Error::new(e).context("cannot load the master keys")),
    };
    let mut items_by_key = BTreeMap::new();
    for item in store.list_all_items().await.context("cannot list the Items")? {
        *items_by_key.entry(item.access_token.key_id).or_insert(0) += 1;
    }
    Ok(KeyStatus { primary, old, items_by_key })
}
