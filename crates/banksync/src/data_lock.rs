//! Who is using a data directory: `banksync serve` holds a *shared* advisory lock (`flock`) on
//! `DATA_DIR/banksync.lock` for as long as it runs; `banksync restore` takes it *exclusively* without waiting, so a
//! restore refuses while any server uses the directory, and a server cannot start in the middle of a restore.
//! Shared, so two servers on one data directory (e.g. a restart overlapping the old process) never block each
//! other. The kernel drops the lock when the process dies, so a crash leaves nothing stale to clean up.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rustix::fs::FlockOperation;

pub const LOCK_FILE_NAME: &str = "banksync.lock";

/// Held while alive; dropping it (or the process ending) releases the lock.
#[derive(Debug)]
pub struct DataDirLock {
    _file: Option<File>,
}

fn open(data_dir: &Path) -> anyhow::Result<(File, PathBuf)> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let path = data_dir.join(LOCK_FILE_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    Ok((file, path))
}

/// Taken by a running server. A data directory where the lock file cannot be made (read-only, e.g. PostgreSQL with
/// the key in the environment) is not an error: the server starts, and restore — SQLite only — has nothing to guard.
pub fn hold_shared(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    let (file, path) = match open(data_dir) {
        Ok(opened) => opened,
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "no data-directory lock: `banksync restore` cannot tell this server runs");
            return Ok(DataDirLock { _file: None });
        }
    };
    match try_flock(&file, FlockOperation::NonBlockingLockShared) {
        Ok(true) => Ok(DataDirLock { _file: Some(file) }),
        Ok(false) => anyhow::bail!(
            "a `banksync restore` is replacing the database in {} right now; start the server when it has finished",
            data_dir.display()
        ),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot lock {}", path.display()))),
    }
}

/// Taken by `restore`: fails at once when a server holds the directory.
pub fn hold_exclusive(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    let (file, path) = open(data_dir)?;
    match try_flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(true) => Ok(DataDirLock { _file: Some(file) }),
        Ok(false) => anyhow::bail!(
            "a banksync server is using {} (it holds {}); stop it first (e.g. `systemctl stop banksync`), then \
             restore",
            data_dir.display(),
            path.display()
        ),
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot lock {}", path.display()))),
    }
}

/// Whether a server holds the directory right now (for `doctor`; racy by nature, informative only).
pub fn server_running(data_dir: &Path) -> bool {
    if !data_dir.join(LOCK_FILE_NAME).exists() {
        return false;
    }
    open(data_dir)
        .is_ok_and(|(file, _)| matches!(try_flock(&file, FlockOperation::NonBlockingLockExclusive), Ok(false)))
}

/// `Ok(false)` when another open file holds a conflicting lock.
fn try_flock(file: &File, op: FlockOperation) -> std::io::Result<bool> {
    match rustix::fs::flock(file, op) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_holder_blocks_the_exclusive_lock_and_only_while_held() {
        let dir = tempfile::tempdir().unwrap();
        let server = hold_shared(dir.path()).unwrap();
        let second_server = hold_shared(dir.path()).unwrap();
        let err = hold_exclusive(dir.path()).unwrap_err().to_string();
        assert!(err.contains("stop it first"), "{err}");
        assert!(server_running(dir.path()));
        drop((server, second_server));
        let restore = hold_exclusive(dir.path()).unwrap();
        assert!(hold_shared(dir.path()).unwrap_err().to_string().contains("restore"));
        drop(restore);
        assert!(!server_running(dir.path()));
    }
}
