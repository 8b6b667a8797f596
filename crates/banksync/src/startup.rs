//! Building and running the server (the zero-to-production `Application` shape).
//!
//! [`Application::build`] does every fallible step up front — data directory, database and migrations, master key,
//! Plaid client (or the embedded simulator), services, and the listening socket — so a bad setting stops the
//! start with a clear error before anything is served. The listener is bound during `build`, so a configured port
//! of 0 works and [`Application::port`] tells which one was picked (the integration tests rely on this).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use url::Url;

use crate::balances::{BalanceOptions, BalanceRefresher};
use crate::config::{Config, DatabaseUrl, PlaidEnvironment, PlaidTarget};
use crate::link::LinkService;
use crate::state::{AppState, WebSettings};
use crate::store::Store;
use crate::sync::{SyncEngine, SyncOptions};
use crate::vault::{Vault, VaultError};

/// Plaid's hosted Link script, loaded by the page when banksync talks to real Plaid.
pub const PLAID_LINK_SCRIPT: &str = "https://cdn.plaid.com/link/v2/stable/link-initialize.js";
/// Path of the drop-in Link script every simulator serves.
pub const SIM_LINK_SCRIPT_PATH: &str = "/link/v2/stable/link-initialize.js";
/// Where, inside the data directory, the embedded simulator keeps its state (Items, tokens, clock, signing keys).
pub const SIM_STATE_DIR: &str = crate::file_modes::SIM_STATE_DIR;
/// Where banksync serves the built-in simulator's logos and category icons.
pub const SIM_ASSETS_PATH: &str = "/sim-assets";

pub struct Application {
    listener: TcpListener,
    addr: SocketAddr,
    router: Router,
    server: crate::config::ServerSettings,
    store: Arc<Store>,
    /// Keeps the embedded simulator running as long as the application.
    simulator: Option<plaid_sim::RunningSim>,
    /// Deletes rows past retention in the background (stopped with the application).
    _pruner: crate::retention::Pruner,
    /// Background sync workers and the scheduler (stopped gracefully after the server).
    background: Option<(crate::jobs::WorkerPool, crate::jobs::Scheduler)>,
    /// Written out after the last Plaid call, before the process ends.
    audit: crate::audit::AuditTrail,
    /// Login services (the tests read the password pool's gauges).
    auth: Arc<crate::auth::AuthServices>,
    /// Tells `banksync restore` a server uses the data directory (released when the application ends).
    _data_dir_lock: crate::data_lock::DataDirLock,
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Application> {
        // Before any file is created: the database, its WAL, the simulator's journal are born owner-only.
        crate::file_modes::restrict_umask();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (BANKSYNC_LISTEN)", config.listen))?;
        let addr = listener.local_addr().context("cannot read the listening address")?;
        let public_url = public_url_for(&config, addr);

        let data_dir_lock = crate::data_lock::hold_shared(&config.data_dir)?;
        let store = open_store(&config).await?;
        let vault = Arc::new(open_vault(&config)?);
        check_vault_opens_stored_tokens(&store, &vault).await?;

        let (plaid, simulator, plaid_mode, link_script_url) = plaid_client(&config, &public_url).await?;
        // Every Plaid call lands in the audit trail (endpoint, request_id, outcome, latency).
        let audit = crate::audit::AuditTrail::start(store.clone());
        let plaid = plaid.with_observer(audit.observer());

        // One rate budget for the Plaid keys, shared through the database with every instance using it.
        let budget = crate::budget::Budget::new(store.clone(), config.plaid_limits.clone());
        let sync = SyncEngine::new(store.clone(), plaid.clone(), vault.clone(), SyncOptions::default());
        sync.set_budget(budget.clone());
        let balance_options = BalanceOptions { max_age: config.balance_max_age, ..BalanceOptions::default() };
        let balances = BalanceRefresher::new(store.clone(), plaid.clone(), vault.clone(), balance_options);
        balances.set_budget(budget);
        let jobs = crate::jobs::JobQueue::with_rules(
            store.clone(),
            crate::jobs::SyncRules { cooldown: config.jobs.sync_cooldown, refresh: config.jobs.transactions_refresh },
        );
        let redirect_uri = config.oauth_redirect.uri(&public_url);
        match (&redirect_uri, &config.oauth_redirect) {
            (Some(uri), _) => {
                tracing::info!(redirect_uri = %uri, "OAuth banks return to this URL (register it with Plaid)")
            }
            (None, crate::config::OAuthRedirect::Off) => {}
            (None, _) => tracing::warn!(
                public_url = %public_url,
                "OAuth banks cannot be linked: BANKSYNC_PUBLIC_URL is plain http on a host other than localhost, which \
                 Plaid refuses as a redirect URI; serve banksync over https or set BANKSYNC_OAUTH_REDIRECT_URI"
            ),
        }
        let link = Arc::new(
            LinkService::new(
                store.clone(),
                plaid.clone(),
                vault.clone(),
                jobs.clone(),
                public_url.join("webhooks/plaid").context("cannot build the webhook URL from BANKSYNC_PUBLIC_URL")?,
                "banksync".to_owned(),
            )
            .with_redirect_uri(redirect_uri.clone()),
        );

        let events = crate::events::EventHub::new();
        sync.set_events(events.clone());
        balances.set_events(events.clone());
        let webhooks = Arc::new(crate::webhooks::WebhookReceiver::new(
            store.clone(),
            crate::webhooks::WebhookKeys::plaid(plaid.clone()),
            jobs.clone(),
            events.clone(),
        ));
        let workers = crate::jobs::WorkerPool::start(
            jobs.clone(),
            sync.clone(),
            crate::jobs::WorkerOptions::with_lease(config.jobs.workers, config.jobs.lease),
        );
        let scheduler = crate::jobs::Scheduler::start(
            jobs.clone(),
            crate::jobs::SchedulerOptions::for_interval(config.jobs.sync_interval),
        );

        // In demo mode the simulator's logos come from banksync's own origin (`/sim-assets`), over plain http.
        let mut logo_http_prefixes = config.logo_http_origins.clone();
        if simulator.is_some() {
            logo_http_prefixes.push(format!("{}{SIM_ASSETS_PATH}/", public_url.as_str().trim_end_matches('/')));
        }
        let logos = Arc::new(
            crate::logos::LogoProxy::new(
                store.clone(),
                crate::logos::LogoOptions { http_prefixes: logo_http_prefixes },
            )
            .context("cannot build the logo proxy's HTTP client")?,
        );
        // With no user yet, first-run setup is open and its one-time code is logged (one line).
        let needs_setup = store.count_users().await.context("cannot count the users")? == 0;
        let auth = Arc::new(crate::auth::AuthServices::start(&config.auth, needs_setup, &format!("http://{addr}")));

        let state = AppState {
            store: store.clone(),
            vault,
            plaid,
            sync,
            balances,
            link,
            auth: auth.clone(),
            web: Arc::new(WebSettings {
                secure_cookies: public_url.scheme() == "https",
                link_script_url,
                plaid_mode,
                merchant_logos: config.merchant_logos,
            }),
            events,
            jobs,
            webhooks,
            logos,
        };
        let security = security_headers(&config, simulator.as_ref().map(plaid_sim::RunningSim::url).as_deref());
        let limits = crate::http::server::ServerLimits::from_settings(&config.server);
        let mut router = crate::http::router_with(state, limits, security);
        if simulator.is_some() {
            // The demo's merchant logos and category icons, from banksync's own origin: they load offline and stay
            // valid across restarts (the simulator's own port changes with every start).
            router = router.nest(SIM_ASSETS_PATH, plaid_sim::assets::router());
        }

        tracing::info!(url = %format!("http://{addr}"), public_url = %public_url, "banksync listening");
        Ok(Application {
            listener,
            addr,
            router,
            server: config.server,
            _pruner: crate::retention::Pruner::start(store.clone(), config.retention),
            store,
            simulator,
            background: Some((workers, scheduler)),
            audit,
            auth,
            _data_dir_lock: data_dir_lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://IP:PORT` of the listening socket.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The store the application uses (tests seed users through it).
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// The bounded password-hashing pool (its gauges prove the bound in tests).
    pub fn password_pool(&self) -> crate::auth::hash_pool::PasswordPool {
        self.auth.passwords.clone()
    }

    /// The embedded simulator's base URL, when banksync runs against it.
    pub fn simulator_url(&self) -> Option<String> {
        self.simulator.as_ref().map(plaid_sim::RunningSim::url)
    }

    /// Serves until Ctrl-C or SIGTERM, then stops accepting connections and lets running requests finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let cleanup = tokio::spawn(expire_sessions(self.store.clone()));
        // Each request carries the peer's address: first-run setup trusts a direct loopback connection (`http::peer`).
        let result = crate::http::server::serve(self.listener, self.router, self.server, shutdown_signal())
            .await
            .context("HTTP server failed");
        cleanup.abort();
        if let Some((workers, scheduler)) = self.background {
            scheduler.shutdown().await;
            workers.shutdown().await;
        }
        self.audit.flush().await;
        if let Some(sim) = self.simulator {
            sim.shutdown().await;
        }
        tracing::info!("banksync stopped");
        result
    }
}

/// Resolves on Ctrl-C or SIGTERM, whichever comes first.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// `BANKSYNC_PUBLIC_URL`, or the real listening address when it was derived from a listen address with port 0.
fn public_url_for(config: &Config, addr: SocketAddr) -> Url {
    let mut url = config.public_url.clone();
    if config.listen.port() == 0 && url.port() == Some(0) {
        let _ = url.set_port(Some(addr.port()));
    }
    url
}

/// Creates the data directory, opens the configured database and applies migrations. Logs the database kind,
/// never its URL (a PostgreSQL URL may carry a password).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<Store>> {
    let sqlite_path = match &config.database {
        DatabaseUrl::Sqlite(path) => Some(path.as_path()),
        DatabaseUrl::Postgres(_) => None,
    };
    // 0700/0600, whatever an older banksync left (each change logged).
    crate::file_modes::secure_data_dir(&config.data_dir, sqlite_path)?;
    let store: Arc<Store> = match &config.database {
        DatabaseUrl::Sqlite(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create the database directory {}", dir.display()))?;
            }
            tracing::info!(path = %path.display(), "database: SQLite");
            Arc::new(
                Store::open_sqlite(path)
                    .await
                    .with_context(|| format!("cannot open the SQLite database {}", path.display()))?,
            )
        }
        DatabaseUrl::Postgres(url) => {
            tracing::info!("database: PostgreSQL");
            crate::store::connect_with(secrecy::ExposeSecret::expose_secret(url), config.db_pool)
                .await
                .context("cannot connect to PostgreSQL (BANKSYNC_DATABASE_URL)")?
        }
    };
    store.migrate().await.context("cannot apply database migrations")?;
    Ok(store)
}

fn open_vault(config: &Config) -> anyhow::Result<Vault> {
    let vault = crate::keys::server_vault(config).context(
        "cannot load the master keys that encrypt Plaid access tokens \
         (set BANKSYNC_MASTER_KEY, or keep DATA_DIR/master.key readable by this user only; old keys come from \
         BANKSYNC_OLD_MASTER_KEYS and DATA_DIR/master.key.old.*)",
    )?;
    tracing::info!(key_id = %vault.primary_key_id(), "token vault ready");
    Ok(vault)
}

/// A wrong master key must stop the start, not surface later as every sync failing: open one stored token per key
/// id. A record under a key we hold that does not open, or no record opening at all, stops the start; Items under a
/// key that is not configured (an old key dropped too early) are logged loudly, and only those Items fail.
async fn check_vault_opens_stored_tokens(store: &Arc<Store>, vault: &Vault) -> anyhow::Result<()> {
    let items = store.list_all_items().await.context("cannot read the linked Items")?;
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    let mut missing = std::collections::BTreeMap::<&str, usize>::new();
    for item in &items {
        let key_id = item.access_token.key_id.as_str();
        if let Some(n) = missing.get_mut(key_id) {
            *n += 1;
            continue;
        }
        if seen.contains_key(key_id) {
            continue;
        }
        match vault.decrypt(&item.access_token, item.item_id.as_str()) {
            Ok(_) => {
                seen.insert(key_id, 1);
            }
            Err(VaultError::UnknownKey(_)) => {
                missing.insert(key_id, 1);
            }
            Err(e) => anyhow::bail!(
                "the master key does not open the stored Plaid access tokens ({e}); start with the key this \
                 database was created with (BANKSYNC_MASTER_KEY or DATA_DIR/master.key)"
            ),
        }
    }
    if !missing.is_empty() {
        let list: Vec<String> = missing.iter().map(|(id, n)| format!("{id} ({n} Item(s))")).collect();
        if seen.is_empty() {
            anyhow::bail!(
                "no configured master key opens the stored Plaid access tokens: they are sealed with key(s) {}; \
                 start with the key this database was created with (BANKSYNC_MASTER_KEY or DATA_DIR/master.key), \
                 and keep old keys in BANKSYNC_OLD_MASTER_KEYS or DATA_DIR/master.key.old.*",
                list.join(", ")
            );
        }
        tracing::error!(
            keys = %list.join(", "),
            "some Items are sealed with master keys that are not configured; they cannot sync until the old key is \
             added to BANKSYNC_OLD_MASTER_KEYS or DATA_DIR/master.key.old.*"
        );
    }
    Ok(())
}

/// The Plaid client, the embedded simulator if used, a mode name and the Link script URL for the page.
pub(crate) async fn plaid_client(
    config: &Config,
    public_url: &Url,
) -> anyhow::Result<(plaid::PlaidClient, Option<plaid_sim::RunningSim>, &'static str, String)> {
    match &config.plaid {
        PlaidTarget::Remote { client_id, secret, environment, base_url } => {
            let env = match (base_url, environment) {
                (Some(url), _) => plaid::Environment::Custom(url.clone()),
                (None, PlaidEnvironment::Sandbox) => plaid::Environment::Sandbox,
                (None, PlaidEnvironment::Production) => plaid::Environment::Production,
            };
            // A base URL override points at a Plaid-compatible server such as `banksync sim`, which serves the
            // drop-in Link script; real Plaid's Link comes from its CDN.
            let link_script = match base_url {
                Some(url) => format!("{}{SIM_LINK_SCRIPT_PATH}", url.as_str().trim_end_matches('/')),
                None => PLAID_LINK_SCRIPT.to_owned(),
            };
            let client = plaid::PlaidClient::new(plaid::ClientConfig::new(env.clone(), client_id, secret.clone()))
                .context("invalid Plaid client settings")?;
            tracing::info!(environment = %env, client_id = %client_id, "Plaid: talking to Plaid");
            Ok((client, None, "plaid", link_script))
        }
        PlaidTarget::EmbeddedSimulator => {
            // The database keeps the Items' access tokens, so the simulated banks must outlive a restart too.
            let state_dir = config.data_dir.join(SIM_STATE_DIR);
            let sim_config = plaid_sim::SimConfig {
                // Demo-friendly realism: live balances take a moment; a new Item's last 30 days are ready after
                // ~2 s and its full history after ~20 s, the way Plaid delivers them (banksync keeps looking).
                balance_latency: Duration::from_secs(1)..=Duration::from_secs(3),
                product_ready_delay: Duration::from_secs(2),
                historical_ready_delay: Some(Duration::from_secs(20)),
                asset_base_url: Some(format!("{}{SIM_ASSETS_PATH}", public_url.as_str().trim_end_matches('/'))),
                state_dir: Some(state_dir.clone()),
                ..plaid_sim::SimConfig::default()
            };
            let (client_id, secret) = (sim_config.client_id.clone(), sim_config.secret.clone());
            let sim = plaid_sim::Simulator::open(sim_config)
                .with_context(|| {
                    format!("cannot load the embedded Plaid simulator's saved banks from {}", state_dir.display())
                })?
                .spawn(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .context("cannot start the embedded Plaid simulator")?;
            let url = Url::parse(&sim.url()).context("the simulator reported an invalid URL")?;
            let client =
                plaid::PlaidClient::new(plaid::ClientConfig::new(plaid::Environment::Custom(url), client_id, secret))
                    .context("cannot build the Plaid client for the simulator")?;
            tracing::info!(
                "Plaid: no PLAID_CLIENT_ID/PLAID_SECRET set, so banksync runs against its built-in Plaid simulator \
                 at {} (log in to the simulated banks as user_good / pass_good); set PLAID_CLIENT_ID and \
                 PLAID_SECRET (and PLAID_ENV) to use real Plaid",
                sim.url()
            );
            let link_script = format!("{}{SIM_LINK_SCRIPT_PATH}", sim.url());
            Ok((client, Some(sim), "simulator", link_script))
        }
    }
}

/// The security headers for the mode: real keys → Plaid Link's CDN and the environment's API origin; a Plaid base URL
/// override (a standalone `banksync sim`) or the embedded simulator (`sim_url`) → that server's origin for both.
/// HSTS when the public URL is https.
pub fn security_headers(config: &Config, sim_url: Option<&str>) -> crate::http::SecurityHeaders {
    let https = config.public_url.scheme() == "https";
    let origin = |url: &str| Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let (link, api) = match (&config.plaid, sim_url) {
        (PlaidTarget::Remote { base_url: Some(url), .. }, _) => (origin(url.as_str()), origin(url.as_str())),
        (PlaidTarget::Remote { base_url: None, environment, .. }, _) => {
            let api = match environment {
                PlaidEnvironment::Sandbox => "https://sandbox.plaid.com",
                PlaidEnvironment::Production => "https://production.plaid.com",
            };
            (origin(PLAID_LINK_SCRIPT), api.to_owned())
        }
        (PlaidTarget::EmbeddedSimulator, Some(sim)) => (origin(sim), origin(sim)),
        // Not started (cannot happen once built): allow nothing beyond our own origin.
        (PlaidTarget::EmbeddedSimulator, None) => ("'self'".to_owned(), "'self'".to_owned()),
    };
    crate::http::SecurityHeaders::new(&link, &api, https)
}

/// Deletes expired sessions once an hour.
async fn expire_sessions(store: Arc<Store>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match store.delete_expired_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(deleted = n, "expired sessions removed"),
            Err(e) => tracing::warn!(error = %e, "cannot remove expired sessions"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    #[test]
    fn real_keys_pin_the_page_policy_to_plaids_cdn_and_api_and_https_adds_hsts() {
        let config = Config::resolve(Settings {
            plaid_client_id: Some("id".into()),
            plaid_secret: Some("secret".into()),
            plaid_env: Some("production".into()),
            public_url: Some("https://money.example.org".into()),
            ..Settings::default()
        })
        .unwrap();
        let headers = security_headers(&config, None);
        assert_eq!(
            headers.page_csp(),
            "default-src 'none'; script-src 'self' https://cdn.plaid.com; style-src 'self' https://cdn.plaid.com; \
             img-src 'self' data:; font-src 'self'; connect-src 'self' https://cdn.plaid.com \
             https://production.plaid.com; frame-src https://cdn.plaid.com; form-action 'self'; base-uri 'none'; \
             frame-ancestors 'none'"
        );
        assert!(headers.hsts().is_some());
        let sandbox_http = Config::resolve(Settings {
            plaid_client_id: Some("id".into()),
            plaid_secret: Some("secret".into()),
            ..Settings::default()
        })
        .unwrap();
        let headers = security_headers(&sandbox_http, None);
        assert!(headers.page_csp().contains("connect-src 'self' https://cdn.plaid.com https://sandbox.plaid.com;"));
        assert!(headers.hsts().is_none(), "no HSTS over plain http");
    }

    #[test]
    fn demo_mode_names_the_embedded_simulator() {
        let config = Config::resolve(Settings::default()).unwrap();
        let headers = security_headers(&config, Some("http://127.0.0.1:4321"));
        assert!(headers.page_csp().contains("script-src 'self' http://127.0.0.1:4321;"), "{}", headers.page_csp());
        assert!(!headers.page_csp().contains("plaid.com"));
    }
}
