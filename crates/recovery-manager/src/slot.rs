//! Concurrency slots that a recovery gives up while it only waits.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use recovery_core::Sleeper;
use tokio::sync::Notify;

/// The manager's `max_concurrent_recoveries` slots: a count of those taken, and a queue for
/// recoveries that wait for one.
///
/// Taking a free slot when nobody waits, and giving one back, are one atomic operation each plus
/// a load; only a recovery that has to wait touches the queue (a [`Notify`]). With a tokio
/// `Semaphore`, which takes a lock on every release, the slot was a seventh of the cost of a
/// recovery whose strategy succeeds at once. Waiters are not served strictly first-come: a slot
/// given back goes to whichever waiter looks first. A recovery that arrives while others wait
/// joins them instead of taking a slot on the fast path.
#[derive(Debug)]
pub(crate) struct Slots {
    max: usize,
    taken: AtomicUsize,
    /// Recoveries in [`Slots::wait`] (counted before they look for a slot, and until they stop
    /// waiting, also when their future is dropped).
    waiting: AtomicUsize,
    freed: Notify,
}

impl Slots {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            taken: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// How many slots are free right now.
    pub(crate) fn available(&self) -> usize {
        self.max.saturating_sub(self.taken.load(SeqCst))
    }

    /// Take a slot, waiting for one if none is free. Cancel-safe: a dropped future holds none.
    async fn take(&self) {
        if self.waiting.load(SeqCst) == 0 && self.try_take() {
            return;
        }
        self.wait().await;
    }

    async fn wait(&self) {
        self.waiting.fetch_add(1, SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            // Registered before looking: a slot given back after the look wakes this waiter
            // (or, if this future is dropped after being woken, the next one).
            let mut freed = pin!(self.freed.notified());
            freed.as_mut().enable();
            if self.try_take() {
                return;
            }
            freed.await;
        }
    }

    fn try_take(&self) -> bool {
        self.taken
            .fetch_update(SeqCst, SeqCst, |n| (n < self.max).then_some(n + 1))
            .is_ok()
    }

    fn give_back(&self) {
        self.taken.fetch_sub(1, SeqCst);
        // Both `SeqCst`: either this load sees a waiter's count, or that waiter's look (after
        // its count) sees the slot free.
        if self.waiting.load(SeqCst) > 0 {
            self.freed.notify_one();
        }
    }
}

/// Uncounts a waiter however its wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}

/// One of the manager's slots, held by one recovery.
///
/// As the recovery's [`Sleeper`], it gives its slot back for the length of a delay and takes one
/// again afterwards, so a recovery that is only waiting out a backoff delay does not keep
/// another from doing work. Dropping it (also when the `recover` future is dropped) gives the
/// slot back.
pub(crate) struct Slot {
    slots: Arc<Slots>,
    /// Whether this recovery holds a slot. Changed only where no await can interrupt, so
    /// dropping a recovery at any point gives back exactly what it holds.
    held: AtomicBool,
}

impl Slot {
    /// Wait for a free slot.
    pub(crate) async fn acquire(slots: &Arc<Slots>) -> Arc<Self> {
        slots.take().await;
        Arc::new(Self {
            slots: Arc::clone(slots),
            held: AtomicBool::new(true),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if *self.held.get_mut() {
            self.slots.give_back();
        }
    }
}

#[async_trait::async_trait]
impl Sleeper for Slot {
    async fn sleep(&self, delay: Duration) {
        if self.held.swap(false, SeqCst) {
            self.slots.give_back();
        }
        tokio::time::sleep(delay).await;
        self.slots.take().await;
        // If another sleep on this slot took one back first, give the second back.
        if self.held.swap(true, SeqCst) {
            self.slots.give_back();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn sleeping_gives_the_slot_away_and_takes_one_back() {
        let sem = Arc::new(Slots::new(1));
        let slot = Slot::acquire(&sem).await;
        assert_eq!(sem.available(), 0);
        let sleeper = Arc::clone(&slot);
        let waiting = tokio::spawn(async move { sleeper.sleep(Duration::from_millis(100)).await });
        tokio::task::yield_now().await;
        assert_eq!(sem.available(), 1, "a waiting recovery holds no slot");
        waiting.await.unwrap();
        assert_eq!(sem.available(), 0);
        drop(slot);
        assert_eq!(sem.available(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn overlapping_sleeps_on_one_slot_hold_one_permit_after() {
        let sem = Arc::new(Slots::new(2));
        let slot = Slot::acquire(&sem).await;
        let (a, b) = (Arc::clone(&slot), Arc::clone(&slot));
        let (x, y) = tokio::join!(
            a.sleep(Duration::from_millis(10)),
            b.sleep(Duration::from_millis(20))
        );
        let ((), ()) = (x, y);
        assert_eq!(sem.available(), 1);
        drop((a, b, slot));
        assert_eq!(sem.available(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_dropped_while_waiting_leaks_no_permit() {
        let sem = Arc::new(Slots::new(1));
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
        assert_eq!(sem.available(), 0, "the other recovery holds it");
        drop(other);
        assert_eq!(sem.available(), 1, "and nothing else is held");
    }

    /// Many tasks on several threads take and give back slots, some giving up their wait at
    /// once: never more than `max` are held, and every task gets through (a lost wake-up would
    /// leave one waiting forever, which the timeout turns into a failure).
    #[test]
    fn many_threads_never_hold_more_than_max_and_none_waits_forever() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let slots = Arc::new(Slots::new(3));
            let held = Arc::new(AtomicUsize::new(0));
            let mut tasks = tokio::task::JoinSet::new();
            for t in 0..32u32 {
                let (slots, held) = (Arc::clone(&slots), Arc::clone(&held));
                tasks.spawn(async move {
                    for i in 0..500u32 {
                        if (t + i) % 7 == 0 {
                            // Give up at once, whether or not a slot was free.
                            let take = slots.take();
                            tokio::pin!(take);
                            if futures_poll(take.as_mut()).is_ready() {
                                slots.give_back();
                            }
                            continue;
                        }
                        slots.take().await;
                        let now = held.fetch_add(1, SeqCst) + 1;
                        assert!(now <= 3, "{now} slots held at once");
                        if i % 3 == 0 {
                            tokio::task::yield_now().await;
                        }
                        held.fetch_sub(1, SeqCst);
                        slots.give_back();
                    }
                });
            }
            let all = async {
                while let Some(done) = tasks.join_next().await {
                    done.unwrap();
                }
            };
            tokio::time::timeout(Duration::from_secs(60), all)
                .await
                .expect("a waiter was never woken");
            assert_eq!(slots.available(), 3);
            assert_eq!(slots.waiting.load(SeqCst), 0);
        });
    }

    fn futures_poll<F: std::future::Future>(
        f: std::pin::Pin<&mut F>,
    ) -> std::task::Poll<F::Output> {
        let waker = std::task::Waker::noop();
        f.poll(&mut std::task::Context::from_waker(waker))
    }
}
