//! Full-text search (`q` of `GET /api/transactions`) over a transaction's name, merchant name and the user's note:
//! every word of the query must appear as a word, the last one as a prefix ("star" finds "Starbucks"), case
//! insensitively.
//!
//! SQLite answers from the FTS5 table `transactions_fts` (rowid = the transaction row's rowid, kept in step by
//! triggers in the same statements that write `transactions`), PostgreSQL from a GIN index on a `tsvector`
//! expression ([`PG_DOCUMENT`], which must stay identical to the index's in the migration). Both split words at
//! every character that is not a letter or digit (FTS5's unicode61 tokenizer does; on PostgreSQL the expression
//! turns the rest into spaces before the `simple` parser sees it), so they find the same rows.
//!
//! User input never reaches either query language as syntax: [`words`] keeps only letters and digits, each word is
//! quoted for FTS5 (`"star"*`), and PostgreSQL gets `word & word:*` made of such words only, so quotes, `*`, `NEAR`,
//! `-`, `:` column filters and operators are just separators.

use super::Backend;
use super::exec::Sql;

/// More words than anyone types; bounds the query's size.
const MAX_WORDS: usize = 16;

/// The document PostgreSQL indexes (`transactions_search` in the migration), for the table aliased `t`.
const PG_DOCUMENT: &str = "to_tsvector('simple'::regconfig, regexp_replace(COALESCE(t.name, '') || ' ' || \
    COALESCE(t.merchant_name, '') || ' ' || COALESCE(t.user_note, ''), '[^[:alnum:]]+', ' ', 'g'))";

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
pub(super) fn push_match<'a>(select: &mut Sql<'a>, backend: Backend, q: &str) {
    let words = words(q);
    if words.is_empty() {
        select.push(" AND 1 = 0");
        return;
    }
    match backend {
        Backend::Sqlite => {
            select.push(" AND t.rowid IN (SELECT rowid FROM transactions_fts WHERE transactions_fts MATCH ");
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
