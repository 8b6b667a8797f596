-- Queries at a million rows (issue 12): full-text search, an index path for every filter of GET /api/transactions,
-- and the spending summary the charts read. The PostgreSQL tree has the same version and name (a GIN expression
-- index instead of FTS5, statement-level triggers instead of row triggers; same results).

-- Full-text search over name, merchant name and the user's note (`q`). A regular FTS5 table (its own copy of the
-- three short texts) whose rowid is the transaction row's rowid: a delete by rowid needs no old values, so the
-- index can never drift from what an external-content delete would have to repeat exactly. Every row is indexed
-- (removed ones too: readers filter `deleted_at` as for any other filter). `remove_diacritics 0` because
-- PostgreSQL's `simple` configuration keeps accents: both backends must find the same rows.
CREATE VIRTUAL TABLE transactions_fts USING fts5(name, merchant_name, user_note,
    tokenize = 'unicode61 remove_diacritics 0');
INSERT INTO transactions_fts (rowid, name, merchant_name, user_note)
    SELECT rowid, name, merchant_name, user_note FROM transactions;
CREATE TRIGGER transactions_fts_insert AFTER INSERT ON transactions BEGIN
    INSERT INTO transactions_fts (rowid, name, merchant_name, user_note)
        VALUES (NEW.rowid, NEW.name, NEW.merchant_name, NEW.user_note);
END;
CREATE TRIGGER transactions_fts_delete AFTER DELETE ON transactions BEGIN
    DELETE FROM transactions_fts WHERE rowid = OLD.rowid;
END;
CREATE TRIGGER transactions_fts_update AFTER UPDATE OF name, merchant_name, user_note ON transactions
WHEN OLD.name IS NOT NEW.name OR OLD.merchant_name IS NOT NEW.merchant_name OR OLD.user_note IS NOT NEW.user_note
BEGIN
    DELETE FROM transactions_fts WHERE rowid = OLD.rowid;
    INSERT INTO transactions_fts (rowid, name, merchant_name, user_note)
        VALUES (NEW.rowid, NEW.name, NEW.merchant_name, NEW.user_note);
END;

-- Index paths (the store's EXPLAIN QUERY PLAN test holds every filter shape to one of these).
-- pending=true: few rows, walked newest first (the query names `t.pending` literally so the partial index applies).
CREATE INDEX transactions_pending_time ON transactions(user_id, datetime DESC, transaction_id DESC)
    WHERE pending AND deleted_at IS NULL;
-- Amount ranges: the matching rows by key, then sorted.
CREATE INDEX transactions_amount ON transactions(user_id, amount_key);
-- The effective category (the user's, else Plaid's primary, else UNCATEGORIZED) and Plaid's detailed one, newest
-- first within each: a rare category is as fast as a common one.
CREATE INDEX transactions_effective_category_time ON transactions(user_id,
    COALESCE(user_category, pfc_primary, 'UNCATEGORIZED'), datetime DESC, transaction_id DESC);
CREATE INDEX transactions_detailed_category_time
    ON transactions(user_id, pfc_detailed, datetime DESC, transaction_id DESC);
-- One Item newest first (item_id filter); it also serves every `item_ref = ?` lookup the old index served.
CREATE INDEX transactions_item_time ON transactions(item_ref, datetime DESC, transaction_id DESC);
DROP INDEX transactions_item;

-- Spending per user, month, Item, account, currency and effective category, of the transactions that *count*
-- (posted, not removed, not a transfer between the user's own accounts: see `store/spending.rs`). Amounts are
-- integers in millionths of the currency unit (exact for amounts with up to six decimals; an amount of a trillion
-- units or more, which no real transaction has, counts as 0 so the sums cannot overflow), `spending` the sum of
-- positive amounts, `income` minus the sum of negative ones. Kept by the triggers below inside every statement that
-- writes `transactions`: sync commits, the initial sync's pages (hidden with their Item until its claim commits:
-- readers join `items`), removals, restores, the user's category edits, relink merges, cascaded deletes. A row
-- whose count drops to zero is deleted.
CREATE TABLE spending_months (
    user_id    TEXT NOT NULL,
    month      TEXT NOT NULL,
    item_ref   TEXT NOT NULL,
    account_id TEXT NOT NULL,
    currency   TEXT NOT NULL,
    category   TEXT NOT NULL,
    spending   INTEGER NOT NULL,
    income     INTEGER NOT NULL,
    txn_count  INTEGER NOT NULL,
    PRIMARY KEY (user_id, month, item_ref, account_id, currency, category)
);

INSERT INTO spending_months (user_id, month, item_ref, account_id, currency, category, spending, income, txn_count)
SELECT user_id, substr(date, 1, 7), item_ref, account_id, COALESCE(currency, 'XXX'),
    COALESCE(user_category, pfc_primary, 'UNCATEGORIZED'), SUM(max(u, 0)), SUM(max(-u, 0)), COUNT(*)
FROM (SELECT *, (CASE WHEN abs(CAST(amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END) AS u FROM transactions)
WHERE deleted_at IS NULL AND NOT pending
    AND COALESCE(user_category, pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
    AND COALESCE(pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
GROUP BY 1, 2, 3, 4, 5, 6;

CREATE TRIGGER spending_insert AFTER INSERT ON transactions
WHEN NEW.deleted_at IS NULL AND NOT NEW.pending
    AND COALESCE(NEW.user_category, NEW.pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
    AND COALESCE(NEW.pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
BEGIN
    INSERT INTO spending_months (user_id, month, item_ref, account_id, currency, category, spending, income, txn_count)
    VALUES (NEW.user_id, substr(NEW.date, 1, 7), NEW.item_ref, NEW.account_id, COALESCE(NEW.currency, 'XXX'),
        COALESCE(NEW.user_category, NEW.pfc_primary, 'UNCATEGORIZED'),
        max((CASE WHEN abs(CAST(NEW.amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(NEW.amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END), 0),
        max(-(CASE WHEN abs(CAST(NEW.amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(NEW.amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END), 0), 1)
    ON CONFLICT (user_id, month, item_ref, account_id, currency, category) DO UPDATE SET
        spending = spending + excluded.spending, income = income + excluded.income, txn_count = txn_count + 1;
END;

CREATE TRIGGER spending_delete AFTER DELETE ON transactions
WHEN OLD.deleted_at IS NULL AND NOT OLD.pending
    AND COALESCE(OLD.user_category, OLD.pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
    AND COALESCE(OLD.pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
BEGIN
    UPDATE spending_months SET
        spending = spending - max((CASE WHEN abs(CAST(OLD.amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(OLD.amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END), 0),
        income = income - max(-(CASE WHEN abs(CAST(OLD.amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(OLD.amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END), 0),
        txn_count = txn_count - 1
    WHERE user_id = OLD.user_id AND month = substr(OLD.date, 1, 7) AND item_ref = OLD.item_ref
        AND account_id = OLD.account_id AND currency = COALESCE(OLD.currency, 'XXX')
        AND category = COALESCE(OLD.user_category, OLD.pfc_primary, 'UNCATEGORIZED');
    DELETE FROM spending_months
    WHERE user_id = OLD.user_id AND month = substr(OLD.date, 1, 7) AND item_ref = OLD.item_ref
        AND account_id = OLD.account_id AND currency = COALESCE(OLD.currency, 'XXX')
        AND category = COALESCE(OLD.user_category, OLD.pfc_primary, 'UNCATEGORIZED') AND txn_count = 0;
END;

-- An update moves the row's contribution: out of its old group (when it counted), into its new one (when it
-- counts). Both are skipped when nothing the summary depends on changed (a re-sent Plaid version, a note edit).
CREATE TRIGGER spending_update_out AFTER UPDATE OF user_id, item_ref, account_id, amount, currency, date, pending,
    deleted_at, user_category, pfc_primary, pfc_detailed ON transactions
WHEN OLD.deleted_at IS NULL AND NOT OLD.pending
    AND COALESCE(OLD.user_category, OLD.pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
    AND COALESCE(OLD.pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
    AND (OLD.user_id IS NOT NEW.user_id OR OLD.item_ref IS NOT NEW.item_ref OR OLD.account_id IS NOT NEW.account_id
        OR OLD.amount IS NOT NEW.amount OR OLD.currency IS NOT NEW.currency OR OLD.date IS NOT NEW.date
        OR OLD.pending IS NOT NEW.pending OR OLD.deleted_at IS NOT NEW.deleted_at
        OR OLD.user_category IS NOT NEW.user_category OR OLD.pfc_primary IS NOT NEW.pfc_primary
        OR OLD.pfc_detailed IS NOT NEW.pfc_detailed)
BEGIN
    UPDATE spending_months SET
        spending = spending - max((CASE WHEN abs(CAST(OLD.amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(OLD.amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END), 0),
        income = income - max(-(CASE WHEN abs(CAST(OLD.amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(OLD.amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END), 0),
        txn_count = txn_count - 1
    WHERE user_id = OLD.user_id AND month = substr(OLD.date, 1, 7) AND item_ref = OLD.item_ref
        AND account_id = OLD.account_id AND currency = COALESCE(OLD.currency, 'XXX')
        AND category = COALESCE(OLD.user_category, OLD.pfc_primary, 'UNCATEGORIZED');
    DELETE FROM spending_months
    WHERE user_id = OLD.user_id AND month = substr(OLD.date, 1, 7) AND item_ref = OLD.item_ref
        AND account_id = OLD.account_id AND currency = COALESCE(OLD.currency, 'XXX')
        AND category = COALESCE(OLD.user_category, OLD.pfc_primary, 'UNCATEGORIZED') AND txn_count = 0;
END;

CREATE TRIGGER spending_update_in AFTER UPDATE OF user_id, item_ref, account_id, amount, currency, date, pending,
    deleted_at, user_category, pfc_primary, pfc_detailed ON transactions
WHEN NEW.deleted_at IS NULL AND NOT NEW.pending
    AND COALESCE(NEW.user_category, NEW.pfc_primary, 'UNCATEGORIZED') NOT IN ('TRANSFER_IN', 'TRANSFER_OUT')
    AND COALESCE(NEW.pfc_detailed, '') <> 'LOAN_PAYMENTS_CREDIT_CARD_PAYMENT'
    AND (OLD.user_id IS NOT NEW.user_id OR OLD.item_ref IS NOT NEW.item_ref OR OLD.account_id IS NOT NEW.account_id
        OR OLD.amount IS NOT NEW.amount OR OLD.currency IS NOT NEW.currency OR OLD.date IS NOT NEW.date
        OR OLD.pending IS NOT NEW.pending OR OLD.deleted_at IS NOT NEW.deleted_at
        OR OLD.user_category IS NOT NEW.user_category OR OLD.pfc_primary IS NOT NEW.pfc_primary
        OR OLD.pfc_detailed IS NOT NEW.pfc_detailed)
BEGIN
    INSERT INTO spending_months (user_id, month, item_ref, account_id, currency, category, spending, income, txn_count)
    VALUES (NEW.user_id, substr(NEW.date, 1, 7), NEW.item_ref, NEW.account_id, COALESCE(NEW.currency, 'XXX'),
        COALESCE(NEW.user_category, NEW.pfc_primary, 'UNCATEGORIZED'),
        max((CASE WHEN abs(CAST(NEW.amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(NEW.amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END), 0),
        max(-(CASE WHEN abs(CAST(NEW.amount AS REAL)) < 1e12 THEN CAST(ROUND(CAST(NEW.amount AS REAL) * 1000000) AS INTEGER) ELSE 0 END), 0), 1)
    ON CONFLICT (user_id, month, item_ref, account_id, currency, category) DO UPDATE SET
        spending = spending + excluded.spending, income = income + excluded.income, txn_count = txn_count + 1;
END;
