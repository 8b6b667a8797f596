//! Token vault: Plaid access tokens are encrypted at rest with AES-256-GCM.
//!
//! - A fresh random 96-bit nonce per record (never reused under one key).
//! - The Item's id is bound as associated data, so a ciphertext copied onto another row fails to open.
//! - Each record names the key that sealed it (`key_id`, derived from the key), so keys can rotate: the vault holds
//!   one primary key for sealing and any number of old keys for opening; `reseal` moves a record to the primary.
//! - The master key comes from `BANKSYNC_MASTER_KEY` (base64 or hex of 32 bytes) or from `<data_dir>/master.key`,
//!   created on first run with mode 0600. A malformed, unreadable or group/world-accessible key file is a startup
//!   error; nothing falls back to plaintext.
//! - Old keys (decrypt only) come from `BANKSYNC_OLD_MASTER_KEYS` (comma-separated) and from every
//!   `<data_dir>/master.key.old.<key id>` file (same format and 0600 rule as the key file). `banksync key rotate`
//!   writes those files; see [`crate::keys`]. [`Keyring::load`] gathers all of them.
//! - A vault built with [`Vault::reload_keys_from`] re-reads the key files when it meets a record sealed with a key
//!   it does not hold, so a server keeps opening every record while `banksync key rotate` runs next to it; and
//!   before it seals one, so a record sealed after a rotation is under the key the rotation installed, never the
//!   one it retired.
//! - No key material or plaintext reaches `Debug`, `Display` or error messages.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore as _;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::{Digest, Sha256};

pub const KEY_LEN: usize = 32;
pub const NONCE_LEN: usize = 12;
pub const KEY_FILE_NAME: &str = "master.key";
/// Old keys kept in the data directory are `master.key.old.<key id>`.
pub const OLD_KEY_FILE_PREFIX: &str = "master.key.old.";
/// Temporary files of atomic key writes; never loaded, removed by the next rotation.
pub const TEMP_KEY_FILE_PREFIX: &str = ".master.key.tmp-";
/// Versioned prefix of the associated data; changing the purpose or format means a new prefix.
const AAD_PREFIX: &[u8] = b"banksync/plaid-access-token/v1/";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("master key: {0}")]
    InvalidKey(String),
    #[error("master key file {path}: {message}")]
    KeyFile { path: PathBuf, message: String },
    #[error("record was sealed with key {0}, which this vault does not have (old key missing after a rotation?)")]
    UnknownKey(String),
    #[error("cannot decrypt record: wrong key, wrong Item, or tampered ciphertext")]
    Decrypt,
    #[error("encryption failed")]
    Encrypt,
}

/// An encrypted record as stored: which key, the nonce, and ciphertext with its 16-byte tag.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// A 256-bit master key. Zeroized on drop (through `SecretBox`).
pub struct MasterKey {
    bytes: SecretBox<[u8; KEY_LEN]>,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey").field("id", &self.id).finish_non_exhaustive()
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        let id = key_id(&bytes);
        Self { bytes: SecretBox::new(Box::new(bytes)), id }
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// Parses base64 (standard, padded or not) or 64 hex digits of exactly 32 bytes.
    pub fn from_encoded(text: &str) -> Result<Self, VaultError> {
        let text = text.trim();
        let decoded = if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).ok()
        } else {
            STANDARD
                .decode(text)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
                .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text))
                .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text))
                .ok()
        };
        let Some(decoded) = decoded else {
            return Err(VaultError::InvalidKey("expected base64 or hex of 32 random bytes".into()));
        };
        let len = decoded.len();
        let bytes: [u8; KEY_LEN] = decoded.try_into().map_err(|_| {
            VaultError::InvalidKey(format!(
                "expected 32 bytes, got {len} (generate one with `openssl rand -base64 32`)"
            ))
        })?;
        Ok(Self::from_bytes(bytes))
    }

    /// Base64 text of the key, for writing the key file.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.bytes.expose_secret()))
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Reads `path`, or creates it with a new random key (mode 0600, never overwriting) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, VaultError> {
        match Self::load_file(path) {
            Err(VaultError::KeyFile { .. }) if !path.exists() => Self::create_file(path),
            other => other,
        }
    }

    /// Reads an existing key file, refusing one that other users could read.
    pub fn load_file(path: &Path) -> Result<Self, VaultError> {
        let err = |message: String| VaultError::KeyFile { path: path.to_owned(), message };
        let meta = std::fs::metadata(path).map_err(|e| err(format!("cannot read: {e}")))?;
        if !meta.is_file() {
            return Err(err("not a regular file".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(err(format!(
                    "permissions {mode:03o} let other users read the key; run `chmod 600 {}`",
                    path.display()
                )));
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let text = SecretString::from(text);
        Self::from_encoded(text.expose_secret()).map_err(|e| err(e.to_string()))
    }

    /// Writes this key to `path` atomically: a 0600 temporary file in the same directory, synced, renamed over
    /// `path`, and the directory synced. A crash leaves either the old file or the new one, never a torn file.
    pub fn write_file_atomic(&self, path: &Path) -> Result<(), VaultError> {
        let err = |message: String| VaultError::KeyFile { path: path.to_owned(), message };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory: {e}")))?;
        let mut suffix = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut suffix);
        let temp = dir.join(format!("{TEMP_KEY_FILE_PREFIX}{}-{}", std::process::id(), hex::encode(suffix)));
        let result = (|| {
            self.write_new_file(&temp).map_err(|e| match e {
                NewFileError::Create(e) => err(format!("cannot create a temporary file: {e}")),
                NewFileError::Write(e) => err(format!("cannot write: {e}")),
            })?;
            std::fs::rename(&temp, path).map_err(|e| err(format!("cannot replace: {e}")))?;
            sync_dir(dir).map_err(|e| err(format!("cannot sync the directory: {e}")))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    fn create_file(path: &Path) -> Result<Self, VaultError> {
        let err = |message: String| VaultError::KeyFile { path: path.to_owned(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory: {e}")))?;
        }
        let key = Self::generate();
        key.write_new_file(path).map_err(|e| match e {
            NewFileError::Create(e) => err(format!("cannot create: {e}")),
            NewFileError::Write(e) => err(format!("cannot write: {e}")),
        })?;
        Ok(key)
    }

    /// Writes this key (base64 and a newline) into a new file at `path` that only its owner can read, synced to
    /// disk. Never replaces an existing file.
    fn write_new_file(&self, path: &Path) -> Result<(), NewFileError> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(NewFileError::Create)?;
        let text = self.to_base64();
        file.write_all(text.expose_secret().as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(NewFileError::Write)
    }
}

/// Which step of writing a new key file failed.
enum NewFileError {
    Create(std::io::Error),
    Write(std::io::Error),
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The first 8 hex digits of SHA-256 over a domain tag and the key: names a key without revealing it.
fn key_id(bytes: &[u8; KEY_LEN]) -> String {
    let digest = Sha256::new().chain_update(b"banksync key id\0").chain_update(bytes).finalize();
    hex::encode(&digest[..4])
}

fn aad(item_id: &str) -> Vec<u8> {
    [AAD_PREFIX, item_id.as_bytes()].concat()
}

/// Where the master key comes from, in order: the environment value, else the key file in the data directory.
pub fn load_master_key(env_value: Option<&SecretString>, data_dir: &Path) -> Result<MasterKey, VaultError> {
    match env_value {
        Some(v) if !v.expose_secret().trim().is_empty() => MasterKey::from_encoded(v.expose_secret())
            .map_err(|e| VaultError::InvalidKey(format!("BANKSYNC_MASTER_KEY: {e}"))),
        _ => MasterKey::load_or_create(&data_dir.join(KEY_FILE_NAME)),
    }
}

/// Where a key came from, for `banksync key status` and messages (never the key itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `BANKSYNC_MASTER_KEY`.
    Env,
    /// The n-th (from 1) entry of `BANKSYNC_OLD_MASTER_KEYS`.
    OldEnv(usize),
    /// A key file.
    File(PathBuf),
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Env => f.write_str("BANKSYNC_MASTER_KEY"),
            KeyOrigin::OldEnv(n) => write!(f, "BANKSYNC_OLD_MASTER_KEYS entry {n}"),
            KeyOrigin::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Every key banksync can use: the primary (seals and opens) and the old ones (open only).
#[derive(Debug)]
pub struct Keyring {
    pub primary: MasterKey,
    pub primary_origin: KeyOrigin,
    pub old: Vec<(MasterKey, KeyOrigin)>,
}

impl Keyring {
    /// The primary key from `BANKSYNC_MASTER_KEY` (`env_primary`), else `<data_dir>/master.key` (created when
    /// missing and `create` is true); old keys from `BANKSYNC_OLD_MASTER_KEYS` (`env_old`) and every
    /// `<data_dir>/master.key.old.*` file. Any unusable key is an error naming where it came from, never its value.
    pub fn load(
        env_primary: Option<&SecretString>,
        env_old: &[SecretString],
        data_dir: &Path,
        create: bool,
    ) -> Result<Keyring, VaultError> {
        let env_primary = env_primary.filter(|v| !v.expose_secret().trim().is_empty());
        let (primary, primary_origin) = match env_primary {
            Some(_) => (load_master_key(env_primary, data_dir)?, KeyOrigin::Env),
            None => {
                let path = data_dir.join(KEY_FILE_NAME);
                let key = if create { MasterKey::load_or_create(&path)? } else { MasterKey::load_file(&path)? };
                (key, KeyOrigin::File(path))
            }
        };
        let mut old = Vec::new();
        for (i, text) in env_old.iter().enumerate() {
            let key = MasterKey::from_encoded(text.expose_secret())
                .map_err(|e| VaultError::InvalidKey(format!("BANKSYNC_OLD_MASTER_KEYS entry {}: {e}", i + 1)))?;
            old.push((key, KeyOrigin::OldEnv(i + 1)));
        }
        for path in old_key_files(data_dir)? {
            old.push((MasterKey::load_file(&path)?, KeyOrigin::File(path)));
        }
        Ok(Keyring { primary, primary_origin, old })
    }

    /// Every distinct key id, the primary first.
    pub fn key_ids(&self) -> Vec<&str> {
        let mut ids = vec![self.primary.id()];
        for (key, _) in &self.old {
            if !ids.contains(&key.id()) {
                ids.push(key.id());
            }
        }
        ids
    }

    /// A vault sealing with the primary and opening with every key.
    pub fn vault(&self) -> Vault {
        Vault::from_keys(&self.primary, self.old.iter().map(|(k, _)| k))
    }
}

/// `<data_dir>/master.key.old.*` files, sorted by name. A missing directory has none.
pub fn old_key_files(data_dir: &Path) -> Result<Vec<PathBuf>, VaultError> {
    let entries = match std::fs::read_dir(data_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(VaultError::KeyFile { path: data_dir.to_owned(), message: format!("cannot list: {e}") });
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(OLD_KEY_FILE_PREFIX)))
        .map(|e| e.path())
        .collect();
    paths.sort();
    Ok(paths)
}

/// Re-reads the keys a running vault may use (see [`Vault::reload_keys_from`]): the installed primary key and the
/// old ones.
type KeyLoader = dyn Fn() -> Result<(MasterKey, Vec<MasterKey>), VaultError> + Send + Sync;

pub struct Vault {
    /// The key new records are sealed with (a vault that reloads follows the installed key file).
    primary: RwLock<String>,
    ciphers: RwLock<HashMap<String, Aes256Gcm>>,
    reload: Option<Arc<KeyLoader>>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ciphers = self.ciphers.read();
        let mut ids: Vec<&String> = ciphers.keys().collect();
        ids.sort();
        f.debug_struct("Vault").field("primary", &*self.primary.read()).field("keys", &ids).finish()
    }
}

impl Vault {
    pub fn new(primary: MasterKey) -> Self {
        Self::with_old_keys(primary, Vec::new())
    }

    /// `old` keys only decrypt; new records are sealed with `primary`.
    pub fn with_old_keys(primary: MasterKey, old: Vec<MasterKey>) -> Self {
        Self::from_keys(&primary, old.iter())
    }

    fn from_keys<'a>(primary: &'a MasterKey, old: impl Iterator<Item = &'a MasterKey>) -> Self {
        let mut ciphers = HashMap::new();
        for key in old.chain(std::iter::once(primary)) {
            ciphers.insert(key.id.clone(), Aes256Gcm::new(key.bytes.expose_secret().into()));
        }
        Self { primary: RwLock::new(primary.id.clone()), ciphers: RwLock::new(ciphers), reload: None }
    }

    /// Calls `loader` (it returns the installed primary key and the old ones) when a record names a key this vault
    /// does not hold, and before sealing a record: the keys it returns are added, and its primary becomes the key
    /// new records are sealed with. Lets a running server open records re-sealed by `banksync key rotate`, and seal
    /// new ones under the key the rotation installed: sealed under the retired key, every Item linked before the
    /// server restarts would keep the key the rotation was meant to retire (and the next rotation would only finish
    /// this one, not make a new key).
    pub fn reload_keys_from(
        mut self,
        loader: impl Fn() -> Result<(MasterKey, Vec<MasterKey>), VaultError> + Send + Sync + 'static,
    ) -> Self {
        self.reload = Some(Arc::new(loader));
        self
    }

    /// True when the vault holds the key `key_id` (loading keys first if it can reload).
    pub fn has_key(&self, key_id: &str) -> bool {
        self.ciphers.read().contains_key(key_id) || self.try_reload(key_id)
    }

    /// Reloads; true when `key_id` is now present.
    fn try_reload(&self, key_id: &str) -> bool {
        self.reload() && self.ciphers.read().contains_key(key_id)
    }

    /// Adds the loader's keys and follows its primary. False without a loader, or when it failed (the keys held
    /// stay as they are).
    fn reload(&self) -> bool {
        let Some(loader) = &self.reload else { return false };
        match loader() {
            Ok((primary, old)) => {
                let mut ciphers = self.ciphers.write();
                for key in old.iter().chain(std::iter::once(&primary)) {
                    if !ciphers.contains_key(&key.id) {
                        tracing::info!(key_id = %key.id, "token vault: loaded a key added since start");
                        ciphers.insert(key.id.clone(), Aes256Gcm::new(key.bytes.expose_secret().into()));
                    }
                }
                let mut current = self.primary.write();
                if *current != primary.id {
                    tracing::info!(from = %current, to = %primary.id, "token vault: sealing under the key installed since start");
                    *current = primary.id.clone();
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "token vault: cannot re-read the key files");
                false
            }
        }
    }

    pub fn primary_key_id(&self) -> String {
        self.primary.read().clone()
    }

    /// Seals `plaintext` for the Item `item_id` (Plaid's id) under the primary key with a fresh nonce.
    pub fn encrypt(&self, plaintext: &SecretString, item_id: &str) -> Result<Sealed, VaultError> {
        // Sealing is rare (a link, a re-seal): reading the key files each time is cheap, and it follows a rotation
        // run next to this process. Should they be unreadable, the key held is used (the warning says why).
        self.reload();
        let primary = self.primary_key_id();
        let ciphers = self.ciphers.read();
        let cipher = ciphers.get(&primary).ok_or(VaultError::Encrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(item_id);
        let ciphertext = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext.expose_secret().as_bytes(), aad: &aad })
            .map_err(|_| VaultError::Encrypt)?;
        Ok(Sealed { key_id: primary, nonce: nonce.to_vec(), ciphertext })
    }

    /// Opens a record sealed for `item_id`. Fails (never returns garbage) on a missing key, another Item's record,
    /// or any tampering.
    pub fn decrypt(&self, sealed: &Sealed, item_id: &str) -> Result<SecretString, VaultError> {
        if !self.has_key(&sealed.key_id) {
            return Err(VaultError::UnknownKey(sealed.key_id.clone()));
        }
        let nonce: [u8; NONCE_LEN] = sealed.nonce.as_slice().try_into().map_err(|_| VaultError::Decrypt)?;
        let aad = aad(item_id);
        let plaintext = {
            let ciphers = self.ciphers.read();
            let cipher = ciphers.get(&sealed.key_id).ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
            cipher
                .decrypt(&Nonce::from(nonce), Payload { msg: &sealed.ciphertext, aad: &aad })
                .map_err(|_| VaultError::Decrypt)?
        };
        let text = String::from_utf8(plaintext).map_err(|e| {
            // Zero the bytes before dropping them.
            let mut bytes = e.into_bytes();
            bytes.iter_mut().for_each(|b| *b = 0);
            VaultError::Decrypt
        })?;
        Ok(SecretString::from(text))
    }

    /// True when the record was sealed with a key other than the primary.
    pub fn needs_rotation(&self, sealed: &Sealed) -> bool {
        sealed.key_id != *self.primary.read()
    }

    /// Re-seals a record under the primary key (for a rotation command).
    pub fn reseal(&self, sealed: &Sealed, item_id: &str) -> Result<Sealed, VaultError> {
        let plaintext = self.decrypt(sealed, item_id)?;
        self.encrypt(&plaintext, item_id)
    }
}
