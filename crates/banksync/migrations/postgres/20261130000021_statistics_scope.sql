-- Statistics only where a plan reads them (issue 12). The store runs ANALYZE after large writes (the end of an
-- initial sync among them: `store/postgres.rs`), and ANALYZE samples 300 x the largest statistics target rows (the
-- search column's 200: 60,000) and computes every column's statistics from them. These columns are never in a
-- WHERE, JOIN or ORDER BY (Plaid's object, its compressed copy, display-only fields, the user's note, which search
-- reads through `search_document`), so their statistics were pure cost: ANALYZE of 100,000 rows took 1.49 s with
-- them and 1.17 s without. A column that a query comes to filter on must get its statistics back here
-- (`SET STATISTICS -1`). The SQLite tree has the same version and name (SQLite keeps no statistics).
ALTER TABLE transactions
    ALTER COLUMN raw SET STATISTICS 0,
    ALTER COLUMN raw_zstd SET STATISTICS 0,
    ALTER COLUMN counterparties SET STATISTICS 0,
    ALTER COLUMN location SET STATISTICS 0,
    ALTER COLUMN website SET STATISTICS 0,
    ALTER COLUMN pfc_icon_url SET STATISTICS 0,
    ALTER COLUMN pfc_confidence SET STATISTICS 0,
    ALTER COLUMN payment_channel SET STATISTICS 0,
    ALTER COLUMN account_owner SET STATISTICS 0,
    ALTER COLUMN user_note SET STATISTICS 0;
