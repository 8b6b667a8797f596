//! The per-Item cooldown on manual "sync now": Plaid bills and throttles, so a user hammering the button gets a
//! clear "try again in N seconds" instead of a call to Plaid.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::domain::PlaidItemId;

pub struct Cooldown {
    period: Duration,
    last: Mutex<HashMap<String, Instant>>,
}

impl Cooldown {
    pub fn new(period: Duration) -> Self {
        Self { period, last: Mutex::new(HashMap::new()) }
    }

    pub fn period(&self) -> Duration {
        self.period
    }

    /// Claims a manual sync of `item_id` now, or says how long until one is allowed. Check-and-set in one step, so
    /// two simultaneous clicks cannot both pass.
    pub fn try_start(&self, item_id: &PlaidItemId) -> Result<(), Duration> {
        self.try_start_at(item_id.as_str(), Instant::now())
    }

    fn try_start_at(&self, item_id: &str, now: Instant) -> Result<(), Duration> {
        let mut last = self.last.lock();
        if let Some(at) = last.get(item_id) {
            let elapsed = now.saturating_duration_since(*at);
            if elapsed < self.period {
                return Err(self.period - elapsed);
            }
        }
        // Forget entries that no longer block anything, so the map stays as small as the active Items.
        if last.len() > 1024 {
            let period = self.period;
            last.retain(|_, at| now.saturating_duration_since(*at) < period);
        }
        last.insert(item_id.to_owned(), now);
        Ok(())
    }

    /// Seconds to show in a `sync_cooldown` error (rounded up, at least 1).
    pub fn retry_after_secs(remaining: Duration) -> u64 {
        remaining.as_secs() + u64::from(remaining.subsec_nanos() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_manual_sync_within_the_period_is_refused_with_the_remaining_time() {
        let cooldown = Cooldown::new(Duration::from_secs(600));
        let t0 = Instant::now();
        assert_eq!(cooldown.try_start_at("i1", t0), Ok(()));
        let remaining = cooldown.try_start_at("i1", t0 + Duration::from_secs(100)).unwrap_err();
        assert_eq!(remaining, Duration::from_secs(500));
        // Other Items are not affected.
        assert_eq!(cooldown.try_start_at("i2", t0 + Duration::from_secs(100)), Ok(()));
        // After the period it is allowed again.
        assert_eq!(cooldown.try_start_at("i1", t0 + Duration::from_secs(600)), Ok(()));
        assert_eq!(Cooldown::retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(Cooldown::retry_after_secs(Duration::from_secs(3)), 3);
    }

    #[test]
    fn a_zero_period_never_blocks() {
        let cooldown = Cooldown::new(Duration::ZERO);
        assert!(cooldown.try_start(&"i".into()).is_ok());
        assert!(cooldown.try_start(&"i".into()).is_ok());
    }
}
