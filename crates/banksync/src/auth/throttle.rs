//! Slows password guessing: at most [`MAX_FAILURES`] password checks per user name within [`WINDOW`] are judged;
//! further attempts for that name are refused with a 429 until the window passes. A successful login resets the
//! name. Keyed by the name tried (not by whether it exists), so the answer reveals nothing about which users exist.
//!
//! **Reserved before verifying.** [`LoginThrottle::reserve`] checks and counts the attempt in one step under the
//! mutex, before the (slow) password check runs: 40 concurrent wrong passwords for one name get 10 checks and 30
//! refusals, where a check-then-record-afterwards counter judged all 40. An attempt that is never judged (the hash
//! pool was busy, the client went away, an internal error) gives its reservation back when its [`Attempt`] drops.
//!
//! **In memory, per process** (a choice): a login costs no database write, so a flood of guesses cannot queue
//! behind SQLite's single writer and slow everyone's requests, and the check happens before any I/O. The price:
//! instances sharing one PostgreSQL each allow [`MAX_FAILURES`] per window, and a restart forgets — a speed bump,
//! not an account lock, which fits a personal server usually run as one process.
//!
//! **Bounded.** Names are normalized (trimmed, lower-cased) and cut to [`MAX_KEY_BYTES`] before keying, so a
//! megabyte "user name" costs 64 bytes; at most [`MAX_TRACKED`] names are kept: expired ones are evicted first, then
//! the oldest window. Flushing a victim's counter that way takes [`MAX_TRACKED`] fresh names, each costing a full
//! argon2 check through the bounded hash pool — minutes of the server's CPU, during which the victim's name was
//! limited anyway.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bound on remembered names, so a flood of random names cannot grow memory without limit.
pub const MAX_TRACKED: usize = 10_000;
/// Longest key: user names are at most 64 bytes, longer input is cut.
pub const MAX_KEY_BYTES: usize = 64;

#[derive(Default)]
pub struct LoginThrottle {
    names: Mutex<HashMap<String, Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    /// Attempts reserved (judged or being judged) since `since`.
    attempts: u32,
    since: Instant,
}

/// A reserved attempt. Call [`Attempt::succeeded`] after a right password (resets the name) or
/// [`Attempt::failed`] after a wrong one (the attempt stays counted); dropping it without either gives the
/// reservation back (the attempt was never judged).
#[must_use = "an attempt dropped without an outcome is given back"]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    key: String,
    since: Instant,
    settled: bool,
}

impl Attempt<'_> {
    pub fn succeeded(mut self) {
        self.settled = true;
        self.throttle.names.lock().remove(&self.key);
    }

    pub fn failed(mut self) {
        self.settled = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut names = self.throttle.names.lock();
        if let Some(window) = names.get_mut(&self.key).filter(|w| w.since == self.since) {
            window.attempts = window.attempts.saturating_sub(1);
        }
    }
}

impl LoginThrottle {
    /// Reserves one attempt for `username`, or `Err(wait)` when the name has used up its window for `wait` more.
    pub fn reserve(&self, username: &str) -> Result<Attempt<'_>, Duration> {
        self.reserve_at(username, Instant::now())
    }

    fn reserve_at(&self, username: &str, now: Instant) -> Result<Attempt<'_>, Duration> {
        let key = key(username);
        let mut names = self.names.lock();
        if !names.contains_key(&key) && names.len() >= MAX_TRACKED {
            names.retain(|_, w| now.saturating_duration_since(w.since) < WINDOW);
            if names.len() >= MAX_TRACKED
                && let Some(oldest) = names.iter().min_by_key(|(_, w)| w.since).map(|(k, _)| k.clone())
            {
                names.remove(&oldest);
            }
        }
        let window = names.entry(key.clone()).or_insert(Window { attempts: 0, since: now });
        let age = now.saturating_duration_since(window.since);
        if age >= WINDOW {
            *window = Window { attempts: 0, since: now };
        } else if window.attempts >= MAX_FAILURES {
            return Err(WINDOW - age);
        }
        window.attempts += 1;
        Ok(Attempt { throttle: self, key, since: window.since, settled: false })
    }

    /// Names remembered now (at most [`MAX_TRACKED`]).
    pub fn tracked(&self) -> usize {
        self.names.lock().len()
    }
}

/// Trimmed, lower-cased, cut to [`MAX_KEY_BYTES`] on a character boundary.
fn key(username: &str) -> String {
    let mut key = username.trim().to_lowercase();
    if key.len() > MAX_KEY_BYTES {
        let mut end = MAX_KEY_BYTES;
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        key.truncate(end);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_locked_after_too_many_failures_until_the_window_passes() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            throttle.reserve_at("Alice", start).unwrap().failed();
        }
        assert!(throttle.reserve_at(" ALICE ", start + Duration::from_secs(1)).is_err());
        assert!(throttle.reserve_at("bob", start).is_ok(), "other names are not affected");
        throttle.reserve_at("alice", start + WINDOW).expect("the lock ends with the window").succeeded();
        assert!(throttle.reserve_at("alice", start + WINDOW).is_ok(), "a success resets");
    }

    #[test]
    fn reservations_count_before_the_outcome_and_unjudged_ones_are_given_back() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        // Ten attempts in flight at once: the eleventh is refused before any of them is judged.
        let held: Vec<_> = (0..MAX_FAILURES).map(|_| throttle.reserve_at("carol", now).unwrap()).collect();
        assert!(throttle.reserve_at("carol", now).is_err());
        // One was never judged (e.g. the hash pool was busy): its place comes back.
        let mut held = held.into_iter();
        drop(held.next());
        throttle.reserve_at("carol", now).unwrap().failed();
        assert!(throttle.reserve_at("carol", now).is_err());
        held.for_each(Attempt::failed);
        assert!(throttle.reserve_at("carol", now).is_err());
    }

    #[test]
    fn keys_are_normalized_and_cut_and_the_table_is_bounded() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        let long = "é".repeat(1000);
        throttle.reserve_at(&long, now).unwrap().failed();
        assert!(throttle.names.lock().keys().all(|k| k.len() <= MAX_KEY_BYTES));
        for i in 0..MAX_TRACKED + 50 {
            throttle.reserve_at(&format!("user{i}"), now + Duration::from_millis(i as u64)).unwrap().failed();
        }
        assert_eq!(throttle.tracked(), MAX_TRACKED);
        // Past the window every old entry is evicted at once to make room.
        throttle.reserve_at("late", now + WINDOW + Duration::from_secs(60)).unwrap().failed();
        assert_eq!(throttle.tracked(), 1);
    }
}
