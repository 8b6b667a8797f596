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
//! On SQLite a search has two plans, picked per query by how many rows match ([`SearchPlan`]): few matches are
//! fetched by rowid and sorted (cheap while they are few); many are found by walking the list's time index newest
//! first and keeping the rows in the match set, which stops after one page (cheap while matches are dense). Either
//! plan alone is slow where the other is fast: at 1,000,000 rows, 111 matches took 7 ms fetched and 300 ms walked;
//! 41,000 matches took 200 ms fetched and 26 ms walked.
//!
//! User input never reaches either query language as syntax: [`words`] keeps only letters and digits, each word is
//! quoted for FTS5 (`"star"*`), and PostgreSQL gets `word & word:*` made of such words only, so quotes, `*`, `NEAR`,
//! `-`, `:` column filters and operators are just separators.

use super::Backend;
use super::exec::Sql;

/// More words than anyone types; bounds the query's size.
const MAX_WORDS: usize = 16;

/// The document PostgreSQL indexes (`transactions_search` in the migrations): a stored generated column, so testing
/// a row walked in list order is cheap, and the planner can choose between walking and the GIN index.
const PG_DOCUMENT: &str = "t.search_document";

/// More matching rows than this and SQLite walks the time index instead of fetching every match and sorting them.
/// Near the two plans' crossover at 1,000,000 rows; at fewer rows both plans are cheap around it.
pub(super) const DENSE_MATCHES: i64 = 2_000;

/// How SQLite finds a search's matches (PostgreSQL's planner picks for itself from its statistics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SearchPlan {
    /// Look up every matching row by rowid, then sort.
    FetchMatches,
    /// Walk the order's index and keep the rows in the match set.
    WalkIndex,
}

/// Counts the full-text matches of `q`, up to `DENSE_MATCHES + 1` (FTS5 answers it from its own index without
/// reading a transaction row); `None` when `q` has no word.
pub(super) fn count_matches(q: &str) -> Option<Sql<'static>> {
    let words = words(q);
    (!words.is_empty()).then(|| {
        Sql::new("SELECT COUNT(*) FROM (SELECT 1 FROM transactions_fts WHERE transactions_fts MATCH $1 LIMIT $2) AS m")
            .bind(fts5_query(&words))
            .bind(DENSE_MATCHES + 1)
    })
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
            select.push(match plan {
                SearchPlan::FetchMatches => " AND t.rowid IN (",
                SearchPlan::WalkIndex => " AND (t.rowid + 0) IN (",
            });
            select.push("SELECT rowid FROM transactions_fts WHERE transactions_fts MATCH ");
            select.push_bind(fts5_query(&words)).push(")");
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
}
