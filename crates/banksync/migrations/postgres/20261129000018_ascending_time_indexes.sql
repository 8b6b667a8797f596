-- Ascending time indexes (issue 12): the SQLite tree's migration of the same version and name re-creates its time
-- indexes in ascending order, so that a history written oldest first fills their pages instead of splitting them.
-- PostgreSQL's are left as they are for now (not measured there). This file keeps the two trees in step.
SELECT 1;
