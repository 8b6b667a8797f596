-- Search newest first (issue 12): the SQLite tree's migration of the same version and name keys its full-text
-- index by day, so a search reads its newest matches first. PostgreSQL needs nothing: its planner walks the time
-- index for a common word and tests each row's stored search document. This file keeps the two trees in step.
SELECT 1;
