//! The manager's configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the manager runs recoveries and background work.
///
/// Exactly the spec's four fields, so the spec's struct literal compiles.
///
/// # Default
///
/// | field | default |
/// |---|---|
/// | `max_concurrent_recoveries` | 3 |
/// | `history_retention` | 100 |
/// | `checkpoint_interval` | 300 s |
/// | `monitoring_interval` | 30 s |
///
/// In a TOML file, durations are written as people write them:
///
/// ```
/// use recovery_manager::RecoveryConfig;
/// let config: RecoveryConfig = toml::from_str(r#"
///     max_concurrent_recoveries = 8
///     history_retention = 1000
///     checkpoint_interval = "5m"
///     monitoring_interval = "250ms"
/// "#).unwrap();
/// assert_eq!(config.checkpoint_interval.as_secs(), 300);
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// At most this many recoveries do work at once (waiting out a delay does not count).
    pub max_concurrent_recoveries: usize,
    /// How many attempts the history keeps; older ones are dropped first.
    pub history_retention: usize,
    /// How often background monitoring takes a checkpoint (with the `checkpoint` feature).
    #[serde(with = "humantime_serde")]
    pub checkpoint_interval: Duration,
    /// How often background monitoring samples resources and steps degradation.
    #[serde(with = "humantime_serde")]
    pub monitoring_interval: Duration,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        Self {
            max_concurrent_recoveries: 3,
            history_retention: 100,
            checkpoint_interval: Duration::from_secs(300),
            monitoring_interval: Duration::from_secs(30),
        }
    }
}

/// A [`RecoveryConfig`] value that cannot work; the message names the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid recovery config: `{field}` {problem}")]
pub struct InvalidRecoveryConfig {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// The largest `max_concurrent_recoveries` accepted.
pub const MAX_CONCURRENT_RECOVERIES: usize = 65_536;
/// The largest `history_retention` accepted: a million attempts (a few hundred megabytes).
pub const MAX_HISTORY_RETENTION: usize = 1_000_000;
/// The longest `checkpoint_interval` or `monitoring_interval` accepted: 30 days.
pub const MAX_INTERVAL: Duration = Duration::from_secs(30 * 24 * 3600);

impl RecoveryConfig {
    /// Check every field: counts and intervals must be positive and within sane bounds
    /// ([`MAX_CONCURRENT_RECOVERIES`], [`MAX_HISTORY_RETENTION`], [`MAX_INTERVAL`]), so that no
    /// value read from a file can make the manager allocate without limit or a timer overflow.
    pub fn validate(&self) -> Result<(), InvalidRecoveryConfig> {
        let bad = |field, problem: String| Err(InvalidRecoveryConfig { field, problem });
        if self.max_concurrent_recoveries == 0 {
            return bad(
                "max_concurrent_recoveries",
                "must be at least 1 (0 would let no recovery run)".to_owned(),
            );
        }
        if self.max_concurrent_recoveries > MAX_CONCURRENT_RECOVERIES {
            return bad(
                "max_concurrent_recoveries",
                format!(
                    "is {}; at most {MAX_CONCURRENT_RECOVERIES} recoveries may run at once",
                    self.max_concurrent_recoveries
                ),
            );
        }
        if self.history_retention == 0 {
            return bad("history_retention", "must be at least 1".to_owned());
        }
        if self.history_retention > MAX_HISTORY_RETENTION {
            return bad(
                "history_retention",
                format!(
                    "is {}; at most {MAX_HISTORY_RETENTION} attempts are kept (export older ones through the metrics or tracing)",
                    self.history_retention
                ),
            );
        }
        for (field, interval) in [
            ("checkpoint_interval", self.checkpoint_interval),
            ("monitoring_interval", self.monitoring_interval),
        ] {
            if interval.is_zero() {
                return bad(field, "must be longer than zero".to_owned());
            }
            if interval > MAX_INTERVAL {
                return bad(field, format!("is {interval:?}; it may be at most 30 days"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_specs_and_valid() {
        let c = RecoveryConfig::default();
        assert_eq!(c.max_concurrent_recoveries, 3);
        assert_eq!(c.history_retention, 100);
        assert_eq!(c.checkpoint_interval, Duration::from_secs(300));
        assert_eq!(c.monitoring_interval, Duration::from_secs(30));
        c.validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_field() {
        let c = RecoveryConfig {
            max_concurrent_recoveries: 0,
            ..Default::default()
        };
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "max_concurrent_recoveries");
        assert!(e.to_string().contains("at least 1"), "{e}");
        let c = RecoveryConfig {
            monitoring_interval: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().field, "monitoring_interval");
    }

    #[test]
    fn sizes_have_upper_bounds() {
        let huge = RecoveryConfig {
            history_retention: 1_000_000_000_000,
            ..Default::default()
        };
        let e = huge.validate().unwrap_err();
        assert_eq!(e.field, "history_retention");
        assert!(e.to_string().contains("at most 1000000"), "{e}");
        let e = RecoveryConfig {
            max_concurrent_recoveries: usize::MAX,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "max_concurrent_recoveries");
        let e = RecoveryConfig {
            checkpoint_interval: Duration::MAX,
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "checkpoint_interval");
        RecoveryConfig {
            history_retention: MAX_HISTORY_RETENTION,
            max_concurrent_recoveries: MAX_CONCURRENT_RECOVERIES,
            monitoring_interval: MAX_INTERVAL,
            ..Default::default()
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn unknown_keys_in_a_file_are_errors() {
        let e = toml::from_str::<RecoveryConfig>("max_concurent_recoveries = 3").unwrap_err();
        assert!(e.to_string().contains("max_concurent_recoveries"), "{e}");
    }
}
