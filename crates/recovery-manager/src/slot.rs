//! A recovery's concurrency slot: a permit of the manager's semaphore, given back while the
//! recovery only waits.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use recovery_core::Sleeper;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// One recovery's permit of the manager's `max_concurrent_recoveries` semaphore.
///
/// As the recovery's [`Sleeper`], it gives its permit back for the length of a delay and waits
/// for one again afterwards, so a recovery that is only waiting out a backoff delay does not
/// keep another from doing work. Dropping it (also when the `recover` future is dropped, at any
/// await) gives back what it holds: the permit is an `OwnedSemaphorePermit` in a `Mutex`, never
/// a count of our own.
pub(crate) struct Slot {
    semaphore: Arc<Semaphore>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Slot {
    /// Wait for a permit (tokio's semaphore serves waiters first come, first served).
    pub(crate) async fn acquire(semaphore: &Arc<Semaphore>) -> Arc<Self> {
        let permit = Arc::clone(semaphore)
            .acquire_owned()
            .await
            .expect("the manager never closes its semaphore");
        Arc::new(Self {
            semaphore: Arc::clone(semaphore),
            permit: Mutex::new(Some(permit)),
        })
    }

    fn replace(&self, permit: Option<OwnedSemaphorePermit>) -> Option<OwnedSemaphorePermit> {
        std::mem::replace(
            &mut *self.permit.lock().unwrap_or_else(PoisonError::into_inner),
            permit,
        )
    }
}

#[async_trait::async_trait]
impl Sleeper for Slot {
    async fn sleep(&self, delay: Duration) {
        // Given back before the wait, dropped outside the lock.
        drop(self.replace(None));
        tokio::time::sleep(delay).await;
        let permit = Arc::clone(&self.semaphore)
            .acquire_owned()
            .await
            .expect("the manager never closes its semaphore");
        // If an overlapping sleep on this slot took one back first, this drops the second.
        drop(self.replace(Some(permit)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeping_gives_the_permit_away_and_takes_one_back() {
        let sem = Arc::new(Semaphore::new(1));
        let slot = Slot::acquire(&sem).await;
        assert_eq!(sem.available_permits(), 0);
        let sleeper = Arc::clone(&slot);
        let waiting = tokio::spawn(async move { sleeper.sleep(Duration::from_millis(100)).await });
        tokio::task::yield_now().await;
        assert_eq!(
            sem.available_permits(),
            1,
            "a waiting recovery holds no permit"
        );
        waiting.await.unwrap();
        assert_eq!(sem.available_permits(), 0);
        drop(slot);
        assert_eq!(sem.available_permits(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_sleeps_on_one_slot_hold_one_permit_after() {
        let sem = Arc::new(Semaphore::new(2));
        let slot = Slot::acquire(&sem).await;
        let (a, b) = (Arc::clone(&slot), Arc::clone(&slot));
        tokio::join!(
            a.sleep(Duration::from_millis(10)),
            b.sleep(Duration::from_millis(20))
        );
        assert_eq!(sem.available_permits(), 1);
        drop((a, b, slot));
        assert_eq!(sem.available_permits(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_dropped_while_waiting_for_a_permit_holds_none() {
        let sem = Arc::new(Semaphore::new(1));
        let slot = Slot::acquire(&sem).await;
        let sleeper = Arc::clone(&slot);
        let sleeping = tokio::spawn(async move { sleeper.sleep(Duration::from_millis(10)).await });
        tokio::task::yield_now().await;
        // Another recovery takes the permit while the first waits out its delay.
        let other = Slot::acquire(&sem).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        // The first is now queued for a permit; abandon it.
        sleeping.abort();
        let _ = sleeping.await;
        drop(slot);
        assert_eq!(sem.available_permits(), 0, "the other recovery holds it");
        drop(other);
        assert_eq!(sem.available_permits(), 1, "and nothing else is held");
    }
}
