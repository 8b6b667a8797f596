#![no_main]
//! libFuzzer target; the logic and its properties are in harness/normalize.rs, shared with the CI replay test.

#[path = "../harness/normalize.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    harness::run(data);
});
