-- banksync schema, SQLite dialect. The PostgreSQL tree has the same version and name; keep them in step.
-- Portable conventions (the same Rust code reads both):
--   ids are TEXT; timestamps are TEXT in one fixed-width RFC 3339 UTC form (2026-11-24T16:15:32.000000Z), so
--   they sort and compare as strings; dates are TEXT YYYY-MM-DD; money is an exact decimal string, with an
--   order-preserving `*_key` text beside it where SQL must compare amounts; flags are BOOLEAN; JSON is TEXT.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

CREATE TABLE sessions (
    id_hash    TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX sessions_expiry ON sessions(expires_at);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE items (
    id                      TEXT PRIMARY KEY,
    item_id                 TEXT NOT NULL UNIQUE,
    user_id                 TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    institution_id          TEXT,
    institution_name        TEXT,
    access_token_ciphertext BLOB NOT NULL,
    access_token_nonce      BLOB NOT NULL,
    access_token_key_id     TEXT NOT NULL,
    cursor                  TEXT,
    status                  TEXT NOT NULL DEFAULT 'good'
        CHECK (status IN ('good', 'login_required', 'pending_disconnect', 'pending_expiration', 'revoked', 'error')),
    error_code              TEXT,
    error_message           TEXT,
    display_message         TEXT,
    consent_expires_at      TEXT,
    disconnect_at           TEXT,
    new_accounts_available  BOOLEAN NOT NULL DEFAULT FALSE,
    last_sync_at            TEXT,
    last_successful_sync_at TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX items_user_institution ON items(user_id, institution_id);

CREATE TABLE accounts (
    account_id           TEXT PRIMARY KEY,
    item_ref             TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id              TEXT NOT NULL,
    name                 TEXT NOT NULL,
    official_name        TEXT,
    mask                 TEXT,
    type                 TEXT NOT NULL,
    subtype              TEXT,
    balance_available    TEXT,
    balance_current      TEXT,
    balance_limit        TEXT,
    currency             TEXT,
    currency_is_official BOOLEAN NOT NULL DEFAULT TRUE,
    balance_as_of        TEXT,
    balance_source       TEXT NOT NULL DEFAULT 'cached' CHECK (balance_source IN ('live', 'cached')),
    removed              BOOLEAN NOT NULL DEFAULT FALSE,
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL
);
CREATE INDEX accounts_item ON accounts(item_ref);
CREATE INDEX accounts_user ON accounts(user_id);

CREATE TABLE transactions (
    transaction_id         TEXT PRIMARY KEY,
    item_ref               TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    user_id                TEXT NOT NULL,
    account_id             TEXT NOT NULL,
    amount                 TEXT NOT NULL,
    amount_key             TEXT NOT NULL,
    currency               TEXT,
    currency_is_official   BOOLEAN NOT NULL,
    datetime               TEXT NOT NULL,
    time_unknown           BOOLEAN NOT NULL,
    date                   TEXT NOT NULL,
    authorized_date        TEXT,
    name                   TEXT NOT NULL,
    merchant_name          TEXT,
    display_name           TEXT NOT NULL,
    logo_url               TEXT,
    website                TEXT,
    pfc_primary            TEXT,
    pfc_detailed           TEXT,
    pfc_confidence         TEXT,
    pfc_icon_url           TEXT,
    payment_channel        TEXT,
    pending                BOOLEAN NOT NULL,
    pending_transaction_id TEXT,
    counterparties         TEXT,
    location               TEXT,
    account_owner          TEXT,
    raw                    TEXT NOT NULL,
    user_note              TEXT,
    user_category          TEXT,
    deleted_at             TEXT,
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL
);
-- Keyset pagination: (datetime DESC, transaction_id DESC) within one user, optionally one account.
CREATE INDEX transactions_user_time ON transactions(user_id, datetime DESC, transaction_id DESC);
CREATE INDEX transactions_account_time ON transactions(account_id, datetime DESC, transaction_id DESC);
CREATE INDEX transactions_item ON transactions(item_ref);
CREATE INDEX transactions_pending_ref ON transactions(pending_transaction_id) WHERE pending_transaction_id IS NOT NULL;

-- Pages of one sync run wait here until the run commits; then one database transaction moves them into
-- `transactions` and stores the cursor. One row per (run, transaction): a later page's change replaces an earlier one.
CREATE TABLE sync_staging (
    run_id                 TEXT NOT NULL,
    transaction_id         TEXT NOT NULL,
    op                     TEXT NOT NULL CHECK (op IN ('upsert', 'remove')),
    account_id             TEXT,
    amount                 TEXT,
    amount_key             TEXT,
    currency               TEXT,
    currency_is_official   BOOLEAN,
    datetime               TEXT,
    time_unknown           BOOLEAN,
    date                   TEXT,
    authorized_date        TEXT,
    name                   TEXT,
    merchant_name          TEXT,
    display_name           TEXT,
    logo_url               TEXT,
    website                TEXT,
    pfc_primary            TEXT,
    pfc_detailed           TEXT,
    pfc_confidence         TEXT,
    pfc_icon_url           TEXT,
    payment_channel        TEXT,
    pending                BOOLEAN,
    pending_transaction_id TEXT,
    counterparties         TEXT,
    location               TEXT,
    account_owner          TEXT,
    raw                    TEXT,
    PRIMARY KEY (run_id, transaction_id)
);

CREATE TABLE sync_runs (
    id            TEXT PRIMARY KEY,
    item_ref      TEXT NOT NULL REFERENCES items(id) ON DELETE CASCADE,
    triggered_by  TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    finished_at   TEXT,
    status        TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    added         BIGINT NOT NULL DEFAULT 0,
    modified      BIGINT NOT NULL DEFAULT 0,
    removed       BIGINT NOT NULL DEFAULT 0,
    pages         BIGINT NOT NULL DEFAULT 0,
    restarts      BIGINT NOT NULL DEFAULT 0,
    error_code    TEXT,
    error_message TEXT
);
CREATE INDEX sync_runs_item ON sync_runs(item_ref, started_at DESC);

-- Audit trail of every Plaid call. No foreign key: the trail outlives a removed Item.
CREATE TABLE plaid_calls (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint    TEXT NOT NULL,
    item_id     TEXT,
    request_id  TEXT,
    http_status BIGINT,
    outcome     TEXT NOT NULL,
    error_type  TEXT,
    error_code  TEXT,
    latency_ms  BIGINT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX plaid_calls_item ON plaid_calls(item_id, at);
CREATE INDEX plaid_calls_at ON plaid_calls(at);

CREATE TABLE webhook_events (
    id            TEXT PRIMARY KEY,
    dedupe_key    TEXT NOT NULL UNIQUE,
    item_id       TEXT,
    webhook_type  TEXT NOT NULL,
    webhook_code  TEXT NOT NULL,
    body          TEXT NOT NULL,
    received_at   TEXT NOT NULL,
    processed_at  TEXT
);
CREATE INDEX webhook_events_item ON webhook_events(item_id, received_at);

CREATE TABLE jobs (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL,
    coalesce_key     TEXT,
    user_id          TEXT,
    item_id          TEXT,
    payload          TEXT NOT NULL,
    result           TEXT,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    run_after        TEXT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
-- At most one queued job per (kind, coalesce key): three webhooks for one Item become one sync. A running job
-- does not block a new queued one, so changes that arrive during a sync are picked up by the next one.
CREATE UNIQUE INDEX jobs_one_queued ON jobs(kind, coalesce_key) WHERE state = 'queued';
CREATE INDEX jobs_claim ON jobs(state, run_after);
