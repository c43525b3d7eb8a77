//! Jitter: how a delay is spread at random so that clients that failed together do not retry
//! together.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::config::{BackoffConfig, nanos_to_duration};

/// How a delay is randomised. `v` below is the exponential delay without jitter,
/// [`BackoffConfig::delay`]`(n)`, which is already at most `max_delay`; every kind applies the
/// cap **after** the jitter, so no delay ever exceeds `max_delay`.
///
/// The last three are the AWS Architecture Blog's "Exponential Backoff And Jitter":
///
/// | kind | delay | bounds |
/// |---|---|---|
/// | `None` | `v` | exactly `v` |
/// | `Proportional(f)` | `v × (1 + r)`, `r` uniform in `[-f, f]`, capped | `[v(1-f), min(v(1+f), max_delay)]` |
/// | `Full` | uniform in `[0, v]` | `[0, v]` |
/// | `Equal` | `v/2` + uniform in `[0, v/2]` | `[v/2, v]` |
/// | `Decorrelated` | `min(max_delay, uniform in [initial_delay, 3 × previous])` | `[initial_delay, min(max_delay, 3 × previous)]` |
///
/// # Exponents, against the article's names
///
/// Here delay `n` counts from 0 before the first retry: `v = initial_delay × multiplier^n`, so
/// the first retry waits `initial_delay` (the spec's 100 ms → 200 ms → 400 ms). The article
/// writes `base × 2^attempt` with `attempt` counting from 1, so its first retry waits
/// `2 × base`; its `base` is our `initial_delay / 2` for `Full` and `Equal`, its `cap` our
/// `max_delay`. For `Decorrelated` its `base` is our `initial_delay`, and the first "previous"
/// delay is `initial_delay` too, as in the article's `sleep = base` start.
///
/// `Proportional` is the spec's jitter and the default ([`BackoffConfig::default_jitter`]
/// uses `jitter_factor`); its factor is clamped to `0.0..=1.0` (NaN counts as 0). `Full` spreads
/// clients the most and, in the blog's simulation, finished the contended work with the fewest
/// calls; `Equal` keeps at least half of each delay; `Decorrelated` ignores `multiplier` and
/// grows from the previous delay (the first "previous" is `initial_delay`), so it lives in the
/// [`Backoff`](crate::Backoff) iterator.
///
/// ```
/// use std::time::Duration;
/// use recovery_backoff::{Backoff, BackoffConfig, Jitter};
///
/// let config = BackoffConfig::default();
/// for (n, delay) in (0..).zip(Backoff::new(&config, Jitter::Equal)) {
///     let v = config.delay(n);
///     assert!(delay >= v / 2 && delay <= v);
/// }
///
/// // The cap holds after the jitter: +100 % jitter on a delay already at max_delay stays there.
/// let capped = BackoffConfig { max_delay: Duration::from_millis(150), ..config };
/// assert!(Backoff::new(&capped, Jitter::Proportional(1.0)).all(|d| d <= Duration::from_millis(150)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum Jitter {
    /// No jitter: exactly the exponential delay.
    None,
    /// The spec's jitter: the delay moved by up to ± this fraction of itself, then capped.
    Proportional(f64),
    /// AWS "full jitter": uniform in `[0, v]`.
    Full,
    /// AWS "equal jitter": `v/2` plus uniform in `[0, v/2]`.
    Equal,
    /// AWS "decorrelated jitter": uniform in `[initial_delay, 3 × previous delay]`, capped.
    Decorrelated,
}

/// A factor clamped to `0.0..=1.0`, NaN as 0.
pub(crate) fn clamp_factor(f: f64) -> f64 {
    if f.is_nan() { 0.0 } else { f.clamp(0.0, 1.0) }
}

impl Jitter {
    /// The range that delay `n` falls in with this jitter, given the delay before it (`prev`,
    /// used only by `Decorrelated`; for the first delay pass `config.initial_delay`).
    ///
    /// This is the documented contract that the property tests check every delay against.
    pub fn bounds(
        &self,
        config: &BackoffConfig,
        n: u32,
        prev: Duration,
    ) -> RangeInclusive<Duration> {
        let v = config.delay(n);
        let cap = config.max_delay;
        let nanos = v.as_nanos() as f64;
        match *self {
            Jitter::None => v..=v,
            Jitter::Proportional(f) => {
                let f = clamp_factor(f);
                nanos_to_duration(nanos * (1.0 - f), cap)
                    ..=nanos_to_duration(nanos * (1.0 + f), cap)
            }
            Jitter::Full => Duration::ZERO..=v,
            Jitter::Equal => nanos_to_duration(nanos / 2.0, cap)..=v,
            Jitter::Decorrelated => {
                let base = config.initial_delay.min(cap);
                let high = prev.saturating_mul(3).min(cap).max(base);
                base..=high
            }
        }
    }
}
