//! When to look again while Plaid's data for an Item is still coming. A new Item's first transactions usually
//! arrive within seconds to minutes, the full history a little later; webhooks announce both, but most self-hosters
//! never receive webhooks. So banksync asks again on its own: soon at first, then every 5 minutes, and after 6 hours
//! it tells the user the bank seems stuck (and keeps looking, every 30 minutes).

use std::time::Duration;

/// Delays of the first follow-ups, in order.
const FIRST_DELAYS: [Duration; 5] = [
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
];
/// After the first ones.
const STEADY_DELAY: Duration = Duration::from_secs(300);
/// Once the wait is stalled.
const STALLED_DELAY: Duration = Duration::from_secs(1800);

/// How long banksync waits for Plaid's data before it marks the Item stalled.
pub const STALLED_AFTER: Duration = Duration::from_secs(6 * 3600);

/// The delay before follow-up number `n` (1-based) of a wait that has lasted `waited`.
pub fn follow_up_delay(n: i64, waited: Duration) -> Duration {
    if waited >= STALLED_AFTER {
        return STALLED_DELAY;
    }
    usize::try_from(n.max(1) - 1).ok().and_then(|i| FIRST_DELAYS.get(i).copied()).unwrap_or(STEADY_DELAY)
}

/// What the user reads on a stalled Item.
pub fn stalled_message(history_only: bool) -> &'static str {
    if history_only {
        "Plaid has not delivered this bank's full history after 6 hours; recent transactions are here. banksync keeps \
         checking. If it stays like this, remove the bank and link it again."
    } else {
        "Plaid has had no transactions from this bank for 6 hours since it was linked. banksync keeps checking. If \
         it stays like this, remove the bank and link it again."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follow_ups_start_fast_then_settle_then_slow_down_when_stalled() {
        let secs = |n| follow_up_delay(n, Duration::ZERO).as_secs();
        assert_eq!((1..=7).map(secs).collect::<Vec<_>>(), [2, 5, 15, 30, 60, 300, 300]);
        assert_eq!(follow_up_delay(0, Duration::ZERO), Duration::from_secs(2));
        assert_eq!(follow_up_delay(40, STALLED_AFTER), STALLED_DELAY);
        assert_eq!(follow_up_delay(2, STALLED_AFTER - Duration::from_secs(1)), Duration::from_secs(5));
    }
}
