//! The one-time setup code of first-run setup (`POST /api/setup` from anywhere but a direct loopback connection).
//!
//! Generated at start when the database has no user, kept only in memory, shown once in the log (the operator reads
//! it there: whoever can read the server's log already controls the server, and the code is worthless once the
//! owner exists or the process ends). 12 characters of Crockford base32 (60 random bits), shown as
//! `XXXX-XXXX-XXXX`; the input is compared in constant time, case-insensitively and ignoring dashes and spaces.
//! After [`MAX_WRONG`] wrong codes it is refused for good (restart for a new one), so guessing 60 bits is hopeless.
//! Each check is reserved under the mutex, like login attempts, so concurrent guesses cannot exceed the limit.

use parking_lot::Mutex;
use rand::RngCore as _;

use super::token::constant_time_eq;

/// Wrong codes accepted before the code is refused for good.
pub const MAX_WRONG: u32 = 10;
/// Crockford's base32: no I, L, O, U, so it reads back without ambiguity.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_CHARS: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SetupCodeError {
    #[error("no setup code is available: restart banksync to print a new one in its log")]
    Unavailable,
    #[error("the setup code was entered wrong too often: restart banksync to print a new one in its log")]
    Exhausted,
    #[error("wrong setup code")]
    Wrong,
}

/// See the module header.
#[derive(Default)]
pub struct SetupCode {
    state: Mutex<Option<State>>,
}

struct State {
    /// Normalized: the 12 characters, no dashes.
    code: String,
    wrong: u32,
}

impl SetupCode {
    /// No code (the database already has users).
    pub fn none() -> Self {
        Self::default()
    }

    /// A fresh code, and its display form `XXXX-XXXX-XXXX` (the caller logs it once).
    pub fn generate() -> (Self, String) {
        let mut bytes = [0u8; CODE_CHARS];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        // 256 is a multiple of 32: `% 32` is unbiased.
        let code: String = bytes.iter().map(|b| char::from(ALPHABET[usize::from(b % 32)])).collect();
        let display = format!("{}-{}-{}", &code[0..4], &code[4..8], &code[8..12]);
        (SetupCode { state: Mutex::new(Some(State { code, wrong: 0 })) }, display)
    }

    pub fn is_available(&self) -> bool {
        self.state.lock().as_ref().is_some_and(|s| s.wrong < MAX_WRONG)
    }

    /// Checks `given`; a wrong one counts against [`MAX_WRONG`].
    pub fn check(&self, given: &str) -> Result<(), SetupCodeError> {
        let given: String = given.chars().filter(|c| !matches!(c, '-' | ' ')).map(|c| c.to_ascii_uppercase()).collect();
        let mut state = self.state.lock();
        let state = state.as_mut().ok_or(SetupCodeError::Unavailable)?;
        if state.wrong >= MAX_WRONG {
            return Err(SetupCodeError::Exhausted);
        }
        if constant_time_eq(&given, &state.code) {
            return Ok(());
        }
        state.wrong += 1;
        Err(SetupCodeError::Wrong)
    }

    /// Forgets the code (setup is done).
    pub fn consume(&self) {
        self.state.lock().take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_readable_and_checked_loosely_but_only_ten_times() {
        let (a, shown) = SetupCode::generate();
        let (_, other) = SetupCode::generate();
        assert_ne!(shown, other);
        assert_eq!(shown.len(), 14);
        assert!(shown.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))), "{shown}");
        assert!(a.check(&shown.to_lowercase().replace('-', " ")).is_ok());
        for _ in 0..MAX_WRONG {
            assert_eq!(a.check("AAAA-AAAA-AAAA"), Err(SetupCodeError::Wrong));
        }
        assert_eq!(a.check(&shown), Err(SetupCodeError::Exhausted), "even the right code, after ten wrong");
        assert!(!a.is_available());
        let (b, shown) = SetupCode::generate();
        b.consume();
        assert_eq!(b.check(&shown), Err(SetupCodeError::Unavailable));
        assert_eq!(SetupCode::none().check(&shown), Err(SetupCodeError::Unavailable));
    }
}
