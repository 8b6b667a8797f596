-- Search statistics (issue 12): PostgreSQL's search column gets a larger statistics target in the PostgreSQL tree's
-- migration of the same version and name. SQLite needs nothing: the store counts a search's matches in the FTS5
-- index and picks the plan itself (`store/search.rs`). This file keeps the two trees' versions in step.
SELECT 1;
