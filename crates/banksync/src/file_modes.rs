//! Private files: the data directory is 0700 and everything banksync keeps in it 0600.
//!
//! The database holds every transaction, password hashes and session CSRF tokens, so it must be as private as the
//! master key. Two measures, both at start:
//!
//! * [`restrict_umask`]: the process's umask becomes 077 before any file is created, so every file banksync, SQLite
//!   (`banksync.db`, `-wal`, `-shm`, `-journal`), the embedded simulator (its journal) or a backup creates is born
//!   owner-only — no window in which a new file exists world-readable, and no code path that forgets a `chmod`.
//! * [`secure_data_dir`]: files and directories made by an older banksync (0644/0755) are tightened once, with a log
//!   line naming each. Only banksync's own names are touched (the database files, key files, the lock, the
//!   simulator's directory), since an operator may point `BANKSYNC_DATA_DIR` at a directory holding other things.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// Mode of the data directory and the directories in it.
pub const DIR_MODE: u32 = 0o700;
/// Where, inside the data directory, the embedded simulator keeps its state (Items, tokens, clock, signing keys).
pub const SIM_STATE_DIR: &str = "simulator";

/// Sets the process umask to 077 (returns the previous one). Process-wide and idempotent.
pub fn restrict_umask() -> u32 {
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    old.as_raw_mode()
}

/// Creates `dir` (0700) if needed, then tightens the modes of the directory and of banksync's files in it, and of
/// the SQLite database files at `database` when it lives elsewhere. Returns the paths it changed.
pub fn secure_data_dir(dir: &Path, database: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let mut changed = Vec::new();
    tighten(dir, &mut changed)?;
    let entries = std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if name == SIM_STATE_DIR {
            tighten_tree(&path, &mut changed)?;
        } else if is_ours(&name) && entry.file_type().is_ok_and(|t| t.is_file()) {
            tighten(&path, &mut changed)?;
        }
    }
    if let Some(database) = database.filter(|db| db.parent() != Some(dir)) {
        for path in sqlite_files(database) {
            if path.exists() {
                tighten(&path, &mut changed)?;
            }
        }
    }
    for path in &changed {
        tracing::warn!(path = %path.display(), "tightened permissions to owner-only (was readable by others)");
    }
    Ok(changed)
}

/// The database file and SQLite's companions.
pub fn sqlite_files(database: &Path) -> Vec<PathBuf> {
    let mut files = vec![database.to_owned()];
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = database.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    files
}

/// banksync's own file names in the data directory.
fn is_ours(name: &str) -> bool {
    name.starts_with("banksync") || name.starts_with("master.key")
}

fn tighten_tree(path: &Path, changed: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = std::fs::symlink_metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        tighten(path, changed)?;
        for entry in std::fs::read_dir(path).with_context(|| format!("cannot list {}", path.display()))? {
            tighten_tree(&entry.with_context(|| format!("cannot list {}", path.display()))?.path(), changed)?;
        }
    } else if meta.is_file() {
        tighten(path, changed)?;
    }
    Ok(())
}

/// Clears the group and other bits of `path` (0644 → 0600, 0755 → 0700; never widens: 0400 stays 0400).
fn tighten(path: &Path, changed: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
        .with_context(|| format!("cannot restrict the permissions of {}", path.display()))?;
    changed.push(path.to_owned());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn loose_files_of_ours_are_tightened_and_others_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["banksync.db", "banksync.db-wal", "master.key.old.abc", "notes.txt"] {
            std::fs::write(dir.join(name), b"x").unwrap();
            std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let sim = dir.join(SIM_STATE_DIR);
        std::fs::create_dir(&sim).unwrap();
        std::fs::write(sim.join("journal"), b"x").unwrap();
        std::fs::set_permissions(sim.join("journal"), std::fs::Permissions::from_mode(0o664)).unwrap();
        std::fs::set_permissions(&sim, std::fs::Permissions::from_mode(0o775)).unwrap();

        let changed = secure_data_dir(&dir, Some(&dir.join("banksync.db"))).unwrap();
        assert_eq!(changed.len(), 6, "{changed:?}");
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&sim), 0o700);
        for name in ["banksync.db", "banksync.db-wal", "master.key.old.abc"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        assert_eq!(mode(&sim.join("journal")), 0o600);
        assert_eq!(mode(&dir.join("notes.txt")), 0o644, "not ours: untouched");
        assert!(secure_data_dir(&dir, None).unwrap().is_empty(), "a second start changes nothing");
    }
}
