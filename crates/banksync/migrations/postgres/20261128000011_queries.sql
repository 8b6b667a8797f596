-- Queries at a million rows (issue 12): full-text search, an index path for every filter of GET /api/transactions,
-- and the spending summary the charts read. The SQLite tree has the same version and name (FTS5 and row triggers
-- there; the same results).

-- Full-text search over name, merchant name and the user's note (`q`): a GIN index on an expression, not a stored
-- column (a generated column would also be copied by `migrate-store`, which SQLite has no column for). Everything
-- but letters and digits becomes a space before the `simple` parser sees the text, so PostgreSQL splits words where
-- SQLite's unicode61 tokenizer does ("AMAZON.COM" is two words on both, not one host name). `store/search.rs`
-- writes the same expression; keep them identical or the index stops matching.
CREATE INDEX transactions_search ON transactions USING GIN (to_tsvector('simple'::regconfig,
    regexp_replace(COALESCE(name, '') || ' ' || COALESCE(merchant_name, '') || ' ' || COALESCE(user_note, ''),
        '[^[:alnum:]]+', ' ', 'g')));

-- Index paths (see the SQLite migration).
CREATE INDEX transactions_pending_time ON transactions(user_id, datetime DESC, transaction_id DESC)
    WHERE pending AND deleted_at IS NULL;
CREATE INDEX transactions_amount ON transactions(user_id, amount_key);
CREATE INDEX transactions_effective_category_time ON transactions(user_id,
    (COALESCE(user_category, pfc_primary, 'UNCATEGORIZED')), datetime DESC, transaction_id DESC);
CREATE INDEX transactions_detailed_category_time
    ON transactions(user_id, pfc_detailed, datetime DESC, transaction_id DESC);
CREATE INDEX transactions_item_time ON transactions(item_ref, datetime DESC, transaction_id DESC);
DROP INDEX transactions_item;

-- Spending per user, month, Item, account, currency and effective category (see the SQLite migration): amounts in
-- millionths of the currency unit. An amount of a trillion units or more (no real transaction; a corrupt or hostile
-- value) counts as 0 here, so the BIGINT sums can never overflow and fail the sync commit that carries it. Kept by statement-level triggers with transition tables, so a sync commit of
-- thousands of rows updates the summary with one grouped statement instead of one per row. Each trigger adds the
-- net change per group (a row's contribution with sign 1 when it arrives, -1 when it leaves) in one upsert, then
-- drops the groups left empty.
CREATE TABLE spending_months (
    user_id    TEXT NOT NULL,
    month      TEXT NOT NULL,
    item_ref   TEXT NOT NULL,
    account_id TEXT NOT NULL,
    currency   TEXT NOT NULL,
    category   TEXT NOT NULL,
    spending   BIGINT NOT NULL,
    income     BIGINT NOT NULL,
    txn_count  BIGINT NOT NULL,
    PRIMARY KEY (user_id, month, item_ref, account_id, currency, category)
);
-- The groups a statement emptied, found without scanning the table.
CREATE INDEX spending_months_empty ON spending_months(user_id) WHERE txn_count = 0;

CREATE FUNCTION spending_on_insert() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO spending_months AS s (user_id, month, item_ref, account_id, currency, category, spending, income,
        txn_count)
    SELECT user_id, substr(date, 1, 7), item_ref, account_id, COALESCE(currency, 'XXX'),
        COALESCE(user_category, pfc_primary, 'UNCATEGORIZED'), SUM(sign * GREATEST(u, 0)), SUM(sign * GREATEST(-u, 0)),
        SUM(sign)
    FROM (SELECT m.*, CASE WHEN abs(m.amount::NUMERIC) < 1000000000000 THEN round(m.amount::NUMERIC * 1000000)::BIGINT ELSE 0 END AS u FROM (SELECT 1 AS sign, user_id, date, item_ref, account_id, currency, user_category, pfc_primary, pfc_detailed, pending, deleted_at, amount FROM new_rows) m) c
    WHERE deleted_at IS NULL AND NOT pending
        AND COALESCE(user_category, pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
        AND COALESCE(pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
    GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (user_id, month, item_ref, account_id, currency, category) DO UPDATE SET
        spending = s.spending + excluded.spending, income = s.income + excluded.income,
        txn_count = s.txn_count + excluded.txn_count;
    RETURN NULL;
END $$;

CREATE FUNCTION spending_on_delete() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO spending_months AS s (user_id, month, item_ref, account_id, currency, category, spending, income,
        txn_count)
    SELECT user_id, substr(date, 1, 7), item_ref, account_id, COALESCE(currency, 'XXX'),
        COALESCE(user_category, pfc_primary, 'UNCATEGORIZED'), SUM(sign * GREATEST(u, 0)), SUM(sign * GREATEST(-u, 0)),
        SUM(sign)
    FROM (SELECT m.*, CASE WHEN abs(m.amount::NUMERIC) < 1000000000000 THEN round(m.amount::NUMERIC * 1000000)::BIGINT ELSE 0 END AS u FROM (SELECT -1 AS sign, user_id, date, item_ref, account_id, currency, user_category, pfc_primary, pfc_detailed, pending, deleted_at, amount FROM old_rows) m) c
    WHERE deleted_at IS NULL AND NOT pending
        AND COALESCE(user_category, pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
        AND COALESCE(pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
    GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (user_id, month, item_ref, account_id, currency, category) DO UPDATE SET
        spending = s.spending + excluded.spending, income = s.income + excluded.income,
        txn_count = s.txn_count + excluded.txn_count;
    DELETE FROM spending_months WHERE txn_count = 0;
    RETURN NULL;
END $$;

-- Only the rows whose summary inputs changed move (a re-sent Plaid version or a note edit moves nothing): out of
-- the old group and into the new one. `transaction_id` is never updated, so it pairs the old and new rows.
CREATE FUNCTION spending_on_update() RETURNS TRIGGER LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO spending_months AS s (user_id, month, item_ref, account_id, currency, category, spending, income,
        txn_count)
    SELECT user_id, substr(date, 1, 7), item_ref, account_id, COALESCE(currency, 'XXX'),
        COALESCE(user_category, pfc_primary, 'UNCATEGORIZED'), SUM(sign * GREATEST(u, 0)), SUM(sign * GREATEST(-u, 0)),
        SUM(sign)
    FROM (SELECT m.*, CASE WHEN abs(m.amount::NUMERIC) < 1000000000000 THEN round(m.amount::NUMERIC * 1000000)::BIGINT ELSE 0 END AS u FROM (SELECT -1 AS sign, o.user_id, o.date, o.item_ref, o.account_id, o.currency, o.user_category, o.pfc_primary, o.pfc_detailed, o.pending, o.deleted_at, o.amount FROM old_rows o JOIN new_rows n ON n.transaction_id = o.transaction_id
            WHERE (o.user_id, o.date, o.item_ref, o.account_id, o.currency, o.user_category, o.pfc_primary, o.pfc_detailed, o.pending, o.deleted_at, o.amount) IS DISTINCT FROM (n.user_id, n.date, n.item_ref, n.account_id, n.currency, n.user_category, n.pfc_primary, n.pfc_detailed, n.pending, n.deleted_at, n.amount)
        UNION ALL SELECT 1 AS sign, n.user_id, n.date, n.item_ref, n.account_id, n.currency, n.user_category, n.pfc_primary, n.pfc_detailed, n.pending, n.deleted_at, n.amount FROM old_rows o JOIN new_rows n ON n.transaction_id = o.transaction_id
            WHERE (o.user_id, o.date, o.item_ref, o.account_id, o.currency, o.user_category, o.pfc_primary, o.pfc_detailed, o.pending, o.deleted_at, o.amount) IS DISTINCT FROM (n.user_id, n.date, n.item_ref, n.account_id, n.currency, n.user_category, n.pfc_primary, n.pfc_detailed, n.pending, n.deleted_at, n.amount)) m) c
    WHERE deleted_at IS NULL AND NOT pending
        AND COALESCE(user_category, pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
        AND COALESCE(pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
    GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (user_id, month, item_ref, account_id, currency, category) DO UPDATE SET
        spending = s.spending + excluded.spending, income = s.income + excluded.income,
        txn_count = s.txn_count + excluded.txn_count;
    DELETE FROM spending_months WHERE txn_count = 0;
    RETURN NULL;
END $$;

CREATE TRIGGER spending_insert AFTER INSERT ON transactions REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION spending_on_insert();
CREATE TRIGGER spending_delete AFTER DELETE ON transactions REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION spending_on_delete();
CREATE TRIGGER spending_update AFTER UPDATE ON transactions REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION spending_on_update();

-- The history already stored.
    INSERT INTO spending_months AS s (user_id, month, item_ref, account_id, currency, category, spending, income,
        txn_count)
    SELECT user_id, substr(date, 1, 7), item_ref, account_id, COALESCE(currency, 'XXX'),
        COALESCE(user_category, pfc_primary, 'UNCATEGORIZED'), SUM(sign * GREATEST(u, 0)), SUM(sign * GREATEST(-u, 0)),
        SUM(sign)
    FROM (SELECT m.*, CASE WHEN abs(m.amount::NUMERIC) < 1000000000000 THEN round(m.amount::NUMERIC * 1000000)::BIGINT ELSE 0 END AS u FROM (SELECT 1 AS sign, user_id, date, item_ref, account_id, currency, user_category, pfc_primary, pfc_detailed, pending, deleted_at, amount FROM transactions) m) c
    WHERE deleted_at IS NULL AND NOT pending
        AND COALESCE(user_category, pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
        AND COALESCE(pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
    GROUP BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (user_id, month, item_ref, account_id, currency, category) DO UPDATE SET
        spending = s.spending + excluded.spending, income = s.income + excluded.income,
        txn_count = s.txn_count + excluded.txn_count;
