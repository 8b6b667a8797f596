//! Run-time fault injection (`POST /sim/faults`): per endpoint, a rate of a given Plaid error,
//! added latency, or a hung connection, optionally limited to a number of firings, optionally only
//! on every `every`-th request to the endpoint (`every: 2` is "every other page" of a pagination,
//! which a random rate cannot promise), optionally only for one Item (`item_id`), so a test can make
//! one Item faulty beside a healthy one. `GET /sim/faults` reports each fault's `seen` (requests
//! it matched) and `fired` counts: the number of faults a test injected.

use std::time::Duration;

use parking_lot::Mutex;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::api::errors::ApiError;
use crate::ids;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FaultKind {
    ApiError,
    RateLimitExceeded,
    InstitutionNotResponding,
    TransactionsSyncMutationDuringPagination,
}

impl FaultKind {
    fn error(self, endpoint: &str) -> ApiError {
        match self {
            FaultKind::ApiError => ApiError::internal(),
            FaultKind::RateLimitExceeded => {
                ApiError::rate_limit(crate::rate_limit::code_for(endpoint).unwrap_or("RATE_LIMIT"), true)
            }
            FaultKind::InstitutionNotResponding => ApiError::institution_not_responding(),
            FaultKind::TransactionsSyncMutationDuringPagination => ApiError::mutation_during_pagination(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    pub endpoint: String,
    #[serde(default)]
    pub error: Option<FaultKind>,
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub count: Option<u64>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub hang: bool,
    /// Fire only on every N-th matching request (the N-th, 2N-th, …), before `rate` is rolled.
    #[serde(default)]
    pub every: Option<u64>,
    /// Only requests for this Item (by its `access_token`) match.
    #[serde(default)]
    pub item_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub fault_id: String,
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Requests that matched the endpoint (and Item).
    pub seen: u64,
    pub fired: u64,
}

/// What a request must suffer.
#[derive(Debug, Default)]
pub struct Action {
    pub latency: Duration,
    pub hang: bool,
    pub error: Option<ApiError>,
}

pub struct Faults {
    inner: Mutex<Inner>,
}

struct Inner {
    faults: Vec<Fault>,
    /// Seeded from the simulator's seed, so fault firing is reproducible.
    rng: ChaCha8Rng,
    next_id: u64,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Self {
            inner: Mutex::new(Inner {
                faults: Vec::new(),
                rng: ids::rng(ids::mix(seed, ids::tag("faults"))),
                next_id: 0,
            }),
        }
    }

    pub fn add(&self, spec: FaultSpec) -> Result<String, String> {
        if !spec.endpoint.starts_with('/') {
            return Err("endpoint must be a path such as /transactions/sync".to_owned());
        }
        if let Some(rate) = spec.rate {
            if !(0.0..=1.0).contains(&rate) {
                return Err("rate must be between 0.0 and 1.0".to_owned());
            }
        }
        if spec.every == Some(0) {
            return Err("every must be at least 1".to_owned());
        }
        if spec.error.is_none() && spec.latency_ms.is_none() && !spec.hang {
            return Err("a fault needs an error, a latency_ms or hang".to_owned());
        }
        let mut inner = self.inner.lock();
        inner.next_id += 1;
        let fault_id = format!("fault-{}", inner.next_id);
        inner.faults.push(Fault { fault_id: fault_id.clone(), spec, seen: 0, fired: 0 });
        Ok(fault_id)
    }

    pub fn list(&self) -> Vec<Fault> {
        self.inner.lock().faults.clone()
    }

    pub fn clear(&self) {
        self.inner.lock().faults.clear();
    }

    /// Rolls every fault registered for `endpoint` (and, for Item-bound faults, the Item `item_id`);
    /// the combined action of those that fire.
    pub fn check(&self, endpoint: &str, item_id: Option<&str>) -> Action {
        let mut action = Action::default();
        let mut guard = self.inner.lock();
        let Inner { faults, rng, .. } = &mut *guard;
        let matches = |f: &Fault| {
            f.spec.endpoint == endpoint && f.spec.item_id.as_deref().is_none_or(|want| Some(want) == item_id)
        };
        for f in faults.iter_mut().filter(|f| matches(f)) {
            if f.spec.count.is_some_and(|c| f.fired >= c) {
                continue;
            }
            f.seen += 1;
            if f.spec.every.is_some_and(|n| f.seen % n != 0) {
                continue;
            }
            let rate = f.spec.rate.unwrap_or(1.0);
            if rate < 1.0 && !rng.gen_bool(rate) {
                continue;
            }
            f.fired += 1;
            action.latency += Duration::from_millis(f.spec.latency_ms.unwrap_or(0));
            action.hang |= f.spec.hang;
            if action.error.is_none() {
                action.error = f.spec.error.map(|k| k.error(endpoint));
            }
        }
        action
    }
}
