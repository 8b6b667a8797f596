-- Amount ranges (issue 12): a covering index of the rows a listing shows, in the order's columns, so a bounded range
-- finds, sorts and cuts its page's keys without reading the rows (`store/transactions.rs`, the deferred join); only
-- the page's rows are then read. Reading every row in the range and carrying it through the sort took 30 ms for
-- 3,000 matches at 1,000,000 rows. Replaces the index on (user_id, amount_key). The PostgreSQL tree has the same
-- version and name (there it also stores the search document in a column; SQLite's FTS5 table already is one).
DROP INDEX transactions_amount;
-- `deleted_at` is a column too (always NULL here): SQLite counts an index as covering only if it holds every column
-- the query names, the partial index's condition included.
CREATE INDEX transactions_amount ON transactions(user_id, amount_key, date, datetime, transaction_id, item_ref,
    deleted_at) WHERE deleted_at IS NULL;
