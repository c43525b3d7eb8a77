//! A breaker's settings, with defaults and a check that names the bad field.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How every breaker of a set decides (the `[breaker]` table of the TOML file).
///
/// # Defaults
///
/// | field | default | meaning |
/// |---|---|---|
/// | `window` | 20 | the last this many calls are counted |
/// | `minimum_calls` | 10 | no decision before this many calls are in the window |
/// | `failure_rate_threshold` | 0.5 | open when this share of the window failed |
/// | `slow_call_rate_threshold` | 0.8 | open when this share of the window was slow |
/// | `slow_call_duration` | 25 s | a call slower than this is slow (tie it to the task timeout) |
/// | `open_for` | 10 s | the first open time |
/// | `open_multiplier` | 2.0 | each open in a row lasts this many times the last |
/// | `max_open_for` | 5 min | the longest open time |
/// | `jitter` | 0.2 | open times are shortened by up to this share, at random |
/// | `max_open_share` | 0.1 | at most this share of the agents open at once (at least one), as Envoy's outlier ejection |
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// The last this many calls are counted.
    pub window: usize,
    /// No decision before this many calls are in the window.
    pub minimum_calls: usize,
    /// Open when this share of the window failed.
    pub failure_rate_threshold: f64,
    /// Open when this share of the window was slow.
    pub slow_call_rate_threshold: f64,
    /// A call slower than this is slow.
    #[serde(with = "humantime_serde")]
    pub slow_call_duration: Duration,
    /// The first open time.
    #[serde(with = "humantime_serde")]
    pub open_for: Duration,
    /// Each open in a row lasts this many times the last.
    pub open_multiplier: f64,
    /// The longest open time.
    #[serde(with = "humantime_serde")]
    pub max_open_for: Duration,
    /// Open times are shortened by up to this share, at random.
    pub jitter: f64,
    /// At most this share of the members open (or half-open) at once, and at least one.
    pub max_open_share: f64,
    /// The seed of the jitter (a seeded set repeats its open times).
    pub seed: u64,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            window: 20,
            minimum_calls: 10,
            failure_rate_threshold: 0.5,
            slow_call_rate_threshold: 0.8,
            slow_call_duration: Duration::from_secs(25),
            open_for: Duration::from_secs(10),
            open_multiplier: 2.0,
            max_open_for: Duration::from_secs(300),
            jitter: 0.2,
            max_open_share: 0.1,
            seed: 0x5eed,
        }
    }
}

/// A [`BreakerConfig`] value that cannot work: the field, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for BreakerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid breaker config: `{}` {}",
            self.field, self.problem
        )
    }
}

impl std::error::Error for BreakerConfigError {}

impl BreakerConfig {
    /// Check every field.
    ///
    /// # Errors
    ///
    /// The first bad field, named.
    pub fn validate(&self) -> Result<(), BreakerConfigError> {
        let bad = |field, problem: String| Err(BreakerConfigError { field, problem });
        let share = |v: f64| v.is_finite() && v > 0.0 && v <= 1.0;
        if self.window == 0 || self.window > 10_000 {
            return bad(
                "window",
                format!("is {}; it must be within 1..=10000", self.window),
            );
        }
        if self.minimum_calls == 0 || self.minimum_calls > self.window {
            return bad(
                "minimum_calls",
                format!(
                    "is {}; it must be within 1..=window ({})",
                    self.minimum_calls, self.window
                ),
            );
        }
        if !share(self.failure_rate_threshold) {
            return bad(
                "failure_rate_threshold",
                format!("is {}; it must be in (0, 1]", self.failure_rate_threshold),
            );
        }
        if !share(self.slow_call_rate_threshold) {
            return bad(
                "slow_call_rate_threshold",
                format!("is {}; it must be in (0, 1]", self.slow_call_rate_threshold),
            );
        }
        if self.slow_call_duration.is_zero() {
            return bad("slow_call_duration", "must be longer than zero".into());
        }
        if self.open_for.is_zero() || self.max_open_for < self.open_for {
            return bad(
                "open_for",
                format!(
                    "is {:?}; it must be longer than zero and at most max_open_for ({:?})",
                    self.open_for, self.max_open_for
                ),
            );
        }
        if !self.open_multiplier.is_finite() || self.open_multiplier < 1.0 {
            return bad(
                "open_multiplier",
                format!("is {}; it must be at least 1.0", self.open_multiplier),
            );
        }
        if !self.jitter.is_finite() || !(0.0..1.0).contains(&self.jitter) {
            return bad(
                "jitter",
                format!("is {}; it must be in [0, 1)", self.jitter),
            );
        }
        if !share(self.max_open_share) {
            return bad(
                "max_open_share",
                format!("is {}; it must be in (0, 1]", self.max_open_share),
            );
        }
        Ok(())
    }
}
