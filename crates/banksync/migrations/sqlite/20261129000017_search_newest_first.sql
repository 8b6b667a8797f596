-- Search newest first (issue 12). A search matching thousands of rows walked the time index and tested each row
-- against the set of every match, and building that set was most of the query: 41,665 matches at 1,000,000 rows,
-- ~16 ms of the ~18. The full-text row's rowid now leads with the transaction's day: (days since 1970) * 2^32 plus
-- the transaction's rowid, so the matches of a range of days are a range of the index, and the store reads a
-- search window by window, newest first (`store/search.rs`), building the set of one window's matches only.
-- Rowids of transactions stay below 2^32 (4 billion rows); a date SQLite cannot read (outside years 0-9999, never
-- sent by Plaid) counts as day 0. The PostgreSQL tree has the same version and name (a no-op: its GIN index has no
-- such order to exploit, and its planner already walks the time index for common words).
DROP TRIGGER transactions_fts_insert;
DROP TRIGGER transactions_fts_delete;
DROP TRIGGER transactions_fts_update;
DROP TABLE transactions_fts;
CREATE VIRTUAL TABLE transactions_fts USING fts5(name, merchant_name, user_note,
    tokenize = 'unicode61 remove_diacritics 0');
-- In key order: FTS5 writes out a new segment whenever a rowid is lower than the one before it (200,000 rows in
-- random order took 4x as long as in order).
INSERT INTO transactions_fts (rowid, name, merchant_name, user_note)
    SELECT COALESCE(unixepoch(date) / 86400, 0) * 4294967296 + rowid AS k, name, merchant_name, user_note
    FROM transactions ORDER BY k;
CREATE TRIGGER transactions_fts_insert AFTER INSERT ON transactions BEGIN
    INSERT INTO transactions_fts (rowid, name, merchant_name, user_note)
        VALUES (COALESCE(unixepoch(NEW.date) / 86400, 0) * 4294967296 + NEW.rowid,
                NEW.name, NEW.merchant_name, NEW.user_note);
END;
CREATE TRIGGER transactions_fts_delete AFTER DELETE ON transactions BEGIN
    DELETE FROM transactions_fts WHERE rowid = COALESCE(unixepoch(OLD.date) / 86400, 0) * 4294967296 + OLD.rowid;
END;
CREATE TRIGGER transactions_fts_update AFTER UPDATE OF name, merchant_name, user_note, date ON transactions
WHEN OLD.name IS NOT NEW.name OR OLD.merchant_name IS NOT NEW.merchant_name OR OLD.user_note IS NOT NEW.user_note
    OR OLD.date IS NOT NEW.date
BEGIN
    DELETE FROM transactions_fts WHERE rowid = COALESCE(unixepoch(OLD.date) / 86400, 0) * 4294967296 + OLD.rowid;
    INSERT INTO transactions_fts (rowid, name, merchant_name, user_note)
        VALUES (COALESCE(unixepoch(NEW.date) / 86400, 0) * 4294967296 + NEW.rowid,
                NEW.name, NEW.merchant_name, NEW.user_note);
END;
