//! A retry budget shared by callers: a floor of retries per second plus a ratio of requests.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::InvalidBudget;

/// Fixed-point scale: one retry costs `SCALE` units, one deposit earns `ratio × SCALE`.
const SCALE: i64 = 1_000_000;
/// The window is kept as this many slots of `ttl / SLOTS` each; a slot's deposits and
/// withdrawals stop counting once it falls out of the window.
const SLOTS: usize = 10;

/// How many retries a group of callers may make: at most `min_per_sec` retries per second
/// whatever happens, plus `retry_ratio` retries for each request, counted over a sliding window
/// of `ttl` (tower's `TpsBudget`, with the same defaults).
///
/// # Why budgets and not only `max_retries`?
///
/// `max_retries` bounds the retries of **one** request. When a dependency is down and every
/// request fails, each caller still makes `1 + max_retries` attempts, so the failing dependency
/// sees six times its normal load just when it can least take it. A budget shared by all the
/// callers bounds the retries of the **group**: under total failure, attempts are at most
/// `1 + retry_ratio` times the requests (plus the small floor), and a few retries always remain
/// for a caller that sends little traffic.
///
/// # How to use it
///
/// Share one budget (through `Arc`) between everyone who calls the same dependency. Call
/// [`deposit`](Self::deposit) once per request (its first attempt) and
/// [`withdraw`](Self::withdraw) before each retry; a retry that the budget refuses is not made.
/// The standalone [`retry`](crate::retry()) and the
/// [`ExponentialBackoffStrategy`](crate::ExponentialBackoffStrategy) do both for you.
///
/// The window follows `tokio::time::Instant`, so a test with `tokio::time::pause()` sees the
/// budget refill as the paused clock moves. It starts on first use. Each call takes a short,
/// uncontended-in-practice lock (no allocation, no waiting on I/O), which keeps deposits and
/// withdrawals exact under concurrency.
///
/// # Default
///
/// | parameter | default | meaning |
/// |---|---|---|
/// | `ttl` | 10 s | how long a deposit or withdrawal counts (1 s to 60 s) |
/// | `min_per_sec` | 10 | retries per second allowed even with no deposits |
/// | `retry_ratio` | 0.2 | retries allowed per deposited request (0 to 1000) |
///
/// ```
/// use std::time::Duration;
/// use recovery_backoff::RetryBudget;
///
/// // No floor, one retry per five requests.
/// let budget = RetryBudget::new(Duration::from_secs(10), 0, 0.2)?;
/// assert!(!budget.withdraw());
/// for _ in 0..10 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw() && budget.withdraw());
/// assert!(!budget.withdraw());
/// # Ok::<(), recovery_backoff::InvalidBudget>(())
/// ```
#[derive(Debug)]
pub struct RetryBudget {
    ttl: Duration,
    min_per_sec: u32,
    retry_ratio: f64,
    deposit_amount: i64,
    reserve: i64,
    slot_nanos: u128,
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    epoch: u64,
    slots: [i64; SLOTS],
}

impl Default for RetryBudget {
    /// A 10 s window, a floor of 10 retries per second, 20 % of requests.
    fn default() -> Self {
        Self::new(Duration::from_secs(10), 10, 0.2).expect("the defaults are valid")
    }
}

impl RetryBudget {
    /// A budget that counts over `ttl` (1 s to 60 s), always allows `min_per_sec` retries per
    /// second, and on top of that `retry_ratio` (0 to 1000) retries per deposited request.
    pub fn new(ttl: Duration, min_per_sec: u32, retry_ratio: f64) -> Result<Self, InvalidBudget> {
        if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
            return Err(InvalidBudget {
                field: "ttl",
                problem: format!("is {ttl:?}; it must be between 1 s and 60 s"),
            });
        }
        if !(0.0..=1000.0).contains(&retry_ratio) {
            return Err(InvalidBudget {
                field: "retry_ratio",
                problem: format!(
                    "is {retry_ratio}; it must be a number in 0.0..=1000.0 (0.2 allows one retry per five requests)"
                ),
            });
        }
        // Rounded down, so the budget never admits more than the ratio.
        let deposit_amount = (retry_ratio * SCALE as f64).floor() as i64;
        let reserve = (f64::from(min_per_sec) * ttl.as_secs_f64()).floor() as i64 * SCALE;
        Ok(Self {
            ttl,
            min_per_sec,
            retry_ratio,
            deposit_amount,
            reserve,
            slot_nanos: (ttl.as_nanos() / SLOTS as u128).max(1),
            window: Mutex::new(Window {
                start: None,
                epoch: 0,
                slots: [0; SLOTS],
            }),
        })
    }

    /// The window.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The floor of retries per second.
    pub fn min_per_sec(&self) -> u32 {
        self.min_per_sec
    }

    /// The retries allowed per deposited request.
    pub fn retry_ratio(&self) -> f64 {
        self.retry_ratio
    }

    /// Record a request (call once per request, on its first attempt).
    pub fn deposit(&self) {
        let now = Instant::now();
        self.with_window(now, |w, slot| {
            w.slots[slot] = w.slots[slot].saturating_add(self.deposit_amount);
        });
    }

    /// Ask for one retry: `true` (and the retry is counted) if the budget allows it now,
    /// `false` if the retry must not be made.
    pub fn withdraw(&self) -> bool {
        let now = Instant::now();
        self.with_window(now, |w, slot| {
            let balance = self.reserve + w.slots.iter().sum::<i64>();
            if balance >= SCALE {
                w.slots[slot] -= SCALE;
                true
            } else {
                false
            }
        })
    }

    /// How many retries the budget would allow right now (for metrics and tests).
    pub fn available(&self) -> u64 {
        let now = Instant::now();
        self.with_window(now, |w, _| {
            let balance = self.reserve + w.slots.iter().sum::<i64>();
            (balance.max(0) / SCALE) as u64
        })
    }

    /// Move the window to `now` (dropping slots that fell out of it) and run `f` on it with the
    /// index of the current slot.
    fn with_window<R>(&self, now: Instant, f: impl FnOnce(&mut Window, usize) -> R) -> R {
        let mut w = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let start = *w.start.get_or_insert(now);
        let epoch = (now.saturating_duration_since(start).as_nanos() / self.slot_nanos) as u64;
        if epoch > w.epoch {
            let passed = (epoch - w.epoch).min(SLOTS as u64);
            for e in (epoch + 1 - passed)..=epoch {
                w.slots[(e % SLOTS as u64) as usize] = 0;
            }
            w.epoch = epoch;
        }
        let slot = (w.epoch % SLOTS as u64) as usize;
        f(&mut w, slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_arguments_are_named() {
        let e = RetryBudget::new(Duration::from_secs(61), 1, 0.2).unwrap_err();
        assert_eq!(e.field, "ttl");
        let e = RetryBudget::new(Duration::from_secs(10), 1, f64::NAN).unwrap_err();
        assert_eq!(e.field, "retry_ratio");
        let e = RetryBudget::new(Duration::from_secs(10), 1, -0.1).unwrap_err();
        assert!(e.to_string().contains("retry_ratio"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_refills_after_the_window() {
        let budget = RetryBudget::new(Duration::from_secs(1), 5, 0.0).unwrap();
        assert_eq!(budget.available(), 5);
        assert_eq!((0..10).filter(|_| budget.withdraw()).count(), 5);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert!(!budget.withdraw());
        tokio::time::advance(Duration::from_millis(600)).await;
        assert_eq!((0..10).filter(|_| budget.withdraw()).count(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn deposits_expire() {
        let budget = RetryBudget::new(Duration::from_secs(10), 0, 1.0).unwrap();
        for _ in 0..3 {
            budget.deposit();
        }
        assert_eq!(budget.available(), 3);
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(budget.available(), 0);
    }

    #[test]
    fn concurrent_withdrawals_never_overdraw() {
        let budget = RetryBudget::new(Duration::from_secs(60), 2, 0.0).unwrap();
        let granted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        if budget.withdraw() {
                            granted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(granted.into_inner(), 120);
    }

    #[test]
    fn defaults_are_towers() {
        let b = RetryBudget::default();
        assert_eq!(
            (b.ttl(), b.min_per_sec(), b.retry_ratio()),
            (Duration::from_secs(10), 10, 0.2)
        );
        assert_eq!(b.available(), 100);
    }
}
