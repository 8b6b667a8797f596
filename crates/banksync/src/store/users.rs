//! Users, their sessions and API tokens.

use super::codec::{self, parse_ts, parse_ts_opt};
use super::exec::Sql;
use super::{Result, Store, StoreError, one_row};
use crate::domain::{ApiToken, NewSession, Session, User, UserId};

const INSERT_USER: &str = "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4)";
const USER_BY_NAME: &str = "SELECT id, username, password_hash, created_at FROM users WHERE username = $1";
const USER_BY_ID: &str = "SELECT id, username, password_hash, created_at FROM users WHERE id = $1";
const ALL_USERS: &str = "SELECT id, username, password_hash, created_at FROM users ORDER BY username";

const INSERT_SESSION: &str =
    "INSERT INTO sessions (id_hash, user_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)";
const FIND_SESSION: &str = "SELECT id_hash, user_id, csrf_token, created_at, expires_at FROM sessions \
    WHERE id_hash = $1 AND expires_at > $2";
const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";
const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";

const INSERT_API_TOKEN: &str =
    "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
const API_TOKEN_OWNER: &str = "SELECT user_id, last_used_at FROM api_tokens WHERE token_hash = $1";
const TOUCH_API_TOKEN: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1";
const LIST_API_TOKENS: &str = "SELECT id, user_id, name, token_hash, created_at, last_used_at FROM api_tokens \
    WHERE user_id = $1 ORDER BY created_at, id";
const DELETE_API_TOKEN: &str = "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2";

impl Store {
    /// `Conflict` when the username is taken.
    pub async fn create_user(&self, username: &str, password_hash: &str) -> Result<User> {
        let user = User {
            id: UserId::new(uuid::Uuid::new_v4().to_string()),
            username: username.to_owned(),
            password_hash: password_hash.to_owned(),
            created_at: codec::now(),
        };
        let insert = Sql::new(INSERT_USER)
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(codec::ts(user.created_at));
        self.writer.execute(&insert).await.map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict(format!("user {username:?} already exists")),
            other => other,
        })?;
        Ok(user)
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>> {
        let row: Option<UserRow> = self.reader.fetch_optional(&Sql::new(USER_BY_NAME).bind(username)).await?;
        row.map(TryInto::try_into).transpose()
    }

    pub async fn get_user(&self, user_id: &UserId) -> Result<User> {
        self.reader.fetch_one::<UserRow>(&Sql::new(USER_BY_ID).bind(user_id)).await?.try_into()
    }

    /// Every user, by name (the CLI picks the only one when no `--user` is given).
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = self.reader.fetch_all(&Sql::new(ALL_USERS)).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub async fn create_session(&self, s: &NewSession) -> Result<Session> {
        let created_at = codec::now();
        let insert = Sql::new(INSERT_SESSION)
            .bind(&s.id_hash)
            .bind(&s.user_id)
            .bind(&s.csrf_token)
            .bind(codec::ts(created_at))
            .bind(codec::ts(s.expires_at));
        self.writer.execute(&insert).await?;
        Ok(Session {
            id_hash: s.id_hash.clone(),
            user_id: s.user_id.clone(),
            csrf_token: s.csrf_token.clone(),
            created_at,
            expires_at: parse_ts(&codec::ts(s.expires_at))?,
        })
    }

    /// The session if it exists and has not expired.
    pub async fn find_session(&self, id_hash: &str) -> Result<Option<Session>> {
        let find = Sql::new(FIND_SESSION).bind(id_hash).bind(codec::ts(chrono::Utc::now()));
        let row: Option<SessionRow> = self.reader.fetch_optional(&find).await?;
        row.map(TryInto::try_into).transpose()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.writer.execute(&Sql::new(DELETE_SESSION).bind(id_hash)).await?;
        Ok(())
    }

    pub async fn delete_expired_sessions(&self) -> Result<u64> {
        self.writer.execute(&Sql::new(DELETE_EXPIRED_SESSIONS).bind(codec::ts(chrono::Utc::now()))).await
    }

    pub async fn create_api_token(&self, user_id: &UserId, name: &str, token_hash: &str) -> Result<ApiToken> {
        let token = ApiToken {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.clone(),
            name: name.to_owned(),
            token_hash: token_hash.to_owned(),
            created_at: codec::now(),
            last_used_at: None,
        };
        let insert = Sql::new(INSERT_API_TOKEN)
            .bind(&token.id)
            .bind(&token.user_id)
            .bind(&token.name)
            .bind(&token.token_hash)
            .bind(codec::ts(token.created_at));
        self.writer.execute(&insert).await?;
        Ok(token)
    }

    /// The token's owner, recording the use.
    pub async fn find_user_by_api_token_hash(&self, token_hash: &str) -> Result<Option<User>> {
        let owner: Option<(String, Option<String>)> =
            self.reader.fetch_optional(&Sql::new(API_TOKEN_OWNER).bind(token_hash)).await?;
        let Some((user_id, last_used_at)) = owner else {
            return Ok(None);
        };
        // Record the use at most once a minute, so authenticated reads do not queue behind the writer.
        let now = chrono::Utc::now();
        let stale = codec::ts(now - chrono::Duration::minutes(1));
        if last_used_at.is_none_or(|t| t < stale) {
            self.writer.execute(&Sql::new(TOUCH_API_TOKEN).bind(token_hash).bind(codec::ts(now))).await?;
        }
        Ok(Some(self.get_user(&UserId::from(user_id)).await?))
    }

    pub async fn list_api_tokens(&self, user_id: &UserId) -> Result<Vec<ApiToken>> {
        let rows: Vec<ApiTokenRow> = self.reader.fetch_all(&Sql::new(LIST_API_TOKENS).bind(user_id)).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub async fn delete_api_token(&self, user_id: &UserId, token_id: &str) -> Result<()> {
        one_row(self.writer.execute(&Sql::new(DELETE_API_TOKEN).bind(token_id).bind(user_id)).await?)
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    created_at: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: r.id.into(),
            username: r.username,
            password_hash: r.password_hash,
            created_at: parse_ts(&r.created_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id_hash: String,
    user_id: String,
    csrf_token: String,
    created_at: String,
    expires_at: String,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id_hash: r.id_hash,
            user_id: r.user_id.into(),
            csrf_token: r.csrf_token,
            created_at: parse_ts(&r.created_at)?,
            expires_at: parse_ts(&r.expires_at)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ApiTokenRow {
    id: String,
    user_id: String,
    name: String,
    token_hash: String,
    created_at: String,
    last_used_at: Option<String>,
}

impl TryFrom<ApiTokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(r: ApiTokenRow) -> Result<Self, StoreError> {
        Ok(ApiToken {
            id: r.id,
            user_id: r.user_id.into(),
            name: r.name,
            token_hash: r.token_hash,
            created_at: parse_ts(&r.created_at)?,
            last_used_at: parse_ts_opt(r.last_used_at.as_deref())?,
        })
    }
}
