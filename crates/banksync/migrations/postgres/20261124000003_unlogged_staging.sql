-- Staged sync pages are transient: a run that does not commit is discarded and retried from the stored cursor. So
-- the staging table skips the write-ahead log (roughly halving what a large sync writes); PostgreSQL empties it
-- after a crash, which only loses runs that had not committed anyway.
ALTER TABLE sync_staging SET UNLOGGED;
