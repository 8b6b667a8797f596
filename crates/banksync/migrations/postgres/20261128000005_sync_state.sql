-- Everything that decides when an Item may or should sync next, in the database so that every banksync process
-- sharing it obeys the same rules (the rules were in one process's memory before). One row per Item, created on
-- first use; times are UTC text like every timestamp here, so they compare as text.
CREATE TABLE item_sync_state (
    item_id                 TEXT PRIMARY KEY REFERENCES items(id) ON DELETE CASCADE,
    -- Plaid's transactions_update_status of the last sync: not_ready, initial_update_complete,
    -- historical_update_complete or unknown; NULL before the first sync.
    phase                   TEXT,
    -- Since when banksync has been waiting for Plaid's data (not ready, or history incomplete); NULL when complete.
    waiting_since           TEXT,
    -- Follow-up syncs queued while waiting: picks the next delay (2 s, 5 s, 15 s, 30 s, 1 min, then 5 min).
    follow_ups              BIGINT NOT NULL DEFAULT 0,
    -- Waited too long for Plaid's data; the message says what to do.
    stalled_at              TEXT,
    stalled_message         TEXT,
    -- No manual sync (or repair sync) before this time.
    cooldown_until          TEXT,
    -- No sync at all before this time (Plaid rate-limited the Item).
    hold_until              TEXT,
    -- /item/get status.transactions.last_successful_update: when Plaid last heard from the bank.
    institution_updated_at  TEXT,
    updated_at              TEXT NOT NULL
);

-- Small facts banksync learns about its Plaid client and keeps for every process (e.g. that the Transactions
-- Refresh add-on is not enabled, so "sync now" stops asking for it).
CREATE TABLE service_facts (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- Repeated receipts of one signed webhook delivery. The first repeat may be a second real update announced in the
-- same second (byte-identical), so it still asks for a sync; further repeats are replays and only counted.
ALTER TABLE webhook_events ADD COLUMN duplicates BIGINT NOT NULL DEFAULT 0;
