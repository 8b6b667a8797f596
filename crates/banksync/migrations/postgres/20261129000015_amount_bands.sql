-- Amount ranges at a write cost the initial sync can afford (issue 12): the amount index leads with the amount's
-- band, then the list's order, so a history arriving in date order appends to a few hundred bands instead of
-- inserting at random places. The SQLite tree has the same version and name, and says more.
ALTER TABLE transactions ADD COLUMN amount_band BIGINT;
ALTER TABLE sync_staging ADD COLUMN amount_band BIGINT;
DROP INDEX transactions_amount;
-- The amounts do not change: the spending summary's statement trigger would only subtract and re-add every row.
ALTER TABLE transactions DISABLE TRIGGER spending_update;
UPDATE transactions SET amount_band = CASE WHEN substr(amount_key, 1, 1) = 'N'
    THEN 999900 - 100 * length(ltrim(substr(amount_key, 2), '9'))
        + CAST(substr(ltrim(substr(amount_key, 2), '9') || '99', 1, 2) AS BIGINT)
    ELSE 1000000 + 100 * length(ltrim(substr(amount_key, 2), '0'))
        + CAST(substr(ltrim(substr(amount_key, 2), '0') || '00', 1, 2) AS BIGINT) END;
ALTER TABLE transactions ENABLE TRIGGER spending_update;
CREATE INDEX transactions_amount ON transactions(user_id, amount_band, date DESC, datetime DESC, transaction_id DESC,
    amount_key, item_ref, deleted_at) WHERE deleted_at IS NULL;
ANALYZE transactions;
