-- Statistics only where a plan reads them (issue 12): the PostgreSQL tree's migration of the same version and name
-- stops ANALYZE computing statistics for columns no query filters on. SQLite keeps no statistics (its plans come
-- from the indexes' shapes). This file keeps the two trees' versions in step.
SELECT 1;
