//! Authentication: who is calling.
//!
//! Two ways in, both checked by the [`CurrentUser`] extractor:
//! - `Authorization: Bearer TOKEN` — API tokens made with `banksync token create`, for scripts and the CLI. Only
//!   the token's SHA-256 is stored.
//! - A session cookie set by `POST /api/session` — for the web page. The cookie holds a random id; only its hash
//!   is stored. Because browsers attach cookies on their own, cookie-authenticated writes must also carry the
//!   session's CSRF token in `X-CSRF-Token` (a cross-site page cannot read it).
//!
//! Passwords are hashed with argon2id off the async runtime. The HTTP side — the extractor that checks the
//! credentials and `/api/session` — lives in `crate::http` (`extract`, `session`).

mod caller;
pub mod password;
pub mod throttle;
pub mod token;

pub(crate) use caller::session_cookie;
pub use caller::{AuthMethod, CSRF_HEADER, CurrentUser, SESSION_COOKIE};
