//! The one process-wide bound on password hashing: at most `concurrency` argon2id hashes or verifications run at
//! once (each takes ~19 MiB and tens of milliseconds of one core), at most `queue` more wait for a turn, and anything
//! beyond is refused at once with [`PoolError::Busy`] (the API answers 503 `busy` with `Retry-After`).
//!
//! Why: nothing else bounds it. 150 concurrent logins for unknown names used to run 150 verifications at once and
//! took the process from 14 MB to 2.7 GB; an unbounded wait queue would instead hold every request (and its body)
//! for minutes. With a bound, memory for hashing is at most `concurrency` × 19 MiB (each turn reuses its own
//! buffer, `password::Scratch`) and the wait at most `queue / concurrency` hash times.
//!
//! A turn is held by the blocking task itself, not by the request: a client that disconnects while its hash runs
//! does not free a slot before the hash ends, so the bound is real. [`PasswordPool::stats`] exposes the gauges the
//! tests (and anyone curious) read: how many run now, the most that ever ran at once, how many were refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::Semaphore;

use super::password::{Scratch, hash_with, verify_or_dummy};

/// Waiting requests beyond the running ones, by default.
pub const DEFAULT_QUEUE: usize = 32;

/// What a refused caller is told to wait before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every slot runs and the wait queue is full.
    #[error("too many password checks at once; retry in {} s", retry_after.as_secs())]
    Busy { retry_after: Duration },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

/// Gauges of the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Hashes allowed to run at once.
    pub concurrency: usize,
    /// Callers allowed to wait beyond those.
    pub queue: usize,
    /// Running now.
    pub running: usize,
    /// The most that ever ran at once (never above `concurrency`).
    pub peak_running: usize,
    /// Running or waiting now.
    pub admitted: usize,
    /// Refused with `Busy` so far.
    pub rejected: u64,
    /// Finished so far.
    pub completed: u64,
}

/// See the module header. Cheap to clone; clones share the bound.
#[derive(Clone)]
pub struct PasswordPool {
    inner: Arc<Inner>,
}

struct Inner {
    turns: Arc<Semaphore>,
    concurrency: usize,
    queue: usize,
    admitted: AtomicUsize,
    running: AtomicUsize,
    peak_running: AtomicUsize,
    rejected: AtomicU64,
    completed: AtomicU64,
    /// argon2's working memory, one per turn that has run, reused (see [`Scratch`]).
    scratch: parking_lot::Mutex<Vec<Scratch>>,
}

impl PasswordPool {
    /// `concurrency` is raised to at least 1.
    pub fn new(concurrency: usize, queue: usize) -> Self {
        let concurrency = concurrency.max(1);
        PasswordPool {
            inner: Arc::new(Inner {
                turns: Arc::new(Semaphore::new(concurrency)),
                concurrency,
                queue,
                admitted: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                peak_running: AtomicUsize::new(0),
                rejected: AtomicU64::new(0),
                completed: AtomicU64::new(0),
                scratch: parking_lot::Mutex::new(Vec::new()),
            }),
        }
    }

    /// One slot per CPU (at least 1), the default queue.
    pub fn per_cpu() -> Self {
        Self::new(default_concurrency(), DEFAULT_QUEUE)
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: SecretString) -> Result<String, PoolError> {
        self.run(move |scratch| hash_with(scratch, password.expose_secret())).await
    }

    /// Checks `password` against `hash`; `None` (no such user) costs the same and answers false.
    pub async fn verify(&self, hash: Option<String>, password: SecretString) -> Result<bool, PoolError> {
        self.run(move |scratch| verify_or_dummy(scratch, hash.as_deref(), password.expose_secret())).await
    }

    pub fn stats(&self) -> PoolStats {
        let i = &self.inner;
        PoolStats {
            concurrency: i.concurrency,
            queue: i.queue,
            running: i.running.load(Ordering::SeqCst),
            peak_running: i.peak_running.load(Ordering::SeqCst),
            admitted: i.admitted.load(Ordering::SeqCst),
            rejected: i.rejected.load(Ordering::SeqCst),
            completed: i.completed.load(Ordering::SeqCst),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Scratch) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, PoolError> {
        let admission = Admission::enter(&self.inner).ok_or_else(|| {
            self.inner.rejected.fetch_add(1, Ordering::SeqCst);
            PoolError::Busy { retry_after: RETRY_AFTER }
        })?;
        // Dropping this future while it waits gives the place back (the admission guard).
        let turn = self
            .inner
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| PoolError::Failed(anyhow::anyhow!("the password pool is closed")))?;
        let inner = self.inner.clone();
        let task = tokio::task::spawn_blocking(move || {
            // The turn and the admission are released when the hash ends, not when the caller leaves.
            let _turn = turn;
            let _admission = admission;
            let now = inner.running.fetch_add(1, Ordering::SeqCst) + 1;
            inner.peak_running.fetch_max(now, Ordering::SeqCst);
            // A turn's memory: at most `concurrency` turns run, so at most that many buffers ever exist.
            let mut scratch = inner.scratch.lock().pop().unwrap_or_default();
            let result = work(&mut scratch);
            inner.scratch.lock().push(scratch);
            inner.running.fetch_sub(1, Ordering::SeqCst);
            inner.completed.fetch_add(1, Ordering::SeqCst);
            result
        });
        match task.await {
            Ok(result) => result.map_err(PoolError::Failed),
            Err(e) => Err(PoolError::Failed(anyhow::anyhow!("password hashing task failed: {e}"))),
        }
    }
}

/// A place among the running and waiting callers, given back on drop.
struct Admission(Arc<Inner>);

impl Admission {
    fn enter(inner: &Arc<Inner>) -> Option<Admission> {
        let limit = inner.concurrency + inner.queue;
        inner
            .admitted
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| (n < limit).then_some(n + 1))
            .ok()
            .map(|_| Admission(inner.clone()))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The number of CPUs, at least 1.
pub fn default_concurrency() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_concurrency_run_and_beyond_the_queue_callers_are_refused() {
        let pool = PasswordPool::new(2, 3);
        let hash = pool.hash(SecretString::from("a password!")).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (pool, hash) = (pool.clone(), hash.clone());
            tasks.push(tokio::spawn(async move { pool.verify(Some(hash), SecretString::from("a password!")).await }));
        }
        let (mut ok, mut busy) = (0, 0);
        for task in tasks {
            match task.await.unwrap() {
                Ok(true) => ok += 1,
                Err(PoolError::Busy { retry_after }) => {
                    assert_eq!(retry_after, RETRY_AFTER);
                    busy += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        let stats = pool.stats();
        assert_eq!(ok + busy, 20);
        assert!(ok >= 5, "the running and the queued ones finish: {stats:?}");
        assert_eq!(stats.rejected, busy as u64);
        assert!(stats.peak_running <= 2 && stats.peak_running >= 1, "{stats:?}");
        assert_eq!((stats.running, stats.admitted), (0, 0), "everything given back: {stats:?}");
        assert_eq!(stats.completed, ok as u64 + 1);
        let buffers = pool.inner.scratch.lock().len();
        assert!((1..=2).contains(&buffers), "argon2 memory is one buffer per turn, reused: {buffers}");
    }

    #[tokio::test]
    async fn a_caller_that_leaves_while_waiting_gives_its_place_back() {
        let pool = PasswordPool::new(1, 0);
        // Hold the only turn so the next caller waits... with no queue it is refused instead.
        let turn = pool.inner.turns.clone().acquire_owned().await.unwrap();
        let first = Admission::enter(&pool.inner).unwrap();
        assert!(matches!(pool.verify(None, SecretString::from("x")).await, Err(PoolError::Busy { .. })));
        drop(first);
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.verify(None, SecretString::from("x")).await }
        });
        tokio::task::yield_now().await;
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(pool.stats().admitted, 0);
        drop(turn);
        assert!(!pool.verify(None, SecretString::from("x")).await.unwrap());
    }
}
