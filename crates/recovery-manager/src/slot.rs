//! A concurrency slot that is given up while its recovery only waits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use recovery_core::Sleeper;
use tokio::sync::{Semaphore, TryAcquireError};

/// One of the manager's `max_concurrent_recoveries` slots, held by one recovery.
///
/// As the recovery's [`Sleeper`], it releases its permit for the length of a delay and takes a
/// permit again afterwards, so a recovery that is only waiting out a backoff delay does not keep
/// another from doing work. Dropping the slot (also when the `recover` future is dropped) releases
/// the permit.
pub(crate) struct Slot {
    semaphore: Arc<Semaphore>,
    /// Whether this slot holds a permit (taken from the semaphore and forgotten; given back by
    /// `add_permits`). Changed only where no await can interrupt, so dropping a recovery at any
    /// point gives back exactly what it holds.
    held: AtomicBool,
}

impl Slot {
    /// Wait for a free slot.
    pub(crate) async fn acquire(semaphore: &Arc<Semaphore>) -> Arc<Self> {
        // A free permit is taken without creating a waiter (the semaphore is fair: while others
        // wait, no permit is free, so this never overtakes them).
        let held = match semaphore.try_acquire() {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(TryAcquireError::NoPermits) => take(semaphore).await,
            // Never closed; if it were, run without a slot.
            Err(TryAcquireError::Closed) => false,
        };
        Arc::new(Self {
            semaphore: Arc::clone(semaphore),
            held: AtomicBool::new(held),
        })
    }
}

/// Wait for a permit and keep it (forgotten); false if the semaphore is closed.
async fn take(semaphore: &Semaphore) -> bool {
    match semaphore.acquire().await {
        Ok(permit) => {
            permit.forget();
            true
        }
        Err(_) => false,
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if *self.held.get_mut() {
            self.semaphore.add_permits(1);
        }
    }
}

#[async_trait::async_trait]
impl Sleeper for Slot {
    async fn sleep(&self, delay: Duration) {
        if self.held.swap(false, Ordering::AcqRel) {
            self.semaphore.add_permits(1);
        }
        tokio::time::sleep(delay).await;
        // If another sleep on this slot took a permit back first, return the second one.
        if take(&self.semaphore).await && self.held.swap(true, Ordering::AcqRel) {
            self.semaphore.add_permits(1);
        }
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

    #[tokio::test(start_paused = true)]
    async fn overlapping_sleeps_on_one_slot_hold_one_permit_after() {
        let sem = Arc::new(Semaphore::new(2));
        let slot = Slot::acquire(&sem).await;
        let (a, b) = (Arc::clone(&slot), Arc::clone(&slot));
        let (x, y) = tokio::join!(
            a.sleep(Duration::from_millis(10)),
            b.sleep(Duration::from_millis(20))
        );
        let ((), ()) = (x, y);
        assert_eq!(sem.available_permits(), 1);
        drop((a, b, slot));
        assert_eq!(sem.available_permits(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_dropped_while_waiting_leaks_no_permit() {
        let sem = Arc::new(Semaphore::new(1));
        let slot = Slot::acquire(&sem).await;
        let other = Slot::acquire(&sem);
        tokio::pin!(other);
        let other = {
            let sleep = slot.sleep(Duration::from_millis(10));
            tokio::pin!(sleep);
            // The sleep gives the permit away; the other recovery takes it.
            assert!(futures_poll(sleep.as_mut()).is_pending());
            let std::task::Poll::Ready(other) = futures_poll(other.as_mut()) else {
                panic!("the other recovery gets the permit the sleeper gave away");
            };
            tokio::time::advance(Duration::from_millis(20)).await;
            // Now waiting for a permit again; dropped here.
            assert!(futures_poll(sleep.as_mut()).is_pending());
            other
        };
        drop(slot);
        assert_eq!(sem.available_permits(), 0, "the other recovery holds it");
        drop(other);
        assert_eq!(sem.available_permits(), 1, "and nothing else is held");
    }

    fn futures_poll<F: std::future::Future>(
        f: std::pin::Pin<&mut F>,
    ) -> std::task::Poll<F::Output> {
        let waker = std::task::Waker::noop();
        f.poll(&mut std::task::Context::from_waker(waker))
    }
}
