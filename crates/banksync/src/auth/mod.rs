//! Authentication: who is calling, and the rules of logging in.
//!
//! Two ways in, both checked by the [`CurrentUser`] extractor:
//! - `Authorization: Bearer TOKEN` — API tokens made with `banksync token create` or `POST /api/tokens`, for
//!   scripts and the CLI. Only the token's SHA-256 is stored.
//! - A session cookie set by `POST /api/session` (or first-run setup) — for the web page. The cookie holds a random
//!   id; only its hash is stored. Because browsers attach cookies on their own, cookie-authenticated writes must
//!   also carry the session's CSRF token in `X-CSRF-Token` (a cross-site page cannot read it). A session ends at
//!   its absolute lifetime or after its idle timeout ([`SessionPolicy`]), whichever comes first.
//!
//! Logging in is bounded twice: [`throttle`] reserves one of ten attempts per name before the password is checked,
//! and [`hash_pool`] runs every argon2id hash and check with bounded concurrency and a bounded queue. First-run
//! setup ([`setup_code`]) creates the owner. The HTTP side — the extractor, `/api/session`, `/api/setup`,
//! `/api/users`, `/api/sessions`, `/api/account` — lives in `crate::http`.

mod caller;
pub mod hash_pool;
pub mod password;
pub mod setup_code;
pub mod throttle;
pub mod token;

pub(crate) use caller::session_cookie;
pub use caller::{AuthMethod, CSRF_HEADER, CurrentUser, SESSION_COOKIE};

use std::time::Duration;

/// How long sessions last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Absolute lifetime from log-in (`BANKSYNC_SESSION_LIFETIME`, default 7 days).
    pub lifetime: Duration,
    /// Ends a session unused this long (`BANKSYNC_SESSION_IDLE_TIMEOUT`, default 12 hours).
    pub idle_timeout: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        SessionPolicy { lifetime: DEFAULT_SESSION_LIFETIME, idle_timeout: DEFAULT_SESSION_IDLE_TIMEOUT }
    }
}

impl SessionPolicy {
    pub fn lifetime(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lifetime).unwrap_or(chrono::Duration::days(7))
    }

    pub fn idle_timeout(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.idle_timeout).unwrap_or(chrono::Duration::hours(12))
    }
}

pub const DEFAULT_SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// 12 hours: a personal finance page is opened a few times a day, often on the owner's own machine; a session left
/// open overnight or on a shared computer ends by the next morning, while a working day needs no re-login. Shorter
/// (30 min, the banking norm) would make the live page — which only reads — log its owner out during a long read.
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// The login-side services the HTTP layer shares, built once at start.
pub struct AuthServices {
    pub throttle: throttle::LoginThrottle,
    pub passwords: hash_pool::PasswordPool,
    /// First-run setup's one-time code (none when the database had users at start).
    pub setup_code: setup_code::SetupCode,
    pub sessions: SessionPolicy,
}

/// How to build [`AuthServices`] (from the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthSettings {
    pub sessions: SessionPolicy,
    /// Password hashes run at once (`BANKSYNC_PASSWORD_HASH_CONCURRENCY`, default the number of CPUs).
    pub hash_concurrency: usize,
    /// Callers that may wait for a turn beyond those (`BANKSYNC_PASSWORD_HASH_QUEUE`, default 32).
    pub hash_queue: usize,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            sessions: SessionPolicy::default(),
            hash_concurrency: hash_pool::default_concurrency(),
            hash_queue: hash_pool::DEFAULT_QUEUE,
        }
    }
}

impl AuthServices {
    /// With `needs_setup` (no user yet) a setup code is generated and logged in one line.
    pub fn start(settings: &AuthSettings, needs_setup: bool, url: &str) -> AuthServices {
        let setup_code = if needs_setup {
            let (code, shown) = setup_code::SetupCode::generate();
            // The one secret banksync ever logs, on purpose: the operator of a server set up from another machine
            // reads it here (only someone who can read this log may create the owner), it lives only in this
            // process's memory, and it is worthless once the owner exists or the process ends.
            tracing::warn!(
                url,
                "no user yet: open the page to create the owner; from another machine it asks for the setup code. \
                 setup code: {shown}"
            );
            code
        } else {
            setup_code::SetupCode::none()
        };
        AuthServices {
            throttle: throttle::LoginThrottle::default(),
            passwords: hash_pool::PasswordPool::new(settings.hash_concurrency, settings.hash_queue),
            setup_code,
            sessions: settings.sessions,
        }
    }
}
