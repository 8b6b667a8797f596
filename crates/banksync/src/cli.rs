//! Command-line interface: argument parsing and the subcommands' entry points.
//!
//! `banksync` without a subcommand is `banksync serve`, so `cargo run --release` starts the server.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use secrecy::ExposeSecret as _;

use crate::auth::password::{hash_password, validate_new_password, validate_new_username};
use crate::auth::token::{hash_secret, new_api_token};
use crate::config::{Config, PlaidEnvironment, PlaidTarget, Settings};
use crate::startup::{Application, open_store, shutdown_signal};
use crate::store::StoreError;

mod data;
mod export;
mod live;
mod output;

#[derive(Debug, Parser)]
#[command(name = "banksync", version, about = "Your bank data, in your own database, through Plaid")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for the default command (`serve`).
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve(ServeArgs),
    /// Run the offline Plaid simulator as a standalone HTTP server.
    Sim(SimArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate(ServeArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage Plaid webhooks.
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Manage the master key that encrypts Plaid access tokens.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Check configuration, database, master key, Plaid, the webhook URL, jobs and Items; say what to fix.
    Doctor(crate::admin::DoctorArgs),
    /// Write a consistent copy of the SQLite database to FILE while the server runs.
    Backup(crate::admin::BackupArgs),
    /// Replace the SQLite database with a backup (refused while a server uses the data directory).
    Restore(crate::admin::RestoreArgs),
    /// Copy an installation between SQLite and PostgreSQL into an empty database, verified table by table.
    MigrateStore(crate::admin::MigrateStoreArgs),
    /// A user's data: items, accounts, sync, transactions, link.
    #[command(flatten)]
    Data(Box<data::DataCommand>),
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Show the primary key id, the old key ids, and how many Items are sealed under each (no secrets).
    Status {
        #[command(flatten)]
        settings: Settings,
    },
    /// Rotate to a new master key and re-seal every Item under it. With DATA_DIR/master.key the new key replaces
    /// the file and the old one is kept as DATA_DIR/master.key.old.<id>; with BANKSYNC_MASTER_KEY the new key is
    /// printed for you to configure, then `banksync key reseal` finishes. Rerunning finishes an interrupted rotation.
    Rotate {
        #[command(flatten)]
        settings: Settings,
    },
    /// Re-seal every Item not sealed under the primary key (finishes a rotation; a no-op when none is pending).
    Reseal {
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Point every Item's webhook at URL (`/item/webhook/update`), e.g. after the public URL changed.
    SetUrl {
        /// The new webhook URL, e.g. https://bank.example.org/webhooks/plaid.
        url: String,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user. The password is read from standard input (prompted without echo on a terminal).
    Add {
        /// The login name.
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// List users: name, id, created, Items, API tokens, live sessions.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: Settings,
    },
    /// Set user NAME's password (read like `user add`'s) and sign them out of every browser session.
    Passwd {
        /// The login name.
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for user NAME and print it once (only its hash is stored).
    Create {
        /// The user the token acts as.
        name: String,
        /// A label to recognise the token by.
        #[arg(long, default_value = "cli")]
        label: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// List user NAME's API tokens: id, label, created, last used (never the token).
    List {
        /// The user whose tokens to list.
        name: String,
        #[command(flatten)]
        settings: Settings,
    },
    /// Revoke one of user NAME's API tokens by id (see `token list`); it stops working at once.
    Revoke {
        /// The user who owns the token.
        name: String,
        /// The token's id.
        token_id: String,
        #[command(flatten)]
        settings: Settings,
    },
}

impl Cli {
    /// The terminal user's data commands (`items`, `sync`, …): their output is for a person, not a service log.
    pub fn is_data_command(&self) -> bool {
        matches!(self.command, Some(Command::Data(_)))
    }

    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            None => run_serve(self.settings).await,
            Some(Command::Serve(args)) => run_serve(args.settings).await,
            Some(Command::Sim(args)) => run_sim(args).await,
            Some(Command::Migrate(args)) => run_migrate(args.settings).await,
            Some(Command::User(UserCommand::Add { name, settings })) => run_user_add(&name, settings).await,
            Some(Command::User(UserCommand::List { json, settings })) => {
                crate::admin::run_user_list(settings, json).await
            }
            Some(Command::User(UserCommand::Passwd { name, settings })) => {
                crate::admin::run_user_passwd(&name, settings).await
            }
            Some(Command::Doctor(args)) => crate::admin::run_doctor(args).await,
            Some(Command::Backup(args)) => crate::admin::run_backup(args).await,
            Some(Command::Restore(args)) => crate::admin::run_restore(args).await,
            Some(Command::MigrateStore(args)) => crate::admin::run_migrate_store(args).await,
            Some(Command::Token(TokenCommand::Create { name, label, settings })) => {
                run_token_create(&name, &label, settings).await
            }
            Some(Command::Token(TokenCommand::List { name, settings })) => run_token_list(&name, settings).await,
            Some(Command::Token(TokenCommand::Revoke { name, token_id, settings })) => {
                run_token_revoke(&name, &token_id, settings).await
            }
            Some(Command::Key(KeyCommand::Status { settings })) => run_key_status(settings).await,
            Some(Command::Key(KeyCommand::Rotate { settings })) => run_key_rotate(settings).await,
            Some(Command::Key(KeyCommand::Reseal { settings })) => run_key_reseal(settings).await,
            Some(Command::Webhook(WebhookCommand::SetUrl { url, settings })) => {
                run_webhook_set_url(&url, &load_config(settings)?).await
            }
            Some(Command::Data(command)) => command.run().await,
        }
    }
}

fn load_config(settings: Settings) -> anyhow::Result<Config> {
    Ok(Config::load(settings)?)
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run_serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(load_config(settings)?).await?;
    app.run_until_stopped().await
}

async fn run_migrate(settings: Settings) -> anyhow::Result<()> {
    // open_store applies the migrations.
    let store = open_store(&load_config(settings)?).await?;
    store.ping().await.context("the database does not answer")?;
    eprintln!("database is up to date");
    Ok(())
}

async fn run_user_add(name: &str, settings: Settings) -> anyhow::Result<()> {
    let name = name.trim();
    validate_new_username(name).map_err(anyhow::Error::msg)?;
    let config = load_config(settings)?;
    let password = crate::admin::read_password()?;
    validate_new_password(password.expose_secret(), name).map_err(anyhow::Error::msg)?;
    let store = open_store(&config).await?;
    let hash = hash_password(password).await?;
    match store.create_user(name, &hash).await {
        Ok(user) => {
            let role = if user.is_owner { ", the owner: the first user administers the others" } else { "" };
            eprintln!("created user {} (id {}{role})", user.username, user.id);
            Ok(())
        }
        Err(StoreError::Conflict(_)) => anyhow::bail!("a user named {name:?} already exists"),
        Err(e) => Err(anyhow::Error::new(e).context("cannot create the user")),
    }
}

async fn run_token_create(name: &str, label: &str, settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&load_config(settings)?).await?;
    let user = store
        .find_user_by_username(name.trim())
        .await
        .context("cannot look up the user")?
        .with_context(|| format!("no user named {name:?} (create one with `banksync user add {name}`)"))?;
    let token = new_api_token();
    store.create_api_token(&user.id, label, &hash_secret(&token)).await.context("cannot store the token")?;
    eprintln!("API token for {} (shown once; use it as `Authorization: Bearer TOKEN`):", user.username);
    println!("{token}");
    Ok(())
}

async fn find_user(store: &crate::store::Store, name: &str) -> anyhow::Result<crate::domain::User> {
    store
        .find_user_by_username(name.trim())
        .await
        .context("cannot look up the user")?
        .with_context(|| format!("no user named {name:?} (create one with `banksync user add {name}`)"))
}

/// One line per token, tab-separated: id, label, created, last used (`never`). Never the token or its hash.
async fn run_token_list(name: &str, settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&load_config(settings)?).await?;
    let user = find_user(store.as_ref(), name).await?;
    let tokens = store.list_api_tokens(&user.id).await.context("cannot list the tokens")?;
    let time = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    println!("ID\tNAME\tCREATED_AT\tLAST_USED_AT");
    for token in &tokens {
        let last_used = token.last_used_at.map_or_else(|| "never".to_owned(), time);
        println!(
            "{}\t{}\t{}\t{last_used}",
            token.id,
            token.name.replace(['\t', '\n', '\r'], " "),
            time(token.created_at)
        );
    }
    eprintln!("{} API token(s) for {}", tokens.len(), user.username);
    Ok(())
}

async fn run_token_revoke(name: &str, token_id: &str, settings: Settings) -> anyhow::Result<()> {
    let store = open_store(&load_config(settings)?).await?;
    let user = find_user(store.as_ref(), name).await?;
    match store.delete_api_token(&user.id, token_id.trim()).await {
        Ok(()) => {
            eprintln!("revoked API token {} of {}", token_id.trim(), user.username);
            Ok(())
        }
        Err(StoreError::NotFound) => {
            anyhow::bail!(
                "{} has no API token with id {:?} (see `banksync token list {name}`)",
                user.username,
                token_id
            )
        }
        Err(e) => Err(anyhow::Error::new(e).context("cannot revoke the token")),
    }
}

async fn run_key_status(settings: Settings) -> anyhow::Result<()> {
    let config = load_config(settings)?;
    let store = open_store(&config).await?;
    let status = crate::keys::status(store.as_ref(), &config).await?;
    print!("{}", status.render());
    Ok(())
}

async fn run_key_reseal(settings: Settings) -> anyhow::Result<()> {
    let config = load_config(settings)?;
    let store = open_store(&config).await?;
    let report = crate::keys::reseal(store.as_ref(), &config).await?;
    eprintln!("{} Item(s) re-sealed under the primary key", report.resealed);
    Ok(())
}

async fn run_key_rotate(settings: Settings) -> anyhow::Result<()> {
    use crate::keys::RotateOutcome;
    let config = load_config(settings)?;
    let store = open_store(&config).await?;
    match crate::keys::rotate(store.as_ref(), &config, &mut |_| Ok(())).await? {
        RotateOutcome::Rotated { from, to, old_key_file, resealed } => {
            eprintln!(
                "master key rotated: {from} -> {to}; {resealed} Item(s) re-sealed under {to}.\n\
                 The previous key is kept in {} (it opens nothing once `banksync key status` shows no Item under \
                 {from}; then you may delete it). Restart banksync so it seals new tokens with the new key.",
                old_key_file.display()
            );
        }
        RotateOutcome::Finished { to, resealed } => {
            eprintln!(
                "finished an earlier rotation: {resealed} Item(s) re-sealed under {to}; no new key was made \
                 (run `banksync key rotate` again to rotate to a new key)"
            );
        }
        RotateOutcome::NewEnvKey { current, new_key } => {
            eprintln!(
                "The master key comes from BANKSYNC_MASTER_KEY, which banksync cannot change. Nothing has been \
                 re-sealed yet. A new key {} is printed on standard output, once. To finish the rotation:\n\
                 1. Add the current key ({current}) to BANKSYNC_OLD_MASTER_KEYS (comma-separated), and set \
                 BANKSYNC_MASTER_KEY to the new key.\n\
                 2. Restart banksync with both settings.\n\
                 3. Run `banksync key reseal` with the same settings; `banksync key status` then shows every Item \
                 under {}.\n\
                 4. Only then remove the old key from BANKSYNC_OLD_MASTER_KEYS.",
                new_key.id(),
                new_key.id()
            );
            println!("{}", new_key.to_base64().expose_secret());
        }
    }
    Ok(())
}

/// The `banksync webhook set-url URL` command: prints one line per Item and fails if any Item failed.
async fn run_webhook_set_url(url: &str, config: &Config) -> anyhow::Result<()> {
    let url = url::Url::parse(url.trim()).with_context(|| format!("{url:?} is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        anyhow::bail!(
            "the webhook URL must be an http(s) URL with a host, e.g. https://bank.example.org/webhooks/plaid"
        );
    }
    let PlaidTarget::Remote { client_id, secret, environment, base_url } = &config.plaid else {
        anyhow::bail!(
            "no PLAID_CLIENT_ID/PLAID_SECRET configured: the embedded simulator's Items live only while \
             `banksync serve` runs, so there is nothing to update"
        );
    };
    let env = match (base_url, environment) {
        (Some(base), _) => plaid::Environment::Custom(base.clone()),
        (None, PlaidEnvironment::Sandbox) => plaid::Environment::Sandbox,
        (None, PlaidEnvironment::Production) => plaid::Environment::Production,
    };
    let store = open_store(config).await?;
    let audit = crate::audit::AuditTrail::start(store.clone());
    let plaid = plaid::PlaidClient::new(plaid::ClientConfig::new(env, client_id, secret.clone()))
        .context("invalid Plaid client settings")?
        .with_observer(audit.observer());
    let vault: crate::vault::Vault =
        crate::keys::server_vault(config).context("cannot load the master keys that encrypt Plaid access tokens")?;

    let reports = crate::webhooks::set_url::set_webhook_url(&store, &vault, &plaid, &url).await?;
    let failed = reports.iter().filter(|r| r.error.is_some()).count();
    for r in &reports {
        let name = r.institution.as_deref().unwrap_or("-");
        match &r.error {
            None => println!("{}  {name}: webhook set to {url}", r.item_id),
            Some(e) => println!("{}  {name}: FAILED: {e}", r.item_id),
        }
    }
    println!("{} Item(s) updated, {failed} failed", reports.len() - failed);
    audit.flush().await;
    if failed > 0 {
        anyhow::bail!("{failed} Item(s) could not be updated");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address to listen on.
    #[arg(long, env = "BANKSYNC_SIM_LISTEN", default_value = "127.0.0.1:4000")]
    pub listen: SocketAddr,
    /// Seed of the simulated bank world: the same seed gives the same institutions, Items and transactions.
    #[arg(long, env = "BANKSYNC_SIM_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Client id the simulator accepts (sent by clients as PLAID-CLIENT-ID).
    #[arg(long, env = "BANKSYNC_SIM_CLIENT_ID", default_value = "banksync-sim-client")]
    pub client_id: String,
    /// Secret the simulator accepts (sent by clients as PLAID-SECRET). A simulator secret is not a real secret.
    #[arg(long, env = "BANKSYNC_SIM_SECRET", default_value = "banksync-sim-secret")]
    pub secret: String,
    /// Latency range of /accounts/balance/get, e.g. `2s..8s` or `500ms`. Real Plaid takes 3 s typically, up to 30 s.
    #[arg(long, env = "BANKSYNC_SIM_BALANCE_LATENCY", default_value = "1s..3s", value_parser = parse_duration_range)]
    pub balance_latency: RangeInclusive<Duration>,
    /// How long a new Item's transactions stay "not ready" (empty next_cursor), like Plaid's first seconds.
    #[arg(long, env = "BANKSYNC_SIM_PRODUCT_READY_DELAY", default_value = "2s", value_parser = parse_duration)]
    pub product_ready_delay: Duration,
    /// Disable Plaid's sandbox rate limits.
    #[arg(long)]
    pub no_rate_limits: bool,
    /// Keep every API request/response for `GET /sim/exchanges` (for conformance checks).
    #[arg(long)]
    pub record_exchanges: bool,
    /// Keep the simulator's Items, tokens and clock in this directory, so a restart keeps them (created 0700).
    /// Without it, everything is forgotten when the simulator stops.
    #[arg(long, env = "BANKSYNC_SIM_STATE_DIR")]
    pub state_dir: Option<std::path::PathBuf>,
}

impl SimArgs {
    pub fn to_config(&self) -> plaid_sim::SimConfig {
        plaid_sim::SimConfig {
            seed: self.seed,
            client_id: self.client_id.clone(),
            secret: self.secret.clone(),
            balance_latency: self.balance_latency.clone(),
            product_ready_delay: self.product_ready_delay,
            rate_limits: !self.no_rate_limits,
            record_exchanges: self.record_exchanges,
            state_dir: self.state_dir.clone(),
            ..plaid_sim::SimConfig::default()
        }
    }
}

/// Runs the standalone simulator until Ctrl-C or SIGTERM.
pub async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    let sim = plaid_sim::Simulator::open(args.to_config()).context("cannot open the simulator's state directory")?;
    let running = sim.spawn(args.listen).await.with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(
        url = %running.url(),
        client_id = %args.client_id,
        "Plaid simulator listening; point PLAID_BASE_URL here (Link script: {}/link/v2/stable/link-initialize.js)",
        running.url()
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

/// Parses `1500ms`, `2s`, `1m` (humantime syntax).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

/// Parses `MIN..MAX` (e.g. `2s..8s`) or a single duration meaning a fixed value.
pub fn parse_duration_range(s: &str) -> Result<RangeInclusive<Duration>, String> {
    let (min, max) = match s.split_once("..") {
        Some((a, b)) => (parse_duration(a)?, parse_duration(b)?),
        None => {
            let d = parse_duration(s)?;
            (d, d)
        }
    };
    if min > max {
        return Err(format!("invalid range {s:?}: the minimum is above the maximum"));
    }
    Ok(min..=max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_ranges_parse_both_forms_and_reject_inverted_ones() {
        assert_eq!(parse_duration_range("2s..8s").unwrap(), Duration::from_secs(2)..=Duration::from_secs(8));
        assert_eq!(parse_duration_range("500ms").unwrap(), Duration::from_millis(500)..=Duration::from_millis(500));
        assert!(parse_duration_range("8s..2s").is_err());
        assert!(parse_duration_range("fast").is_err());
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
