#![no_main]
//! libFuzzer target; the logic and its properties are in harness/webhook_verify.rs, shared with the CI replay test.

#[path = "../harness/webhook_verify.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});
