//! The record of each sync of an Item.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::ItemRef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncRunStatus {
    Running,
    Succeeded,
    Failed,
}

impl SyncRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for SyncRunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "running" => Ok(Self::Running),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            other => Err(format!("unknown sync run status {other:?}")),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SyncRun {
    pub id: String,
    pub item_ref: ItemRef,
    pub triggered_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub status: SyncRunStatus,
    pub added: i64,
    pub modified: i64,
    pub removed: i64,
    pub pages: i64,
    pub restarts: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct SyncRunOutcome {
    pub succeeded: bool,
    pub added: i64,
    pub modified: i64,
    pub removed: i64,
    pub pages: i64,
    pub restarts: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}
