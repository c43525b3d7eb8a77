//! The crate's own small errors, and (with the `strategy` feature) how they cross the seam into
//! `SwarmError`.

use std::fmt;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackoffConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it, and what to do.
    pub problem: String,
}

impl fmt::Display for BackoffConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid backoff config: `{}` {}",
            self.field, self.problem
        )
    }
}

impl std::error::Error for BackoffConfigError {}

#[cfg(feature = "strategy")]
impl From<BackoffConfigError> for recovery_core::SwarmError {
    fn from(e: BackoffConfigError) -> Self {
        recovery_core::SwarmError::InvalidConfiguration(e.to_string())
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidBudget {
    /// The argument at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for InvalidBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid retry budget: `{}` {}", self.field, self.problem)
    }
}

impl std::error::Error for InvalidBudget {}

#[cfg(feature = "strategy")]
impl From<InvalidBudget> for recovery_core::SwarmError {
    fn from(e: InvalidBudget) -> Self {
        recovery_core::SwarmError::InvalidConfiguration(e.to_string())
    }
}
