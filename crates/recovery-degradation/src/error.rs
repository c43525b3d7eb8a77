//! The crate's own small errors, and how they cross the seam into `SwarmError`.

use recovery_core::SwarmError;

/// A CPU or memory fraction that [`ResourceMonitor::try_update_cpu_usage`] (or its memory
/// twin) refused: not a finite number in `0.0..=1.0`.
///
/// [`ResourceMonitor::try_update_cpu_usage`]: crate::ResourceMonitor::try_update_cpu_usage
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[error("invalid {resource} {value}: expected a fraction in 0.0..=1.0")]
pub struct InvalidUsage {
    /// Which reading (`"cpu usage"` or `"memory usage"`).
    pub resource: &'static str,
    /// The value that was refused.
    pub value: f64,
}

/// A [`DegradationConfig`](crate::DegradationConfig) or [`LevelPolicy`](crate::LevelPolicy)
/// value that cannot work; the message names the field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid degradation config: `{field}` {problem}")]
pub struct InvalidDegradationConfig {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl From<InvalidDegradationConfig> for SwarmError {
    fn from(e: InvalidDegradationConfig) -> Self {
        SwarmError::InvalidConfiguration(e.to_string())
    }
}

/// A number that names no [`DegradationLevel`](crate::DegradationLevel) (only 0 to 3 do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown degradation level {0}; expected 0 (normal) to 3 (critical)")]
pub struct UnknownLevel(pub u8);

/// A name that names no [`DegradationLevel`](crate::DegradationLevel).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown degradation level `{0}`; expected normal, reduced, minimal or critical")]
pub struct UnknownLevelName(pub String);
