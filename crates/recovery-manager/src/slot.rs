//! A concurrency slot that is given up while its recovery only waits.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use recovery_core::Sleeper;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One of the manager's `max_concurrent_recoveries` slots, held by one recovery.
///
/// As the recovery's [`Sleeper`], it releases its permit for the length of a delay and takes a
/// permit again afterwards, so a recovery that is only waiting out a backoff delay does not keep
/// another from doing work. Dropping the slot (also when the `recover` future is dropped) releases
/// the permit.
pub(crate) struct Slot {
    semaphore: Arc<Semaphore>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Slot {
    /// Wait for a free slot.
    pub(crate) async fn acquire(semaphore: &Arc<Semaphore>) -> Arc<Self> {
        let permit = Arc::clone(semaphore).acquire_owned().await.ok();
        Arc::new(Self {
            semaphore: Arc::clone(semaphore),
            permit: Mutex::new(permit),
        })
    }

    fn set(&self, permit: Option<OwnedSemaphorePermit>) -> Option<OwnedSemaphorePermit> {
        std::mem::replace(
            &mut *self.permit.lock().unwrap_or_else(PoisonError::into_inner),
            permit,
        )
    }
}

#[async_trait::async_trait]
impl Sleeper for Slot {
    async fn sleep(&self, delay: Duration) {
        drop(self.set(None));
        tokio::time::sleep(delay).await;
        // The semaphore is never closed, so this only fails if it were; then run without one.
        let permit = Arc::clone(&self.semaphore).acquire_owned().await.ok();
        drop(self.set(permit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeping_gives_the_slot_away_and_takes_one_back() {
        let sem = Arc::new(Semaphore::new(1));
        let slot = Slot::acquire(&sem).await;
        assert_eq!(sem.available_permits(), 0);
        let sleeper = Arc::clone(&slot);
        let waiting = tokio::spawn(async move { sleeper.sleep(Duration::from_millis(100)).await });
        tokio::task::yield_now().await;
        assert_eq!(
            sem.available_permits(),
            1,
            "a waiting recovery holds no slot"
        );
        waiting.await.unwrap();
        assert_eq!(sem.available_permits(), 0);
        drop(slot);
        assert_eq!(sem.available_permits(), 1);
    }
}
