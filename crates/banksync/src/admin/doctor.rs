//! `banksync doctor`: checks an installation end to end and says, for each problem, what to do.
//!
//! Checks run in order and later ones are skipped when what they need is missing (no database, no key). Nothing
//! is changed, except that opening the database applies pending migrations like every other command. Secrets are
//! never printed: the Plaid check reports Plaid's error code, the key check key ids.

use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use crate::config::{Config, PlaidEnvironment, PlaidTarget, Settings};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about it (absent when all is well).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn check(check: &'static str, status: Status, detail: impl Into<String>, fix: Option<&str>) -> Check {
    Check { check, status, detail: detail.into(), fix: fix.map(str::to_owned) }
}

/// Jobs due for longer than this mean no worker runs.
const OVERDUE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(15);
/// Consent ending within this is worth a warning.
const CONSENT_WARNING: chrono::TimeDelta = chrono::TimeDelta::days(7);
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every check; the report is complete even when some fail.
pub async fn run(settings: Settings) -> Vec<Check> {
    let mut out = Vec::new();
    let config = match Config::load(settings) {
        Ok(config) => {
            out.push(check("configuration", Status::Ok, "settings are valid", None));
            config
        }
        Err(e) => {
            out.push(check(
                "configuration",
                Status::Fail,
                e.to_string(),
                Some("fix the setting named above (flag, environment variable or config file)"),
            ));
            return out;
        }
    };
    let store = match crate::startup::open_store(&config).await {
        Ok(store) => {
            let kind = match store.backend() {
                crate::store::Backend::Sqlite => "SQLite",
                crate::store::Backend::Postgres => "PostgreSQL",
            };
            let running = if crate::data_lock::server_running(&config.data_dir) { "; a server is running" } else { "" };
            out.push(check("database", Status::Ok, format!("{kind} answers, schema up to date{running}"), None));
            Some(store)
        }
        Err(e) => {
            out.push(check(
                "database",
                Status::Fail,
                format!("{e:#}"),
                Some("check BANKSYNC_DATABASE_URL / BANKSYNC_DATA_DIR, that the database server runs, and permissions"),
            ));
            None
        }
    };
    out.push(key_check(&config, store.as_deref()).await);
    out.push(plaid_check(&config).await);
    out.push(webhook_check(&config).await);
    if let Some(store) = &store {
        out.push(jobs_check(store).await);
        out.extend(item_checks(store).await);
        store.close().await;
    } else {
        out.push(check("jobs", Status::Skip, "no database", None));
        out.push(check("items", Status::Skip, "no database", None));
    }
    out
}

async fn key_check(config: &Config, store: Option<&Store>) -> Check {
    let keyring = match crate::keys::load_keyring(config, false) {
        Ok(k) => k,
        Err(e) => {
            return check(
                "master key",
                Status::Fail,
                e.to_string(),
                Some(
                    "set BANKSYNC_MASTER_KEY or restore DATA_DIR/master.key (0600, owned by the service user); \
                     without it stored Plaid access tokens cannot be decrypted",
                ),
            );
        }
    };
    let Some(store) = store else {
        return check("master key", Status::Ok, format!("key {} loads", keyring.primary.id()), None);
    };
    let vault = keyring.vault();
    let items = match store.list_all_items().await {
        Ok(items) => items,
        Err(e) => return check("master key", Status::Fail, format!("cannot read the Items: {e}"), None),
    };
    let failed = items.iter().filter(|i| vault.decrypt(&i.access_token, i.item_id.as_str()).is_err()).count();
    if failed > 0 {
        return check(
            "master key",
            Status::Fail,
            format!("{failed} of {} Item(s) have access tokens the configured keys do not open", items.len()),
            Some(
                "configure the key they were sealed with (BANKSYNC_MASTER_KEY, or old keys in \
                 BANKSYNC_OLD_MASTER_KEYS / DATA_DIR/master.key.old.*); `banksync key status` lists the key ids",
            ),
        );
    }
    check(
        "master key",
        Status::Ok,
        format!("key {} opens all {} Item token(s)", keyring.primary.id(), items.len()),
        None,
    )
}

async fn plaid_check(config: &Config) -> Check {
    let PlaidTarget::Remote { client_id, secret, environment, base_url } = &config.plaid else {
        return check(
            "plaid",
            Status::Warn,
            "demo mode: no PLAID_CLIENT_ID/PLAID_SECRET, the embedded simulator stands in for Plaid",
            Some("set PLAID_CLIENT_ID, PLAID_SECRET and PLAID_ENV to link real banks"),
        );
    };
    let env = match (base_url, environment) {
        (Some(base), _) => plaid::Environment::Custom(base.clone()),
        (None, PlaidEnvironment::Sandbox) => plaid::Environment::Sandbox,
        (None, PlaidEnvironment::Production) => plaid::Environment::Production,
    };
    let client = match plaid::PlaidClient::new(plaid::ClientConfig::new(env, client_id, secret.clone())) {
        Ok(c) => c,
        Err(e) => return check("plaid", Status::Fail, format!("invalid Plaid settings: {e}"), None),
    };
    // An authenticated call without side effects: asking for a key id that does not exist answers
    // INVALID_API_KEYS when the credentials are wrong, and another error (or a key) when they are right.
    match tokio::time::timeout(PROBE_TIMEOUT, client.webhook_verification_key_get("banksync-doctor-probe")).await {
        Err(_) => check(
            "plaid",
            Status::Fail,
            "Plaid did not answer within 10 s",
            Some("check outbound HTTPS from this host (proxy, firewall) and PLAID_BASE_URL if set"),
        ),
        Ok(Ok(_)) => check("plaid", Status::Ok, "reachable, credentials accepted", None),
        Ok(Err(plaid::Error::Api { error, .. }))
            if matches!(error.error_code.as_str(), "INVALID_API_KEYS" | "UNAUTHORIZED_ENVIRONMENT") =>
        {
            check(
                "plaid",
                Status::Fail,
                format!("Plaid rejected the credentials ({})", error.error_code),
                Some("check PLAID_CLIENT_ID, PLAID_SECRET and that PLAID_ENV matches the secret (sandbox/production)"),
            )
        }
        Ok(Err(plaid::Error::Api { .. })) => check("plaid", Status::Ok, "reachable, credentials accepted", None),
        Ok(Err(e)) => check(
            "plaid",
            Status::Fail,
            format!("cannot reach Plaid: {e}"),
            Some("check outbound HTTPS from this host (DNS, proxy, firewall) and PLAID_BASE_URL if set"),
        ),
    }
}

async fn webhook_check(config: &Config) -> Check {
    let webhook = config.webhook_url();
    let local = webhook.host_str().is_some_and(|h| {
        h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback() || is_private(ip))
    });
    let health = match config.public_url.join("health") {
        Ok(url) => url,
        Err(e) => return check("webhook url", Status::Fail, format!("bad BANKSYNC_PUBLIC_URL: {e}"), None),
    };
    let client = reqwest::Client::builder().timeout(PROBE_TIMEOUT).build();
    let reached = match client {
        Ok(client) => client.get(health.clone()).send().await.map(|r| r.status()),
        Err(e) => return check("webhook url", Status::Fail, format!("no HTTP client: {e}"), None),
    };
    match (reached, local) {
        (Ok(status), false) if status.is_success() => {
            check("webhook url", Status::Ok, format!("{webhook} (GET {health} answered {status})"), None)
        }
        (Ok(status), true) if status.is_success() => check(
            "webhook url",
            Status::Warn,
            format!("{webhook} answers here, but it is a local address Plaid cannot reach"),
            Some("set BANKSYNC_PUBLIC_URL to the public https URL of your reverse proxy (see docs/deploy.md)"),
        ),
        (Ok(status), _) => check(
            "webhook url",
            Status::Fail,
            format!("GET {health} answered {status}: BANKSYNC_PUBLIC_URL does not lead to this banksync"),
            Some("point the reverse proxy at banksync, or fix BANKSYNC_PUBLIC_URL"),
        ),
        (Err(e), _) => check(
            "webhook url",
            Status::Fail,
            format!("cannot reach {health}: {}", without_url(&e)),
            Some(
                "start banksync (`banksync serve`), and make BANKSYNC_PUBLIC_URL the URL your reverse proxy serves \
                 it at; Plaid delivers webhooks to PUBLIC_URL/webhooks/plaid",
            ),
        ),
    }
}

/// A short reason, without the URL or the error chain.
fn without_url(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused or host unreachable"
    } else {
        "request failed"
    }
}

fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_link_local(),
        std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xfe00) == 0xfc00,
    }
}

async fn jobs_check(store: &Store) -> Check {
    let health = match store.job_health(OVERDUE_AFTER).await.context("cannot read the job queue") {
        Ok(h) => h,
        Err(e) => return check("jobs", Status::Fail, format!("{e:#}"), None),
    };
    let mut problems = Vec::new();
    if health.expired_leases > 0 {
        problems.push(format!("{} running job(s) whose worker stopped renewing its lease", health.expired_leases));
    }
    if health.overdue > 0 {
        problems.push(format!("{} queued job(s) due for over 15 minutes", health.overdue));
    }
    if health.failed_recently > 0 {
        problems.push(format!("{} job(s) failed for good in the last 24 h", health.failed_recently));
    }
    if problems.is_empty() {
        return check("jobs", Status::Ok, format!("no stuck jobs ({} running)", health.running), None);
    }
    check(
        "jobs",
        Status::Warn,
        problems.join("; "),
        Some(
            "make sure a banksync server is running (jobs only run inside `banksync serve`); expired leases are \
             retried automatically; see GET /api/jobs and the server log for failures",
        ),
    )
}

async fn item_checks(store: &Store) -> Vec<Check> {
    let items = match store.items_for_doctor().await {
        Ok(items) => items,
        Err(e) => return vec![check("items", Status::Fail, format!("cannot read the Items: {e}"), None)],
    };
    let now = chrono::Utc::now();
    let mut out = Vec::new();
    for item in &items {
        let name = item.institution.clone().unwrap_or_else(|| "unknown bank".into());
        let what = format!("{} ({name})", item.item_id);
        let (status, detail, fix) = match item.status.as_str() {
            "login_required" | "pending_expiration" | "pending_disconnect" => (
                Status::Warn,
                format!("{what}: {}", item.status),
                "its owner must reconnect the bank (the Reconnect button on the page, i.e. Link update mode)",
            ),
            "revoked" => (
                Status::Warn,
                format!("{what}: access revoked at the bank"),
                "link the bank again, or delete the Item if it is no longer wanted",
            ),
            "error" => (
                Status::Warn,
                format!("{what}: error {}", item.error_code.as_deref().unwrap_or("unknown")),
                "see the Item's last sync on the page or GET /api/items; try `sync now`",
            ),
            _ if item.stalled_at.is_some() => (
                Status::Warn,
                format!("{what}: sync stalled ({})", item.stalled_message.as_deref().unwrap_or("no detail")),
                "check the server log for this Item; `sync now` retries",
            ),
            _ if item.consent_expires_at.is_some_and(|t| t - now < CONSENT_WARNING) => (
                Status::Warn,
                format!(
                    "{what}: consent expires {}",
                    item.consent_expires_at.map(|t| t.to_rfc3339()).unwrap_or_default()
                ),
                "its owner should reconnect the bank before then to renew consent",
            ),
            _ if item.new_accounts_available => (
                Status::Warn,
                format!("{what}: new accounts are available"),
                "its owner can add them by reconnecting the bank",
            ),
            _ => continue,
        };
        out.push(check("item", status, detail, Some(fix)));
    }
    if out.is_empty() {
        out.push(check("items", Status::Ok, format!("{} Item(s), none needs attention", items.len()), None));
    }
    out
}

/// The human table: one line per check, the fix indented under it.
pub fn render(checks: &[Check]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for c in checks {
        let _ = writeln!(out, "{:<5} {:<12} {}", c.status.label(), c.check, c.detail);
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "{:<18}-> {fix}", "");
        }
    }
    out
}

/// True when any check failed (the command then exits non-zero).
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}
