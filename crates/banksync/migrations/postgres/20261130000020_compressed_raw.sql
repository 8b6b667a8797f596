-- Plaid's transaction object, compressed (issue 12; see the SQLite tree's migration of the same name). PostgreSQL
-- compresses a value only past ~2 KB (TOAST), and a transaction's JSON is ~1.5 KB, so it stored it whole too.
ALTER TABLE transactions ADD COLUMN raw_zstd BYTEA;
ALTER TABLE sync_staging ADD COLUMN raw_zstd BYTEA;
