//! Token vault: Plaid access tokens are encrypted at rest with AES-256-GCM.
//!
//! - A fresh random 96-bit nonce per record (never reused under one key).
//! - The Item's id is bound as associated data, so a ciphertext copied onto another row fails to open.
//! - Each record names the key that sealed it (`key_id`, derived from the key), so keys can rotate: the vault holds
//!   one primary key for sealing and any number of old keys for opening; `reseal` moves a record to the primary.
//! - The master key comes from `BANKSYNC_MASTER_KEY` (base64 or hex of 32 bytes) or from `<data_dir>/master.key`,
//!   created on first run with mode 0600. A malformed, unreadable or group/world-accessible key file is a startup
//!   error; nothing falls back to plaintext.
//! - No key material or plaintext reaches `Debug`, `Display` or error messages.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

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

    fn create_file(path: &Path) -> Result<Self, VaultError> {
        let err = |message: String| VaultError::KeyFile { path: path.to_owned(), message };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create directory: {e}")))?;
        }
        let key = Self::generate();
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| err(format!("cannot create: {e}")))?;
        let text = key.to_base64();
        file.write_all(text.expose_secret().as_bytes())
            .and_then(|()| file.write_all(b"\n"))
            .and_then(|()| file.sync_all())
            .map_err(|e| err(format!("cannot write: {e}")))?;
        Ok(key)
    }
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

pub struct Vault {
    primary: String,
    ciphers: HashMap<String, Aes256Gcm>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ids: Vec<&String> = self.ciphers.keys().collect();
        ids.sort();
        f.debug_struct("Vault").field("primary", &self.primary).field("keys", &ids).finish()
    }
}

impl Vault {
    pub fn new(primary: MasterKey) -> Self {
        Self::with_old_keys(primary, Vec::new())
    }

    /// `old` keys only decrypt; new records are sealed with `primary`.
    pub fn with_old_keys(primary: MasterKey, old: Vec<MasterKey>) -> Self {
        let mut ciphers = HashMap::new();
        for key in old.iter().chain(std::iter::once(&primary)) {
            ciphers.insert(key.id.clone(), Aes256Gcm::new(key.bytes.expose_secret().into()));
        }
        Self { primary: primary.id.clone(), ciphers }
    }

    pub fn primary_key_id(&self) -> &str {
        &self.primary
    }

    /// Seals `plaintext` for the Item `item_id` (Plaid's id) under the primary key with a fresh nonce.
    pub fn encrypt(&self, plaintext: &SecretString, item_id: &str) -> Result<Sealed, VaultError> {
        let cipher = self.ciphers.get(&self.primary).ok_or(VaultError::Encrypt)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(item_id);
        let ciphertext = cipher
            .encrypt(&Nonce::from(nonce), Payload { msg: plaintext.expose_secret().as_bytes(), aad: &aad })
            .map_err(|_| VaultError::Encrypt)?;
        Ok(Sealed { key_id: self.primary.clone(), nonce: nonce.to_vec(), ciphertext })
    }

    /// Opens a record sealed for `item_id`. Fails (never returns garbage) on a missing key, another Item's record,
    /// or any tampering.
    pub fn decrypt(&self, sealed: &Sealed, item_id: &str) -> Result<SecretString, VaultError> {
        let cipher = self.ciphers.get(&sealed.key_id).ok_or_else(|| VaultError::UnknownKey(sealed.key_id.clone()))?;
        let nonce: [u8; NONCE_LEN] = sealed.nonce.as_slice().try_into().map_err(|_| VaultError::Decrypt)?;
        let aad = aad(item_id);
        let plaintext = cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: &sealed.ciphertext, aad: &aad })
            .map_err(|_| VaultError::Decrypt)?;
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
        sealed.key_id != self.primary
    }

    /// Re-seals a record under the primary key (for a rotation command).
    pub fn reseal(&self, sealed: &Sealed, item_id: &str) -> Result<Sealed, VaultError> {
        let plaintext = self.decrypt(sealed, item_id)?;
        self.encrypt(&plaintext, item_id)
    }
}
