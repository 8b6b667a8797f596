#!/usr/bin/env bash
# The store's own write floor for an initial sync: the transactions an initial sync stored, copied again by the
# database itself (INSERT ... SELECT, in the sync's date order, one transaction) into a copy of `transactions` with
# less and less of what a write maintains. No API, no network, no binding: what the schema alone costs, to read
# beside the initial-sync scenario's "raw page download" (bench/REPORT.md, scenario 1).
#
#   BENCH_KEEP=1 target/release/deps/initial_sync-* --sim                                 # prints URL
#   BENCH_KEEP=1 target/release/deps/initial_sync-* --sync URL 100000 sqlite              # prints the kept file
#   BENCH_KEEP=1 target/release/deps/initial_sync-* --sync URL 100000 postgres            # prints the kept schema
#   bench/write_floor.sh sqlite /tmp/.tmpXXXX/bench.db
#   bench/write_floor.sh postgres bench_<uuid>       # PostgreSQL at BANKSYNC_BENCH_POSTGRES_URL's server
#
# (run the benchmark binaries from crates/banksync). The SQLite file is copied first and left as it was; the
# PostgreSQL variants are written to a scratch table in the kept schema and dropped. Drop the schema afterwards.
set -euo pipefail

usage="usage: bench/write_floor.sh sqlite FILE | postgres SCHEMA"
backend="${1:?$usage}"
where="${2:?$usage}"

sqlite_floor() {
    local db="$1" work
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' RETURN
    local q="sqlite3 $db"
    local cols indexes triggers table
    cols="$($q "SELECT group_concat(name, ', ') FROM pragma_table_info('transactions')")"
    table="$($q "SELECT replace(sql, 'CREATE TABLE transactions', 'CREATE TABLE t_floor') FROM sqlite_master
        WHERE name = 'transactions'")"
    indexes="$($q "SELECT group_concat(replace(replace(sql, 'ON transactions', 'ON t_floor'), 'INDEX ' || name,
        'INDEX ' || name || '_floor'), ';' || char(10)) FROM sqlite_master
        WHERE tbl_name = 'transactions' AND type = 'index' AND sql IS NOT NULL")"
    triggers="$($q "SELECT group_concat(replace(replace(replace(sql, 'ON transactions', 'ON t_floor'),
        'TRIGGER ' || name, 'TRIGGER ' || name || '_floor'), 'transactions_fts', 't_floor_fts'), ';' || char(10))
        FROM sqlite_master WHERE tbl_name = 'transactions' AND type = 'trigger'")"
    variant() { # name, SQL before the copy, SQL after it
        cp "$db" "$work/w.db"
        local start end
        start=$(date +%s.%N)
        sqlite3 "$work/w.db" >/dev/null <<SQL
PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768;
PRAGMA wal_autocheckpoint = 100000;
$table;
CREATE VIRTUAL TABLE t_floor_fts USING fts5(name, merchant_name, user_note,
    tokenize = 'unicode61 remove_diacritics 0');
$2
BEGIN;
INSERT INTO t_floor ($cols) SELECT $cols FROM transactions ORDER BY date, transaction_id;
COMMIT;
$3
SQL
        end=$(date +%s.%N)
        awk -v name="$1" -v s="$start" -v e="$end" 'BEGIN { printf "  %-58s %7.2f s\n", name, e - s }'
    }
    echo "sqlite: $($q 'SELECT count(*) FROM transactions') transactions, copied by SQLite itself (the copy's setup included)"
    variant "the row and its primary key only" "" ""
    variant "everything (indexes, full-text and summary triggers)" "$indexes; $triggers;" ""
    variant "triggers during the copy, the indexes built after it" "$triggers;" "$indexes;"
    variant "nothing during the copy, the indexes built after it" "" "$indexes;"
}

postgres_floor() {
    local schema="$1"
    local url="${BANKSYNC_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
    local q=(psql "$url" -q -At -v ON_ERROR_STOP=1)
    local cols
    cols="$("${q[@]}" -c "SELECT string_agg(column_name, ', ' ORDER BY ordinal_position)
        FROM information_schema.columns
        WHERE table_schema = '$schema' AND table_name = 'transactions' AND is_generated = 'NEVER'")"
    # The copy runs in a transaction that is rolled back: the summary trigger's additions to the schema's
    # `spending_months` go with it. The scratch table is created (and committed) before, as a sync's table is.
    variant() { # name, how the scratch table is created, what is added to it
        "${q[@]}" <<SQL | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' |
SET client_min_messages = warning;
SET search_path TO $schema;
DROP TABLE IF EXISTS t_floor;
$2;
$3
CHECKPOINT;
BEGIN;
\\timing on
INSERT INTO t_floor ($cols) SELECT $cols FROM transactions ORDER BY date, transaction_id;
\\timing off
ROLLBACK;
DROP TABLE t_floor;
SQL
            awk -v name="$1" '{ printf "  %-58s %7.2f s\n", name, $1 / 1000 }'
    }
    echo "postgres: $("${q[@]}" -c "SELECT count(*) FROM $schema.transactions") transactions, copied by PostgreSQL itself"
    variant "the row only, unlogged" "CREATE UNLOGGED TABLE t_floor (LIKE transactions INCLUDING DEFAULTS)" ""
    variant "the row only" "CREATE TABLE t_floor (LIKE transactions INCLUDING DEFAULTS)" ""
    variant "the row and its generated search column" \
        "CREATE TABLE t_floor (LIKE transactions INCLUDING DEFAULTS INCLUDING GENERATED)" ""
    variant "everything (indexes, foreign key, summary trigger)" \
        "CREATE TABLE t_floor (LIKE transactions INCLUDING ALL)" \
        "ALTER TABLE t_floor ADD FOREIGN KEY (item_ref) REFERENCES items(id) ON DELETE CASCADE;
        CREATE TRIGGER t_floor_spending AFTER INSERT ON t_floor REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION spending_on_insert();"
}

case "$backend" in
    sqlite) sqlite_floor "$where" ;;
    postgres) postgres_floor "$where" ;;
    *)
        echo "$usage" >&2
        exit 2
        ;;
esac
