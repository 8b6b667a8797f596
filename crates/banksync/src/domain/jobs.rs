//! The durable job queue's jobs.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{JobId, PlaidItemId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Done,
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown job state {other:?}")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewJob {
    pub kind: String,
    /// Jobs with the same (kind, coalesce_key) coalesce while queued; `None` never coalesces.
    pub coalesce_key: Option<String>,
    pub user_id: Option<UserId>,
    /// Plaid's item_id, when the job concerns one Item.
    pub item_id: Option<PlaidItemId>,
    /// JSON text.
    pub payload: String,
    pub run_after: DateTime<Utc>,
    pub max_attempts: i64,
}

impl NewJob {
    /// A job to run now, coalescing per (kind, item).
    pub fn for_item(kind: &str, item_id: &PlaidItemId) -> Self {
        Self {
            kind: kind.to_owned(),
            coalesce_key: Some(item_id.to_string()),
            user_id: None,
            item_id: Some(item_id.clone()),
            payload: "{}".to_owned(),
            run_after: Utc::now(),
            max_attempts: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub job_id: JobId,
    /// True when an identical queued job existed and this request joined it.
    pub coalesced: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub coalesce_key: Option<String>,
    pub user_id: Option<UserId>,
    pub item_id: Option<PlaidItemId>,
    pub payload: String,
    pub result: Option<String>,
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
