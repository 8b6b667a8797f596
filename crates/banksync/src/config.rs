//! Configuration: flags, environment variables and an optional TOML file, resolved once at start.
//!
//! Precedence is flag > environment variable > config file > built-in default. Every value is validated here,
//! so the rest of the program receives a [`Config`] that is known to be coherent, and a bad setting stops the
//! start with one sentence naming the setting. Secrets are [`SecretString`]s and never printed: `Debug` on both
//! the raw and the resolved form redacts them.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

/// Settings as the operator gave them. Every field is optional so that the file and the command line can be
/// layered; [`Config::resolve`] applies defaults and validation.
#[derive(Clone, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// TOML file with any of these settings (keys as the long flag names, with `_`).
    #[arg(long, env = "BANKSYNC_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Address the HTTP server listens on [default: 127.0.0.1:8080].
    #[arg(long, env = "BANKSYNC_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database and the master key file [default: ./data].
    #[arg(long, env = "BANKSYNC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `sqlite://PATH` or `postgres://…` [default: sqlite://DATA_DIR/banksync.db].
    #[arg(long, env = "BANKSYNC_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Base URL at which Plaid's webhooks reach this server [default: http://LISTEN].
    #[arg(long, env = "BANKSYNC_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Base64 of the 32-byte key that encrypts access tokens [default: DATA_DIR/master.key, created on first run].
    #[arg(long, env = "BANKSYNC_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Comma-separated old master keys, only to decrypt tokens sealed before a rotation (`banksync key rotate`).
    /// Files `DATA_DIR/master.key.old.*` are read as old keys too.
    #[arg(long, env = "BANKSYNC_OLD_MASTER_KEYS", hide_env_values = true)]
    pub old_master_keys: Option<String>,
    /// Plaid client id. Without it (and the secret) banksync runs the built-in simulator.
    #[arg(long, env = "PLAID_CLIENT_ID")]
    pub plaid_client_id: Option<String>,
    /// Plaid secret for the chosen environment.
    #[arg(long, env = "PLAID_SECRET", hide_env_values = true)]
    pub plaid_secret: Option<String>,
    /// `sandbox` or `production` [default: sandbox].
    #[arg(long, env = "PLAID_ENV")]
    pub plaid_env: Option<String>,
    /// Overrides Plaid's base URL (e.g. a standalone `banksync sim`).
    #[arg(long, env = "PLAID_BASE_URL")]
    pub plaid_base_url: Option<String>,
    /// Sync an Item when its last successful sync is older than this, e.g. `6h`, `90m` [default: 6h].
    #[arg(long, env = "BANKSYNC_SYNC_INTERVAL")]
    pub sync_interval: Option<String>,
    /// Minimum time between two manual "sync now" of one Item, e.g. `10m`; `0s` disables it [default: 10m].
    #[arg(long, env = "BANKSYNC_SYNC_COOLDOWN")]
    pub sync_cooldown: Option<String>,
    /// `auto`: "sync now" first asks the bank for new data (`/transactions/refresh`, a Plaid add-on; banksync stops
    /// asking once Plaid says it is not enabled); `off`: sync what Plaid already has [default: auto].
    #[arg(long, env = "BANKSYNC_TRANSACTIONS_REFRESH")]
    pub transactions_refresh: Option<String>,
    /// Background jobs (syncs) run at the same time [default: 4].
    #[arg(long, env = "BANKSYNC_WORKERS")]
    pub workers: Option<usize>,
    /// Overrides of Plaid's rate limits the shared budget enforces, comma-separated `ENDPOINT=PER_ITEM/PER_CLIENT`
    /// calls per minute, e.g. `/accounts/balance/get=5/1200` [default: Plaid's limits for PLAID_ENV].
    #[arg(long, env = "BANKSYNC_PLAID_RATE_BUDGET")]
    pub plaid_rate_budget: Option<String>,
    /// A live balance younger than this is returned by a refresh without asking the bank again, e.g. `60s`;
    /// `0s` always asks [default: 60s].
    #[arg(long, env = "BANKSYNC_BALANCE_MAX_AGE")]
    pub balance_max_age: Option<String>,
    /// `proxy`: merchant logos reach the browser through banksync (fetched and cached here, so the browser never
    /// tells a third party which merchants the user pays); `off`: no logos (the page shows category icons)
    /// [default: proxy].
    #[arg(long, env = "BANKSYNC_MERCHANT_LOGOS")]
    pub merchant_logos: Option<String>,
    /// Where banks that log in through OAuth send the browser back; register it with Plaid (Dashboard → API →
    /// Allowed redirect URIs). https, or http on localhost/127.0.0.1; `off` disables OAuth banks
    /// [default: BANKSYNC_PUBLIC_URL + /oauth-return when that is https or on localhost/127.0.0.1].
    #[arg(long, env = "BANKSYNC_OAUTH_REDIRECT_URI")]
    pub oauth_redirect_uri: Option<String>,
    /// A request's headers must arrive within this; it is also how long an idle keep-alive connection waits for
    /// its next request (hyper starts this clock when it waits for a request) [default: 10s].
    #[arg(long, env = "BANKSYNC_HEADER_READ_TIMEOUT")]
    pub header_read_timeout: Option<String>,
    /// A request's whole body must arrive within this, else 408 and the connection is closed [default: 15s].
    #[arg(long, env = "BANKSYNC_BODY_READ_TIMEOUT")]
    pub body_read_timeout: Option<String>,
    /// A connection on which no byte moves either way for this long is closed (a stalled upload, a client that
    /// stopped reading); long-polls wait at most half of it and the event stream sends heartbeats well within it
    /// [default: 60s, at least 2s].
    #[arg(long, env = "BANKSYNC_IDLE_TIMEOUT")]
    pub idle_timeout: Option<String>,
    /// Open connections served at once; beyond it new connections wait in the kernel's listen backlog until one
    /// closes [default: 512].
    #[arg(long, env = "BANKSYNC_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// How long the Plaid call audit (`plaid_calls`) is kept, e.g. `180d` — long enough to debug a Plaid ticket
    /// [default: 180d].
    #[arg(long, env = "BANKSYNC_RETENTION_AUDIT")]
    pub retention_audit: Option<String>,
    /// How long received webhooks (`webhook_events`) are kept [default: 30d].
    #[arg(long, env = "BANKSYNC_RETENTION_EVENTS")]
    pub retention_events: Option<String>,
    /// How long sync runs are kept; the last `BANKSYNC_RETENTION_RUNS_KEEP` of every Item are kept regardless
    /// [default: 180d].
    #[arg(long, env = "BANKSYNC_RETENTION_RUNS")]
    pub retention_runs: Option<String>,
    /// Sync runs always kept per Item, however old [default: 50].
    #[arg(long, env = "BANKSYNC_RETENTION_RUNS_KEEP")]
    pub retention_runs_keep: Option<usize>,
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("config", &self.config)
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database_url", &self.database_url.as_deref().map(redact_url))
            .field("public_url", &self.public_url)
            .field("master_key", &self.master_key.as_ref().map(|_| "[redacted]"))
            .field("old_master_keys", &self.old_master_keys.as_ref().map(|_| "[redacted]"))
            .field("plaid_client_id", &self.plaid_client_id)
            .field("plaid_secret", &self.plaid_secret.as_ref().map(|_| "[redacted]"))
            .field("plaid_env", &self.plaid_env)
            .field("plaid_base_url", &self.plaid_base_url)
            .field("sync_interval", &self.sync_interval)
            .field("sync_cooldown", &self.sync_cooldown)
            .field("transactions_refresh", &self.transactions_refresh)
            .field("workers", &self.workers)
            .field("plaid_rate_budget", &self.plaid_rate_budget)
            .field("balance_max_age", &self.balance_max_age)
            .field("merchant_logos", &self.merchant_logos)
            .field("oauth_redirect_uri", &self.oauth_redirect_uri)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("max_connections", &self.max_connections)
            .field("retention_audit", &self.retention_audit)
            .field("retention_events", &self.retention_events)
            .field("retention_runs", &self.retention_runs)
            .field("retention_runs_keep", &self.retention_runs_keep)
            .finish()
    }
}

impl Settings {
    /// Fills every unset field from `lower` (a lower-precedence layer).
    fn or(self, lower: Settings) -> Settings {
        Settings {
            config: self.config.or(lower.config),
            listen: self.listen.or(lower.listen),
            data_dir: self.data_dir.or(lower.data_dir),
            database_url: self.database_url.or(lower.database_url),
            public_url: self.public_url.or(lower.public_url),
            master_key: self.master_key.or(lower.master_key),
            old_master_keys: self.old_master_keys.or(lower.old_master_keys),
            plaid_client_id: self.plaid_client_id.or(lower.plaid_client_id),
            plaid_secret: self.plaid_secret.or(lower.plaid_secret),
            plaid_env: self.plaid_env.or(lower.plaid_env),
            plaid_base_url: self.plaid_base_url.or(lower.plaid_base_url),
            sync_interval: self.sync_interval.or(lower.sync_interval),
            sync_cooldown: self.sync_cooldown.or(lower.sync_cooldown),
            transactions_refresh: self.transactions_refresh.or(lower.transactions_refresh),
            workers: self.workers.or(lower.workers),
            plaid_rate_budget: self.plaid_rate_budget.or(lower.plaid_rate_budget),
            balance_max_age: self.balance_max_age.or(lower.balance_max_age),
            merchant_logos: self.merchant_logos.or(lower.merchant_logos),
            oauth_redirect_uri: self.oauth_redirect_uri.or(lower.oauth_redirect_uri),
            header_read_timeout: self.header_read_timeout.or(lower.header_read_timeout),
            body_read_timeout: self.body_read_timeout.or(lower.body_read_timeout),
            idle_timeout: self.idle_timeout.or(lower.idle_timeout),
            max_connections: self.max_connections.or(lower.max_connections),
            retention_audit: self.retention_audit.or(lower.retention_audit),
            retention_events: self.retention_events.or(lower.retention_events),
            retention_runs: self.retention_runs.or(lower.retention_runs),
            retention_runs_keep: self.retention_runs_keep.or(lower.retention_runs_keep),
        }
    }

    /// Reads a TOML settings file. Unknown keys are an error: a typo must not silently fall back to a default.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new("config", format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| ConfigError::new("config", format!("{}: {}", path.display(), e.message())))
    }
}

/// Where the data lives.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    /// The full URL; it may carry a password, hence secret.
    Postgres(SecretString),
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres(_) => f.write_str("postgres://[redacted]"),
        }
    }
}

/// Which Plaid banksync talks to.
#[derive(Clone)]
pub enum PlaidTarget {
    /// No keys configured: start the embedded simulator on a loopback port.
    EmbeddedSimulator,
    /// Real Plaid (or any Plaid-compatible server when `base_url` is set).
    Remote { client_id: String, secret: SecretString, environment: PlaidEnvironment, base_url: Option<Url> },
}

impl fmt::Debug for PlaidTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaidTarget::EmbeddedSimulator => f.write_str("EmbeddedSimulator"),
            PlaidTarget::Remote { client_id, environment, base_url, .. } => f
                .debug_struct("Remote")
                .field("client_id", client_id)
                .field("secret", &"[redacted]")
                .field("environment", environment)
                .field("base_url", &base_url.as_ref().map(Url::as_str))
                .finish(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaidEnvironment {
    Sandbox,
    Production,
}

/// The validated configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: DatabaseUrl,
    pub public_url: Url,
    pub master_key: Option<SecretString>,
    /// Decrypt-only keys from `BANKSYNC_OLD_MASTER_KEYS`, each validated.
    pub old_master_keys: Vec<SecretString>,
    pub plaid: PlaidTarget,
    pub jobs: JobSettings,
    /// Plaid's rate limits as the shared budget enforces them: Plaid's for the environment (the embedded
    /// simulator's are the sandbox ones), with the operator's overrides.
    pub plaid_limits: crate::budget::RateLimits,
    /// Live balances younger than this are not asked for again.
    pub balance_max_age: std::time::Duration,
    /// Merchant logos through banksync's cache, or none.
    pub merchant_logos: MerchantLogos,
    /// URL prefixes (`http://host:port/path/`) the logo proxy may fetch from over plain http (it fetches https
    /// otherwise). Not a setting, so no deployment can turn it on: empty unless code adds one (startup adds the
    /// embedded simulator's assets itself; tests add their stand-in logo host).
    pub logo_http_origins: Vec<String>,
    /// The `redirect_uri` link tokens carry (OAuth banks).
    pub oauth_redirect: OAuthRedirect,
    /// Connection timeouts and the connection cap of the HTTP server.
    pub server: ServerSettings,
    /// How long the event, audit and run tables keep rows.
    pub retention: RetentionSettings,
}

/// `BANKSYNC_MERCHANT_LOGOS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MerchantLogos {
    Proxy,
    Off,
}

impl std::str::FromStr for MerchantLogos {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "proxy" => Ok(Self::Proxy),
            "off" => Ok(Self::Off),
            other => Err(format!("{other:?} is not one of: proxy, off")),
        }
    }
}

impl MerchantLogos {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Proxy => "proxy",
            Self::Off => "off",
        }
    }
}

/// `BANKSYNC_OAUTH_REDIRECT_URI`, resolved against the public URL at start ([`OAuthRedirect::uri`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthRedirect {
    /// `BANKSYNC_PUBLIC_URL` + `/oauth-return` when Plaid accepts it (https, or http on localhost), else none.
    Auto,
    /// No `redirect_uri`: OAuth banks cannot be linked.
    Off,
    Explicit(Url),
}

/// The path of the page's OAuth return (it serves the page, which resumes Link).
pub const OAUTH_RETURN_PATH: &str = "oauth-return";

impl OAuthRedirect {
    /// The redirect URI for link tokens, given the server's effective public URL.
    pub fn uri(&self, public_url: &Url) -> Option<Url> {
        match self {
            Self::Off => None,
            Self::Explicit(url) => Some(url.clone()),
            Self::Auto => {
                let mut base = public_url.clone();
                if !base.path().ends_with('/') {
                    base.set_path(&format!("{}/", base.path()));
                }
                let url = base.join(OAUTH_RETURN_PATH).ok()?;
                plaid_accepts_redirect(&url).then_some(url)
            }
        }
    }
}

/// Plaid only accepts https redirect URIs, except http on localhost (for development).
pub fn plaid_accepts_redirect(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        _ => false,
    }
}

/// The HTTP server's defences against slow and hostile clients (see `http::server`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    pub header_read_timeout: std::time::Duration,
    pub body_read_timeout: std::time::Duration,
    pub idle_timeout: std::time::Duration,
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            header_read_timeout: std::time::Duration::from_secs(10),
            body_read_timeout: std::time::Duration::from_secs(15),
            idle_timeout: std::time::Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// Retention of the append-only tables (see `retention`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionSettings {
    /// `plaid_calls` rows older than this are deleted.
    pub audit: std::time::Duration,
    /// `webhook_events` rows older than this are deleted.
    pub events: std::time::Duration,
    /// `sync_runs` older than this are deleted, except each Item's last `runs_keep`.
    pub runs: std::time::Duration,
    pub runs_keep: usize,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        RetentionSettings {
            audit: std::time::Duration::from_secs(180 * DAY),
            events: std::time::Duration::from_secs(30 * DAY),
            runs: std::time::Duration::from_secs(180 * DAY),
            runs_keep: 50,
        }
    }
}

/// Background sync settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// The scheduler syncs Items whose last successful sync is older than this.
    pub sync_interval: std::time::Duration,
    /// Per-Item cooldown of manual syncs.
    pub sync_cooldown: std::time::Duration,
    /// Whether "sync now" asks the bank first.
    pub transactions_refresh: crate::jobs::RefreshMode,
    /// Concurrent background jobs.
    pub workers: usize,
}

impl Default for JobSettings {
    fn default() -> Self {
        JobSettings {
            sync_interval: std::time::Duration::from_secs(6 * 3600),
            sync_cooldown: std::time::Duration::from_secs(10 * 60),
            transactions_refresh: crate::jobs::RefreshMode::Auto,
            workers: 4,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("database", &self.database)
            .field("public_url", &self.public_url.as_str())
            .field("master_key", &self.master_key.as_ref().map(|_| "[redacted]"))
            .field("old_master_keys", &format_args!("[{} redacted]", self.old_master_keys.len()))
            .field("plaid", &self.plaid)
            .field("jobs", &self.jobs)
            .field("plaid_limits", &self.plaid_limits)
            .field("balance_max_age", &self.balance_max_age)
            .field("merchant_logos", &self.merchant_logos)
            .field("logo_http_origins", &self.logo_http_origins)
            .field("oauth_redirect", &self.oauth_redirect)
            .field("server", &self.server)
            .field("retention", &self.retention)
            .finish()
    }
}

/// A setting that cannot be used, named so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {message}")]
pub struct ConfigError {
    pub setting: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(setting: &'static str, message: impl Into<String>) -> Self {
        ConfigError { setting, message: message.into() }
    }
}

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_BALANCE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

impl Config {
    /// Layers `cli` (flags and environment, as parsed by clap) over the config file it names, then validates.
    pub fn load(cli: Settings) -> Result<Config, ConfigError> {
        let file = match &cli.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        Config::resolve(cli.or(file))
    }

    /// Applies defaults and validates an already-layered [`Settings`].
    pub fn resolve(s: Settings) -> Result<Config, ConfigError> {
        let server = resolve_server(&s)?;
        let retention = resolve_retention(&s)?;
        let listen = s.listen.unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default address"));
        let data_dir = s.data_dir.unwrap_or_else(|| PathBuf::from("data"));
        if data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("BANKSYNC_DATA_DIR", "must not be empty"));
        }

        let database = match s.database_url.as_deref() {
            None => DatabaseUrl::Sqlite(data_dir.join("banksync.db")),
            Some(url) => parse_database_url(url)?,
        };

        let public_url = match s.public_url.as_deref() {
            None => Url::parse(&format!("http://{listen}")).expect("a socket address makes a valid URL"),
            Some(raw) => parse_http_url("BANKSYNC_PUBLIC_URL", raw)?,
        };

        let master_key = match s.master_key {
            Some(k) if k.trim().is_empty() => {
                return Err(ConfigError::new("BANKSYNC_MASTER_KEY", "is set but empty"));
            }
            other => other.map(SecretString::from),
        };

        let old_master_keys = parse_old_master_keys(s.old_master_keys.map(SecretString::from))?;

        let plaid = resolve_plaid(s.plaid_client_id, s.plaid_secret, s.plaid_env.as_deref(), s.plaid_base_url)?;

        let mut jobs = resolve_jobs(s.sync_interval.as_deref(), s.sync_cooldown.as_deref(), s.workers)?;
        if let Some(raw) = s.transactions_refresh.as_deref() {
            jobs.transactions_refresh =
                raw.parse().map_err(|e| ConfigError::new("BANKSYNC_TRANSACTIONS_REFRESH", e))?;
        }
        let plaid_limits = resolve_plaid_limits(&plaid, s.plaid_rate_budget.as_deref())?;
        let balance_max_age = match s.balance_max_age.as_deref() {
            None => DEFAULT_BALANCE_MAX_AGE,
            Some(raw) => humantime::parse_duration(raw.trim()).map_err(|e| {
                ConfigError::new("BANKSYNC_BALANCE_MAX_AGE", format!("{raw:?} is not a duration like 60s or 5m: {e}"))
            })?,
        };

        let merchant_logos = match s.merchant_logos.as_deref() {
            None => MerchantLogos::Proxy,
            Some(raw) => raw.parse().map_err(|e| ConfigError::new("BANKSYNC_MERCHANT_LOGOS", e))?,
        };
        let oauth_redirect = resolve_oauth_redirect(s.oauth_redirect_uri.as_deref())?;

        Ok(Config {
            listen,
            data_dir,
            database,
            public_url,
            master_key,
            old_master_keys,
            plaid,
            jobs,
            plaid_limits,
            balance_max_age,
            merchant_logos,
            logo_http_origins: Vec::new(),
            oauth_redirect,
            server,
            retention,
        })
    }

    /// The URL Plaid posts webhooks to.
    pub fn webhook_url(&self) -> Url {
        self.public_url.join("webhooks/plaid").expect("a relative path joins any http URL")
    }
}

/// Splits `BANKSYNC_OLD_MASTER_KEYS` at commas (blank entries ignored) and checks every entry is a key, naming a
/// bad one by position only.
fn parse_old_master_keys(raw: Option<SecretString>) -> Result<Vec<SecretString>, ConfigError> {
    use secrecy::ExposeSecret as _;
    let Some(raw) = raw else { return Ok(Vec::new()) };
    let mut keys = Vec::new();
    for (i, entry) in raw.expose_secret().split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
        if let Err(e) = crate::vault::MasterKey::from_encoded(entry) {
            return Err(ConfigError::new("BANKSYNC_OLD_MASTER_KEYS", format!("entry {}: {e}", i + 1)));
        }
        keys.push(SecretString::from(entry.to_owned()));
    }
    Ok(keys)
}

/// `off`, or an absolute URL Plaid accepts as a redirect URI (https, or http on localhost) without a fragment.
fn resolve_oauth_redirect(raw: Option<&str>) -> Result<OAuthRedirect, ConfigError> {
    const SETTING: &str = "BANKSYNC_OAUTH_REDIRECT_URI";
    let Some(raw) = raw.map(str::trim) else { return Ok(OAuthRedirect::Auto) };
    if raw == "off" {
        return Ok(OAuthRedirect::Off);
    }
    let url = Url::parse(raw).map_err(|e| ConfigError::new(SETTING, format!("{raw:?} is not a URL: {e}")))?;
    if !plaid_accepts_redirect(&url) {
        return Err(ConfigError::new(
            SETTING,
            format!("{raw:?}: Plaid requires an https redirect URI (http only on localhost or 127.0.0.1), or `off`"),
        ));
    }
    if url.fragment().is_some() {
        return Err(ConfigError::new(SETTING, format!("{raw:?} must not have a #fragment")));
    }
    Ok(OAuthRedirect::Explicit(url))
}

fn resolve_jobs(
    interval: Option<&str>,
    cooldown: Option<&str>,
    workers: Option<usize>,
) -> Result<JobSettings, ConfigError> {
    let defaults = JobSettings::default();
    let duration = |setting: &'static str, raw: &str| {
        humantime::parse_duration(raw.trim())
            .map_err(|e| ConfigError::new(setting, format!("{raw:?} is not a duration like 6h or 10m: {e}")))
    };
    let sync_interval = match interval {
        None => defaults.sync_interval,
        Some(raw) => duration("BANKSYNC_SYNC_INTERVAL", raw)?,
    };
    if sync_interval < std::time::Duration::from_secs(1) {
        return Err(ConfigError::new("BANKSYNC_SYNC_INTERVAL", "must be at least 1s"));
    }
    let sync_cooldown = match cooldown {
        None => defaults.sync_cooldown,
        Some(raw) => duration("BANKSYNC_SYNC_COOLDOWN", raw)?,
    };
    let workers = workers.unwrap_or(defaults.workers);
    if !(1..=64).contains(&workers) {
        return Err(ConfigError::new("BANKSYNC_WORKERS", format!("{workers} is not between 1 and 64")));
    }
    Ok(JobSettings { sync_interval, sync_cooldown, workers, ..defaults })
}

fn parse_duration(setting: &'static str, raw: &str) -> Result<std::time::Duration, ConfigError> {
    humantime::parse_duration(raw.trim())
        .map_err(|e| ConfigError::new(setting, format!("{raw:?} is not a duration like 30s, 10m or 180d: {e}")))
}

fn resolve_server(s: &Settings) -> Result<ServerSettings, ConfigError> {
    let defaults = ServerSettings::default();
    let positive = |setting: &'static str, raw: Option<&str>, default| match raw {
        None => Ok(default),
        Some(raw) => match parse_duration(setting, raw)? {
            d if d.is_zero() => Err(ConfigError::new(setting, "must be more than 0s")),
            d => Ok(d),
        },
    };
    let header_read_timeout =
        positive("BANKSYNC_HEADER_READ_TIMEOUT", s.header_read_timeout.as_deref(), defaults.header_read_timeout)?;
    let body_read_timeout =
        positive("BANKSYNC_BODY_READ_TIMEOUT", s.body_read_timeout.as_deref(), defaults.body_read_timeout)?;
    let idle_timeout = positive("BANKSYNC_IDLE_TIMEOUT", s.idle_timeout.as_deref(), defaults.idle_timeout)?;
    // Heartbeats and long-polls are sized from it; below 2 s they would be busy loops.
    if idle_timeout < std::time::Duration::from_secs(2) {
        return Err(ConfigError::new("BANKSYNC_IDLE_TIMEOUT", "must be at least 2s"));
    }
    let max_connections = s.max_connections.unwrap_or(defaults.max_connections);
    if max_connections == 0 {
        return Err(ConfigError::new("BANKSYNC_MAX_CONNECTIONS", "must be at least 1"));
    }
    Ok(ServerSettings { header_read_timeout, body_read_timeout, idle_timeout, max_connections })
}

fn resolve_retention(s: &Settings) -> Result<RetentionSettings, ConfigError> {
    let defaults = RetentionSettings::default();
    // An hour at least: a shorter audit would delete the calls of the sync that is running.
    let at_least_an_hour = |setting: &'static str, raw: Option<&str>, default| match raw {
        None => Ok(default),
        Some(raw) => match parse_duration(setting, raw)? {
            d if d < std::time::Duration::from_secs(3600) => Err(ConfigError::new(setting, "must be at least 1h")),
            d => Ok(d),
        },
    };
    Ok(RetentionSettings {
        audit: at_least_an_hour("BANKSYNC_RETENTION_AUDIT", s.retention_audit.as_deref(), defaults.audit)?,
        events: at_least_an_hour("BANKSYNC_RETENTION_EVENTS", s.retention_events.as_deref(), defaults.events)?,
        runs: at_least_an_hour("BANKSYNC_RETENTION_RUNS", s.retention_runs.as_deref(), defaults.runs)?,
        runs_keep: s.retention_runs_keep.unwrap_or(defaults.runs_keep),
    })
}

/// Plaid's limits for the environment banksync talks to, with `BANKSYNC_PLAID_RATE_BUDGET`'s overrides.
fn resolve_plaid_limits(
    plaid: &PlaidTarget,
    overrides: Option<&str>,
) -> Result<crate::budget::RateLimits, ConfigError> {
    let mut limits = match plaid {
        PlaidTarget::Remote { environment: PlaidEnvironment::Production, .. } => {
            crate::budget::RateLimits::production()
        }
        PlaidTarget::Remote { environment: PlaidEnvironment::Sandbox, .. } | PlaidTarget::EmbeddedSimulator => {
            crate::budget::RateLimits::sandbox()
        }
    };
    for entry in overrides.unwrap_or_default().split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (endpoint, per_item, per_client) = crate::budget::parse_limit(entry)
            .map_err(|message| ConfigError::new("BANKSYNC_PLAID_RATE_BUDGET", message))?;
        limits = limits.with_limit(endpoint, per_item, per_client);
    }
    Ok(limits)
}

fn resolve_plaid(
    client_id: Option<String>,
    secret: Option<String>,
    env: Option<&str>,
    base_url: Option<String>,
) -> Result<PlaidTarget, ConfigError> {
    let client_id = client_id.filter(|v| !v.trim().is_empty());
    let secret = secret.filter(|v| !v.trim().is_empty());
    let environment = match env.map(str::trim) {
        None | Some("") | Some("sandbox") => PlaidEnvironment::Sandbox,
        Some("production") => PlaidEnvironment::Production,
        Some(other) => {
            return Err(ConfigError::new("PLAID_ENV", format!("{other:?} is not one of: sandbox, production")));
        }
    };
    let base_url = base_url.map(|raw| parse_http_url("PLAID_BASE_URL", &raw)).transpose()?;
    match (client_id, secret) {
        (Some(client_id), Some(secret)) => {
            Ok(PlaidTarget::Remote { client_id, secret: SecretString::from(secret), environment, base_url })
        }
        (None, None) => Ok(PlaidTarget::EmbeddedSimulator),
        (Some(_), None) => Err(ConfigError::new("PLAID_SECRET", "PLAID_CLIENT_ID is set but PLAID_SECRET is not")),
        (None, Some(_)) => Err(ConfigError::new("PLAID_CLIENT_ID", "PLAID_SECRET is set but PLAID_CLIENT_ID is not")),
    }
}

fn parse_database_url(url: &str) -> Result<DatabaseUrl, ConfigError> {
    const SETTING: &str = "BANKSYNC_DATABASE_URL";
    if let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        // Drop sqlx-style options (`?mode=rwc`): banksync sets its own connection options.
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" {
            return Err(ConfigError::new(SETTING, "a SQLite URL needs a file path, e.g. sqlite://data/banksync.db"));
        }
        Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Url::parse(url).map_err(|e| ConfigError::new(SETTING, format!("not a valid PostgreSQL URL: {e}")))?;
        Ok(DatabaseUrl::Postgres(SecretString::from(url.to_owned())))
    } else {
        Err(ConfigError::new(
            SETTING,
            format!("unsupported scheme in {:?}: use sqlite://PATH or postgres://…", redact_url(url)),
        ))
    }
}

fn parse_http_url(setting: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw.trim()).map_err(|e| ConfigError::new(setting, format!("{raw:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(ConfigError::new(setting, format!("{raw:?} must be an http(s) URL with a host")));
    }
    Ok(url)
}

/// Hides a password embedded in a URL (`postgres://user:pw@host/db`) for messages and Debug output.
fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        Ok(_) => url.to_owned(),
        Err(_) => "[unparseable URL]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn settings() -> Settings {
        Settings::default()
    }

    #[test]
    fn defaults_give_sqlite_in_the_data_dir_and_the_embedded_simulator() {
        let config = Config::resolve(settings()).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8080".parse().unwrap());
        assert!(matches!(&config.database, DatabaseUrl::Sqlite(p) if p == Path::new("data/banksync.db")));
        assert!(matches!(config.plaid, PlaidTarget::EmbeddedSimulator));
        assert_eq!(config.webhook_url().as_str(), "http://127.0.0.1:8080/webhooks/plaid");
    }

    #[test]
    fn keys_select_remote_plaid_and_half_a_key_pair_is_an_error() {
        let both = Settings {
            plaid_client_id: Some("id".into()),
            plaid_secret: Some("shh".into()),
            plaid_env: Some("production".into()),
            ..settings()
        };
        match Config::resolve(both).unwrap().plaid {
            PlaidTarget::Remote { client_id, secret, environment, base_url } => {
                assert_eq!(client_id, "id");
                assert_eq!(secret.expose_secret(), "shh");
                assert_eq!(environment, PlaidEnvironment::Production);
                assert!(base_url.is_none());
            }
            other => panic!("expected remote Plaid, got {other:?}"),
        }
        let half = Settings { plaid_client_id: Some("id".into()), ..settings() };
        assert_eq!(Config::resolve(half).unwrap_err().setting, "PLAID_SECRET");
        let bad_env = Settings { plaid_env: Some("development".into()), ..settings() };
        assert_eq!(Config::resolve(bad_env).unwrap_err().setting, "PLAID_ENV");
    }

    #[test]
    fn database_urls_are_validated_by_scheme() {
        let pg = Settings { database_url: Some("postgres://u:pw@127.0.0.1/test".into()), ..settings() };
        assert!(matches!(Config::resolve(pg).unwrap().database, DatabaseUrl::Postgres(_)));
        let sqlite = Settings { database_url: Some("sqlite:///tmp/x.db?mode=rwc".into()), ..settings() };
        assert!(
            matches!(Config::resolve(sqlite).unwrap().database, DatabaseUrl::Sqlite(p) if p == Path::new("/tmp/x.db"))
        );
        let mysql = Settings { database_url: Some("mysql://u:hunter2@h/db".into()), ..settings() };
        let err = Config::resolve(mysql).unwrap_err();
        assert_eq!(err.setting, "BANKSYNC_DATABASE_URL");
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn merchant_logos_default_to_the_proxy_and_accept_off_only_besides() {
        assert_eq!(Config::resolve(settings()).unwrap().merchant_logos, MerchantLogos::Proxy);
        let off = Settings { merchant_logos: Some("off".into()), ..settings() };
        assert_eq!(Config::resolve(off).unwrap().merchant_logos, MerchantLogos::Off);
        let bad = Settings { merchant_logos: Some("direct".into()), ..settings() };
        assert_eq!(Config::resolve(bad).unwrap_err().setting, "BANKSYNC_MERCHANT_LOGOS");
        assert!(Config::resolve(settings()).unwrap().logo_http_origins.is_empty(), "no setting adds http origins");
    }

    #[test]
    fn oauth_redirect_follows_the_public_url_when_plaid_accepts_it() {
        let url = |s: &str| Url::parse(s).unwrap();
        let auto = Config::resolve(settings()).unwrap().oauth_redirect;
        assert_eq!(auto, OAuthRedirect::Auto);
        assert_eq!(auto.uri(&url("http://127.0.0.1:8080")).unwrap().as_str(), "http://127.0.0.1:8080/oauth-return");
        assert_eq!(
            auto.uri(&url("https://b.example.org/base")).unwrap().as_str(),
            "https://b.example.org/base/oauth-return"
        );
        assert_eq!(auto.uri(&url("http://localhost:9/")).unwrap().as_str(), "http://localhost:9/oauth-return");
        assert_eq!(auto.uri(&url("http://192.168.1.5:8080")), None, "Plaid refuses plain http off localhost");

        let explicit = Settings { oauth_redirect_uri: Some("https://x.example/back".into()), ..settings() };
        let explicit = Config::resolve(explicit).unwrap().oauth_redirect;
        assert_eq!(explicit.uri(&url("http://127.0.0.1:1")).unwrap().as_str(), "https://x.example/back");
        let off = Settings { oauth_redirect_uri: Some("off".into()), ..settings() };
        assert_eq!(Config::resolve(off).unwrap().oauth_redirect.uri(&url("https://b.example.org")), None);
        for bad in ["http://bank.example.org/oauth-return", "ftp://localhost/x", "not a url", "https://x.example/a#b"] {
            let s = Settings { oauth_redirect_uri: Some(bad.into()), ..settings() };
            let err = Config::resolve(s).unwrap_err();
            assert_eq!(err.setting, "BANKSYNC_OAUTH_REDIRECT_URI", "{bad}");
            assert!(err.to_string().contains(bad), "the error names the value: {err}");
        }
    }

    #[test]
    fn public_url_must_be_http() {
        let ftp = Settings { public_url: Some("ftp://example.org".into()), ..settings() };
        assert_eq!(Config::resolve(ftp).unwrap_err().setting, "BANKSYNC_PUBLIC_URL");
        let ok = Settings { public_url: Some("https://bank.example.org/base/".into()), ..settings() };
        assert_eq!(Config::resolve(ok).unwrap().webhook_url().as_str(), "https://bank.example.org/base/webhooks/plaid");
    }

    #[test]
    fn job_settings_parse_durations_and_validate_bounds() {
        let config = Config::resolve(settings()).unwrap();
        assert_eq!(config.jobs, JobSettings::default());
        assert_eq!(config.jobs.sync_interval, std::time::Duration::from_secs(6 * 3600));
        let custom = Settings {
            sync_interval: Some("90m".into()),
            sync_cooldown: Some("0s".into()),
            workers: Some(2),
            ..settings()
        };
        let jobs = Config::resolve(custom).unwrap().jobs;
        assert_eq!(jobs.sync_interval, std::time::Duration::from_secs(90 * 60));
        assert_eq!(jobs.sync_cooldown, std::time::Duration::ZERO);
        assert_eq!(jobs.workers, 2);
        let bad = Settings { sync_interval: Some("often".into()), ..settings() };
        assert_eq!(Config::resolve(bad).unwrap_err().setting, "BANKSYNC_SYNC_INTERVAL");
        let zero = Settings { sync_interval: Some("0s".into()), ..settings() };
        assert_eq!(Config::resolve(zero).unwrap_err().setting, "BANKSYNC_SYNC_INTERVAL");
        let bad = Settings { sync_cooldown: Some("-1m".into()), ..settings() };
        assert_eq!(Config::resolve(bad).unwrap_err().setting, "BANKSYNC_SYNC_COOLDOWN");
        let none = Settings { workers: Some(0), ..settings() };
        assert_eq!(Config::resolve(none).unwrap_err().setting, "BANKSYNC_WORKERS");
    }

    #[test]
    fn rate_limits_default_by_environment_and_take_overrides() {
        use plaid::Endpoint::{AccountsBalanceGet, TransactionsSync};
        let limit = |config: &Config, e| {
            let l = config.plaid_limits.limit(e).unwrap();
            (l.per_item, l.per_client)
        };
        let embedded = Config::resolve(settings()).unwrap();
        assert_eq!(limit(&embedded, AccountsBalanceGet), (25, 100), "the simulator enforces the sandbox's");
        assert_eq!(embedded.balance_max_age, std::time::Duration::from_secs(60));
        let production = Settings {
            plaid_client_id: Some("id".into()),
            plaid_secret: Some("shh".into()),
            plaid_env: Some("production".into()),
            plaid_rate_budget: Some(" /accounts/balance/get=4/600 ,".into()),
            balance_max_age: Some("5m".into()),
            ..settings()
        };
        let production = Config::resolve(production).unwrap();
        assert_eq!(limit(&production, AccountsBalanceGet), (4, 600));
        assert_eq!(limit(&production, TransactionsSync), (50, 2_500));
        assert_eq!(production.balance_max_age, std::time::Duration::from_secs(300));
        let bad = Settings { plaid_rate_budget: Some("/accounts/balance/get=fast".into()), ..settings() };
        assert_eq!(Config::resolve(bad).unwrap_err().setting, "BANKSYNC_PLAID_RATE_BUDGET");
        let bad = Settings { balance_max_age: Some("fresh".into()), ..settings() };
        assert_eq!(Config::resolve(bad).unwrap_err().setting, "BANKSYNC_BALANCE_MAX_AGE");
    }

    #[test]
    fn server_and_retention_settings_have_defaults_and_are_validated() {
        let config = Config::resolve(settings()).unwrap();
        assert_eq!(config.server, ServerSettings::default());
        assert_eq!(config.retention, RetentionSettings::default());
        assert_eq!(config.retention.audit, std::time::Duration::from_secs(180 * 24 * 3600));
        let custom = Settings {
            header_read_timeout: Some("5s".into()),
            body_read_timeout: Some("7s".into()),
            idle_timeout: Some("90s".into()),
            max_connections: Some(100),
            retention_audit: Some("365d".into()),
            retention_events: Some("7d".into()),
            retention_runs: Some("90d".into()),
            retention_runs_keep: Some(10),
            ..settings()
        };
        let config = Config::resolve(custom).unwrap();
        assert_eq!(
            config.server,
            ServerSettings {
                header_read_timeout: std::time::Duration::from_secs(5),
                body_read_timeout: std::time::Duration::from_secs(7),
                idle_timeout: std::time::Duration::from_secs(90),
                max_connections: 100,
            }
        );
        assert_eq!(config.retention.events, std::time::Duration::from_secs(7 * 24 * 3600));
        assert_eq!(config.retention.runs_keep, 10);
        for (bad, setting) in [
            (Settings { header_read_timeout: Some("0s".into()), ..settings() }, "BANKSYNC_HEADER_READ_TIMEOUT"),
            (Settings { body_read_timeout: Some("soon".into()), ..settings() }, "BANKSYNC_BODY_READ_TIMEOUT"),
            (Settings { idle_timeout: Some("1s".into()), ..settings() }, "BANKSYNC_IDLE_TIMEOUT"),
            (Settings { max_connections: Some(0), ..settings() }, "BANKSYNC_MAX_CONNECTIONS"),
            (Settings { retention_audit: Some("10m".into()), ..settings() }, "BANKSYNC_RETENTION_AUDIT"),
        ] {
            assert_eq!(Config::resolve(bad).unwrap_err().setting, setting);
        }
    }

    #[test]
    fn old_master_keys_are_split_validated_and_never_echoed() {
        let a = crate::vault::MasterKey::generate().to_base64();
        let b = crate::vault::MasterKey::generate().to_base64();
        let raw = format!(" {} ,, {}\n", a.expose_secret(), b.expose_secret());
        let config = Config::resolve(Settings { old_master_keys: Some(raw), ..settings() }).unwrap();
        let got: Vec<&str> = config.old_master_keys.iter().map(|k| k.expose_secret()).collect();
        assert_eq!(got, [a.expose_secret(), b.expose_secret()]);
        assert!(Config::resolve(settings()).unwrap().old_master_keys.is_empty());

        let bad = format!("{},OLDSECRETNOTAKEY", a.expose_secret());
        let err = Config::resolve(Settings { old_master_keys: Some(bad), ..settings() }).unwrap_err();
        assert_eq!(err.setting, "BANKSYNC_OLD_MASTER_KEYS");
        assert!(err.to_string().contains("entry 2"), "{err}");
        assert!(!err.to_string().contains("OLDSECRET") && !err.to_string().contains(a.expose_secret()), "{err}");
    }

    #[test]
    fn debug_output_redacts_every_secret() {
        let s = Settings {
            old_master_keys: Some(format!("{},{}", "T0xEU0VDUkVUT0xEU0VDUkVUT0xEU0VDUkVUT0xEU0U=", "b".repeat(64))),
            master_key: Some("MASTERKEY".into()),
            plaid_client_id: Some("client".into()),
            plaid_secret: Some("PLAIDSECRET".into()),
            database_url: Some("postgres://u:DBPASSWORD@h/db".into()),
            ..settings()
        };
        let raw = format!("{s:?}");
        let resolved = format!("{:?}", Config::resolve(s).unwrap());
        for text in [raw, resolved] {
            for secret in ["MASTERKEY", "PLAIDSECRET", "DBPASSWORD", "T0xEU0VDUkVU", "bbbbbbbb"] {
                assert!(!text.contains(secret), "{secret} leaked in {text}");
            }
        }
    }

    #[test]
    fn file_layer_fills_gaps_but_flags_win_and_unknown_keys_fail() {
        let dir = std::env::temp_dir().join(format!("banksync-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("banksync.toml");
        // The file sets keys (so the environment matters) and two settings the flags override.
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nplaid_env = \"production\"\nplaid_client_id = \"id\"\n\
             plaid_secret = \"file-secret\"\nsync_interval = \"2h\"\n",
        )
        .unwrap();
        let cli = Settings {
            config: Some(path.clone()),
            plaid_env: Some("sandbox".into()),
            sync_interval: Some("3h".into()),
            ..settings()
        };
        let config = Config::load(cli).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap(), "the file fills what the flags leave unset");
        assert!(
            matches!(&config.plaid, PlaidTarget::Remote { environment: PlaidEnvironment::Sandbox, client_id, .. }
                if client_id == "id"),
            "the flag's sandbox beats the file's production: {:?}",
            config.plaid
        );
        assert_eq!(config.jobs.sync_interval, std::time::Duration::from_secs(3 * 3600), "the flag's 3h wins");
        // And without the flags, the file's values are used (so the assertions above can fail).
        let config = Config::load(Settings { config: Some(path.clone()), ..settings() }).unwrap();
        assert!(matches!(&config.plaid, PlaidTarget::Remote { environment: PlaidEnvironment::Production, .. }));
        assert_eq!(config.jobs.sync_interval, std::time::Duration::from_secs(2 * 3600));

        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let err = Config::load(Settings { config: Some(path), ..settings() }).unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
