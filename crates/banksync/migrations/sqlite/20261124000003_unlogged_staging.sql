-- Same version as the PostgreSQL tree's "unlogged staging" step. Nothing to change here: SQLite stages sync pages in
-- a TEMP table of the writer connection, which is never journaled to the WAL (see SqliteStore).
SELECT 1;
