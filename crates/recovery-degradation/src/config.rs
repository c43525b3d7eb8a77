//! The degradation thresholds (the spec's four fields) and the tuning of the levels above them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::InvalidDegradationConfig;

/// When resources count as under pressure: the point at which the swarm starts shedding load.
///
/// Exactly the spec's four fields, so the spec's struct literal compiles; how far above these
/// thresholds the higher levels start, and how far below them usage must fall to leave a level,
/// is [`LevelPolicy`].
///
/// # Default
///
/// | field | default | meaning |
/// |---|---|---|
/// | `cpu_threshold` | 0.80 | CPU fraction at which the level becomes at least Reduced |
/// | `memory_threshold` | 0.85 | memory fraction at which the level becomes at least Reduced |
/// | `connection_threshold` | 1000 | open connections at which the level becomes at least Reduced |
/// | `task_threshold` | 500 | running tasks at which the level becomes at least Reduced |
///
/// ```
/// use recovery_degradation::DegradationConfig;
/// let degradation_config = DegradationConfig {
///     cpu_threshold: 0.80,
///     memory_threshold: 0.85,
///     connection_threshold: 1000,
///     task_threshold: 500,
/// };
/// assert_eq!(degradation_config, DegradationConfig::default());
/// degradation_config.validate().unwrap();
///
/// let bad = DegradationConfig { memory_threshold: 1.5, ..Default::default() };
/// assert_eq!(bad.validate().unwrap_err().field, "memory_threshold");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DegradationConfig {
    /// CPU fraction (`0.0..=1.0`) at which shedding starts.
    pub cpu_threshold: f64,
    /// Memory fraction (`0.0..=1.0`) at which shedding starts.
    pub memory_threshold: f64,
    /// Open connections at which shedding starts.
    pub connection_threshold: u64,
    /// Running tasks at which shedding starts.
    pub task_threshold: u64,
}

impl Default for DegradationConfig {
    fn default() -> Self {
        Self {
            cpu_threshold: 0.80,
            memory_threshold: 0.85,
            connection_threshold: 1000,
            task_threshold: 500,
        }
    }
}

fn bad(field: &'static str, problem: impl Into<String>) -> Result<(), InvalidDegradationConfig> {
    Err(InvalidDegradationConfig {
        field,
        problem: problem.into(),
    })
}

impl DegradationConfig {
    /// Check every field: the fractions must be in `(0.0, 1.0]` (a threshold of 0 would mean
    /// "always overloaded"), the counts at least 1.
    pub fn validate(&self) -> Result<(), InvalidDegradationConfig> {
        for (field, value) in [
            ("cpu_threshold", self.cpu_threshold),
            ("memory_threshold", self.memory_threshold),
        ] {
            if !(value > 0.0 && value <= 1.0) {
                return bad(
                    field,
                    format!("is {value}; it must be a fraction in (0.0, 1.0]"),
                );
            }
        }
        if self.connection_threshold == 0 {
            return bad("connection_threshold", "must be at least 1");
        }
        if self.task_threshold == 0 {
            return bad("task_threshold", "must be at least 1");
        }
        Ok(())
    }
}

/// How the levels above [`DegradationConfig`]'s thresholds are laid out, and how they are left.
///
/// Levels are placed on one scale, **pressure**: for each resource, usage divided by its
/// threshold, and the largest of the four (see [`Pressure`](crate::Pressure)). Pressure 1.0 is
/// "at the threshold".
///
/// # Default
///
/// | field | default | meaning |
/// |---|---|---|
/// | `minimal_at` | 1.05 | pressure at which Minimal is entered (Reduced is entered at 1.0) |
/// | `critical_at` | 1.10 | pressure at which Critical is entered |
/// | `hysteresis_margin` | 0.05 | a level is left only when pressure falls this far below where it is entered |
/// | `gradual_recovery` | true | a level is left one level per observation (Critical to Normal takes three), never straight down |
/// | `retry_after` | 30 s | what refused work is told about when to try again (the manager's default monitoring interval: the earliest the level can come down) |
///
/// With the default thresholds this gives:
///
/// | level | entered at (cpu / memory / connections / tasks) | left below |
/// |---|---|---|
/// | Reduced | 0.80 / 0.85 / 1000 / 500 | 0.76 / 0.8075 / 950 / 475 |
/// | Minimal | 0.84 / 0.8925 / 1050 / 525 | 0.80 / 0.85 / 1000 / 500 |
/// | Critical | 0.88 / 0.935 / 1100 / 550 | 0.84 / 0.8925 / 1050 / 525 |
///
/// ```
/// use recovery_degradation::LevelPolicy;
/// let policy = LevelPolicy { hysteresis_margin: 0.02, ..LevelPolicy::default() };
/// policy.validate().unwrap();
/// let bad = LevelPolicy { critical_at: 1.01, ..LevelPolicy::default() };
/// assert_eq!(bad.validate().unwrap_err().field, "critical_at");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LevelPolicy {
    /// Pressure at which Minimal is entered; greater than 1.0.
    pub minimal_at: f64,
    /// Pressure at which Critical is entered; greater than `minimal_at`.
    pub critical_at: f64,
    /// How far below its entry pressure a level is left. At least 0, and at most the gap between
    /// two neighbouring entry points, so that usage hovering at one threshold moves the level
    /// across that threshold only.
    pub hysteresis_margin: f64,
    /// Leave at most one level per observation when pressure falls. Shedding load relieves the
    /// very pressure that is measured, so a controller that fell from Critical straight to
    /// Normal would admit everything at once and be back at Critical on the next sample: the
    /// simulation showed exactly that, a swing between the two every 30 s for as long as a
    /// pressure wave lasted. Rising is always immediate.
    pub gradual_recovery: bool,
    /// The `retry_after` that refused work is given.
    #[serde(with = "humantime_serde")]
    pub retry_after: Duration,
}

impl Default for LevelPolicy {
    fn default() -> Self {
        Self {
            minimal_at: 1.05,
            critical_at: 1.10,
            hysteresis_margin: 0.05,
            gradual_recovery: true,
            retry_after: Duration::from_secs(30),
        }
    }
}

impl LevelPolicy {
    /// Check every field (see each field's rule).
    pub fn validate(&self) -> Result<(), InvalidDegradationConfig> {
        if !(self.minimal_at.is_finite() && self.minimal_at > 1.0) {
            return bad(
                "minimal_at",
                format!(
                    "is {}; it must be a finite pressure greater than 1.0 (where Reduced starts)",
                    self.minimal_at
                ),
            );
        }
        if !(self.critical_at.is_finite() && self.critical_at > self.minimal_at) {
            return bad(
                "critical_at",
                format!(
                    "is {}; it must be a finite pressure greater than minimal_at ({})",
                    self.critical_at, self.minimal_at
                ),
            );
        }
        // A tolerance of 1e-9, so that 1.05 - 1.0 (0.04999..) admits a margin of 0.05.
        let smallest_gap = (self.minimal_at - 1.0).min(self.critical_at - self.minimal_at);
        if !(self.hysteresis_margin >= 0.0 && self.hysteresis_margin <= smallest_gap + 1e-9) {
            return bad(
                "hysteresis_margin",
                format!(
                    "is {}; it must be at least 0 and at most the smallest gap between two levels ({smallest_gap})",
                    self.hysteresis_margin
                ),
            );
        }
        if self.retry_after.is_zero() {
            return bad("retry_after", "must be longer than zero");
        }
        Ok(())
    }

    /// The pressure at which `level` is entered (0.0 for Normal).
    pub fn entry(&self, level: crate::DegradationLevel) -> f64 {
        use crate::DegradationLevel::*;
        match level {
            Normal => 0.0,
            Reduced => 1.0,
            Minimal => self.minimal_at,
            Critical => self.critical_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        DegradationConfig::default().validate().unwrap();
        LevelPolicy::default().validate().unwrap();
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases: [(DegradationConfig, &str); 6] = [
            (
                DegradationConfig {
                    cpu_threshold: 0.0,
                    ..Default::default()
                },
                "cpu_threshold",
            ),
            (
                DegradationConfig {
                    cpu_threshold: f64::NAN,
                    ..Default::default()
                },
                "cpu_threshold",
            ),
            (
                DegradationConfig {
                    memory_threshold: 1.01,
                    ..Default::default()
                },
                "memory_threshold",
            ),
            (
                DegradationConfig {
                    memory_threshold: -0.5,
                    ..Default::default()
                },
                "memory_threshold",
            ),
            (
                DegradationConfig {
                    connection_threshold: 0,
                    ..Default::default()
                },
                "connection_threshold",
            ),
            (
                DegradationConfig {
                    task_threshold: 0,
                    ..Default::default()
                },
                "task_threshold",
            ),
        ];
        for (config, field) in cases {
            let e = config.validate().unwrap_err();
            assert_eq!(e.field, field, "{e}");
            assert!(e.to_string().contains(field), "{e}");
        }
        let policies: [(LevelPolicy, &str); 5] = [
            (
                LevelPolicy {
                    minimal_at: 1.0,
                    ..Default::default()
                },
                "minimal_at",
            ),
            (
                LevelPolicy {
                    critical_at: f64::INFINITY,
                    ..Default::default()
                },
                "critical_at",
            ),
            (
                LevelPolicy {
                    hysteresis_margin: -0.01,
                    ..Default::default()
                },
                "hysteresis_margin",
            ),
            (
                LevelPolicy {
                    hysteresis_margin: 0.06,
                    ..Default::default()
                },
                "hysteresis_margin",
            ),
            (
                LevelPolicy {
                    retry_after: Duration::ZERO,
                    ..Default::default()
                },
                "retry_after",
            ),
        ];
        for (policy, field) in policies {
            assert_eq!(policy.validate().unwrap_err().field, field);
        }
    }

    #[test]
    fn configs_read_from_toml() {
        let c: DegradationConfig =
            toml::from_str("cpu_threshold = 0.7\ntask_threshold = 50").unwrap();
        assert_eq!(c.cpu_threshold, 0.7);
        assert_eq!(c.memory_threshold, 0.85);
        assert_eq!(c.task_threshold, 50);
        assert!(toml::from_str::<DegradationConfig>("cpu_treshold = 0.7").is_err());
        let p: LevelPolicy = toml::from_str("retry_after = \"5s\"").unwrap();
        assert_eq!(p.retry_after, Duration::from_secs(5));
    }
}
