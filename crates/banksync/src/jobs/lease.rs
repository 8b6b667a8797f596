//! Holding a job's lease while its work runs in this process.
//!
//! A leased job stays with its holder only while the holder renews the lease (`Store::heartbeat_job`); once a
//! process dies it stops renewing, and when the lease runs out the job goes back to the queue (a worker claims it
//! again) or, without attempts left, is failed by the reclaimer (a balance refresh then reads as interrupted).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::domain::JobId;
use crate::store::{Store, StoreError};

/// Renews a job's lease every third of its length until [`LeaseKeeper::release`]d or dropped.
///
/// A lost lease (the lease ran out and another worker or the reclaimer took the job) is logged and ends the
/// renewals; the work itself goes on, and the holder learns it when recording the outcome fails with
/// [`StoreError::NotFound`].
pub(crate) struct LeaseKeeper {
    renewals: JoinHandle<()>,
}

impl LeaseKeeper {
    /// Starts renewing `job_id`'s lease, held by `owner`, for `lease` at a time.
    pub(crate) fn start(store: Arc<Store>, job_id: &JobId, owner: &str, lease: Duration) -> Self {
        let (job_id, owner) = (job_id.clone(), owner.to_owned());
        Self { renewals: tokio::spawn(async move { renew(&store, &job_id, &owner, lease).await }) }
    }

    /// Stops renewing, once no renewal is in flight: one finishing after the holder recorded the job's outcome would
    /// find the job gone and report the lease lost.
    pub(crate) async fn release(mut self) {
        self.renewals.abort();
        let _ = (&mut self.renewals).await;
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.renewals.abort();
    }
}

/// Renews the lease every third of its length (at least every 20 ms, so a tiny lease does not spin) until it is lost.
async fn renew(store: &Store, job_id: &JobId, owner: &str, lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(20));
    loop {
        tokio::time::sleep(every).await;
        match store.heartbeat_job(job_id, owner, lease).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => {
                tracing::warn!(%job_id, "job lease lost (it ran out and the job was taken over or failed)");
                return;
            }
            // Transient, maybe: the lease may still be renewed in time.
            Err(e) => tracing::warn!(%job_id, error = %e, "cannot renew the job lease"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::NewJob;
    use crate::store::Store;

    async fn store_with_claimed_job(lease: Duration) -> (tempfile::TempDir, Arc<Store>, JobId) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<Store> = Arc::new(Store::open_sqlite(&dir.path().join("j.db")).await.unwrap());
        store.migrate().await.unwrap();
        store.enqueue_job(&NewJob::for_item("sync", &"i1".into())).await.unwrap();
        let job = store.claim_job("w1", lease).await.unwrap().unwrap();
        (dir, store, job.id)
    }

    #[tokio::test]
    async fn the_lease_is_renewed_until_released() {
        let lease = Duration::from_millis(600);
        let (_dir, store, job_id) = store_with_claimed_job(lease).await;
        let keeper = LeaseKeeper::start(store.clone(), &job_id, "w1", lease);
        tokio::time::sleep(lease * 2).await;
        assert!(store.claim_job("w2", lease).await.unwrap().is_none(), "still leased to w1");
        keeper.release().await;
        tokio::time::sleep(lease + Duration::from_millis(200)).await;
        assert!(store.claim_job("w2", lease).await.unwrap().is_some(), "the lease ran out once released");
    }

    #[tokio::test]
    async fn renewals_end_when_the_lease_is_lost() {
        let lease = Duration::from_millis(60);
        let (_dir, store, job_id) = store_with_claimed_job(lease).await;
        let keeper = LeaseKeeper::start(store, &job_id, "not-the-holder", lease);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(keeper.renewals.is_finished());
    }
}
