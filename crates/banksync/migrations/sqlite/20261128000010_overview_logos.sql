-- The web app's overview and merchant logos (issue 10). The PostgreSQL tree has the same version and name.

-- When each user last looked at the overview ("what changed since your last visit"); one row per user.
CREATE TABLE overview_visits (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    seen_at TEXT NOT NULL
);

-- Merchant logos fetched through banksync (the browser never asks a third party). `id` is derived from the URL
-- (a SHA-256 prefix); a row is either an image (content_type + body) or a remembered failure (`failure`), both
-- until `expires_at`. A cache: bounded by the logo module (oldest evicted), never copied by migrate-store.
CREATE TABLE logo_cache (
    id           TEXT PRIMARY KEY,
    url          TEXT NOT NULL,
    content_type TEXT,
    body         BLOB,
    etag         TEXT,
    failure      TEXT,
    size         BIGINT NOT NULL DEFAULT 0,
    fetched_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX logo_cache_fetched ON logo_cache(fetched_at);

-- "Does this user have a transaction with this logo URL?" answered from the index alone (the logo route's
-- ownership check, and the listing of a user's logo URLs when an id is not cached yet).
CREATE INDEX transactions_user_logo ON transactions(user_id, logo_url) WHERE logo_url IS NOT NULL;
