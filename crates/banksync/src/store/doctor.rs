//! The database side of `banksync doctor`: jobs that are stuck, and Items that need their owner.

use super::codec::{self, parse_ts_opt};
use super::exec::Sql;
use super::{Result, Store};

const JOB_HEALTH: &str = "SELECT \
    (SELECT COUNT(*) FROM jobs WHERE state = 'running' AND lease_expires_at < $1) AS expired_leases, \
    (SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND run_after < $2) AS overdue, \
    (SELECT COUNT(*) FROM jobs WHERE state = 'failed' AND updated_at > $3) AS failed_recently, \
    (SELECT COUNT(*) FROM jobs WHERE state = 'running' AND lease_expires_at >= $1) AS running";

const ITEMS_ATTENTION: &str = "SELECT i.item_id, i.institution_name, i.status, i.error_code, i.consent_expires_at, \
    i.new_accounts_available, s.stalled_at, s.stalled_message FROM items i \
    LEFT JOIN item_sync_state s ON s.item_id = i.id ORDER BY i.item_id";

/// Counts of the job queue's trouble spots.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct JobHealth {
    /// Running, but the worker's lease ran out (a crashed worker; they are retried while attempts remain).
    pub expired_leases: i64,
    /// Queued and due for over `overdue_after`: no worker is taking jobs.
    pub overdue: i64,
    /// Failed for good in the last day.
    pub failed_recently: i64,
    /// Running under a live lease (a server is working).
    pub running: i64,
}

/// An Item and what may be wrong with it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ItemAttention {
    pub item_id: String,
    pub institution: Option<String>,
    pub status: String,
    pub error_code: Option<String>,
    pub consent_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub new_accounts_available: bool,
    pub stalled_at: Option<chrono::DateTime<chrono::Utc>>,
    pub stalled_message: Option<String>,
}

type AttentionRow =
    (String, Option<String>, String, Option<String>, Option<String>, bool, Option<String>, Option<String>);

impl Store {
    pub async fn job_health(&self, overdue_after: chrono::Duration) -> Result<JobHealth> {
        let now = codec::now();
        let (expired_leases, overdue, failed_recently, running): (i64, i64, i64, i64) = self
            .reader
            .fetch_one(
                &Sql::new(JOB_HEALTH)
                    .bind(codec::ts(now))
                    .bind(codec::ts(now - overdue_after))
                    .bind(codec::ts(now - chrono::Duration::days(1))),
            )
            .await?;
        Ok(JobHealth { expired_leases, overdue, failed_recently, running })
    }

    /// Every Item with its health fields (the caller decides what needs attention).
    pub async fn items_for_doctor(&self) -> Result<Vec<ItemAttention>> {
        let rows: Vec<AttentionRow> = self.reader.fetch_all(&Sql::new(ITEMS_ATTENTION)).await?;
        rows.into_iter()
            .map(|(item_id, institution, status, error_code, consent, new_accounts, stalled_at, stalled_message)| {
                Ok(ItemAttention {
                    item_id,
                    institution,
                    status,
                    error_code,
                    consent_expires_at: parse_ts_opt(consent.as_deref())?,
                    new_accounts_available: new_accounts,
                    stalled_at: parse_ts_opt(stalled_at.as_deref())?,
                    stalled_message,
                })
            })
            .collect()
    }
}
