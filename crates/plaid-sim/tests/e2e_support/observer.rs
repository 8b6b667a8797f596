//! A [`CallObserver`] that keeps every attempt, so tests can see retries and request_ids.

use parking_lot::Mutex;
use plaid::{CallObserver, CallRecord, Endpoint};

#[derive(Default)]
pub struct RecordingObserver {
    calls: Mutex<Vec<CallRecord>>,
}

impl CallObserver for RecordingObserver {
    fn on_call(&self, call: &CallRecord) {
        self.calls.lock().push(call.clone());
    }
}

impl RecordingObserver {
    /// Removes and returns everything recorded so far.
    pub fn take(&self) -> Vec<CallRecord> {
        std::mem::take(&mut *self.calls.lock())
    }

    /// The attempts recorded for `endpoint` (kept in the log).
    pub fn calls_to(&self, endpoint: Endpoint) -> Vec<CallRecord> {
        self.calls.lock().iter().filter(|c| c.endpoint == endpoint).cloned().collect()
    }
}
