//! Reading a committed corpus (`fuzz/corpus/<target>`), shared by the CI tests that replay the corpora
//! (`crates/plaid/tests/it/fuzz_corpus.rs`, `crates/banksync/tests/fuzz_corpus.rs`); both crates sit two levels below
//! the repository root, so one path serves both.

use std::path::{Path, PathBuf};

/// Every file of the target's corpus with its bytes, sorted by path; fails if the corpus is (nearly) empty.
pub fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{}: the corpus is (nearly) empty", dir.display());
    files
}
