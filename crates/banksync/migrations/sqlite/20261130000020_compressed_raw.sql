-- Plaid's transaction object, compressed (issue 12). `raw` held it as JSON text, ~1.5 KB of a ~3.8 KB stored
-- transaction: the largest thing an initial sync writes (into the table, the WAL and the checkpoint), read only by
-- `GET /api/transactions/{id}/raw`. A row written from now on keeps it zstd-compressed in `raw_zstd` and `raw` empty;
-- rows written before keep their text (`store/raw_json.rs` reads either). No rewrite of existing rows: they shrink
-- when Plaid next sends them.
ALTER TABLE transactions ADD COLUMN raw_zstd BLOB;
ALTER TABLE sync_staging ADD COLUMN raw_zstd BLOB;
