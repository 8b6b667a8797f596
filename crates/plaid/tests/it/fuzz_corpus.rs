//! The committed fuzz corpora of the plaid crate's targets (`fuzz/corpus/webhook_verify`, `fuzz/corpus/plaid_decode`)
//! replayed through the very harnesses the libFuzzer targets run (`fuzz/harness/*.rs`, included below), so every
//! input fuzzing ever kept is a regression test on stable Rust in CI.

#[path = "../../../../fuzz/harness/corpus.rs"]
mod corpus;
use corpus::corpus;
use std::path::Path;

#[path = "../../../../fuzz/harness/plaid_decode.rs"]
mod plaid_decode;
#[path = "../../../../fuzz/harness/webhook_verify.rs"]
mod webhook_verify;

#[test]
fn the_webhook_verifier_corpus_replays_and_its_signed_seeds_still_verify() {
    let files = corpus("webhook_verify");
    let accepted = files.iter().filter(|(_, data)| webhook_verify::run(data)).count();
    // The seeds include correctly signed webhooks: a verifier that refused everything would fail here.
    assert!(accepted >= 1, "no corpus input verified");
    assert!(accepted < files.len(), "every corpus input verified");
    // A freshly signed input verifies, the same body with one byte changed does not.
    let body = br#"{"webhook_type":"TRANSACTIONS","webhook_code":"SYNC_UPDATES_AVAILABLE"}"#;
    let mut good = webhook_verify::signed(body, 10);
    assert!(webhook_verify::run(&good));
    *good.last_mut().unwrap() = b']';
    assert!(!webhook_verify::run(&good));
    assert!(!webhook_verify::run(&webhook_verify::signed(body, 301)), "older than five minutes");
}

#[test]
fn the_plaid_decoder_corpus_replays() {
    let files = corpus("plaid_decode");
    let accepted = files.iter().filter(|(_, data)| plaid_decode::run(data) > 0).count();
    assert!(accepted >= 3, "the seeds are real Plaid responses: only {accepted} decoded");
}

/// Writes the seed inputs that need code to build (signed webhooks). Run once when the signing harness changes:
/// `FUZZ_WRITE_SEEDS=1 cargo test -p plaid --test it fuzz_corpus`.
#[test]
fn write_signed_seeds_when_asked() {
    if std::env::var_os("FUZZ_WRITE_SEEDS").is_none() {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/webhook_verify");
    let bodies: [&[u8]; 3] = [
        b"{\n  \"environment\": \"sandbox\",\n  \"historical_update_complete\": false,\n  \"initial_update_complete\": true,\n  \"item_id\": \"wz666MBjYWTp2PDzzggYhM6oWWmBb\",\n  \"webhook_code\": \"SYNC_UPDATES_AVAILABLE\",\n  \"webhook_type\": \"TRANSACTIONS\"\n}",
        b"{\"webhook_type\":\"ITEM\",\"webhook_code\":\"ERROR\",\"item_id\":\"x\",\"error\":{\"error_code\":\"ITEM_LOGIN_REQUIRED\"}}",
        b"",
    ];
    for (i, body) in bodies.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-signed-{i}")), webhook_verify::signed(body, 30)).unwrap();
    }
    std::fs::write(dir.join("seed-stale"), webhook_verify::signed(bodies[0], 400)).unwrap();
    std::fs::write(dir.join("seed-future"), webhook_verify::signed(bodies[0], -120)).unwrap();
}
