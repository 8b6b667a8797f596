-- Transactions are listed by posted date, then time, then id (issue 12). Every index a list query walks leads with
-- `date` after its equality columns, so a date range (`start`/`end`) is a range of the index, read in order and
-- stopped at the page's end. Ordered by `datetime` alone, a month a year back walked and read every newer row to
-- test its date: 1-2 s at 1,000,000 rows. `date` is what bank statements and journals order by; `datetime`
-- (often only the authorization's date) breaks ties within a day. The SQLite tree has the same version and name.
DROP INDEX transactions_user_time;
CREATE INDEX transactions_user_time ON transactions(user_id, date DESC, datetime DESC, transaction_id DESC);
DROP INDEX transactions_account_time;
CREATE INDEX transactions_account_time ON transactions(account_id, date DESC, datetime DESC, transaction_id DESC);
DROP INDEX transactions_item_time;
CREATE INDEX transactions_item_time ON transactions(item_ref, date DESC, datetime DESC, transaction_id DESC);
DROP INDEX transactions_pending_time;
CREATE INDEX transactions_pending_time ON transactions(user_id, date DESC, datetime DESC, transaction_id DESC)
    WHERE pending AND deleted_at IS NULL;
DROP INDEX transactions_effective_category_time;
CREATE INDEX transactions_effective_category_time ON transactions(user_id,
    (COALESCE(user_category, pfc_primary, 'UNCATEGORIZED')), date DESC, datetime DESC, transaction_id DESC);
DROP INDEX transactions_detailed_category_time;
CREATE INDEX transactions_detailed_category_time
    ON transactions(user_id, pfc_detailed, date DESC, datetime DESC, transaction_id DESC);
