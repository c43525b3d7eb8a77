//! How many checkpoints are kept.

use serde::{Deserialize, Serialize};

use crate::error::InvalidCheckpointConfig;

/// The checkpoint strategy's settings.
///
/// # Default
///
/// | field | default | meaning |
/// |---|---|---|
/// | `max_checkpoints` | 10 | how many of the newest checkpoints are kept; older ones are deleted after each new one |
///
/// ```
/// use recovery_checkpoint::CheckpointConfig;
/// assert_eq!(CheckpointConfig::default().max_checkpoints, 10);
/// let bad = CheckpointConfig { max_checkpoints: 0 };
/// assert_eq!(bad.validate().unwrap_err().field, "max_checkpoints");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// How many of the newest checkpoints are kept (at least 1).
    pub max_checkpoints: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            max_checkpoints: 10,
        }
    }
}

impl CheckpointConfig {
    /// Check every field: `max_checkpoints` must be at least 1 (keeping none would delete each
    /// checkpoint as soon as it is written).
    pub fn validate(&self) -> Result<(), InvalidCheckpointConfig> {
        if self.max_checkpoints == 0 {
            return Err(InvalidCheckpointConfig {
                field: "max_checkpoints",
                problem: "must be at least 1".into(),
            });
        }
        Ok(())
    }
}
