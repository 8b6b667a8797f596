//! The committed fuzz corpora of banksync's targets (`fuzz/corpus/normalize`, `fuzz/corpus/export`) replayed through
//! the very harnesses the libFuzzer targets run (`fuzz/harness/*.rs`, included below), so every input fuzzing kept
//! is a regression test on stable Rust in CI. Fuzzing itself runs outside CI: fuzz/README.md.

#[path = "../../../fuzz/harness/corpus.rs"]
mod corpus;
use corpus::corpus;

#[path = "../../../fuzz/harness/export.rs"]
mod export;
#[path = "../../../fuzz/harness/normalize.rs"]
mod normalize;

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
