//! Users, their sessions and API tokens.
//!
//! The first user becomes the owner in the same statement that inserts it (`NOT EXISTS` over `users`), so "first"
//! needs no separate read; on PostgreSQL, where two racing inserts can both see an empty table, the partial unique
//! index `users_one_owner` lets only one of them commit. Sessions carry an absolute and an idle expiry; a session's
//! `last_seen_at` (and with it the idle expiry) is written at most once a minute ([`Store::touch_session`]), so
//! authenticated reads do not queue behind SQLite's single writer.

use super::codec::{self, parse_ts, parse_ts_opt};
use super::exec::Sql;
use super::{Result, Store, StoreError, one_row};
use crate::domain::{ApiToken, NewSession, Session, TokenOrigin, User, UserId};

const USER_COLUMNS: &str = "id, username, password_hash, created_at, is_owner";
/// Owner when it is the first user.
const INSERT_USER: &str = "INSERT INTO users (id, username, password_hash, created_at, is_owner) \
    SELECT $1, $2, $3, $4, NOT EXISTS (SELECT 1 FROM users)";
const INSERT_PLAIN_USER: &str =
    "INSERT INTO users (id, username, password_hash, created_at, is_owner) VALUES ($1, $2, $3, $4, FALSE)";
/// First-run setup: the owner, only while there is no user at all.
const INSERT_OWNER_IF_NONE: &str = "INSERT INTO users (id, username, password_hash, created_at, is_owner) \
    SELECT $1, $2, $3, $4, TRUE WHERE NOT EXISTS (SELECT 1 FROM users)";
const COUNT_USERS: &str = "SELECT COUNT(*) FROM users";

/// How often a session's `last_seen_at` (and idle expiry) and a token's `last_used_at` are written at most.
pub const LAST_SEEN_GRANULARITY: chrono::Duration = chrono::Duration::seconds(60);

const SESSION_COLUMNS: &str =
    "id_hash, public_id, user_id, csrf_token, created_at, expires_at, last_seen_at, idle_expires_at, user_agent";
const INSERT_SESSION: &str = "INSERT INTO sessions (id_hash, public_id, user_id, csrf_token, created_at, \
    expires_at, last_seen_at, idle_expires_at, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $5, $7, $8)";
/// Only moves forward, and only when the stored time is older than the granularity: two requests racing to touch
/// one session write once.
const TOUCH_SESSION: &str =
    "UPDATE sessions SET last_seen_at = $2, idle_expires_at = $3 WHERE id_hash = $1 AND last_seen_at < $4";
const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id_hash = $1";
const DELETE_SESSION_BY_PUBLIC_ID: &str = "DELETE FROM sessions WHERE public_id = $1 AND user_id = $2";
const DELETE_OTHER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1 AND ($2 IS NULL OR public_id <> $2)";
const DELETE_EXPIRED_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1 OR idle_expires_at <= $1";

const INSERT_API_TOKEN: &str = "INSERT INTO api_tokens (id, user_id, name, token_hash, created_at, created_via, \
    created_by_session) VALUES ($1, $2, $3, $4, $5, $6, $7)";
/// The token's owner and its last use, in one read: authenticating a request is one statement, not two.
const API_TOKEN_OWNER: &str = "SELECT u.id, u.username, u.password_hash, u.created_at, u.is_owner, \
    t.last_used_at AS token_last_used_at FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1";
/// A live session and its user, in one read (the session cookie's path on every authenticated request).
const SESSION_USER: &str = "SELECT s.id_hash, s.public_id, s.user_id, s.csrf_token, s.created_at, s.expires_at, \
    s.last_seen_at, s.idle_expires_at, s.user_agent, u.username, u.password_hash, u.created_at AS user_created_at, \
    u.is_owner FROM sessions s JOIN users u ON u.id = s.user_id \
    WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.idle_expires_at > $2";
const TOUCH_API_TOKEN: &str = "UPDATE api_tokens SET last_used_at = $2 WHERE token_hash = $1 \
    AND (last_used_at IS NULL OR last_used_at < $3)";
const LIST_API_TOKENS: &str = "SELECT id, user_id, name, token_hash, created_at, last_used_at, created_via, \
    created_by_session FROM api_tokens WHERE user_id = $1 ORDER BY created_at, id";
const DELETE_API_TOKEN: &str = "DELETE FROM api_tokens WHERE id = $1 AND user_id = $2";

impl Store {
    /// A new user; the first one ever becomes the owner. `Conflict` when the username is taken.
    pub async fn create_user(&self, username: &str, password_hash: &str) -> Result<User> {
        let mut user = new_user(username, password_hash);
        match self.insert_user(INSERT_USER, &user).await {
            Ok(()) => {}
            // On PostgreSQL two first users racing both claim ownership and the index refuses one: it is a plain
            // user, unless the conflict was its name.
            Err(StoreError::Conflict(message)) => {
                if self.find_user_by_username(username).await?.is_some() {
                    return Err(StoreError::Conflict(message));
                }
                self.insert_user(INSERT_PLAIN_USER, &user).await?;
            }
            Err(e) => return Err(e),
        }
        // Read back: whether it became the owner was decided by the database.
        user.is_owner = self.get_user(&user.id).await?.is_owner;
        Ok(user)
    }

    /// First-run setup: creates the owner only while no user exists. `None` when there already is a user (also
    /// when a racing setup won).
    pub async fn create_owner_if_none(&self, username: &str, password_hash: &str) -> Result<Option<User>> {
        let mut user = new_user(username, password_hash);
        user.is_owner = true;
        let insert = Sql::new(INSERT_OWNER_IF_NONE)
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(codec::ts(user.created_at));
        match self.writer.execute(&insert).await {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(user)),
            // The owner index (PostgreSQL, two setups at once) or a name a racing setup just took.
            Err(StoreError::Conflict(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn insert_user(&self, sql: &'static str, user: &User) -> Result<()> {
        let insert = Sql::new(sql)
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(codec::ts(user.created_at));
        self.writer.execute(&insert).await.map(|_| ()).map_err(|e| match e {
            StoreError::Conflict(_) => StoreError::Conflict(format!("user {:?} already exists", user.username)),
            other => other,
        })
    }

    /// How many users there are (first-run setup is needed at 0).
    pub async fn count_users(&self) -> Result<i64> {
        self.reader.fetch_one::<(i64,)>(&Sql::new(COUNT_USERS)).await.map(|(n,)| n)
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let row: Option<UserRow> = self.reader.fetch_optional(&Sql::new(&sql).bind(username)).await?;
        row.map(TryInto::try_into).transpose()
    }

    pub async fn get_user(&self, user_id: &UserId) -> Result<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        self.reader.fetch_one::<UserRow>(&Sql::new(&sql).bind(user_id)).await?.try_into()
    }

    /// Every user, by name (the CLI picks the only one when no `--user` is given).
    pub async fn list_users(&self) -> Result<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY username");
        let rows: Vec<UserRow> = self.reader.fetch_all(&Sql::new(&sql)).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub async fn create_session(&self, s: &NewSession) -> Result<Session> {
        let created_at = codec::now();
        let insert = Sql::new(INSERT_SESSION)
            .bind(&s.id_hash)
            .bind(&s.public_id)
            .bind(&s.user_id)
            .bind(&s.csrf_token)
            .bind(codec::ts(created_at))
            .bind(codec::ts(s.expires_at))
            .bind(codec::ts(s.idle_expires_at))
            .bind(s.user_agent.as_deref());
        self.writer.execute(&insert).await?;
        Ok(Session {
            id_hash: s.id_hash.clone(),
            public_id: s.public_id.clone(),
            user_id: s.user_id.clone(),
            csrf_token: s.csrf_token.clone(),
            created_at,
            expires_at: parse_ts(&codec::ts(s.expires_at))?,
            last_seen_at: created_at,
            idle_expires_at: parse_ts(&codec::ts(s.idle_expires_at))?,
            user_agent: s.user_agent.clone(),
        })
    }

    /// The session if it exists and has reached neither its absolute nor its idle expiry.
    pub async fn find_session(&self, id_hash: &str) -> Result<Option<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE id_hash = $1 AND expires_at > $2 AND idle_expires_at > $2"
        );
        let find = Sql::new(&sql).bind(id_hash).bind(codec::ts(chrono::Utc::now()));
        let row: Option<SessionRow> = self.reader.fetch_optional(&find).await?;
        row.map(TryInto::try_into).transpose()
    }

    /// [`Store::find_session`] and the session's user, in one statement: what the session cookie's authentication
    /// reads on every request.
    pub async fn find_session_with_user(&self, id_hash: &str) -> Result<Option<(Session, User)>> {
        let find = Sql::new(SESSION_USER).bind(id_hash).bind(codec::ts(chrono::Utc::now()));
        let Some(row) = self.reader.fetch_optional::<SessionUserRow>(&find).await? else {
            return Ok(None);
        };
        let user = User {
            id: row.session.user_id.clone().into(),
            username: row.username,
            password_hash: row.password_hash,
            created_at: parse_ts(&row.user_created_at)?,
            is_owner: row.is_owner,
        };
        Ok(Some((row.session.try_into()?, user)))
    }

    /// Records a use of `session` at `now`, moving its idle expiry to `now + idle_timeout` (never past its absolute
    /// expiry), but only when the stored `last_seen_at` is older than [`LAST_SEEN_GRANULARITY`]: most requests
    /// write nothing. Returns whether it wrote.
    pub async fn touch_session(
        &self,
        session: &Session,
        now: chrono::DateTime<chrono::Utc>,
        idle_timeout: chrono::Duration,
    ) -> Result<bool> {
        let stale = now - LAST_SEEN_GRANULARITY;
        if session.last_seen_at >= stale {
            return Ok(false);
        }
        let idle_expires_at = (now + idle_timeout).min(session.expires_at);
        let touch = Sql::new(TOUCH_SESSION)
            .bind(&session.id_hash)
            .bind(codec::ts(now))
            .bind(codec::ts(idle_expires_at))
            .bind(codec::ts(stale));
        Ok(self.writer.execute(&touch).await? > 0)
    }

    /// The user's live sessions, most recently used first.
    pub async fn list_sessions(&self, user_id: &UserId) -> Result<Vec<Session>> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND expires_at > $2 AND idle_expires_at > $2 \
             ORDER BY last_seen_at DESC, public_id"
        );
        let rows: Vec<SessionRow> =
            self.reader.fetch_all(&Sql::new(&sql).bind(user_id).bind(codec::ts(chrono::Utc::now()))).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        self.writer.execute(&Sql::new(DELETE_SESSION).bind(id_hash)).await?;
        Ok(())
    }

    /// Ends one of the user's sessions by its public id; `NotFound` for an unknown id or another user's session.
    pub async fn delete_session_by_public_id(&self, user_id: &UserId, public_id: &str) -> Result<()> {
        one_row(self.writer.execute(&Sql::new(DELETE_SESSION_BY_PUBLIC_ID).bind(public_id).bind(user_id)).await?)
    }

    /// Ends every session of the user except `keep` (a public id; `None` ends all). Returns how many ended.
    pub async fn delete_other_sessions(&self, user_id: &UserId, keep: Option<&str>) -> Result<u64> {
        self.writer.execute(&Sql::new(DELETE_OTHER_SESSIONS).bind(user_id).bind(keep)).await
    }

    pub async fn delete_expired_sessions(&self) -> Result<u64> {
        self.writer.execute(&Sql::new(DELETE_EXPIRED_SESSIONS).bind(codec::ts(chrono::Utc::now()))).await
    }

    /// A token made by `banksync token create`.
    pub async fn create_api_token(&self, user_id: &UserId, name: &str, token_hash: &str) -> Result<ApiToken> {
        self.create_api_token_from(user_id, name, token_hash, TokenOrigin::Cli).await
    }

    pub async fn create_api_token_from(
        &self,
        user_id: &UserId,
        name: &str,
        token_hash: &str,
        origin: TokenOrigin,
    ) -> Result<ApiToken> {
        let token = ApiToken {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.clone(),
            name: name.to_owned(),
            token_hash: token_hash.to_owned(),
            created_at: codec::now(),
            last_used_at: None,
            origin,
        };
        let (via, session) = match &token.origin {
            TokenOrigin::Cli => ("cli", None),
            TokenOrigin::Session { session_id } => ("session", Some(session_id.as_str())),
            TokenOrigin::Token => ("token", None),
        };
        let insert = Sql::new(INSERT_API_TOKEN)
            .bind(&token.id)
            .bind(&token.user_id)
            .bind(&token.name)
            .bind(&token.token_hash)
            .bind(codec::ts(token.created_at))
            .bind(via)
            .bind(session);
        self.writer.execute(&insert).await?;
        Ok(token)
    }

    /// The token's owner, recording the use.
    pub async fn find_user_by_api_token_hash(&self, token_hash: &str) -> Result<Option<User>> {
        let owner: Option<TokenOwnerRow> =
            self.reader.fetch_optional(&Sql::new(API_TOKEN_OWNER).bind(token_hash)).await?;
        let Some(TokenOwnerRow { user, token_last_used_at }) = owner else {
            return Ok(None);
        };
        // Record the use at most once a minute, so authenticated reads do not queue behind the writer.
        let now = chrono::Utc::now();
        let stale = codec::ts(now - LAST_SEEN_GRANULARITY);
        if token_last_used_at.is_none_or(|t| t < stale) {
            let touch = Sql::new(TOUCH_API_TOKEN).bind(token_hash).bind(codec::ts(now)).bind(stale);
            self.writer.execute(&touch).await?;
        }
        Ok(Some(user.try_into()?))
    }

    pub async fn list_api_tokens(&self, user_id: &UserId) -> Result<Vec<ApiToken>> {
        let rows: Vec<ApiTokenRow> = self.reader.fetch_all(&Sql::new(LIST_API_TOKENS).bind(user_id)).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub async fn delete_api_token(&self, user_id: &UserId, token_id: &str) -> Result<()> {
        one_row(self.writer.execute(&Sql::new(DELETE_API_TOKEN).bind(token_id).bind(user_id)).await?)
    }
}

fn new_user(username: &str, password_hash: &str) -> User {
    User {
        id: UserId::new(uuid::Uuid::new_v4().to_string()),
        username: username.to_owned(),
        password_hash: password_hash.to_owned(),
        created_at: codec::now(),
        is_owner: false,
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: String,
    username: String,
    password_hash: String,
    created_at: String,
    is_owner: bool,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(User {
            id: r.id.into(),
            username: r.username,
            password_hash: r.password_hash,
            created_at: parse_ts(&r.created_at)?,
            is_owner: r.is_owner,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    id_hash: String,
    public_id: String,
    user_id: String,
    csrf_token: String,
    created_at: String,
    expires_at: String,
    last_seen_at: String,
    idle_expires_at: String,
    user_agent: Option<String>,
}

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;
    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Session {
            id_hash: r.id_hash,
            public_id: r.public_id,
            user_id: r.user_id.into(),
            csrf_token: r.csrf_token,
            created_at: parse_ts(&r.created_at)?,
            expires_at: parse_ts(&r.expires_at)?,
            last_seen_at: parse_ts(&r.last_seen_at)?,
            idle_expires_at: parse_ts(&r.idle_expires_at)?,
            user_agent: r.user_agent,
        })
    }
}

#[derive(sqlx::FromRow)]
struct TokenOwnerRow {
    #[sqlx(flatten)]
    user: UserRow,
    token_last_used_at: Option<String>,
}

#[derive(sqlx::FromRow)]
struct SessionUserRow {
    #[sqlx(flatten)]
    session: SessionRow,
    username: String,
    password_hash: String,
    user_created_at: String,
    is_owner: bool,
}

#[derive(sqlx::FromRow)]
struct ApiTokenRow {
    id: String,
    user_id: String,
    name: String,
    token_hash: String,
    created_at: String,
    last_used_at: Option<String>,
    created_via: String,
    created_by_session: Option<String>,
}

impl TryFrom<ApiTokenRow> for ApiToken {
    type Error = StoreError;
    fn try_from(r: ApiTokenRow) -> Result<Self, StoreError> {
        let origin = match (r.created_via.as_str(), r.created_by_session) {
            ("cli", _) => TokenOrigin::Cli,
            ("session", Some(session_id)) => TokenOrigin::Session { session_id },
            ("token", _) => TokenOrigin::Token,
            (other, _) => return Err(StoreError::corrupt(format!("unknown api_tokens.created_via {other:?}"))),
        };
        Ok(ApiToken {
            id: r.id,
            user_id: r.user_id.into(),
            name: r.name,
            token_hash: r.token_hash,
            created_at: parse_ts(&r.created_at)?,
            last_used_at: parse_ts_opt(r.last_used_at.as_deref())?,
            origin,
        })
    }
}
