-- Accounts and sessions (issues 10 and 13). The PostgreSQL tree has the same version and name; keep them in step.
--
-- users.is_owner: the first user (made by first-run setup or the first `banksync user add`) administers the others.
-- At most one owner: the partial unique index is what makes two racing first-run setups end with exactly one owner
-- on PostgreSQL, where both could see an empty table (SQLite's single writer serializes them anyway).
ALTER TABLE users ADD COLUMN is_owner BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE users SET is_owner = TRUE WHERE id = (SELECT id FROM users ORDER BY created_at, id LIMIT 1);
CREATE UNIQUE INDEX users_one_owner ON users(is_owner) WHERE is_owner;

-- sessions: a public id (random, never the cookie's secret nor its hash) to list and end one session by; when it
-- was last used (refreshed at most once a minute); the idle expiry that moves with it; the browser's user agent.
-- Sessions from before this migration get a random public id and keep their absolute expiry as the idle one until
-- their next use moves it.
ALTER TABLE sessions ADD COLUMN public_id TEXT;
ALTER TABLE sessions ADD COLUMN last_seen_at TEXT;
ALTER TABLE sessions ADD COLUMN idle_expires_at TEXT;
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
UPDATE sessions SET public_id = lower(hex(randomblob(16))), last_seen_at = created_at, idle_expires_at = expires_at;
CREATE UNIQUE INDEX sessions_public_id ON sessions(public_id);

-- api_tokens: how each token was made ('cli', 'session' from the page, 'token' by another API token) and, for a
-- token made from a browser session, that session's public id, so the list can say so.
ALTER TABLE api_tokens ADD COLUMN created_via TEXT NOT NULL DEFAULT 'cli';
ALTER TABLE api_tokens ADD COLUMN created_by_session TEXT;
