//! Per-Item sync rules and progress (`item_sync_state`) and the service's learned facts (`service_facts`). Every
//! check-and-set is one statement, so two processes (or two clicks) cannot both pass a cooldown.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::codec::{self, parse_enum, parse_ts_opt};
use super::exec::Sql;
use super::{Result, Store, chrono_duration};
use crate::domain::{ItemRef, SyncPhase, SyncState, UserId};

const COLUMNS: &str = "s.phase, s.waiting_since, s.follow_ups, s.stalled_at, s.stalled_message, s.cooldown_until, \
    s.hold_until, s.institution_updated_at";

/// $1 item, $2 cooldown end, $3 now. Affects no row while a cooldown is running.
const CLAIM_COOLDOWN: &str = "INSERT INTO item_sync_state (item_id, cooldown_until, updated_at) VALUES ($1, $2, $3) \
    ON CONFLICT (item_id) DO UPDATE SET cooldown_until = excluded.cooldown_until, updated_at = excluded.updated_at \
    WHERE item_sync_state.cooldown_until IS NULL OR item_sync_state.cooldown_until <= excluded.updated_at";
const RELEASE_COOLDOWN: &str = "UPDATE item_sync_state SET cooldown_until = NULL, updated_at = $2 WHERE item_id = $1";
/// $1 item, $2 hold end, $3 now. A longer hold already in place stays.
const HOLD: &str = "INSERT INTO item_sync_state (item_id, hold_until, updated_at) VALUES ($1, $2, $3) \
    ON CONFLICT (item_id) DO UPDATE SET updated_at = excluded.updated_at, hold_until = CASE \
    WHEN item_sync_state.hold_until IS NOT NULL AND item_sync_state.hold_until > excluded.hold_until \
    THEN item_sync_state.hold_until ELSE excluded.hold_until END";
/// $1 item, $2 phase, $3 now.
const RECORD_WAITING: &str = "INSERT INTO item_sync_state (item_id, phase, waiting_since, updated_at) \
    VALUES ($1, $2, $3, $3) ON CONFLICT (item_id) DO UPDATE SET phase = excluded.phase, \
    waiting_since = COALESCE(item_sync_state.waiting_since, excluded.waiting_since), updated_at = excluded.updated_at";
const RECORD_COMPLETE: &str = "INSERT INTO item_sync_state (item_id, phase, updated_at) VALUES ($1, $2, $3) \
    ON CONFLICT (item_id) DO UPDATE SET phase = excluded.phase, waiting_since = NULL, follow_ups = 0, \
    stalled_at = NULL, stalled_message = NULL, updated_at = excluded.updated_at";
const COUNT_FOLLOW_UP: &str = "UPDATE item_sync_state SET follow_ups = follow_ups + 1, updated_at = $2 \
    WHERE item_id = $1 RETURNING follow_ups";
const MARK_STALLED: &str = "UPDATE item_sync_state SET stalled_at = COALESCE(stalled_at, $3), stalled_message = $2, \
    updated_at = $3 WHERE item_id = $1";
const INSTITUTION_UPDATED: &str = "INSERT INTO item_sync_state (item_id, institution_updated_at, updated_at) \
    VALUES ($1, $2, $3) ON CONFLICT (item_id) DO UPDATE SET institution_updated_at = excluded.institution_updated_at, \
    updated_at = excluded.updated_at";
const GET_FACT: &str = "SELECT value FROM service_facts WHERE key = $1";
const SET_FACT: &str = "INSERT INTO service_facts (key, value, updated_at) VALUES ($1, $2, $3) \
    ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at";

impl Store {
    /// The Item's sync state (all empty before its first sync).
    pub async fn sync_state(&self, item: &ItemRef) -> Result<SyncState> {
        let select = Sql::new(format!("SELECT {COLUMNS} FROM item_sync_state s WHERE s.item_id = $1")).bind(item);
        match self.reader.fetch_optional::<StateRow>(&select).await? {
            Some(row) => row.try_into(),
            None => Ok(SyncState::default()),
        }
    }

    /// The sync state of each of the user's Items that has one.
    pub async fn sync_states_of_user(&self, user: &UserId) -> Result<HashMap<ItemRef, SyncState>> {
        let select = Sql::new(format!(
            "SELECT s.item_id, {COLUMNS} FROM item_sync_state s JOIN items i ON i.id = s.item_id WHERE i.user_id = $1"
        ))
        .bind(user);
        let rows: Vec<KeyedStateRow> = self.reader.fetch_all(&select).await?;
        rows.into_iter().map(|r| Ok((ItemRef::from(r.item_id.as_str()), r.state.try_into()?))).collect()
    }

    /// Starts the Item's manual-sync cooldown of `period`, or says how long the running one still lasts.
    pub async fn claim_sync_cooldown(
        &self,
        item: &ItemRef,
        period: Duration,
    ) -> Result<std::result::Result<(), Duration>> {
        let now = codec::now();
        let claim =
            Sql::new(CLAIM_COOLDOWN).bind(item).bind(codec::ts(now + chrono_duration(period))).bind(codec::ts(now));
        if self.writer.execute(&claim).await? == 1 {
            return Ok(Ok(()));
        }
        // Never "0 s left": the cooldown that refused us ends within the second at the earliest.
        let left = self.sync_state(item).await?.cooldown_remaining(now).max(Duration::from_secs(1));
        Ok(Err(left))
    }

    /// Ends the cooldown early (the sync it guarded brought nothing: not ready, or failed).
    pub async fn release_sync_cooldown(&self, item: &ItemRef) -> Result<()> {
        self.writer.execute(&Sql::new(RELEASE_COOLDOWN).bind(item).bind(codec::ts(codec::now()))).await.map(drop)
    }

    /// No sync of the Item before `until` (Plaid rate-limited it); a later hold already set stays.
    pub async fn hold_syncs(&self, item: &ItemRef, until: DateTime<Utc>) -> Result<()> {
        let hold = Sql::new(HOLD).bind(item).bind(codec::ts(until)).bind(codec::ts(codec::now()));
        self.writer.execute(&hold).await.map(drop)
    }

    /// Records the phase a sync found. While Plaid's data is still coming, the wait's start is kept; once it is
    /// complete, the wait, its follow-up count and any stall are cleared. Returns the new state.
    pub async fn record_sync_phase(&self, item: &ItemRef, phase: SyncPhase) -> Result<SyncState> {
        let statement = if phase.awaits_data() { RECORD_WAITING } else { RECORD_COMPLETE };
        let record = Sql::new(statement).bind(item).bind(phase.as_str()).bind(codec::ts(codec::now()));
        self.writer.execute(&record).await?;
        self.sync_state(item).await
    }

    /// Counts one more follow-up sync; returns how many there have been in this wait.
    pub async fn count_follow_up(&self, item: &ItemRef) -> Result<i64> {
        let count = Sql::new(COUNT_FOLLOW_UP).bind(item).bind(codec::ts(codec::now()));
        Ok(self.writer.fetch_optional::<(i64,)>(&count).await?.map_or(0, |(n,)| n))
    }

    /// Marks the wait for Plaid's data as stalled (the first time is kept), with what to tell the user.
    pub async fn mark_sync_stalled(&self, item: &ItemRef, message: &str) -> Result<()> {
        let mark = Sql::new(MARK_STALLED).bind(item).bind(message).bind(codec::ts(codec::now()));
        self.writer.execute(&mark).await.map(drop)
    }

    pub async fn set_institution_updated_at(&self, item: &ItemRef, at: DateTime<Utc>) -> Result<()> {
        let set = Sql::new(INSTITUTION_UPDATED).bind(item).bind(codec::ts(at)).bind(codec::ts(codec::now()));
        self.writer.execute(&set).await.map(drop)
    }

    pub async fn service_fact(&self, key: &str) -> Result<Option<String>> {
        Ok(self.reader.fetch_optional::<(String,)>(&Sql::new(GET_FACT).bind(key)).await?.map(|(v,)| v))
    }

    pub async fn set_service_fact(&self, key: &str, value: &str) -> Result<()> {
        let set = Sql::new(SET_FACT).bind(key).bind(value).bind(codec::ts(codec::now()));
        self.writer.execute(&set).await.map(drop)
    }
}

#[derive(sqlx::FromRow)]
struct StateRow {
    phase: Option<String>,
    waiting_since: Option<String>,
    follow_ups: i64,
    stalled_at: Option<String>,
    stalled_message: Option<String>,
    cooldown_until: Option<String>,
    hold_until: Option<String>,
    institution_updated_at: Option<String>,
}

#[derive(sqlx::FromRow)]
struct KeyedStateRow {
    item_id: String,
    #[sqlx(flatten)]
    state: StateRow,
}

impl TryFrom<StateRow> for SyncState {
    type Error = super::StoreError;
    fn try_from(r: StateRow) -> Result<Self> {
        Ok(SyncState {
            phase: r.phase.as_deref().map(parse_enum).transpose()?,
            waiting_since: parse_ts_opt(r.waiting_since.as_deref())?,
            follow_ups: r.follow_ups,
            stalled_at: parse_ts_opt(r.stalled_at.as_deref())?,
            stalled_message: r.stalled_message,
            cooldown_until: parse_ts_opt(r.cooldown_until.as_deref())?,
            hold_until: parse_ts_opt(r.hold_until.as_deref())?,
            institution_updated_at: parse_ts_opt(r.institution_updated_at.as_deref())?,
        })
    }
}
