-- The full-text index's terms (issue 12), read by `store/search.rs` to learn whether a search's last word, which it
-- matches as a prefix, starts any term but itself. Most often it does not ("coffee"), and the search then asks
-- FTS5 for the word alone: FTS5 merges every term of a prefix over every row before it hands over one match (~8 ms
-- for a word in one row in six at 1,000,000 rows), a word's matches it hands over lazily, newest first (~0.5 ms for
-- a page). An fts5vocab table stores nothing; its rows are read from `transactions_fts`'s index.
CREATE VIRTUAL TABLE transactions_fts_terms USING fts5vocab(transactions_fts, row);
