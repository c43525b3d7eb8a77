//! A shared value kept as one copy per stripe, so that threads reading it at once touch no
//! common cache line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crossbeam_utils::CachePadded;

/// An `Arc<V>` that is read far more often than it is replaced, with one lock and one
/// allocation per stripe. A thread always reads the stripe it was given when it first read one,
/// so its lock and reference count stay in its own cache. (One lock and one `Arc` shared by
/// every recovery were, with the history's lock, what kept throughput from growing with
/// callers.) A replacement writes every stripe, one after another: a read during it may see the
/// old value, and every read after it sees the new one.
#[derive(Debug)]
pub(crate) struct Striped<V: ?Sized> {
    stripes: Box<[CachePadded<RwLock<Arc<V>>>]>,
    /// Held while the stripes are replaced, so replacements land in the same order everywhere.
    replacing: Mutex<()>,
}

impl<V: ?Sized> Striped<V> {
    /// `make()` builds each stripe's copy.
    pub(crate) fn new(make: impl Fn() -> Arc<V>) -> Self {
        // A few stripes per core, so that the threads that run recoveries seldom share one.
        let n = std::thread::available_parallelism()
            .map_or(4, |n| n.get() * 4)
            .clamp(4, 64);
        Self {
            stripes: (0..n)
                .map(|_| CachePadded::new(RwLock::new(make())))
                .collect(),
            replacing: Mutex::new(()),
        }
    }

    /// This thread's copy.
    pub(crate) fn get(&self) -> Arc<V> {
        let stripe = &self.stripes[stripe_of_this_thread() % self.stripes.len()];
        Arc::clone(&stripe.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Replace the value with what `next(current)` builds, once per stripe (so each has its own
    /// copy); returns what `next` returned last.
    pub(crate) fn replace<R>(&self, next: impl Fn(&V) -> (Arc<V>, R)) -> R {
        let _replacing = self
            .replacing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut out = None;
        for stripe in self.stripes.iter() {
            let mut value = stripe.write().unwrap_or_else(PoisonError::into_inner);
            let (new, r) = next(&value);
            *value = new;
            out = Some(r);
        }
        out.expect("there is at least one stripe")
    }
}

/// A number given to each thread the first time it asks, in turn.
fn stripe_of_this_thread() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    STRIPE.with(|s| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stripe_has_its_own_copy_and_every_thread_sees_a_replacement() {
        let s: Striped<[u32]> = Striped::new(|| Arc::from(vec![1]));
        let copies: Vec<*const [u32]> = s
            .stripes
            .iter()
            .map(|p| Arc::as_ptr(&p.read().unwrap()))
            .collect();
        for (i, a) in copies.iter().enumerate() {
            assert!(copies[i + 1..].iter().all(|b| !std::ptr::addr_eq(*a, *b)));
        }
        let len = s.replace(|old| {
            let mut v = old.to_vec();
            v.push(2);
            let len = v.len();
            (Arc::from(v), len)
        });
        assert_eq!(len, 2);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| assert_eq!(&*s.get(), &[1, 2]));
            }
        });
    }
}
