//! The crate's own small errors, and how they cross the seam into `SwarmError`.

use recovery_core::SwarmError;

/// A [`BackoffConfig`](crate::BackoffConfig) value that cannot work; the message names the field,
/// the value, and what to do about it.
///
/// ```
/// use recovery_backoff::BackoffConfig;
/// let bad = BackoffConfig { multiplier: 0.5, ..BackoffConfig::default() };
/// let e = bad.validate().unwrap_err();
/// assert_eq!(e.field, "multiplier");
/// assert!(e.to_string().contains("at least 1.0"), "{e}");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid backoff config: `{field}` {problem}")]
pub struct BackoffConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it, and what to do.
    pub problem: String,
}

impl From<BackoffConfigError> for SwarmError {
    fn from(e: BackoffConfigError) -> Self {
        SwarmError::InvalidConfiguration(e.to_string())
    }
}

/// [`RetryBudget::new`](crate::RetryBudget::new) arguments that cannot work; the message names
/// the argument and its allowed range.
///
/// ```
/// use std::time::Duration;
/// use recovery_backoff::RetryBudget;
/// let e = RetryBudget::new(Duration::from_millis(10), 10, 0.2).unwrap_err();
/// assert_eq!(e.field, "ttl");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid retry budget: `{field}` {problem}")]
pub struct InvalidBudget {
    /// The argument at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl From<InvalidBudget> for SwarmError {
    fn from(e: InvalidBudget) -> Self {
        SwarmError::InvalidConfiguration(e.to_string())
    }
}
