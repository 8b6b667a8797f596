//! The shared state of the Plaid rate budget (`crate::budget`): one row per reserved call, blocks recorded after
//! Plaid answered 429 anyway, and named locks.
//!
//! Plaid's limits are sliding windows (per client and per Item, per endpoint). A call fits when fewer than the limit
//! were reserved in the last window, for the client and for the Item, and no block covers it. Checking and
//! inserting must be one atomic step for every process sharing the database, or two processes that both see one
//! free slot both take it: [`Store::reserve_call`] first upserts the endpoint's row in `named_locks`, which on
//! PostgreSQL holds a row lock until the transaction ends (READ COMMITTED: the statements after it see every
//! reservation committed before), and on SQLite takes the database's one write lock. The transaction is a handful
//! of short statements and never waits for anything but that lock: a caller that must wait for the window gets the
//! moment to try again ([`Reservation::Wait`]) and sleeps outside any transaction.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::codec::{parse_ts, ts};
use super::exec::Sql;
use super::{Backend, Result, Store, chrono_duration};

/// `$1` name, `$2` now. Upserting the row (either way) locks it until the transaction ends.
const LOCK: &str = "INSERT INTO named_locks (name, locked_at) VALUES ($1, $2) \
    ON CONFLICT (name) DO UPDATE SET locked_at = excluded.locked_at";
/// The `$3`-th newest (0-based) reservation of endpoint `$1` in the window starting after `$2`: when there is one,
/// the window holds at least `$3 + 1` calls.
const NTH_NEWEST_FOR_CLIENT: &str = "SELECT reserved_at FROM rate_reservations \
    WHERE endpoint = $1 AND reserved_at > $2 ORDER BY reserved_at DESC LIMIT 1 OFFSET $3";
const NTH_NEWEST_FOR_ITEM: &str = "SELECT reserved_at FROM rate_reservations \
    WHERE endpoint = $1 AND item_id = $2 AND reserved_at > $3 ORDER BY reserved_at DESC LIMIT 1 OFFSET $4";
/// The ends of the endpoint's blocks still running at `$3`: for every Item (`''`), and for the Item `$2`.
const BLOCKS: &str = "SELECT \
    (SELECT blocked_until FROM rate_blocks WHERE endpoint = $1 AND item_id = '' AND blocked_until > $3), \
    (SELECT blocked_until FROM rate_blocks WHERE endpoint = $1 AND item_id = $2 AND blocked_until > $3)";
const INSERT_RESERVATION: &str =
    "INSERT INTO rate_reservations (id, endpoint, item_id, reserved_at) VALUES ($1, $2, $3, $4)";
/// A block only ever grows.
const BLOCK: &str = "INSERT INTO rate_blocks (endpoint, item_id, blocked_until) VALUES ($1, $2, $3) \
    ON CONFLICT (endpoint, item_id) DO UPDATE SET blocked_until = CASE \
    WHEN excluded.blocked_until > rate_blocks.blocked_until THEN excluded.blocked_until \
    ELSE rate_blocks.blocked_until END";
const PRUNE_RESERVATIONS: &str = "DELETE FROM rate_reservations WHERE reserved_at < $1";
const PRUNE_BLOCKS: &str = "DELETE FROM rate_blocks WHERE blocked_until < $1";
const COUNT_FOR_CLIENT: &str = "SELECT COUNT(*) FROM rate_reservations WHERE endpoint = $1 AND reserved_at > $2";
const COUNT_FOR_ITEM: &str =
    "SELECT COUNT(*) FROM rate_reservations WHERE endpoint = $1 AND item_id = $2 AND reserved_at > $3";

/// One endpoint's limits: calls per sliding `window`, per Item and per client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimit {
    pub per_item: u32,
    pub per_client: u32,
    pub window: Duration,
}

/// The answer of [`Store::reserve_call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The call is counted: make it now.
    Reserved,
    /// No room before `until` (a window full, or a block); nothing was reserved. `client_wide`: what ends last is
    /// a limit of the whole client (every Item waits for it), not only of this Item.
    Wait { until: DateTime<Utc>, client_wide: bool },
}

impl Store {
    /// Reserves one call of `endpoint` for Plaid Item `item_id` at `now` if it fits `limit`'s windows and no block;
    /// else says when to try again. Atomic across every process sharing the database (see the module header).
    pub async fn reserve_call(
        &self,
        endpoint: &str,
        item_id: &str,
        limit: CallLimit,
        now: DateTime<Utc>,
    ) -> Result<Reservation> {
        let now_text = ts(now);
        let since = ts(now - chrono_duration(limit.window));
        let mut tx = self.writer.begin().await?;
        tx.execute(&Sql::new(LOCK).bind(lock_name(endpoint)).bind(&now_text)).await?;
        let client =
            Sql::new(NTH_NEWEST_FOR_CLIENT).bind(endpoint).bind(&since).bind(i64::from(limit.per_client.max(1) - 1));
        let client_full: Option<(String,)> = tx.fetch_optional(&client).await?;
        let item = Sql::new(NTH_NEWEST_FOR_ITEM)
            .bind(endpoint)
            .bind(item_id)
            .bind(&since)
            .bind(i64::from(limit.per_item.max(1) - 1));
        let item_full: Option<(String,)> = tx.fetch_optional(&item).await?;
        let mut constraints = Vec::new();
        if let Some((at,)) = client_full {
            constraints.push((parse_ts(&at)? + chrono_duration(limit.window), true));
        }
        if let Some((at,)) = item_full {
            constraints.push((parse_ts(&at)? + chrono_duration(limit.window), false));
        }
        let blocks: Option<(Option<String>, Option<String>)> =
            tx.fetch_optional(&Sql::new(BLOCKS).bind(endpoint).bind(item_id).bind(&now_text)).await?;
        let (client_block, item_block) = blocks.unwrap_or_default();
        if let Some(until) = client_block {
            constraints.push((parse_ts(&until)?, true));
        }
        if let Some(until) = item_block {
            constraints.push((parse_ts(&until)?, false));
        }
        let verdict = decide(now, &constraints);
        if verdict == Reservation::Reserved {
            let id = uuid::Uuid::new_v4().to_string();
            tx.execute(&Sql::new(INSERT_RESERVATION).bind(&id).bind(endpoint).bind(item_id).bind(&now_text)).await?;
        }
        tx.commit().await?;
        Ok(verdict)
    }

    /// No call of `endpoint` (for `item_id`, or for every Item when `None`) before `until`, in any process.
    pub async fn block_calls(&self, endpoint: &str, item_id: Option<&str>, until: DateTime<Utc>) -> Result<()> {
        let block = Sql::new(BLOCK).bind(endpoint).bind(item_id.unwrap_or_default()).bind(ts(until));
        self.writer.execute(&block).await?;
        Ok(())
    }

    /// Calls of `endpoint` reserved after `since`, for one Item or (`None`) the whole client.
    pub async fn count_reserved_calls(
        &self,
        endpoint: &str,
        item_id: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<u64> {
        let count = match item_id {
            Some(item_id) => Sql::new(COUNT_FOR_ITEM).bind(endpoint).bind(item_id).bind(ts(since)),
            None => Sql::new(COUNT_FOR_CLIENT).bind(endpoint).bind(ts(since)),
        };
        let (n,): (i64,) = self.writer.fetch_one(&count).await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// Deletes reservations made and blocks ended before `before`; returns how many rows went.
    pub async fn prune_call_budget(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = ts(before);
        let reservations = self.writer.execute(&Sql::new(PRUNE_RESERVATIONS).bind(&before)).await?;
        let blocks = self.writer.execute(&Sql::new(PRUNE_BLOCKS).bind(&before)).await?;
        Ok(reservations + blocks)
    }

    /// Runs `f` while holding the named lock `name`, so that two processes sharing a PostgreSQL database never run
    /// it at once (e.g. "is this refresh already running? if not, record it"). On PostgreSQL the lock is a row lock
    /// held by a transaction on one connection while `f` uses others. On SQLite `f` runs as is: its statements are
    /// serialized by the database's single writer, and holding a write transaction here would take the one writer
    /// connection `f` needs.
    pub async fn serialized<T>(&self, name: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
        if self.backend == Backend::Sqlite {
            return f.await;
        }
        let mut tx = self.writer.begin().await?;
        tx.execute(&Sql::new(LOCK).bind(name).bind(ts(Utc::now()))).await?;
        let out = f.await;
        tx.commit().await?;
        out
    }
}

fn lock_name(endpoint: &str) -> String {
    format!("rate_budget:{endpoint}")
}

/// The verdict for a call at `now` given the moments each constraint lifts (`true` = client-wide): it fits when all
/// have lifted, else it waits for the last one.
fn decide(now: DateTime<Utc>, constraints: &[(DateTime<Utc>, bool)]) -> Reservation {
    constraints
        .iter()
        .filter(|(until, _)| *until > now)
        .max_by_key(|(until, client_wide)| (*until, *client_wide))
        .map_or(Reservation::Reserved, |&(until, client_wide)| Reservation::Wait { until, client_wide })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_call_waits_for_the_last_constraint_to_lift() {
        assert_eq!(decide(at(0), &[]), Reservation::Reserved);
        // Lifted constraints (the window moved on, a block ended) do not count.
        assert_eq!(decide(at(10), &[(at(10), true), (at(5), false)]), Reservation::Reserved);
        assert_eq!(
            decide(at(0), &[(at(30), true), (at(45), false)]),
            Reservation::Wait { until: at(45), client_wide: false }
        );
        assert_eq!(
            decide(at(0), &[(at(30), false), (at(45), true), (at(-1), false)]),
            Reservation::Wait { until: at(45), client_wide: true }
        );
        // A tie is the client's: every Item waits for it anyway.
        assert_eq!(
            decide(at(0), &[(at(30), false), (at(30), true)]),
            Reservation::Wait { until: at(30), client_wide: true }
        );
    }
}
