//! Text encodings shared by both backends.
//!
//! The schema stores timestamps, dates and money as TEXT so one piece of Rust serves SQLite and PostgreSQL. For SQL
//! to compare them correctly the text must sort like the value it encodes, so every encoding here is fixed width.

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike, Utc};
use rust_decimal::Decimal;

use super::StoreError;

/// The one timestamp form in the database: RFC 3339, UTC, microseconds, always 27 characters.
const TS_FORMAT: &str = "%Y-%m-%dT%H:%M:%S%.6fZ";
const DATE_FORMAT: &str = "%Y-%m-%d";

/// A stored enum's text (`ItemStatus`, `JobState`, …).
pub fn parse_enum<T: FromStr<Err = String>>(s: &str) -> Result<T, StoreError> {
    s.parse().map_err(StoreError::corrupt)
}

pub fn ts(t: DateTime<Utc>) -> String {
    // Written by hand: a sync formats several timestamps per transaction on its critical path, and chrono's
    // `format` re-parses the pattern each time. Same text as `TS_FORMAT` (a test holds them together); chrono for
    // what the fast path does not cover (years outside 0–9999, leap seconds).
    let nanos = t.timestamp_subsec_nanos();
    if !(0..=9999).contains(&t.year()) || nanos >= 1_000_000_000 {
        return t.format(TS_FORMAT).to_string();
    }
    let mut out = String::with_capacity(27);
    push_date(&mut out, t.year(), t.month(), t.day());
    out.push('T');
    push_digits(&mut out, t.hour(), 2);
    out.push(':');
    push_digits(&mut out, t.minute(), 2);
    out.push(':');
    push_digits(&mut out, t.second(), 2);
    out.push('.');
    push_digits(&mut out, nanos / 1_000, 6);
    out.push('Z');
    out
}

/// `YYYY-MM-DD` of a year in 0–9999.
fn push_date(out: &mut String, year: i32, month: u32, day: u32) {
    push_digits(out, year.unsigned_abs(), 4);
    out.push('-');
    push_digits(out, month, 2);
    out.push('-');
    push_digits(out, day, 2);
}

/// `value` zero-padded to `width` digits (`value` < 10^width).
fn push_digits(out: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        out.push(char::from(b'0' + ((value / divisor) % 10) as u8));
        divisor /= 10;
    }
}

pub fn ts_opt(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(ts)
}

pub fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    // Read by hand for the same reason `ts` is written by hand: every listed row carries four timestamps, and
    // chrono's `parse_from_str` re-reads the pattern each time (7 % of the newest page's profile under load).
    if let Some(t) = fast_ts(s.as_bytes()) {
        return Ok(t);
    }
    NaiveDateTime::parse_from_str(s, TS_FORMAT)
        .map(|n| n.and_utc())
        .or_else(|_| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)))
        .map_err(|e| StoreError::corrupt(format!("timestamp {s:?}: {e}")))
}

pub fn parse_ts_opt(s: Option<&str>) -> Result<Option<DateTime<Utc>>, StoreError> {
    s.map(parse_ts).transpose()
}

/// The current time, truncated to what the database keeps, so a value read back equals the value written.
pub fn now() -> DateTime<Utc> {
    let n = Utc::now();
    parse_ts(&ts(n)).unwrap_or(n)
}

pub fn date(d: NaiveDate) -> String {
    if !(0..=9999).contains(&d.year()) {
        return d.format(DATE_FORMAT).to_string();
    }
    let mut out = String::with_capacity(10);
    push_date(&mut out, d.year(), d.month(), d.day());
    out
}

/// `TS_FORMAT`'s text (27 characters), or `None` for anything else (chrono then reads it, or says why not).
fn fast_ts(s: &[u8]) -> Option<DateTime<Utc>> {
    if s.len() != 27 || s[10] != b'T' || s[13] != b':' || s[16] != b':' || s[19] != b'.' || s[26] != b'Z' {
        return None;
    }
    let (h, m, sec, micros) = (digits(&s[11..13])?, digits(&s[14..16])?, digits(&s[17..19])?, digits(&s[20..26])?);
    Some(fast_date(&s[..10])?.and_hms_micro_opt(h, m, sec, micros)?.and_utc())
}

/// `YYYY-MM-DD`, or `None` for anything else (including dates that do not exist).
fn fast_date(s: &[u8]) -> Option<NaiveDate> {
    if s.len() != 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(&s[..4])? as i32, digits(&s[5..7])?, digits(&s[8..10])?)
}

/// The number an all-ASCII-digit slice spells (at most 9 digits), else `None`.
fn digits(s: &[u8]) -> Option<u32> {
    s.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
}

pub fn parse_date(s: &str) -> Result<NaiveDate, StoreError> {
    if let Some(d) = fast_date(s.as_bytes()) {
        return Ok(d);
    }
    NaiveDate::parse_from_str(s, DATE_FORMAT).map_err(|e| StoreError::corrupt(format!("date {s:?}: {e}")))
}

pub fn parse_date_opt(s: Option<&str>) -> Result<Option<NaiveDate>, StoreError> {
    s.map(parse_date).transpose()
}

/// Exact decimal text, scale preserved ("0.10" stays "0.10").
pub fn money(d: Decimal) -> String {
    d.to_string()
}

pub fn money_opt(d: Option<Decimal>) -> Option<String> {
    d.map(money)
}

pub fn parse_money(s: &str) -> Result<Decimal, StoreError> {
    Decimal::from_str(s).map_err(|e| StoreError::corrupt(format!("amount {s:?}: {e}")))
}

pub fn parse_money_opt(s: Option<&str>) -> Result<Option<Decimal>, StoreError> {
    s.map(parse_money).transpose()
}

/// Digits a `Decimal` can have before and after the point (96-bit mantissa, scale ≤ 28).
const INT_DIGITS: usize = 29;
const FRAC_DIGITS: usize = 28;

/// An order-preserving text key for an amount: `a < b` exactly when `amount_key(a) < amount_key(b)` byte-wise.
///
/// `P` + zero-padded integer digits + zero-padded fraction digits for values ≥ 0; `N` + the nines' complement of
/// the same digits for negative values (a larger magnitude then sorts first, and `N` < `P`). Exact, unlike a float
/// column, and the same SQL (`amount_key >= $1`) works on both backends.
pub fn amount_key(d: Decimal) -> String {
    let negative = d.is_sign_negative() && !d.is_zero();
    let text = d.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let mut key = String::with_capacity(1 + INT_DIGITS + FRAC_DIGITS);
    key.push(if negative { 'N' } else { 'P' });
    let digits = std::iter::repeat_n('0', INT_DIGITS.saturating_sub(int.len()))
        .chain(int.chars())
        .chain(frac.chars())
        .chain(std::iter::repeat_n('0', FRAC_DIGITS.saturating_sub(frac.len())));
    for c in digits {
        if negative {
            let v = c.to_digit(10).unwrap_or(0);
            key.push(char::from_digit(9 - v, 10).unwrap_or('9'));
        } else {
            key.push(c);
        }
    }
    key
}

/// The amount's *band*: its sign, order of magnitude and first two significant digits as one integer that orders
/// like the amounts (`a < b` implies `amount_band(a) <= amount_band(b)`), e.g. every amount from 100 to 109.99… is
/// one band. The amount index leads with it, then the date (see the migration `amount_bands`): rows that arrive in
/// date order then go to the end of a few hundred bands instead of to random places in one big index. Computed
/// from [`amount_key`]'s text, exactly as the migration's SQL computes it for the rows stored before it.
pub fn amount_band(d: Decimal) -> i64 {
    band_of_key(&amount_key(d))
}

/// Band of the zero amount; positive amounts' bands are above it, negative ones' below.
const ZERO_BAND: i64 = 1_000_000;
/// Below and above every amount's band (a range with one bound ends there).
pub const LOWEST_BAND: i64 = ZERO_BAND - 100 - 100 * (INT_DIGITS + FRAC_DIGITS) as i64;
pub const HIGHEST_BAND: i64 = ZERO_BAND + 100 * (INT_DIGITS + FRAC_DIGITS) as i64 + 99;

/// [`amount_band`] of an amount whose [`amount_key`] the caller already has.
pub(super) fn band_of_key(key: &str) -> i64 {
    let (sign, digits) = key.split_at(1);
    // The significant digits: what follows the leading zeros (or, negated, the leading nines).
    let pad = if sign == "N" { '9' } else { '0' };
    let significant = digits.trim_start_matches(pad);
    let magnitude = significant.len() as i64;
    let lead: i64 =
        significant.chars().chain([pad, pad]).take(2).fold(0, |n, c| n * 10 + i64::from(c.to_digit(10).unwrap_or(0)));
    if sign == "N" { ZERO_BAND - 100 - 100 * magnitude + lead } else { ZERO_BAND + 100 * magnitude + lead }
}

/// The bands an amount can have, from `lo` to `hi` (both bands) in order, if there are at most `max` of them.
pub fn amount_bands_between(lo: i64, hi: i64, max: usize) -> Option<Vec<i64>> {
    // A band's two digits are 10–99 for a positive amount (0 only for zero itself) and 00–89 for a negative one
    // (the nines' complement of 10–99).
    let is_band = |b: i64| match b.cmp(&ZERO_BAND) {
        std::cmp::Ordering::Equal => true,
        std::cmp::Ordering::Greater => (b - ZERO_BAND) % 100 >= 10,
        std::cmp::Ordering::Less => (b - ZERO_BAND).rem_euclid(100) <= 89,
    };
    let mut bands = Vec::new();
    for b in (lo..=hi).filter(|&b| is_band(b)) {
        if bands.len() == max {
            return None;
        }
        bands.push(b);
    }
    Some(bands)
}

/// Opaque keyset cursor for transaction lists: the last row's (datetime, transaction_id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnCursor {
    pub date: String,
    pub datetime: String,
    pub transaction_id: String,
}

/// Transactions are listed by posted date, then time, then id (the order of every `transactions_*_time` index).
/// A cursor of an earlier version (`v1`, time and id only) is refused as invalid: cursors live for one listing.
impl TxnCursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("v2\n{}\n{}\n{}", self.date, self.datetime, self.transaction_id))
    }

    pub fn decode(s: &str) -> Result<Self, StoreError> {
        let invalid = || StoreError::InvalidInput("invalid pagination cursor".into());
        let bytes = URL_SAFE_NO_PAD.decode(s.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let mut parts = text.splitn(4, '\n');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some("v2"), Some(date), Some(dt), Some(id))
                if parse_date(date).is_ok() && parse_ts(dt).is_ok() && !id.is_empty() =>
            {
                Ok(Self { date: date.to_owned(), datetime: dt.to_owned(), transaction_id: id.to_owned() })
            }
            _ => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn hand_written_timestamps_and_dates_match_the_formats() {
        use chrono::TimeZone;
        let mut samples: Vec<DateTime<Utc>> = vec![
            Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(999, 12, 31, 23, 59, 59).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 24, 16, 15, 32).unwrap() + chrono::Duration::nanoseconds(123_456_789),
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap() + chrono::Duration::microseconds(999_999),
            Utc.with_ymd_and_hms(-5, 3, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap(),
            // A leap second (chrono keeps it as nanoseconds past 1e9).
            NaiveDate::from_ymd_opt(2016, 12, 31).unwrap().and_hms_micro_opt(23, 59, 59, 1_500_000).unwrap().and_utc(),
        ];
        // A walk over ~60 years in steps that hit every field value.
        let mut t = Utc.with_ymd_and_hms(1990, 1, 1, 0, 0, 0).unwrap();
        for i in 0..20_000 {
            samples.push(t);
            t += chrono::Duration::seconds(97_213) + chrono::Duration::microseconds(i * 7_919);
        }
        for t in samples {
            assert_eq!(ts(t), t.format(TS_FORMAT).to_string(), "{t:?}");
            assert_eq!(date(t.date_naive()), t.date_naive().format(DATE_FORMAT).to_string(), "{t:?}");
            if (0..=9999).contains(&t.year()) && t.timestamp_subsec_nanos() < 1_000_000_000 {
                assert_eq!(parse_ts(&ts(t)).unwrap(), t.with_nanosecond(t.nanosecond() / 1000 * 1000).unwrap());
                assert_eq!(parse_date(&date(t.date_naive())).unwrap(), t.date_naive());
            }
        }
    }

    #[test]
    fn hand_read_timestamps_and_dates_agree_with_chrono_and_refuse_what_it_refuses() {
        let texts = [
            "2026-11-24T16:15:32.123456Z",
            "0001-01-01T00:00:00.000000Z",
            "2024-02-29T23:59:59.999999Z",
            "2023-02-29T00:00:00.000000Z",
            "2026-13-01T00:00:00.000000Z",
            "2026-01-01T24:00:00.000000Z",
            "2026-01-01T00:60:00.000000Z",
            "2026-01-01T00:00:00.00000xZ",
            "2026-01-01 00:00:00.000000Z",
            "+026-01-01T00:00:00.000000Z",
            "2026-01-01T00:00:00.000000",
            "2026-01-01T00:00:00Z",
        ];
        // The fast path reads the canonical texts itself and never disagrees with chrono: it either gives chrono's
        // answer or leaves the text to chrono (which also reads "+026" as the year 26).
        for (i, text) in texts.into_iter().enumerate() {
            let chrono = NaiveDateTime::parse_from_str(text, TS_FORMAT).ok().map(|n| n.and_utc());
            let fast = fast_ts(text.as_bytes());
            assert!(fast.is_none() || fast == chrono, "{text}: {fast:?} vs {chrono:?}");
            assert_eq!(fast.is_some(), i < 3, "{text}");
            assert_eq!(parse_ts(text).ok().filter(|_| chrono.is_some()), chrono, "{text}");
        }
        let dates = ["2026-11-24", "2024-02-29", "2023-02-29", "2026-00-10", "2026-1-10", "+026-01-10", "2026/11/24"];
        for (i, text) in dates.into_iter().enumerate() {
            let chrono = NaiveDate::parse_from_str(text, DATE_FORMAT).ok();
            let fast = fast_date(text.as_bytes());
            assert!(fast.is_none() || fast == chrono, "{text}: {fast:?} vs {chrono:?}");
            assert_eq!(fast.is_some(), i < 2, "{text}");
            assert_eq!(parse_date(text).ok(), chrono, "{text}");
        }
        // What the fast path leaves to chrono still parses.
        assert_eq!(ts(parse_ts("2026-01-02T03:04:05Z").unwrap()), "2026-01-02T03:04:05.000000Z");
        assert_eq!(date(parse_date("+10000-01-01").unwrap()), "+10000-01-01");
    }

    #[test]
    fn amount_key_orders_like_the_numbers() {
        let values = [
            "-79228162514264337593543950335",
            "-1234567.891234",
            "-10",
            "-9.99",
            "-0.0000000000000000000000000001",
            "0",
            "0.0000000000000000000000000001",
            "0.1",
            "0.10000001",
            "9.99",
            "10",
            "10.00001",
            "1234567.891234",
            "79228162514264337593543950335",
        ];
        for pair in values.windows(2) {
            let (a, b) = (d(pair[0]), d(pair[1]));
            assert!(amount_key(a) < amount_key(b), "{a} vs {b}: {} !< {}", amount_key(a), amount_key(b));
        }
        assert_eq!(amount_key(d("10")), amount_key(d("10.000")));
        assert_eq!(amount_key(d("-0")), amount_key(d("0")));
    }

    #[test]
    fn amount_bands_order_like_the_numbers_and_list_every_band_between() {
        let values = [
            "-79228162514264337593543950335",
            "-1234567.891234",
            "-101",
            "-100.5",
            "-100",
            "-99.99",
            "-10",
            "-9.99",
            "-5",
            "-0.01",
            "-0.0000000000000000000000000001",
            "0",
            "0.0000000000000000000000000001",
            "0.01",
            "0.1",
            "5",
            "9.99",
            "10",
            "99.5",
            "100",
            "109.99",
            "110",
            "1234567.891234",
            "79228162514264337593543950335",
        ];
        for pair in values.windows(2) {
            let (a, b) = (d(pair[0]), d(pair[1]));
            assert!(amount_band(a) <= amount_band(b), "{a} vs {b}: {} > {}", amount_band(a), amount_band(b));
        }
        // Two significant digits: 100 to 109.99 is one band, 110 the next; a sign change is a band change.
        assert_eq!(amount_band(d("100")), amount_band(d("109.99")));
        assert_eq!(amount_band(d("-100")), amount_band(d("-109.99")));
        assert!(amount_band(d("109.99")) < amount_band(d("110")));
        assert!(amount_band(d("-0.0000000000000000000000000001")) < amount_band(d("0")));
        assert_eq!(amount_band(d("0")), ZERO_BAND);
        assert!(LOWEST_BAND <= amount_band(Decimal::MIN) && amount_band(Decimal::MAX) <= HIGHEST_BAND);
        // Every amount's band is listed between the bands of two amounts around it.
        let all = amount_bands_between(amount_band(d(values[0])), amount_band(d(values[values.len() - 1])), 20_000)
            .expect("fewer than 20,000 bands in all");
        for v in values {
            assert!(all.contains(&amount_band(d(v))), "{v}");
        }
        for cents in -12_000..12_000i64 {
            let v = Decimal::new(cents, 2);
            assert!(all.contains(&amount_band(v)), "{v}");
        }
        assert_eq!(
            amount_bands_between(amount_band(d("100")), amount_band(d("129")), 10),
            Some(vec![amount_band(d("100")), amount_band(d("110")), amount_band(d("120"))])
        );
        assert_eq!(amount_bands_between(amount_band(d("-12")), amount_band(d("-10")), 10).map(|b| b.len()), Some(3));
        assert_eq!(amount_bands_between(amount_band(d("10")), amount_band(d("99")), 89), None);
        assert_eq!(amount_bands_between(amount_band(d("10")), amount_band(d("99")), 90).map(|b| b.len()), Some(90));
    }

    #[test]
    fn timestamps_round_trip_and_sort() {
        let a = parse_ts("2026-01-02T03:04:05.123456Z").unwrap();
        assert_eq!(ts(a), "2026-01-02T03:04:05.123456Z");
        let b = parse_ts("2026-01-02T03:04:05Z").unwrap();
        assert_eq!(ts(b), "2026-01-02T03:04:05.000000Z");
        assert!(ts(b) < ts(a));
        assert!(parse_ts("yesterday").is_err());
    }

    #[test]
    fn cursor_round_trip_and_rejects_garbage() {
        let c = TxnCursor {
            date: "2026-01-02".into(),
            datetime: "2026-01-02T03:04:05.000000Z".into(),
            transaction_id: "tx_1".into(),
        };
        assert_eq!(TxnCursor::decode(&c.encode()).unwrap(), c);
        assert!(TxnCursor::decode("not a cursor").is_err());
        assert!(TxnCursor::decode(&URL_SAFE_NO_PAD.encode("v2\n2026-01-02\nnope\ntx")).is_err());
        assert!(TxnCursor::decode(&URL_SAFE_NO_PAD.encode("v2\nnope\n2026-01-02T03:04:05.000000Z\ntx")).is_err());
        // A cursor of the earlier order (time and id only) is refused, not misread.
        assert!(TxnCursor::decode(&URL_SAFE_NO_PAD.encode("v1\n2026-01-02T03:04:05.000000Z\ntx_1")).is_err());
    }
}
