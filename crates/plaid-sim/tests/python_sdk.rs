//! Plaid's official Python SDK (plaid-python from PyPI, unmodified) works against the simulator:
//! token → exchange → accounts → balance → item → full and incremental sync (converging to the
//! ground truth) → link tokens → Plaid's error codes. The SDK type-checks every response it
//! deserializes, so this is also a conformance proof from Plaid's own generated models.
//! Needs scripts/test-deps.sh (skips loudly without it, fails in CI).

mod support;

use std::time::Duration;

use plaid_sim::SimConfig;
use support::{Need, prerequisites, run_python, start_sim, tests_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaid_python_sdk_drives_the_simulator_unmodified() {
    if !prerequisites("python_sdk", &[Need::Python]) {
        return;
    }
    let (sim, api) = start_sim(SimConfig::default()).await;

    let run = run_python(
        &tests_dir().join("python/sdk_flow.py"),
        &[],
        &[("PLAID_SIM_URL", &api.base), ("PLAID_CLIENT_ID", &api.client_id), ("PLAID_SECRET", api.secret())],
        Duration::from_secs(300),
    )
    .await;
    assert!(run.success, "sdk_flow.py failed after {:.1?}:\n{}", run.elapsed, run.output);
    assert!(run.output.contains("all SDK checks passed"), "unexpected output:\n{}", run.output);
    sim.shutdown().await;
}
