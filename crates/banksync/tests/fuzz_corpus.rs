//! The committed fuzz corpora of banksync's targets (`fuzz/corpus/normalize`, `fuzz/corpus/export`) replayed through
//! the very harnesses the libFuzzer targets run (`fuzz/harness/*.rs`, included below), so every input fuzzing kept
//! is a regression test on stable Rust in CI. Fuzzing itself runs outside CI: fuzz/README.md.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/harness/export.rs"]
mod export;
#[path = "../../../fuzz/harness/normalize.rs"]
mod normalize;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
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

#[test]
fn the_normalizer_corpus_replays() {
    let files = corpus("normalize");
    let normalized = files.iter().filter(|(_, data)| normalize::run(data)).count();
    // The seeds are real Plaid transactions: a normalizer that refused everything would fail here.
    assert!(normalized >= 3, "only {normalized} of {} corpus inputs normalized", files.len());
}

// The export harness keeps its store on a runtime of its own (a fuzz target has no async main), so this test is a
// plain #[test]: a runtime inside a runtime would panic.
#[test]
fn the_export_writers_corpus_replays() {
    let files = corpus("export");
    let exported = files.iter().filter(|(_, data)| export::run(data)).count();
    assert!(exported >= 3, "only {exported} of {} corpus inputs were exported", files.len());
}
