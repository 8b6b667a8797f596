-- Search statistics (issue 12). PostgreSQL estimates a prefix search (`star:*`, the last word of every `q`) from the
-- search column's most common lexemes, and when ANALYZE kept fewer than 100 of them it assumes 2 % of the rows
-- match. At 1,000,000 rows that is 20,000, so for a word that matches nothing it chose to walk the time index
-- until a page was full: every row, 2.3 s (measured on the benchmark's history, which kept 95 of them). With a
-- statistics target of 200 for this column ANALYZE keeps up to 2,000 lexemes (2,000 there), the estimate comes
-- from them, and such a search takes the GIN index: 0.6 ms. The price is a larger sample: ANALYZE of 1,000,000
-- rows took 2.0 s instead of 0.9 s (the store runs it after large writes; see `store/postgres.rs`). The SQLite tree
-- has the same version and name (FTS5 counts the matches instead; see `store/search.rs`).
ALTER TABLE transactions ALTER COLUMN search_document SET STATISTICS 200;
ANALYZE transactions;
