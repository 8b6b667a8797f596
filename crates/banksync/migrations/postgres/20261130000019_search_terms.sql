-- Search terms (issue 12): the SQLite tree's migration of the same version and name adds a view of its full-text
-- index's terms, to ask FTS5 for a whole word where a prefix would match nothing more. PostgreSQL needs nothing:
-- its GIN index answers a prefix from the index's sorted keys. This file keeps the two trees in step.
SELECT 1;
