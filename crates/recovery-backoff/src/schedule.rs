//! The delay schedule as an iterator: at most `max_retries` jittered delays.

use std::iter::FusedIterator;
use std::time::Duration;

use crate::config::{BackoffConfig, exponential, nanos_to_duration};
use crate::jitter::{Jitter, clamp_factor};
use crate::xoshiro::Xoshiro256PlusPlus;

/// The delays before each retry: an iterator of at most `max_retries` jittered delays, `None`
/// meaning "give up".
///
/// Made by [`BackoffConfig::backoff`] (the config's default jitter) or [`Backoff::new`]. The
/// random number generator (a small, fast one, seeded from the thread's generator) is created
/// only when a delay really needs a random number: never for [`Jitter::None`] and never for a
/// zero delay.
///
/// ```
/// use std::time::Duration;
/// use recovery_backoff::{Backoff, BackoffConfig, Jitter};
///
/// let config = BackoffConfig { max_retries: 4, ..BackoffConfig::default() };
/// let ms: Vec<u128> = Backoff::new(&config, Jitter::None).map(|d| d.as_millis()).collect();
/// assert_eq!(ms, [100, 200, 400, 800]);
///
/// // A schedule can start later, for a failure that was already retried twice.
/// let rest: Vec<u128> = Backoff::new(&config, Jitter::None).starting_at(2).map(|d| d.as_millis()).collect();
/// assert_eq!(rest, [400, 800]);
///
/// // Every delay, with any jitter, stays within max_delay.
/// assert!(Backoff::new(&config, Jitter::Decorrelated).all(|d| d <= config.max_delay));
/// ```
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    multiplier: f64,
    jitter: Jitter,
    next: u32,
    end: u32,
    prev: Duration,
    rng: Option<Xoshiro256PlusPlus>,
}

impl Backoff {
    /// The schedule of `config` with `jitter`, starting at delay 0.
    pub fn new(config: &BackoffConfig, jitter: Jitter) -> Self {
        Self::from_parts(
            config.initial_delay,
            config.max_delay,
            config.multiplier,
            config.max_retries,
            jitter,
        )
    }

    pub(crate) fn from_parts(
        initial: Duration,
        max: Duration,
        multiplier: f64,
        max_retries: u32,
        jitter: Jitter,
    ) -> Self {
        Self {
            initial,
            max,
            multiplier,
            jitter,
            next: 0,
            end: max_retries,
            prev: initial.min(max),
            rng: None,
        }
    }

    /// The same schedule, starting at delay `attempt` (for a failure that was already retried
    /// `attempt` times); it then yields `max_retries - attempt` delays. For
    /// [`Jitter::Decorrelated`] the previous delay is taken to be the exponential delay
    /// `attempt - 1`.
    pub fn starting_at(mut self, attempt: u32) -> Self {
        self.next = attempt;
        if attempt > 0 {
            self.prev = exponential(self.initial, self.max, self.multiplier, attempt - 1)
                .max(self.initial.min(self.max));
        }
        self
    }

    /// The same schedule, drawing its random numbers from a generator seeded with `seed`, so that
    /// it yields the same delays every time, on every platform (Xoshiro256++, a named
    /// algorithm: tests, simulations that replay).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.rng = Some(Xoshiro256PlusPlus::seed_from_u64(seed));
        self
    }

    /// The jitter in use.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The index of the delay that `next()` yields (0 before the first retry).
    pub fn attempt(&self) -> u32 {
        self.next
    }

    /// A uniform number in `[0, 1)`, creating the generator on first use.
    fn unit(&mut self) -> f64 {
        self.rng
            .get_or_insert_with(|| Xoshiro256PlusPlus::seed_from_u64(entropy()))
            .unit()
    }

    /// Delay `n` with this schedule's jitter, capped after the jitter.
    fn jittered(&mut self, n: u32) -> Duration {
        let v = exponential(self.initial, self.max, self.multiplier, n);
        let cap = self.max;
        match self.jitter {
            Jitter::None => v,
            Jitter::Proportional(f) => {
                let f = clamp_factor(f);
                if f == 0.0 || v.is_zero() {
                    return v;
                }
                let r = f * (2.0 * self.unit() - 1.0);
                nanos_to_duration(v.as_nanos() as f64 * (1.0 + r), cap)
            }
            Jitter::Full => {
                if v.is_zero() {
                    return v;
                }
                nanos_to_duration(v.as_nanos() as f64 * self.unit(), v)
            }
            Jitter::Equal => {
                if v.is_zero() {
                    return v;
                }
                let half = v.as_nanos() as f64 / 2.0;
                nanos_to_duration(half + half * self.unit(), v)
            }
            Jitter::Decorrelated => {
                // The article's `min(cap, uniform(base, 3 * prev))`: the draw spans the whole
                // range and the cap is applied to what was drawn, so draws past the cap land on
                // it (capping the range first would never reach the cap).
                let base = self.initial.min(cap);
                let high = self.prev.saturating_mul(3);
                let d = if high <= base {
                    base
                } else {
                    let (lo, hi) = (base.as_nanos() as f64, high.as_nanos() as f64);
                    nanos_to_duration(lo + (hi - lo) * self.unit(), cap).max(base)
                };
                self.prev = d;
                d
            }
        }
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        if self.next >= self.end {
            return None;
        }
        let n = self.next;
        self.next += 1;
        Some(self.jittered(n))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end.saturating_sub(self.next) as usize;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Backoff {}

impl FusedIterator for Backoff {}

/// A seed for an unseeded schedule, from the standard library alone: std's per-process random
/// hash keys, a per-thread counter and the clock, hashed (as `fastrand` seeds itself). Jitter
/// needs spread, not secrecy; a schedule that must repeat takes [`Backoff::with_seed`].
fn entropy() -> u64 {
    use std::cell::Cell;
    use std::hash::{BuildHasher, Hasher};
    thread_local! {
        static COUNTER: Cell<u64> = const { Cell::new(0) };
    }
    let n = COUNTER.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(n);
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_jitter_never_creates_a_generator() {
        let mut b = Backoff::new(&BackoffConfig::default(), Jitter::None);
        assert_eq!(b.len(), 5);
        assert!(b.by_ref().all(|d| d > Duration::ZERO));
        assert!(b.rng.is_none());
        assert_eq!(b.next(), None);
    }

    #[test]
    fn zero_delays_never_create_a_generator() {
        let config = BackoffConfig {
            initial_delay: Duration::ZERO,
            ..BackoffConfig::default()
        };
        for jitter in [
            Jitter::Proportional(0.5),
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let mut b = Backoff::new(&config, jitter);
            assert!(b.by_ref().all(|d| d.is_zero()));
            assert!(b.rng.is_none(), "{jitter:?}");
        }
    }

    #[test]
    fn seeded_schedules_repeat() {
        let c = BackoffConfig::default();
        let a: Vec<_> = Backoff::new(&c, Jitter::Full).with_seed(7).collect();
        let b: Vec<_> = Backoff::new(&c, Jitter::Full).with_seed(7).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn starting_past_the_end_yields_nothing() {
        let c = BackoffConfig::default();
        assert_eq!(Backoff::new(&c, Jitter::None).starting_at(9).next(), None);
    }
}
