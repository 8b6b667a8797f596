//! Full-text search (`q` of `GET /api/transactions`) over a transaction's name, merchant name and the user's note:
//! every word of the query must appear as a word, the last one as a prefix ("star" finds "Starbucks"), case
//! insensitively.
//!
//! SQLite answers from the FTS5 table `transactions_fts` (rowid = the transaction row's rowid, kept in step by
//! triggers in the same statements that write `transactions`), PostgreSQL from a GIN index on a stored `tsvector`
//! column ([`PG_DOCUMENT`], generated from the row by the migration). Both split words at
//! every character that is not a letter or digit (FTS5's unicode61 tokenizer does; on PostgreSQL the expression
//! turns the rest into spaces before the `simple` parser sees it), so they find the same rows.
//!
//! On SQLite a search without an amount range follows the full-text index newest first and looks up each match's
//! row by its rowid, keeping those the filter shows ([`SearchPlan::FollowMatches`]): the FTS5 rowid leads with the
//! transaction's day ([`day_key`]), and FTS5 hands a word's matches over lazily in rowid order, so a page of a
//! common word costs about a page's worth of matches, however many exist. Within a day the index holds rows by
//! rowid, not in the list's order, so the oldest day read is read again unless every match was. A prefix costs
//! more: FTS5 merges every term it matches over every row before it hands one over (~8 ms at 1,000,000 rows for a
//! word in one row in six), once per statement, so this plan reads a page in one statement where the walk below
//! took one per window; and a dense last word that starts no other term is asked as the word alone
//! ([`longer_terms`]), with no merge at all.
//!
//! The walk ([`SearchPlan::WalkIndex`]) reads the list's time index newest first, a window of days at a time
//! ([`Days`]), and keeps the rows in the set of that window's matches (a range of the full-text index). It takes
//! over when the matches read held too few rows the filter shows (a filter that hides most of them: one account of
//! many), and reads the dense searches of an amount range; a sparse one fetches its matches by rowid and sorts
//! them ([`SearchPlan::FetchMatches`]). Before, every dense search walked, and the set of a window holding most of
//! a history's matches was most of its cost (a common word's third window in the load benchmark: ~110,000 matches,
//! ~40 ms at 1,000,000 rows).
//!
//! User input never reaches either query language as syntax: [`words`] keeps only letters and digits, each word is
//! quoted for FTS5 (`"star"*`), and PostgreSQL gets `word & word:*` made of such words only, so quotes, `*`, `NEAR`,
//! `-`, `:` column filters and operators are just separators.

use chrono::NaiveDate;

use super::Backend;
use super::codec;
use super::exec::Sql;

/// More words than anyone types; bounds the query's size.
const MAX_WORDS: usize = 16;

/// The document PostgreSQL indexes (`transactions_search` in the migrations): a stored generated column, so testing
/// a row walked in list order is cheap, and the planner can choose between walking and the GIN index.
const PG_DOCUMENT: &str = "t.search_document";

/// More matching rows than this and SQLite reads a search as dense: it follows only a few pages' worth of the
/// newest matches (without an amount range) or walks the time index (with one) instead of reading every match.
/// Near the plans' crossover at 1,000,000 rows; at fewer rows both are cheap around it.
pub(super) const DENSE_MATCHES: i64 = 2_000;

/// A search without an amount range follows this many pages' worth of its newest matches, at most, before it
/// walks windows of days instead: a filter that hides most matches (one account of many) would otherwise look up
/// match after match to fill a page.
pub(super) const FOLLOWED_PAGES: i64 = 10;

/// How SQLite finds a search's matches (PostgreSQL's planner picks for itself from its statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SearchPlan {
    /// Look up every matching row by rowid, then sort.
    FetchMatches,
    /// Walk the order's index over these days and keep the rows in the set of their matches.
    WalkIndex(Days),
    /// Follow the full-text index newest first from the filter's newest day (its rowid leads with the day), look
    /// up each match's row and keep those the filter shows, reading at most `take` matches (see
    /// [`push_newest_matches`]). The last word is matched as a prefix unless no other term starts with it
    /// ([`longer_terms`]).
    FollowMatches { take: i64, prefix: bool },
}

/// The posted days `[from, until)` a walk reads; an open end reaches past every row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Days {
    pub from: Option<NaiveDate>,
    pub until: Option<NaiveDate>,
}

/// The walk's first window: a month of days.
const FIRST_WINDOW_DAYS: i64 = 31;
/// Each next window is this many times longer (few windows reach back decades).
const WINDOW_GROWTH: i64 = 4;
/// Windows before the last one, which is open to the oldest row.
const BOUNDED_WINDOWS: u32 = 4;

impl Days {
    /// The windows a dense search reads, newest first, until a page is full: the first ends after `newest` (the
    /// cursor's day; open when there is no cursor) and starts a month before it or before `latest` (the newest day
    /// any of the user's rows is posted on), whichever is earlier; each next one is four times longer, and after
    /// four of them (~7 years) the last is open. None starts before `oldest` (the filter's start): the one that
    /// would is the last.
    ///
    /// Anchored at `latest`, not today: a history that ends a year ago (a closed account, an old import) was
    /// walked from today through empty windows into one holding most of its rows, whose match set alone took
    /// ~80 ms to build at 1,000,000 rows.
    pub(super) fn windows(newest: Option<NaiveDate>, latest: NaiveDate, oldest: Option<NaiveDate>) -> Vec<Days> {
        let mut until = newest.map(|d| d + chrono::Days::new(1));
        let mut from = newest.map_or(latest, |n| n.min(latest)) + chrono::Days::new(1);
        let mut windows = Vec::new();
        let mut days = FIRST_WINDOW_DAYS;
        for _ in 0..BOUNDED_WINDOWS {
            from -= chrono::Duration::days(days);
            if oldest.is_some_and(|o| from <= o) {
                break;
            }
            windows.push(Days { from: Some(from), until });
            until = Some(from);
            days *= WINDOW_GROWTH;
        }
        windows.push(Days { from: None, until });
        windows
    }
}

/// The first FTS5 rowid of `day`'s transactions: the days since 1970 times 2^32 (the migration
/// `search_newest_first` keys each row `unixepoch(date) / 86400 * 2^32 + the transaction's rowid`).
fn day_key(day: NaiveDate) -> i64 {
    (day - NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")).num_days() << 32
}

/// Opens a query with the CTE `m`: the keys (`key`, the FTS5 rowid) of the newest `take` full-text matches of `q`
/// within `days`, newest day first. FTS5 hands them over in its own order and stops after `take`, so a word's
/// matches cost what is read, not what exists; a prefix is merged over every row once (the CTE is materialized: it
/// is read again for how many there were and the oldest one's day).
///
/// The full-text index's order is the list's by day, not within a day (there it is by rowid), so a caller keeps
/// only the rows of days after the oldest match's day when `take` were read (that day may hold more matches) and
/// sorts them ([`push_newest_matches_complete`]).
pub(super) fn push_newest_matches(select: &mut Sql<'_>, q: &str, prefix: bool, days: Days, take: i64) {
    select.push("WITH m AS MATERIALIZED (SELECT rowid AS key FROM transactions_fts WHERE transactions_fts MATCH ");
    let query = fts5_query(&words(q));
    select.push_bind(if prefix { query } else { query.trim_end_matches('*').to_owned() });
    push_key_range(select, days);
    select.push(" ORDER BY rowid DESC LIMIT ").push_bind(take).push(") ");
}

/// How many matches `m` holds, and the day of its oldest (days since 1970).
pub(super) const NEWEST_MATCHES_READ: &str = "(SELECT count(*) FROM m) AS matches_read, \
    (SELECT min(key) FROM m) >> 32 AS oldest_match_day";

/// ` AND` a row `t` of `m` is on a day whose matches were all read: fewer than `take` were, or it is newer than the
/// oldest one's day.
pub(super) fn push_newest_matches_complete(select: &mut Sql<'_>, take: i64) {
    select.push(" AND ((SELECT count(*) FROM m) < ").push_bind(take);
    select.push(" OR COALESCE(unixepoch(t.date) / 86400, 0) > (SELECT min(key) FROM m) >> 32)");
}

/// [`NEWEST_MATCHES_READ`] alone, for when no row of `m` was kept.
pub(super) fn newest_matches_read(q: &str, prefix: bool, days: Days, take: i64) -> Sql<'static> {
    let mut select = Sql::new("");
    push_newest_matches(&mut select, q, prefix, days, take);
    select.push("SELECT ").push(NEWEST_MATCHES_READ);
    select
}

/// ` AND` the FTS5 rowid within `days`.
fn push_key_range(select: &mut Sql<'_>, days: Days) {
    if let Some(from) = days.from {
        select.push(" AND rowid >= ").push_bind(day_key(from));
    }
    if let Some(until) = days.until {
        select.push(" AND rowid < ").push_bind(day_key(until));
    }
}

/// The day a key of the full-text index is on ([`day_key`]'s inverse).
pub(super) fn key_day(days_since_1970: i64) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(1970, 1, 1)?.checked_add_signed(chrono::Duration::try_days(days_since_1970)?)
}

/// Counts of the full-text matches of `q`, up to `DENSE_MATCHES + 1` (FTS5 answers them from its own index without
/// reading a transaction row): first with the last word whole, then as the prefix it is. The first is enough when
/// it is dense already, and cheaper: FTS5 merges every term a prefix matches, over every row, before it counts one
/// (a common word: 0.4 ms whole, 2.6 ms as a prefix at 1,000,000 rows). Empty when `q` has no word.
pub(super) fn count_matches(q: &str) -> Vec<Sql<'static>> {
    let words = words(q);
    if words.is_empty() {
        return Vec::new();
    }
    let count = |query: String| {
        Sql::new("SELECT COUNT(*) FROM (SELECT 1 FROM transactions_fts WHERE transactions_fts MATCH $1 LIMIT $2) AS m")
            .bind(query)
            .bind(DENSE_MATCHES + 1)
    };
    let prefix = fts5_query(&words);
    vec![count(prefix.trim_end_matches('*').to_owned()), count(prefix)]
}

/// Whether any term of the full-text index but the last word of `q` itself starts with that word: one row if so
/// (`transactions_fts_terms`, migration `search_terms`, read between the word and the next term after its
/// prefix). Without one, the word alone matches what the prefix would, without FTS5's merge of a prefix's terms.
/// `None` when the word is not plain ASCII letters and digits, whose terms are the word lowercased (unicode61
/// might fold or split other text unlike `str::to_lowercase`) or when `q` has no word.
///
/// The terms just above the word's are read, and the first one's rows counted (fts5vocab counts every term it
/// returns): cheap when no term follows within the prefix, as costly as that term is common when one does, so
/// asked only when the word alone is dense. A term written between this read and the search's own is missed by
/// that one page, as if it had been read a moment earlier.
pub(super) fn longer_terms(q: &str) -> Option<Sql<'static>> {
    let (from, until) = longer_term_bounds(q)?;
    Some(Sql::new("SELECT 1 FROM transactions_fts_terms WHERE term >= $1 AND term < $2 LIMIT 1").bind(from).bind(until))
}

/// The terms `[from, until)` that start with the last word of `q` and are longer ([`longer_terms`]).
fn longer_term_bounds(q: &str) -> Option<(String, String)> {
    let last = words(q).pop().filter(|w| w.bytes().all(|b| b.is_ascii_alphanumeric()))?;
    // Every longer term is the word and at least one more letter or digit, the least of which is '0'; the first
    // text after every term starting with the word ends in the next byte up ("coffee" .. "coffef").
    let mut until = last.clone().into_bytes();
    *until.last_mut()? += 1;
    Some((format!("{last}0"), String::from_utf8(until).ok()?))
}

/// The query's words: runs of letters and digits, lowercased.
pub(super) fn words(q: &str) -> Vec<String> {
    q.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).take(MAX_WORDS).map(str::to_lowercase).collect()
}

/// FTS5 MATCH text: each word a quoted phrase (implicitly ANDed), the last one a prefix.
fn fts5_query(words: &[String]) -> String {
    let mut out = String::new();
    for (i, w) in words.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push('"');
        out.push_str(w);
        out.push('"');
    }
    out.push('*');
    out
}

/// PostgreSQL `to_tsquery` text: the words ANDed, the last one a prefix.
fn tsquery(words: &[String]) -> String {
    let mut out = words.join(" & ");
    out.push_str(":*");
    out
}

/// Appends ` AND <t matches q>` to a query over `transactions t`. A query without any letter or digit matches
/// nothing.
pub(super) fn push_match<'a>(select: &mut Sql<'a>, backend: Backend, q: &str, plan: SearchPlan) {
    let words = words(q);
    if words.is_empty() {
        select.push(" AND 1 = 0");
        return;
    }
    match backend {
        Backend::Sqlite => {
            // `+ 0` keeps the rowid from driving the query: the set is only tested, so the order's index is walked.
            let (test, days) = match plan {
                SearchPlan::FetchMatches => (" AND t.rowid IN (", Days::default()),
                SearchPlan::WalkIndex(days) => (" AND (t.rowid + 0) IN (", days),
                // The rows are the matches themselves (`push_newest_matches`): nothing to test.
                SearchPlan::FollowMatches { .. } => return,
            };
            select.push(test);
            select.push("SELECT rowid & 4294967295 FROM transactions_fts WHERE transactions_fts MATCH ");
            select.push_bind(fts5_query(&words));
            push_key_range(select, days);
            select.push(")");
            // The same days of the walked index: the walk starts at the window's newest day and stops at its oldest.
            if let Some(from) = days.from {
                select.push(" AND t.date >= ").push_bind(codec::date(from));
            }
            if let Some(until) = days.until {
                select.push(" AND t.date < ").push_bind(codec::date(until));
            }
        }
        Backend::Postgres => {
            select.push(" AND ").push(PG_DOCUMENT).push(" @@ to_tsquery('simple'::regconfig, ");
            select.push_bind(tsquery(&words)).push(")");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_syntax_in_user_input_is_only_a_separator() {
        assert_eq!(
            words("  Star\"bucks* NEAR(x y) -foo name:bar ü_É 12.5 "),
            ["star", "bucks", "near", "x", "y", "foo", "name", "bar", "ü", "é", "12", "5"]
        );
        assert_eq!(fts5_query(&words("blue bot")), "\"blue\" \"bot\"*");
        assert_eq!(tsquery(&words("Blue & !bot")), "blue & bot:*");
        assert!(words("\"*-:()&|!<->").is_empty());
        assert_eq!(words(&"a ".repeat(100)).len(), MAX_WORDS);
    }

    #[test]
    fn longer_terms_are_read_between_the_last_word_and_the_next_prefix() {
        let bounds = longer_term_bounds;
        let pair = |a: &str, b: &str| Some((a.to_owned(), b.to_owned()));
        assert_eq!(bounds("Blue BOT"), pair("bot0", "bou"));
        assert_eq!(bounds("route 9"), pair("90", ":"));
        assert_eq!(bounds("fizz"), pair("fizz0", "fiz{"));
        // Not plain ASCII: unicode61's folding decides what the terms are, so the prefix stays.
        assert_eq!(bounds("café"), None);
        assert_eq!(bounds("--"), None);
    }

    #[test]
    fn a_day_key_is_the_days_since_1970_shifted_past_any_rowid() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(day_key(day("1970-01-01")), 0);
        assert_eq!(day_key(day("1970-01-02")), 1 << 32);
        assert_eq!(day_key(day("1969-12-31")), -(1 << 32));
        assert_eq!(day_key(day("2026-11-29")), 20_786 << 32);
        // The day of a key, with a transaction's rowid in its low bits: the `>> 32` of SQLite's integers.
        for d in ["1969-12-31", "1970-01-01", "2026-11-29"] {
            assert_eq!(key_day((day_key(day(d)) + 4_000_000_000) >> 32), Some(day(d)));
        }
        assert_eq!(key_day(i64::MAX >> 32), None);
    }

    #[test]
    fn windows_grow_newest_first_and_end_open_or_at_the_filters_start() {
        let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let today = day("2026-11-29").unwrap();
        let spans = |windows: &[Days]| -> Vec<(Option<NaiveDate>, Option<NaiveDate>)> {
            windows.iter().map(|w| (w.from, w.until)).collect()
        };
        // No cursor: the first window is open to the future and starts a month before the newest row's day.
        assert_eq!(
            spans(&Days::windows(None, today, None)),
            [
                (day("2026-10-30"), None),
                (day("2026-06-28"), day("2026-10-30")),
                (day("2025-02-17"), day("2026-06-28")),
                (day("2019-09-13"), day("2025-02-17")),
                (None, day("2019-09-13")),
            ]
        );
        // A cursor: its day is in the first window; a start inside the third window makes that one the last.
        let windows = Days::windows(day("2025-06-15"), today, day("2024-01-01"));
        assert_eq!(
            spans(&windows),
            [(day("2025-05-16"), day("2025-06-16")), (day("2025-01-12"), day("2025-05-16")), (None, day("2025-01-12"))]
        );
        // Rows that end a year ago: the first window is their last month, still open to the future.
        assert_eq!(
            spans(&Days::windows(None, day("2025-11-29").unwrap(), None))[..2],
            [(day("2025-10-30"), None), (day("2025-06-28"), day("2025-10-30"))]
        );
        // A cursor past the newest row (rows removed since): the first window is still the newest rows' month.
        assert_eq!(
            spans(&Days::windows(day("2026-06-15"), day("2025-11-29").unwrap(), None))[0],
            (day("2025-10-30"), day("2026-06-16"))
        );
    }
}
