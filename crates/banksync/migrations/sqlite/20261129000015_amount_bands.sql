-- Amount ranges at a write cost the initial sync can afford (issue 12). The amount index led with the exact amount,
-- so a history arriving in date order inserted its entries at random places of one big index: at 1,000,000 rows
-- that index alone took 61 % of the initial sync's write time. It now leads with the amount's *band* (its sign,
-- order of magnitude and first two significant digits, e.g. 100 to 109.99…) and then the list's order, so entries
-- go to the end of a few hundred bands. A range is read band by band, each band newest first and stopped at the
-- page's end, and the bands are merged (`store/transactions.rs`); the exact `amount_key` stays in the index, so
-- the range is still exact and the index still covers the page's keys. `codec::amount_band` computes the same
-- value for new rows; the expression below fills the rows stored before. The PostgreSQL tree has the same version
-- and name.
ALTER TABLE transactions ADD COLUMN amount_band INTEGER;
ALTER TABLE sync_staging ADD COLUMN amount_band INTEGER;
DROP INDEX transactions_amount;
UPDATE transactions SET amount_band = CASE WHEN substr(amount_key, 1, 1) = 'N'
    THEN 999900 - 100 * length(ltrim(substr(amount_key, 2), '9'))
        + CAST(substr(ltrim(substr(amount_key, 2), '9') || '99', 1, 2) AS INTEGER)
    ELSE 1000000 + 100 * length(ltrim(substr(amount_key, 2), '0'))
        + CAST(substr(ltrim(substr(amount_key, 2), '0') || '00', 1, 2) AS INTEGER) END;
-- `deleted_at` is a column too (always NULL here): SQLite counts an index as covering only if it holds every column
-- the query names, the partial index's condition included.
CREATE INDEX transactions_amount ON transactions(user_id, amount_band, date DESC, datetime DESC, transaction_id DESC,
    amount_key, item_ref, deleted_at) WHERE deleted_at IS NULL;
