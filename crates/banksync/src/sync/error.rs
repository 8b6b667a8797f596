//! Why a sync failed.

use crate::store::StoreError;
use crate::vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Plaid refused or failed the call (the Item's health was updated if the error says so).
    #[error("Plaid: {0}")]
    Plaid(plaid::Error),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The access token could not be decrypted (a missing old key after a rotation?).
    #[error("token vault: {0}")]
    Vault(#[from] VaultError),
    /// Plaid kept reporting TRANSACTIONS_SYNC_MUTATION_DURING_PAGINATION; nothing was applied, the cursor is
    /// unchanged, and a later sync will try again.
    #[error("the bank's data kept changing during the sync ({0} restarts); nothing was applied, try again later")]
    TooManyRestarts(u32),
    /// A failure that could only be passed on as text (a waiter coalesced onto a sync whose error cannot be cloned).
    #[error("{0}")]
    Other(String),
}

impl From<plaid::Error> for SyncError {
    fn from(e: plaid::Error) -> Self {
        Self::Plaid(e)
    }
}

impl SyncError {
    /// Plaid's error object, when Plaid answered with one.
    pub fn plaid_error(&self) -> Option<&plaid::PlaidError> {
        match self {
            Self::Plaid(e) => e.plaid_error(),
            _ => None,
        }
    }

    /// Whether Plaid's rate limit refused a call (see [`plaid::Error::is_rate_limited`]).
    pub fn is_rate_limited(&self) -> bool {
        matches!(self, Self::Plaid(e) if e.is_rate_limited())
    }

    /// The same error for another waiter on a coalesced sync. Exact where the parts can be rebuilt; otherwise the
    /// message (which never holds a token: no error in this crate or the client formats request bodies).
    pub(crate) fn duplicate(&self) -> SyncError {
        match self {
            Self::Plaid(e) => match e {
                plaid::Error::Api { status, error } => {
                    Self::Plaid(plaid::Error::Api { status: *status, error: error.clone() })
                }
                plaid::Error::Timeout { endpoint } => Self::Plaid(plaid::Error::Timeout { endpoint: *endpoint }),
                plaid::Error::Decode { endpoint, status, message } => {
                    Self::Plaid(plaid::Error::Decode { endpoint: *endpoint, status: *status, message: message.clone() })
                }
                plaid::Error::Throttled { endpoint } => Self::Plaid(plaid::Error::Throttled { endpoint: *endpoint }),
                plaid::Error::Config(m) => Self::Plaid(plaid::Error::Config(m.clone())),
                other => Self::Other(format!("Plaid: {other}")),
            },
            Self::Store(e) => Self::Store(match e {
                StoreError::NotFound => StoreError::NotFound,
                StoreError::Conflict(m) => StoreError::Conflict(m.clone()),
                StoreError::InvalidInput(m) => StoreError::InvalidInput(m.clone()),
                StoreError::Other(e) => StoreError::Other(anyhow::anyhow!("{e:#}")),
            }),
            Self::Vault(e) => Self::Vault(match e {
                VaultError::InvalidKey(m) => VaultError::InvalidKey(m.clone()),
                VaultError::KeyFile { path, message } => {
                    VaultError::KeyFile { path: path.clone(), message: message.clone() }
                }
                VaultError::UnknownKey(k) => VaultError::UnknownKey(k.clone()),
                VaultError::Decrypt => VaultError::Decrypt,
                VaultError::Encrypt => VaultError::Encrypt,
            }),
            Self::TooManyRestarts(n) => Self::TooManyRestarts(*n),
            Self::Other(m) => Self::Other(m.clone()),
        }
    }

    /// (error_code, message) for the sync run's history row.
    pub(crate) fn for_run(&self) -> (Option<String>, String) {
        match self.plaid_error() {
            Some(p) => (Some(p.error_code.clone()), p.to_string()),
            None => {
                let code = match self {
                    Self::Plaid(plaid::Error::Timeout { .. }) => "TIMEOUT",
                    Self::Plaid(_) => "PLAID_UNAVAILABLE",
                    Self::Store(_) => "STORE_ERROR",
                    Self::Vault(_) => "VAULT_ERROR",
                    Self::TooManyRestarts(_) => "TOO_MANY_RESTARTS",
                    Self::Other(_) => "ERROR",
                };
                (Some(code.to_owned()), self.to_string())
            }
        }
    }
}
