//! `banksync backup FILE [--include-key]` and `banksync restore FILE` (SQLite).
//!
//! A backup is one SQLite file: `VACUUM INTO` of the live database (consistent while the server runs and syncs:
//! it reads in one transaction, so a sync is wholly in it or not at all), plus a `banksync_backup` table holding
//! when and by which version it was made and, with `--include-key`, the master keys. It is always written 0600 (it
//! holds everyone's bank data, and may hold the key), to a temporary name first, so a failed backup never
//! leaves a half file under FILE.
//!
//! Restore refuses while a server holds the data directory (see `lock.rs`), checks the file (integrity, that it
//! is a banksync backup), migrates a copy, checks that *every* Item's access token opens with the configured keys
//! (plus the keys in the backup), and only then installs the keys and swaps the database in. The database it
//! replaces is kept as `banksync.db.pre-restore`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::config::{Config, DatabaseUrl};
use crate::store::Store;
use crate::vault::{KEY_FILE_NAME, Keyring, MasterKey, Vault};

const META_TABLE: &str = "banksync_backup";
const PG_BACKUP_HINT: &str = "banksync backup/restore copy SQLite databases; for PostgreSQL use its own tools: \
    `pg_dump --format=custom --file=banksync.dump DBNAME` while banksync runs (a consistent snapshot), and \
    `pg_restore --clean --if-exists --dbname=DBNAME banksync.dump` with banksync stopped; keep the master key \
    (BANKSYNC_MASTER_KEY or DATA_DIR/master.key) with the dump, or its Plaid access tokens cannot be decrypted";

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupReport {
    pub file: PathBuf,
    pub bytes: u64,
    pub items: usize,
    /// The key ids the backup's tokens are sealed with.
    pub token_keys: Vec<String>,
    pub key_included: bool,
}

fn sqlite_path(config: &Config) -> anyhow::Result<&Path> {
    match &config.database {
        DatabaseUrl::Sqlite(path) => Ok(path),
        DatabaseUrl::Postgres(_) => anyhow::bail!("{PG_BACKUP_HINT}"),
    }
}

fn temp_name(path: &Path, what: &str) -> PathBuf {
    let mut name = path.file_name().map(std::ffi::OsStr::to_os_string).unwrap_or_default();
    name.push(format!(".{what}-{}", std::process::id()));
    path.with_file_name(name)
}

async fn open_raw(path: &Path) -> anyhow::Result<SqliteConnection> {
    SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(path))
        .await
        .with_context(|| format!("cannot open {} as a SQLite database", path.display()))
}

/// Takes a backup of the configured SQLite database into `file` (which must not exist).
pub async fn backup(config: &Config, file: &Path, include_key: bool) -> anyhow::Result<BackupReport> {
    let db_path = sqlite_path(config)?;
    if file.exists() {
        anyhow::bail!("{} already exists; choose a new file name (a backup never overwrites)", file.display());
    }
    if !db_path.exists() {
        anyhow::bail!("there is no database at {} to back up", db_path.display());
    }
    let keys = if include_key {
        let keyring = crate::keys::load_keyring(config, false)
            .context("cannot load the master key to include (--include-key)")?;
        Some(keyring)
    } else {
        None
    };
    let store = Store::open_sqlite(db_path)
        .await
        .with_context(|| format!("cannot open the SQLite database {}", db_path.display()))?;
    let items = store.list_all_items().await.context("cannot read the Items")?;
    let mut token_keys: Vec<String> = items.iter().map(|i| i.access_token.key_id.clone()).collect();
    token_keys.sort();
    token_keys.dedup();

    let temp = temp_name(file, "partial");
    let result = write_backup(&store, &temp, keys.as_ref()).await;
    store.close().await;
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, file).with_context(|| format!("cannot move the backup into place at {}", file.display()))?;
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport { file: file.to_owned(), bytes, items: items.len(), token_keys, key_included: include_key })
}

async fn write_backup(store: &Store, temp: &Path, keys: Option<&Keyring>) -> anyhow::Result<()> {
    // Created empty and 0600 first: VACUUM INTO accepts an empty file and keeps its mode.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(temp)
        .with_context(|| format!("cannot create {}", temp.display()))?;
    store.vacuum_into(temp).await.context("cannot copy the database (VACUUM INTO)")?;
    let mut conn = open_raw(temp).await?;
    let mut meta: Vec<(String, SecretString)> = vec![
        ("created_at".into(), chrono::Utc::now().to_rfc3339().into()),
        ("banksync_version".into(), env!("CARGO_PKG_VERSION").to_owned().into()),
    ];
    if let Some(keys) = keys {
        meta.push(("master_key".into(), keys.primary.to_base64()));
        for (i, (key, _)) in keys.old.iter().enumerate() {
            meta.push((format!("old_master_key.{i}"), key.to_base64()));
        }
    }
    sqlx::query(&format!("CREATE TABLE {META_TABLE} (name TEXT PRIMARY KEY, value TEXT NOT NULL)"))
        .execute(&mut conn)
        .await
        .context("cannot write the backup's header")?;
    for (name, value) in &meta {
        sqlx::query(&format!("INSERT INTO {META_TABLE} (name, value) VALUES (?, ?)"))
            .bind(name)
            .bind(value.expose_secret())
            .execute(&mut conn)
            .await
            .context("cannot write the backup's header")?;
    }
    conn.close().await.context("cannot finish the backup file")?;
    std::fs::File::open(temp).and_then(|f| f.sync_all()).context("cannot flush the backup to disk")?;
    Ok(())
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreReport {
    pub database: PathBuf,
    pub items: usize,
    pub created_at: Option<String>,
    /// Where the replaced database went, if there was one.
    pub previous: Option<PathBuf>,
    /// Key files written from the backup.
    pub installed_keys: Vec<PathBuf>,
}

/// The backup's header: when it was made, and its keys if it carries them.
struct Header {
    created_at: Option<String>,
    primary: Option<MasterKey>,
    old: Vec<MasterKey>,
}

async fn read_and_strip_header(path: &Path) -> anyhow::Result<Header> {
    let mut conn = open_raw(path).await?;
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .context("the backup is not a readable SQLite database")?;
    if check != "ok" {
        anyhow::bail!("the backup file is damaged (SQLite integrity check: {check})");
    }
    let rows: Vec<(String, String)> = sqlx::query_as(&format!("SELECT name, value FROM {META_TABLE}"))
        .fetch_all(&mut conn)
        .await
        .map_err(|_| anyhow::anyhow!("this file is not a banksync backup (made by `banksync backup`)"))?;
    let mut header = Header { created_at: None, primary: None, old: Vec::new() };
    for (name, value) in rows {
        match name.as_str() {
            "created_at" => header.created_at = Some(value),
            "master_key" => {
                header.primary = Some(MasterKey::from_encoded(&value).context("the backup's master key is unusable")?);
            }
            n if n.starts_with("old_master_key.") => {
                header
                    .old
                    .push(MasterKey::from_encoded(&value).context("an old master key in the backup is unusable")?);
            }
            _ => {}
        }
    }
    sqlx::query(&format!("DROP TABLE {META_TABLE}")).execute(&mut conn).await.context("cannot prepare the copy")?;
    conn.close().await.context("cannot prepare the copy")?;
    Ok(header)
}

/// The keys that will open the restored tokens: the configured ones, plus the backup's. The backup's primary key
/// is installed as DATA_DIR/master.key only when no key is configured; a different configured key file is an
/// error (restoring must not silently replace the key other backups or the environment rely on).
fn plan_keys(config: &Config, header: &Header) -> anyhow::Result<(Vault, Vec<MasterKey>, Vec<MasterKey>)> {
    let key_file = config.data_dir.join(KEY_FILE_NAME);
    let configured = if config.master_key.is_some() || key_file.exists() {
        Some(crate::keys::load_keyring(config, false).context("cannot load the configured master keys")?)
    } else {
        None
    };
    let mut install_primary = Vec::new();
    if let (Some(backup_key), Some(keyring)) = (&header.primary, &configured) {
        if config.master_key.is_none() && keyring.primary.id() != backup_key.id() {
            anyhow::bail!(
                "{} holds key {}, but the backup carries key {}; move that file away to restore with the backup's \
                 key, or restore a backup taken without --include-key",
                key_file.display(),
                keyring.primary.id(),
                backup_key.id()
            );
        }
    }
    let primary = match (&configured, &header.primary) {
        (Some(keyring), _) => dup(&keyring.primary)?,
        (None, Some(key)) => {
            install_primary.push(dup(key)?);
            dup(key)?
        }
        (None, None) => anyhow::bail!(
            "no master key is configured and the backup carries none (it was taken without --include-key): set \
             BANKSYNC_MASTER_KEY or put the key file at {} first, or the restored tokens cannot be decrypted",
            key_file.display()
        ),
    };
    let mut old: Vec<MasterKey> = Vec::new();
    for (key, _) in configured.iter().flat_map(|k| k.old.iter()) {
        old.push(dup(key)?);
    }
    let mut install_old = Vec::new();
    for key in &header.old {
        if key.id() != primary.id() && !old.iter().any(|k| k.id() == key.id()) {
            old.push(dup(key)?);
            install_old.push(dup(key)?);
        }
    }
    Ok((Vault::with_old_keys(primary, old), install_primary, install_old))
}

/// A second handle on a key (keys are deliberately not `Clone`, so copies are explicit).
fn dup(key: &MasterKey) -> anyhow::Result<MasterKey> {
    Ok(MasterKey::from_encoded(key.to_base64().expose_secret())?)
}

/// Restores `file` over the configured SQLite database.
pub async fn restore(config: &Config, file: &Path) -> anyhow::Result<RestoreReport> {
    let db_path = sqlite_path(config)?.to_owned();
    if !file.is_file() {
        anyhow::bail!("there is no backup file at {}", file.display());
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create the data directory {}", config.data_dir.display()))?;
    let _lock = crate::data_lock::hold_exclusive(&config.data_dir)?;

    let temp = temp_name(&db_path, "restoring");
    remove_database_files(&temp);
    let staged = stage(config, file, &temp).await;
    let (header, items, vault_keys) = match staged {
        Ok(v) => v,
        Err(e) => {
            remove_database_files(&temp);
            return Err(e);
        }
    };

    let mut installed_keys = Vec::new();
    let (install_primary, install_old) = vault_keys;
    for key in install_primary {
        let path = config.data_dir.join(KEY_FILE_NAME);
        key.write_file_atomic(&path).context("cannot write the backup's master key")?;
        installed_keys.push(path);
    }
    for key in install_old {
        installed_keys.push(crate::keys::save_old_key(&key, &config.data_dir)?);
    }

    let previous = if db_path.exists() {
        // Fold the old WAL into its file so the kept copy is whole on its own.
        let mut conn = open_raw(&db_path).await?;
        let _ = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut conn).await;
        conn.close().await.ok();
        let kept = db_path.with_extension("db.pre-restore");
        std::fs::rename(&db_path, &kept).with_context(|| format!("cannot move {} aside", db_path.display()))?;
        Some(kept)
    } else {
        None
    };
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(with_suffix(&db_path, suffix));
    }
    std::fs::rename(&temp, &db_path)
        .with_context(|| format!("cannot move the restored database into {}", db_path.display()))?;
    remove_database_files(&temp);
    Ok(RestoreReport { database: db_path, items, created_at: header.created_at, previous, installed_keys })
}

type StagedKeys = (Vec<MasterKey>, Vec<MasterKey>);

/// Copies the backup to `temp`, strips its header, migrates it and opens every token.
async fn stage(config: &Config, file: &Path, temp: &Path) -> anyhow::Result<(Header, usize, StagedKeys)> {
    {
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(temp)
            .with_context(|| format!("cannot create {}", temp.display()))?;
        let mut input = std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        std::io::copy(&mut input, &mut out).with_context(|| format!("cannot copy {}", file.display()))?;
        out.flush()?;
        out.sync_all()?;
    }
    let header = read_and_strip_header(temp).await?;
    let (vault, install_primary, install_old) = plan_keys(config, &header)?;
    let store = Store::open_sqlite(temp).await.context("cannot open the restored copy")?;
    let checked = check_tokens(&store, &vault).await;
    store.close().await;
    let items = checked?;
    Ok((header, items, (install_primary, install_old)))
}

async fn check_tokens(store: &Store, vault: &Vault) -> anyhow::Result<usize> {
    store.migrate().await.context("cannot bring the backup's schema up to date")?;
    let items = store.list_all_items().await.context("cannot read the backup's Items")?;
    let mut failed = std::collections::BTreeMap::<String, usize>::new();
    for item in &items {
        if vault.decrypt(&item.access_token, item.item_id.as_str()).is_err() {
            *failed.entry(item.access_token.key_id.clone()).or_default() += 1;
        }
    }
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|(k, n)| format!("{n} under key {k}")).collect();
        anyhow::bail!(
            "the configured master key does not open the backup's Plaid access tokens ({}); configure the key the \
             backup was taken with (BANKSYNC_MASTER_KEY or DATA_DIR/master.key) and retry; nothing was changed",
            list.join(", ")
        );
    }
    Ok(items.len())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_database_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(with_suffix(path, suffix));
    }
}
