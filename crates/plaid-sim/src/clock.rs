//! The simulator's clock: real time plus an offset that tests move with `POST /sim/clock/advance`
//! (token expiry, product readiness). Rate limits and webhook `iat` use real time.
//!
//! While a saved state is replayed (`persist`), the clock is pinned to each recorded operation's
//! time, so code that reads `now()` inside an operation sees the time it first ran at.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::sync::atomic::{AtomicI64, Ordering};

/// `pinned_nanos` value meaning "not pinned".
const UNPINNED: i64 = i64::MIN;

#[derive(Debug)]
pub struct Clock {
    offset_seconds: AtomicI64,
    pinned_nanos: AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        Self { offset_seconds: AtomicI64::new(0), pinned_nanos: AtomicI64::new(UNPINNED) }
    }
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        let pinned = self.pinned_nanos.load(Ordering::SeqCst);
        if pinned != UNPINNED {
            return DateTime::from_timestamp_nanos(pinned);
        }
        Utc::now() + chrono::Duration::seconds(self.offset_seconds.load(Ordering::SeqCst))
    }

    /// Makes `now()` return `at` (None: real time plus offset again). Only replay pins the clock.
    pub(crate) fn pin(&self, at: Option<DateTime<Utc>>) {
        let nanos = at.and_then(|t| t.timestamp_nanos_opt()).unwrap_or(UNPINNED);
        self.pinned_nanos.store(nanos, Ordering::SeqCst);
    }

    /// Moves the clock forward and returns the total offset.
    pub fn advance(&self, seconds: i64) -> i64 {
        self.offset_seconds.fetch_add(seconds, Ordering::SeqCst) + seconds
    }

    pub fn offset_seconds(&self) -> i64 {
        self.offset_seconds.load(Ordering::SeqCst)
    }
}

/// Plaid's date-time format: `2024-05-01T12:00:00Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    let mut out = Vec::with_capacity(20);
    write_rfc3339(&mut out, t);
    String::from_utf8(out).unwrap_or_default()
}

/// Appends `t` as [`rfc3339`] formats it, without chrono's format-string machinery.
pub fn write_rfc3339(out: &mut Vec<u8>, t: DateTime<Utc>) {
    use chrono::Timelike;
    let time = t.time();
    // Years outside 0..=9999 (signed, wider) and leap seconds take chrono's path.
    if !(0..=9999).contains(&t.year()) || time.nanosecond() >= 1_000_000_000 {
        out.extend_from_slice(t.format("%Y-%m-%dT%H:%M:%SZ").to_string().as_bytes());
        return;
    }
    write_date(out, t.date_naive());
    out.push(b'T');
    two_digits(out, time.hour());
    out.push(b':');
    two_digits(out, time.minute());
    out.push(b':');
    two_digits(out, time.second());
    out.push(b'Z');
}

/// Appends `d` as its `Display` (ISO 8601 `YYYY-MM-DD`) writes it.
pub fn write_date(out: &mut Vec<u8>, d: NaiveDate) {
    let year = d.year();
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(d.to_string().as_bytes());
        return;
    }
    two_digits(out, year as u32 / 100);
    two_digits(out, year as u32 % 100);
    out.push(b'-');
    two_digits(out, d.month());
    out.push(b'-');
    two_digits(out, d.day());
}

fn two_digits(out: &mut Vec<u8>, n: u32) {
    out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_formatting_matches_chrono() {
        let mut times: Vec<DateTime<Utc>> =
            [0i64, 1_700_000_000, 951_782_400, 4_102_444_799, -62_167_219_200, -62_167_219_201, 253_402_300_800]
                .iter()
                .map(|&s| DateTime::from_timestamp(s, 0).expect("time"))
                .collect();
        times.extend(
            (0..2000).map(|k| DateTime::from_timestamp(1_600_000_000 + k * 86_399 * 3 + k * 7, 0).expect("time")),
        );
        // A leap second.
        let leap =
            NaiveDate::from_ymd_opt(2016, 12, 31).and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500)).expect("leap");
        times.push(leap.and_utc());
        for t in times {
            assert_eq!(rfc3339(t), t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            let mut out = Vec::new();
            write_date(&mut out, t.date_naive());
            assert_eq!(String::from_utf8(out).expect("utf8"), t.date_naive().to_string());
        }
        for d in [NaiveDate::MIN, NaiveDate::MAX, NaiveDate::from_ymd_opt(-1, 1, 1).expect("date")] {
            let mut out = Vec::new();
            write_date(&mut out, d);
            assert_eq!(String::from_utf8(out).expect("utf8"), d.to_string());
        }
    }
}
