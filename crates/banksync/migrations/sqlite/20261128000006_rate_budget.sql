-- Plaid's rate limits are sliding one-minute windows per client (our Plaid keys) and per Item, per endpoint. Every
-- banksync instance sharing this database reserves each limited call here before making it, so all of them count
-- against one budget (see src/budget.rs and src/store/budget.rs).

-- One row per reserved call. `item_id` is Plaid's item_id. Rows older than a window are pruned.
CREATE TABLE rate_reservations (
    id          TEXT PRIMARY KEY,
    endpoint    TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    reserved_at TEXT NOT NULL
);
CREATE INDEX rate_reservations_client ON rate_reservations(endpoint, reserved_at);
CREATE INDEX rate_reservations_item ON rate_reservations(endpoint, item_id, reserved_at);

-- Plaid answered 429 although the budget had room (another client of the same keys, clock skew): no call of
-- `endpoint` (for `item_id`, or for any Item when it is '') goes out before `blocked_until`.
CREATE TABLE rate_blocks (
    endpoint      TEXT NOT NULL,
    item_id       TEXT NOT NULL,
    blocked_until TEXT NOT NULL,
    PRIMARY KEY (endpoint, item_id)
);

-- Named locks: a transaction that upserts a row here holds it until it ends. A reservation locks its endpoint's row
-- first, so check-and-insert is atomic across connections and processes on PostgreSQL (SQLite has one writer).
CREATE TABLE named_locks (
    name      TEXT PRIMARY KEY,
    locked_at TEXT NOT NULL
);
