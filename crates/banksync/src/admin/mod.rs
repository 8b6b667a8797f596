//! Operator commands: `doctor`, `backup`/`restore`, `migrate-store`, `user list`/`user passwd`. Each submodule
//! owns one command's logic; this file holds their clap arguments and the entry points `cli.rs` dispatches to.

pub mod backup;
pub mod doctor;
pub mod migrate_store;
pub mod users;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use crate::config::{Config, Settings};

/// The error and its causes on one line (`a: b: c`), so the command's failure is one clear line on stderr.
fn one_line<T>(result: anyhow::Result<T>) -> anyhow::Result<T> {
    result.map_err(|e| anyhow::anyhow!("{e:#}"))
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print the checks as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (must not exist; written 0600).
    pub file: PathBuf,
    /// Also store the master key(s) in the backup. Without them the backup's Plaid access tokens can only be
    /// decrypted with the key you keep separately.
    #[arg(long)]
    pub include_key: bool,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `banksync backup`.
    pub file: PathBuf,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Args)]
pub struct MigrateStoreArgs {
    /// The installation to copy: `sqlite://DATA_DIR/banksync.db` or `postgres://…`.
    #[arg(long)]
    pub from: String,
    /// An empty database to copy into (its schema is created).
    #[arg(long)]
    pub to: String,
    /// Print the per-table report as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run_doctor(args: DoctorArgs) -> anyhow::Result<()> {
    one_line(run_doctor_inner(args).await)
}

async fn run_doctor_inner(args: DoctorArgs) -> anyhow::Result<()> {
    let checks = doctor::run(args.settings).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&checks)?);
    } else {
        print!("{}", doctor::render(&checks));
    }
    if doctor::failed(&checks) {
        anyhow::bail!("doctor found problems (the FAIL lines above)");
    }
    Ok(())
}

pub async fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    one_line(run_backup_inner(args).await)
}

async fn run_backup_inner(args: BackupArgs) -> anyhow::Result<()> {
    let config = Config::load(args.settings)?;
    let report = backup::backup(&config, &args.file, args.include_key).await?;
    eprintln!(
        "backup written to {} ({} bytes, {} Item(s), mode 0600)",
        report.file.display(),
        report.bytes,
        report.items
    );
    if report.key_included {
        eprintln!("it holds the master key: anyone with this file can use the Plaid access tokens; store it safely");
    } else if !report.token_keys.is_empty() {
        eprintln!(
            "it does NOT hold the master key: its Plaid access tokens can only be decrypted with key(s) {} \
             (DATA_DIR/master.key or BANKSYNC_MASTER_KEY); keep that key safe separately, or use --include-key",
            report.token_keys.join(", ")
        );
    }
    Ok(())
}

pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    one_line(run_restore_inner(args).await)
}

async fn run_restore_inner(args: RestoreArgs) -> anyhow::Result<()> {
    let config = Config::load(args.settings)?;
    let report = backup::restore(&config, &args.file).await?;
    eprintln!(
        "restored {} ({} Item(s), all tokens decrypt) from a backup taken {}",
        report.database.display(),
        report.items,
        report.created_at.as_deref().unwrap_or("at an unknown time")
    );
    if let Some(previous) = &report.previous {
        eprintln!("the database it replaced is kept as {} (delete it once all is well)", previous.display());
    }
    for key in &report.installed_keys {
        eprintln!("installed the backup's key as {}", key.display());
    }
    Ok(())
}

pub async fn run_migrate_store(args: MigrateStoreArgs) -> anyhow::Result<()> {
    one_line(run_migrate_store_inner(args).await)
}

async fn run_migrate_store_inner(args: MigrateStoreArgs) -> anyhow::Result<()> {
    let report = migrate_store::migrate_store(&args.from, &args.to).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("TABLE\tROWS\tCHECKSUM");
        for t in &report {
            println!("{}\t{}\t{}", t.table, t.rows, t.checksum);
        }
    }
    let rows: u64 = report.iter().map(|t| t.rows).sum();
    eprintln!(
        "copied {rows} row(s) in {} table(s); counts and checksums match. Point BANKSYNC_DATABASE_URL at the new \
         database and keep the same master key.",
        report.len()
    );
    Ok(())
}

pub async fn run_user_list(settings: Settings, json: bool) -> anyhow::Result<()> {
    one_line(run_user_list_inner(settings, json).await)
}

async fn run_user_list_inner(settings: Settings, json: bool) -> anyhow::Result<()> {
    let store = crate::startup::open_store(&Config::load(settings)?).await?;
    users::list(&store, json).await
}

pub async fn run_user_passwd(name: &str, settings: Settings) -> anyhow::Result<()> {
    one_line(run_user_passwd_inner(name, settings).await)
}

async fn run_user_passwd_inner(name: &str, settings: Settings) -> anyhow::Result<()> {
    let config = Config::load(settings)?;
    let password = read_password().context("cannot read the new password")?;
    let store = crate::startup::open_store(&config).await?;
    users::passwd(&store, name, password).await
}

/// Prompts twice without echo on a terminal; reads one line from a pipe.
pub(crate) fn read_password() -> anyhow::Result<secrecy::SecretString> {
    use std::io::{BufRead as _, IsTerminal as _};

    use secrecy::{ExposeSecret as _, SecretString};

    if std::io::stdin().is_terminal() {
        let first = SecretString::from(rpassword::prompt_password("Password: ").context("cannot read the password")?);
        let again =
            SecretString::from(rpassword::prompt_password("Password again: ").context("cannot read the password")?);
        if first.expose_secret() != again.expose_secret() {
            anyhow::bail!("the passwords do not match");
        }
        Ok(first)
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from standard input")?;
        let password = SecretString::from(line.trim_end_matches(['\r', '\n']).to_owned());
        line.clear();
        Ok(password)
    }
}
