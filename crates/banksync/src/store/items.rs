//! Items: one login at one bank, as Plaid links it.

use super::codec::{self, parse_enum, parse_ts, parse_ts_opt};
use super::exec::Sql;
use super::{Result, Store, StoreError, one_row};
use crate::domain::{Item, ItemHealth, ItemRef, NewItem, PlaidItemId, UserId};
use crate::vault::Sealed;

const INSERT_ITEM: &str = "INSERT INTO items (id, item_id, user_id, institution_id, institution_name, \
    access_token_ciphertext, access_token_nonce, access_token_key_id, status, new_accounts_available, created_at, \
    updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'good', FALSE, $9, $9)";
const UPDATE_ITEM_STATUS: &str = "UPDATE items SET status = $2, error_code = $3, error_message = $4, \
    display_message = $5, disconnect_at = $6, updated_at = $7 WHERE id = $1";
const UPDATE_ITEM_CONSENT: &str = "UPDATE items SET consent_expires_at = $2, updated_at = $3 WHERE id = $1";
const UPDATE_ITEM_NEW_ACCOUNTS: &str = "UPDATE items SET new_accounts_available = $2, updated_at = $3 WHERE id = $1";
const UPDATE_ITEM_TOKEN: &str = "UPDATE items SET access_token_ciphertext = $2, access_token_nonce = $3, \
    access_token_key_id = $4, updated_at = $5 WHERE id = $1";
/// The re-seal's compare-and-set: applies only while the Item still holds the record the re-seal read.
const RESEAL_ITEM_TOKEN: &str = "UPDATE items SET access_token_ciphertext = $2, access_token_nonce = $3, \
    access_token_key_id = $4, updated_at = $5 WHERE id = $1 AND access_token_ciphertext = $6 \
    AND access_token_nonce = $7 AND access_token_key_id = $8";
const RESET_ITEM_CURSOR: &str = "UPDATE items SET cursor = NULL, updated_at = $2 WHERE id = $1";
const DELETE_ITEM: &str = "DELETE FROM items WHERE item_id = $1 AND user_id = $2";
const ITEM_COLUMNS: &str = "id, item_id, user_id, institution_id, institution_name, access_token_ciphertext, \
    access_token_nonce, access_token_key_id, cursor, status, error_code, error_message, display_message, \
    consent_expires_at, disconnect_at, new_accounts_available, last_sync_at, last_successful_sync_at, created_at, \
    updated_at, replaces_item_id, relink_report";

impl Store {
    /// `Conflict` when Plaid's item_id is already stored.
    pub async fn insert_item(&self, item: &NewItem) -> Result<Item> {
        let id = ItemRef::new(uuid::Uuid::new_v4().to_string());
        let insert = Sql::new(INSERT_ITEM)
            .bind(&id)
            .bind(&item.item_id)
            .bind(&item.user_id)
            .bind(&item.institution_id)
            .bind(&item.institution_name)
            .bind(&item.access_token.ciphertext)
            .bind(&item.access_token.nonce)
            .bind(&item.access_token.key_id)
            .bind(codec::ts(codec::now()));
        self.writer.execute(&insert).await.map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict("this Item is already linked".into()),
            other => other,
        })?;
        self.fetch_items("WHERE id = $1", &[id.as_str()]).await?.pop().ok_or(StoreError::NotFound)
    }

    /// The user's Item at that institution, to refuse linking it twice.
    pub async fn find_item_by_institution(&self, user_id: &UserId, institution_id: &str) -> Result<Option<Item>> {
        let found =
            self.fetch_items("WHERE user_id = $1 AND institution_id = $2", &[user_id.as_str(), institution_id]).await?;
        Ok(found.into_iter().next())
    }

    pub async fn get_item(&self, user_id: &UserId, item_id: &PlaidItemId) -> Result<Item> {
        self.fetch_items("WHERE item_id = $1 AND user_id = $2", &[item_id.as_str(), user_id.as_str()])
            .await?
            .pop()
            .ok_or(StoreError::NotFound)
    }

    /// Unscoped, for webhooks and jobs.
    pub async fn get_item_by_plaid_id(&self, item_id: &PlaidItemId) -> Result<Option<Item>> {
        Ok(self.fetch_items("WHERE item_id = $1", &[item_id.as_str()]).await?.pop())
    }

    pub async fn list_items(&self, user_id: &UserId) -> Result<Vec<Item>> {
        self.fetch_items("WHERE user_id = $1", &[user_id.as_str()]).await
    }

    /// Every Item of every user, for the scheduler and key rotation.
    pub async fn list_all_items(&self) -> Result<Vec<Item>> {
        self.fetch_items("", &[]).await
    }

    pub async fn update_item_status(&self, item_ref: &ItemRef, h: &ItemHealth) -> Result<()> {
        let update = Sql::new(UPDATE_ITEM_STATUS)
            .bind(item_ref)
            .bind(h.status.as_str())
            .bind(&h.error_code)
            .bind(&h.error_message)
            .bind(&h.display_message)
            .bind(codec::ts_opt(h.disconnect_at))
            .bind(codec::ts(chrono::Utc::now()));
        one_row(self.writer.execute(&update).await?)
    }

    pub async fn set_item_consent_expiration(
        &self,
        item_ref: &ItemRef,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<()> {
        let update =
            Sql::new(UPDATE_ITEM_CONSENT).bind(item_ref).bind(codec::ts_opt(at)).bind(codec::ts(chrono::Utc::now()));
        one_row(self.writer.execute(&update).await?)
    }

    pub async fn set_new_accounts_available(&self, item_ref: &ItemRef, available: bool) -> Result<()> {
        let update =
            Sql::new(UPDATE_ITEM_NEW_ACCOUNTS).bind(item_ref).bind(available).bind(codec::ts(chrono::Utc::now()));
        one_row(self.writer.execute(&update).await?)
    }

    /// Re-sealed access token (key rotation, or a new token from Plaid).
    pub async fn update_item_access_token(&self, item_ref: &ItemRef, sealed: &Sealed) -> Result<()> {
        let update = Sql::new(UPDATE_ITEM_TOKEN)
            .bind(item_ref)
            .bind(&sealed.ciphertext)
            .bind(&sealed.nonce)
            .bind(&sealed.key_id)
            .bind(codec::ts(chrono::Utc::now()));
        one_row(self.writer.execute(&update).await?)
    }

    /// Replaces the Item's sealed access token with `sealed` only if it is still `expected` (compare-and-set): a key
    /// re-seal must never overwrite a token that changed after it was read (a new token from an update-mode relink).
    /// `Ok(false)` when it changed (or the Item is gone): nothing was written.
    pub async fn reseal_item_access_token(
        &self,
        item_ref: &ItemRef,
        expected: &Sealed,
        sealed: &Sealed,
    ) -> Result<bool> {
        let update = Sql::new(RESEAL_ITEM_TOKEN)
            .bind(item_ref)
            .bind(&sealed.ciphertext)
            .bind(&sealed.nonce)
            .bind(&sealed.key_id)
            .bind(codec::ts(chrono::Utc::now()))
            .bind(&expected.ciphertext)
            .bind(&expected.nonce)
            .bind(&expected.key_id);
        Ok(self.writer.execute(&update).await? == 1)
    }

    /// Forgets the cursor so the next sync starts from scratch.
    pub async fn reset_item_cursor(&self, item_ref: &ItemRef) -> Result<()> {
        one_row(
            self.writer
                .execute(&Sql::new(RESET_ITEM_CURSOR).bind(item_ref).bind(codec::ts(chrono::Utc::now())))
                .await?,
        )
    }

    /// Deletes the Item with its accounts, transactions and sync runs (foreign keys cascade).
    pub async fn delete_item(&self, user_id: &UserId, item_id: &PlaidItemId) -> Result<()> {
        one_row(self.writer.execute(&Sql::new(DELETE_ITEM).bind(item_id).bind(user_id)).await?)
    }

    async fn fetch_items(&self, where_clause: &str, binds: &[&str]) -> Result<Vec<Item>> {
        let mut select = Sql::new(format!("SELECT {ITEM_COLUMNS} FROM items {where_clause} ORDER BY created_at, id"));
        for b in binds {
            select = select.bind(*b);
        }
        let rows: Vec<ItemRow> = self.reader.fetch_all(&select).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

#[derive(sqlx::FromRow)]
struct ItemRow {
    id: String,
    item_id: String,
    user_id: String,
    institution_id: Option<String>,
    institution_name: Option<String>,
    access_token_ciphertext: Vec<u8>,
    access_token_nonce: Vec<u8>,
    access_token_key_id: String,
    cursor: Option<String>,
    status: String,
    error_code: Option<String>,
    error_message: Option<String>,
    display_message: Option<String>,
    consent_expires_at: Option<String>,
    disconnect_at: Option<String>,
    new_accounts_available: bool,
    last_sync_at: Option<String>,
    last_successful_sync_at: Option<String>,
    created_at: String,
    updated_at: String,
    replaces_item_id: Option<String>,
    relink_report: Option<String>,
}

impl TryFrom<ItemRow> for Item {
    type Error = StoreError;
    fn try_from(r: ItemRow) -> Result<Self, StoreError> {
        Ok(Item {
            id: r.id.into(),
            item_id: r.item_id.into(),
            user_id: r.user_id.into(),
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
            replaces_item_id: r.replaces_item_id.map(Into::into),
            relink_report: r
                .relink_report
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|e| StoreError::corrupt(format_args!("items.relink_report: {e}")))?,
        })
    }
}
