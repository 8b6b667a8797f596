//! Slows password guessing: after [`MAX_FAILURES`] failed logins for one user name within [`WINDOW`], further
//! attempts for that name are refused with a 429 until the window passes. Keyed by the name tried (not by whether
//! it exists), so the answer reveals nothing about which users exist. In memory: a restart forgets, which is fine
//! for a speed bump.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Bound on remembered names, so a flood of random names cannot grow memory without limit.
const MAX_TRACKED: usize = 10_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    /// `Err(wait)` when `username` is locked out for `wait` more.
    pub fn check(&self, username: &str) -> Result<(), Duration> {
        self.check_at(username, Instant::now())
    }

    fn check_at(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock();
        match failures.get(&key(username)) {
            Some((count, since)) if *count >= MAX_FAILURES && now.saturating_duration_since(*since) < WINDOW => {
                Err(WINDOW - now.saturating_duration_since(*since))
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, username: &str) {
        self.record_failure_at(username, Instant::now());
    }

    fn record_failure_at(&self, username: &str, now: Instant) {
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, since)| now.saturating_duration_since(*since) < WINDOW);
        }
        let entry = failures.entry(key(username)).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    pub fn record_success(&self, username: &str) {
        self.failures.lock().remove(&key(username));
    }
}

fn key(username: &str) -> String {
    username.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_locked_after_too_many_failures_until_the_window_passes() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(throttle.check_at("Alice", start).is_ok());
            throttle.record_failure_at("alice", start);
        }
        assert!(throttle.check_at(" ALICE ", start + Duration::from_secs(1)).is_err());
        assert!(throttle.check_at("bob", start).is_ok(), "other names are not affected");
        assert!(throttle.check_at("alice", start + WINDOW).is_ok(), "the lock ends with the window");
        throttle.record_success("alice");
        assert!(throttle.check_at("alice", start).is_ok());
    }
}
