//! Row structs as both backends return them, and their conversion into domain types.
//!
//! Every column is TEXT, BIGINT, BOOLEAN or bytes, so one `#[derive(FromRow)]` decodes SQLite and PostgreSQL rows.

use super::StoreError;
use super::codec::{parse_date, parse_date_opt, parse_money, parse_money_opt, parse_ts, parse_ts_opt};
use crate::domain::*;
use crate::vault::Sealed;

fn parse_enum<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, StoreError> {
    s.parse().map_err(StoreError::corrupt)
}

#[derive(sqlx::FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub created_at: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: r.id,
            username: r.username,
            password_hash: r.password_hash,
            created_at: parse_ts(&r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub user_id: String,
    pub csrf_token: String,
    pub created_at: String,
    pub expires_at: String,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id_hash: r.id_hash,
            user_id: r.user_id,
            csrf_token: r.csrf_token,
            created_at: parse_ts(&r.created_at)?,
            expires_at: parse_ts(&r.expires_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
pub struct ApiTokenRow {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub token_hash: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl TryFrom<ApiTokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(r: ApiTokenRow) -> Result<Self, StoreError> {
        Ok(ApiToken {
            id: r.id,
            user_id: r.user_id,
            name: r.name,
            token_hash: r.token_hash,
            created_at: parse_ts(&r.created_at)?,
            last_used_at: parse_ts_opt(r.last_used_at.as_deref())?,
        })
    }
}

pub const ITEM_COLUMNS: &str = "id, item_id, user_id, institution_id, institution_name, access_token_ciphertext, \
    access_token_nonce, access_token_key_id, cursor, status, error_code, error_message, display_message, \
    consent_expires_at, disconnect_at, new_accounts_available, last_sync_at, last_successful_sync_at, created_at, \
    updated_at";

#[derive(sqlx::FromRow)]
pub struct ItemRow {
    pub id: String,
    pub item_id: String,
    pub user_id: String,
    pub institution_id: Option<String>,
    pub institution_name: Option<String>,
    pub access_token_ciphertext: Vec<u8>,
    pub access_token_nonce: Vec<u8>,
    pub access_token_key_id: String,
    pub cursor: Option<String>,
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub display_message: Option<String>,
    pub consent_expires_at: Option<String>,
    pub disconnect_at: Option<String>,
    pub new_accounts_available: bool,
    pub last_sync_at: Option<String>,
    pub last_successful_sync_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<ItemRow> for Item {
    type Error = StoreError;
    fn try_from(r: ItemRow) -> Result<Self, StoreError> {
        Ok(Item {
            id: r.id,
            item_id: r.item_id,
            user_id: r.user_id,
            institution_id: r.institution_id,
            institution_name: r.institution_name,
            access_token: Sealed {
                key_id: r.access_token_key_id,
                nonce: r.access_token_nonce,
                ciphertext: r.access_token_ciphertext,
            },
            cursor: r.cursor,
            status: parse_enum(&r.status)?,
            error_code: r.error_code,
            error_message: r.error_message,
            display_message: r.display_message,
            consent_expires_at: parse_ts_opt(r.consent_expires_at.as_deref())?,
            disconnect_at: parse_ts_opt(r.disconnect_at.as_deref())?,
            new_accounts_available: r.new_accounts_available,
            last_sync_at: parse_ts_opt(r.last_sync_at.as_deref())?,
            last_successful_sync_at: parse_ts_opt(r.last_successful_sync_at.as_deref())?,
            created_at: parse_ts(&r.created_at)?,
            updated_at: parse_ts(&r.updated_at)?,
        })
    }
}

/// Selected with `a.*`-style explicit columns plus the owning Item's Plaid id.
pub const ACCOUNT_COLUMNS: &str = "a.account_id, i.item_id, a.name, a.official_name, a.mask, a.type, a.subtype, \
    a.balance_available, a.balance_current, a.balance_limit, a.currency, a.currency_is_official, a.balance_as_of, \
    a.balance_source, a.removed, a.created_at, a.updated_at";

#[derive(sqlx::FromRow)]
pub struct AccountRow {
    pub account_id: String,
    pub item_id: String,
    pub name: String,
    pub official_name: Option<String>,
    pub mask: Option<String>,
    #[sqlx(rename = "type")]
    pub account_type: String,
    pub subtype: Option<String>,
    pub balance_available: Option<String>,
    pub balance_current: Option<String>,
    pub balance_limit: Option<String>,
    pub currency: Option<String>,
    pub currency_is_official: bool,
    pub balance_as_of: Option<String>,
    pub balance_source: String,
    pub removed: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<AccountRow> for Account {
    type Error = StoreError;
    fn try_from(r: AccountRow) -> Result<Self, StoreError> {
        Ok(Account {
            account_id: r.account_id,
            item_id: r.item_id,
            name: r.name,
            official_name: r.official_name,
            mask: r.mask,
            account_type: r.account_type,
            subtype: r.subtype,
            balances: Balances {
                available: parse_money_opt(r.balance_available.as_deref())?,
                current: parse_money_opt(r.balance_current.as_deref())?,
                limit: parse_money_opt(r.balance_limit.as_deref())?,
                currency: r.currency,
                currency_is_official: r.currency_is_official,
            },
            balance_as_of: parse_ts_opt(r.balance_as_of.as_deref())?,
            balance_source: parse_enum(&r.balance_source)?,
            removed: r.removed,
            created_at: parse_ts(&r.created_at)?,
            updated_at: parse_ts(&r.updated_at)?,
        })
    }
}

pub const TXN_COLUMNS: &str = "t.transaction_id, i.item_id, t.account_id, t.amount, t.currency, \
    t.currency_is_official, t.datetime, t.time_unknown, t.date, t.authorized_date, t.name, t.merchant_name, \
    t.display_name, t.logo_url, t.website, t.pfc_primary, t.pfc_detailed, t.pfc_confidence, t.pfc_icon_url, \
    t.payment_channel, t.pending, t.pending_transaction_id, t.counterparties, t.location, t.account_owner, t.raw, \
    t.user_note, t.user_category, t.created_at, t.updated_at";

#[derive(sqlx::FromRow)]
pub struct TxnRow {
    pub transaction_id: String,
    pub item_id: String,
    pub account_id: String,
    pub amount: String,
    pub currency: Option<String>,
    pub currency_is_official: bool,
    pub datetime: String,
    pub time_unknown: bool,
    pub date: String,
    pub authorized_date: Option<String>,
    pub name: String,
    pub merchant_name: Option<String>,
    pub display_name: String,
    pub logo_url: Option<String>,
    pub website: Option<String>,
    pub pfc_primary: Option<String>,
    pub pfc_detailed: Option<String>,
    pub pfc_confidence: Option<String>,
    pub pfc_icon_url: Option<String>,
    pub payment_channel: Option<String>,
    pub pending: bool,
    pub pending_transaction_id: Option<String>,
    pub counterparties: Option<String>,
    pub location: Option<String>,
    pub account_owner: Option<String>,
    pub raw: String,
    pub user_note: Option<String>,
    pub user_category: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<TxnRow> for Transaction {
    type Error = StoreError;
    fn try_from(r: TxnRow) -> Result<Self, StoreError> {
        Ok(Transaction {
            transaction_id: r.transaction_id,
            item_id: r.item_id,
            account_id: r.account_id,
            amount: parse_money(&r.amount)?,
            currency: r.currency,
            currency_is_official: r.currency_is_official,
            datetime: parse_ts(&r.datetime)?,
            time_unknown: r.time_unknown,
            date: parse_date(&r.date)?,
            authorized_date: parse_date_opt(r.authorized_date.as_deref())?,
            name: r.name,
            merchant_name: r.merchant_name,
            display_name: r.display_name,
            logo_url: r.logo_url,
            website: r.website,
            pfc_primary: r.pfc_primary,
            pfc_detailed: r.pfc_detailed,
            pfc_confidence: r.pfc_confidence,
            pfc_icon_url: r.pfc_icon_url,
            payment_channel: r.payment_channel,
            pending: r.pending,
            pending_transaction_id: r.pending_transaction_id,
            counterparties: r.counterparties,
            location: r.location,
            account_owner: r.account_owner,
            raw: r.raw,
            user_note: r.user_note,
            user_category: r.user_category,
            created_at: parse_ts(&r.created_at)?,
            updated_at: parse_ts(&r.updated_at)?,
        })
    }
}

pub const SYNC_RUN_COLUMNS: &str = "id, item_ref, triggered_by, started_at, finished_at, status, added, modified, \
    removed, pages, restarts, error_code, error_message";

#[derive(sqlx::FromRow)]
pub struct SyncRunRow {
    pub id: String,
    pub item_ref: String,
    pub triggered_by: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: String,
    pub added: i64,
    pub modified: i64,
    pub removed: i64,
    pub pages: i64,
    pub restarts: i64,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

impl TryFrom<SyncRunRow> for SyncRun {
    type Error = StoreError;
    fn try_from(r: SyncRunRow) -> Result<Self, StoreError> {
        Ok(SyncRun {
            id: r.id,
            item_ref: r.item_ref,
            triggered_by: r.triggered_by,
            started_at: parse_ts(&r.started_at)?,
            finished_at: parse_ts_opt(r.finished_at.as_deref())?,
            status: parse_enum(&r.status)?,
            added: r.added,
            modified: r.modified,
            removed: r.removed,
            pages: r.pages,
            restarts: r.restarts,
            error_code: r.error_code,
            error_message: r.error_message,
        })
    }
}

pub const PLAID_CALL_COLUMNS: &str =
    "endpoint, item_id, request_id, http_status, outcome, error_type, error_code, latency_ms, at";

#[derive(sqlx::FromRow)]
pub struct PlaidCallRow {
    pub endpoint: String,
    pub item_id: Option<String>,
    pub request_id: Option<String>,
    pub http_status: Option<i64>,
    pub outcome: String,
    pub error_type: Option<String>,
    pub error_code: Option<String>,
    pub latency_ms: i64,
    pub at: String,
}

impl TryFrom<PlaidCallRow> for PlaidCall {
    type Error = StoreError;
    fn try_from(r: PlaidCallRow) -> Result<Self, StoreError> {
        Ok(PlaidCall {
            endpoint: r.endpoint,
            item_id: r.item_id,
            request_id: r.request_id,
            http_status: r.http_status,
            outcome: r.outcome,
            error_type: r.error_type,
            error_code: r.error_code,
            latency_ms: r.latency_ms,
            at: parse_ts(&r.at)?,
        })
    }
}

pub const JOB_COLUMNS: &str = "id, kind, coalesce_key, user_id, item_id, payload, result, state, attempts, \
    max_attempts, run_after, lease_owner, lease_expires_at, last_error, created_at, updated_at";

#[derive(sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub kind: String,
    pub coalesce_key: Option<String>,
    pub user_id: Option<String>,
    pub item_id: Option<String>,
    pub payload: String,
    pub result: Option<String>,
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub run_after: String,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<String>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

impl TryFrom<JobRow> for Job {
    type Error = StoreError;
    fn try_from(r: JobRow) -> Result<Self, StoreError> {
        Ok(Job {
            id: r.id,
            kind: r.kind,
            coalesce_key: r.coalesce_key,
            user_id: r.user_id,
            item_id: r.item_id,
            payload: r.payload,
            result: r.result,
            state: parse_enum(&r.state)?,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            run_after: parse_ts(&r.run_after)?,
            lease_owner: r.lease_owner,
            lease_expires_at: parse_ts_opt(r.lease_expires_at.as_deref())?,
            last_error: r.last_error,
            created_at: parse_ts(&r.created_at)?,
            updated_at: parse_ts(&r.updated_at)?,
        })
    }
}

/// Converts a list of rows, failing on the first corrupt one.
pub fn convert_all<R, T: TryFrom<R, Error = StoreError>>(rows: Vec<R>) -> Result<Vec<T>, StoreError> {
    rows.into_iter().map(T::try_from).collect()
}
