//! The backoff configuration (the spec's five fields) and its delay schedule without jitter.

use std::time::Duration;

use crate::error::BackoffConfigError;
use crate::jitter::Jitter;
use crate::schedule::Backoff;

/// How long to wait between retries, and how often to retry.
///
/// Exactly the spec's five fields, so the spec's struct literal compiles. Delay `n` (counting
/// from 0) is `min(initial_delay × multiplier^n, max_delay)` before jitter
/// ([`delay`](Self::delay)); with the defaults that is 100 ms, 200 ms, 400 ms, 800 ms, 1.6 s.
/// The jitter applied on top defaults to the spec's proportional jitter of ±`jitter_factor`
/// ([`Jitter::Proportional`]), and the cap is applied after the jitter, so a delay never
/// exceeds `max_delay`.
///
/// In a config file durations are written as people write them (`"100ms"`, `"1m 30s"`), any
/// field may be left out (it keeps its default) and an unknown field is an error.
///
/// # Default
///
/// | field | default | meaning |
/// |---|---|---|
/// | `initial_delay` | 100 ms | the delay before the first retry |
/// | `max_delay` | 60 s | no delay is longer, jitter included |
/// | `multiplier` | 2.0 | each delay is this many times the one before (at least 1.0) |
/// | `max_retries` | 5 | retries after the first failure (so at most 6 runs in all) |
/// | `jitter_factor` | 0.1 | the spec's jitter: each delay is moved by up to ±10 % of itself |
///
/// ```
/// use std::time::Duration;
/// use recovery_backoff::BackoffConfig;
///
/// let config = BackoffConfig {
///     initial_delay: Duration::from_millis(100),
///     max_delay: Duration::from_secs(60),
///     multiplier: 2.0,
///     max_retries: 5,
///     jitter_factor: 0.1,
/// };
/// assert_eq!(config, BackoffConfig::default());
/// config.validate()?;
/// let ms: Vec<u128> = (0..4).map(|n| config.delay(n).as_millis()).collect();
/// assert_eq!(ms, [100, 200, 400, 800]);
/// assert_eq!(config.delay(u32::MAX), Duration::from_secs(60));
///
/// let bad = BackoffConfig { max_delay: Duration::from_millis(10), ..config };
/// assert_eq!(bad.validate().unwrap_err().field, "max_delay");
/// # Ok::<(), recovery_backoff::BackoffConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct BackoffConfig {
    /// The delay before the first retry.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub initial_delay: Duration,
    /// The longest delay, jitter included.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub max_delay: Duration,
    /// How much longer each delay is than the one before; finite and at least 1.0.
    pub multiplier: f64,
    /// How many retries after the first failure.
    pub max_retries: u32,
    /// The spec's jitter: each delay is moved by a random amount of up to ±`jitter_factor` of
    /// itself; in `0.0..=1.0` (0 turns the default jitter off).
    pub jitter_factor: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
            max_retries: 5,
            jitter_factor: 0.1,
        }
    }
}

fn bad(field: &'static str, problem: String) -> Result<(), BackoffConfigError> {
    Err(BackoffConfigError { field, problem })
}

impl BackoffConfig {
    /// Check every field: `multiplier` finite and at least 1.0, `jitter_factor` in `0.0..=1.0`,
    /// `max_delay` at least `initial_delay`. The error names the field and what to do.
    pub fn validate(&self) -> Result<(), BackoffConfigError> {
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return bad(
                "multiplier",
                format!(
                    "is {}; it must be a finite number of at least 1.0 (1.0 keeps every delay at initial_delay)",
                    self.multiplier
                ),
            );
        }
        if !(0.0..=1.0).contains(&self.jitter_factor) {
            return bad(
                "jitter_factor",
                format!(
                    "is {}; it must be a fraction in 0.0..=1.0 (0.1 moves each delay by up to ±10 %, 0 turns jitter off)",
                    self.jitter_factor
                ),
            );
        }
        if self.max_delay < self.initial_delay {
            return bad(
                "max_delay",
                format!(
                    "is {:?}, shorter than initial_delay ({:?}); raise max_delay or lower initial_delay",
                    self.max_delay, self.initial_delay
                ),
            );
        }
        Ok(())
    }

    /// Delay `n` (0 before the first retry) without jitter:
    /// `min(initial_delay × multiplier^n, max_delay)`.
    ///
    /// Never above `max_delay`, never negative, and it does not overflow or panic for any `n` and
    /// any config (an invalid one gives some delay in `[0, max_delay]`). For a valid config it
    /// does not decrease as `n` grows.
    pub fn delay(&self, n: u32) -> Duration {
        exponential(self.initial_delay, self.max_delay, self.multiplier, n)
    }

    /// The jitter this config asks for: the spec's [`Jitter::Proportional`] with
    /// `jitter_factor` ([`Jitter::None`] when it is 0).
    pub fn default_jitter(&self) -> Jitter {
        if self.jitter_factor == 0.0 {
            Jitter::None
        } else {
            Jitter::Proportional(self.jitter_factor)
        }
    }

    /// The schedule of at most `max_retries` delays, with [`default_jitter`](Self::default_jitter).
    ///
    /// ```
    /// use recovery_backoff::BackoffConfig;
    /// let config = BackoffConfig::default();
    /// let delays: Vec<_> = config.backoff().collect();
    /// assert_eq!(delays.len(), 5);
    /// for (n, d) in delays.into_iter().enumerate() {
    ///     let v = config.delay(n as u32).as_secs_f64();
    ///     assert!(d.as_secs_f64() >= v * 0.9 - 1e-9 && d.as_secs_f64() <= v * 1.1 + 1e-9);
    /// }
    /// ```
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self, self.default_jitter())
    }
}

/// `min(initial × multiplier^n, max)`, computed in floating-point nanoseconds so that it neither
/// overflows nor panics. The power is `libm`'s, the same on every platform (the standard
/// library's `powf` is the platform's), so a seeded simulation replays alike on any machine.
pub(crate) fn exponential(initial: Duration, max: Duration, multiplier: f64, n: u32) -> Duration {
    if initial.is_zero() {
        return Duration::ZERO;
    }
    let factor = libm::pow(multiplier, f64::from(n));
    if factor == 1.0 {
        return initial.min(max);
    }
    nanos_to_duration(initial.as_nanos() as f64 * factor, max)
}

/// A duration of `nanos` nanoseconds, rounded, clamped to `[0, cap]` (NaN gives zero).
pub(crate) fn nanos_to_duration(nanos: f64, cap: Duration) -> Duration {
    if nanos.is_nan() || nanos <= 0.0 {
        return Duration::ZERO;
    }
    if nanos >= cap.as_nanos() as f64 {
        return cap;
    }
    let nanos = nanos.round();
    let secs = (nanos / 1e9).floor();
    let sub = (nanos - secs * 1e9).clamp(0.0, 999_999_999.0);
    // `secs` is below the cap's seconds here, so the cast neither saturates nor wraps.
    Duration::new(secs as u64, sub as u32).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_specs_and_valid() {
        let c = BackoffConfig::default();
        c.validate().unwrap();
        assert_eq!(c.initial_delay, Duration::from_millis(100));
        assert_eq!(c.max_delay, Duration::from_secs(60));
        assert_eq!(c.multiplier, 2.0);
        assert_eq!(c.max_retries, 5);
        assert_eq!(c.jitter_factor, 0.1);
    }

    #[test]
    fn the_specs_progression() {
        let c = BackoffConfig::default();
        let ms: Vec<u128> = (0..12).map(|n| c.delay(n).as_millis()).collect();
        assert_eq!(
            ms,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000
            ]
        );
        assert_eq!(c.delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn extremes_do_not_overflow() {
        let c = BackoffConfig {
            initial_delay: Duration::MAX,
            max_delay: Duration::MAX,
            multiplier: f64::MAX,
            max_retries: u32::MAX,
            jitter_factor: 1.0,
        };
        for n in [0, 1, 2, 1000, u32::MAX] {
            assert_eq!(c.delay(n), Duration::MAX);
        }
        let zero = BackoffConfig {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..BackoffConfig::default()
        };
        zero.validate().unwrap();
        assert_eq!(zero.delay(u32::MAX), Duration::ZERO);
        let flat = BackoffConfig {
            multiplier: 1.0,
            ..BackoffConfig::default()
        };
        assert_eq!(flat.delay(u32::MAX), Duration::from_millis(100));
        // An invalid config still gives a delay in [0, max_delay].
        let nan = BackoffConfig {
            multiplier: f64::NAN,
            ..BackoffConfig::default()
        };
        assert!(nan.delay(3) <= nan.max_delay);
    }

    #[test]
    fn each_bad_field_is_named() {
        let d = BackoffConfig::default;
        let cases = [
            (
                BackoffConfig {
                    multiplier: 0.99,
                    ..d()
                },
                "multiplier",
            ),
            (
                BackoffConfig {
                    multiplier: f64::NAN,
                    ..d()
                },
                "multiplier",
            ),
            (
                BackoffConfig {
                    multiplier: f64::INFINITY,
                    ..d()
                },
                "multiplier",
            ),
            (
                BackoffConfig {
                    jitter_factor: -0.1,
                    ..d()
                },
                "jitter_factor",
            ),
            (
                BackoffConfig {
                    jitter_factor: 1.5,
                    ..d()
                },
                "jitter_factor",
            ),
            (
                BackoffConfig {
                    jitter_factor: f64::NAN,
                    ..d()
                },
                "jitter_factor",
            ),
            (
                BackoffConfig {
                    initial_delay: Duration::from_secs(61),
                    ..d()
                },
                "max_delay",
            ),
        ];
        for (config, field) in cases {
            let e = config.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().contains(field), "{e}");
        }
    }

    #[cfg(feature = "serde")]
    #[test]
    fn configs_read_from_json_with_humantime_durations() {
        let c: BackoffConfig =
            serde_json::from_str(r#"{"initial_delay": "50ms", "max_retries": 8}"#).unwrap();
        assert_eq!(c.initial_delay, Duration::from_millis(50));
        assert_eq!(c.max_retries, 8);
        assert_eq!(c.max_delay, Duration::from_secs(60));
        let json = serde_json::to_string(&BackoffConfig::default()).unwrap();
        assert!(json.contains(r#""initial_delay":"100ms""#), "{json}");
        assert!(serde_json::from_str::<BackoffConfig>(r#"{"max_retry": 3}"#).is_err());
    }
}
