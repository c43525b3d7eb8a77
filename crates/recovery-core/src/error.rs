//! The error type every part of the recovery system speaks, and its kinds.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::id::{AgentId, TaskId};

/// A `Result` whose error is a [`SwarmError`].
pub type SwarmResult<T> = Result<T, SwarmError>;

/// An error raised by a swarm coordinator, an agent or the recovery system itself.
///
/// The first nine variants are the spec's. The first six are **recoverable**: a strategy may
/// handle them. `AgentNotFound`, `InvalidConfiguration` and `ProtocolMismatch` are not: they go
/// straight to "manual intervention required". The last five are what a real coordinator needs
/// beside them.
///
/// Code that decides what to do with an error (rules, retry counting, statistics) should match on
/// [`SwarmError::kind`], never on the `Debug` or `Display` text.
///
/// ```
/// use recovery_core::{ErrorKind, SwarmError};
///
/// let error = SwarmError::CommunicationError("connection reset by peer".into());
/// assert_eq!(error.kind(), ErrorKind::CommunicationError);
/// assert!(error.is_recoverable());
/// assert_eq!(error.to_string(), "communication error: connection reset by peer");
///
/// let fatal = SwarmError::ProtocolMismatch("agent speaks v1, coordinator v3".into());
/// assert!(!fatal.is_recoverable());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SwarmError {
    /// A network or channel failure between the coordinator and an agent, such as a timeout or a
    /// reset connection. Recoverable.
    #[error("communication error: {0}")]
    CommunicationError(String),
    /// A task or a coordination step did not finish in time. Recoverable.
    #[error("coordination timeout: {0}")]
    CoordinationTimeout(String),
    /// The swarm has more agents or tasks than its configured limits allow. Recoverable.
    #[error("swarm size limit exceeded: {0}")]
    SwarmSizeLimitExceeded(String),
    /// Two parties want the same resource. Recoverable.
    #[error("resource conflict: {0}")]
    ResourceConflict(String),
    /// A race between concurrent operations was detected. Recoverable.
    #[error("concurrency error: {0}")]
    ConcurrencyError(String),
    /// A database or storage transaction failed. Recoverable.
    #[error("transaction failed: {0}")]
    TransactionFailed(String),
    /// An agent that an operation needs is not registered. Not recoverable.
    #[error("agent not found: {0}")]
    AgentNotFound(AgentId),
    /// A configuration value is wrong; the message names the field and why. Not recoverable.
    #[error("invalid configuration: {0}")]
    InvalidConfiguration(String),
    /// The two sides speak incompatible protocol versions. Not recoverable.
    #[error("protocol mismatch: {0}")]
    ProtocolMismatch(String),
    /// A task id that the coordinator does not know. Not recoverable.
    #[error("task not found: {0}")]
    TaskNotFound(TaskId),
    /// The system refused new work because it is under pressure. Recoverable: try again after
    /// `retry_after`.
    #[error("overloaded: {reason}; try again in {retry_after:?}")]
    Overloaded {
        /// Why the work was refused (which level, which resource).
        reason: String,
        /// When it is worth trying again.
        retry_after: Duration,
    },
    /// The coordinator's state is inconsistent or damaged. Recoverable (restore a checkpoint).
    #[error("state corruption: {0}")]
    StateCorruption(String),
    /// A store (for example the checkpoint directory) failed. Recoverable.
    #[error("storage error: {0}")]
    Storage(String),
    /// A task was given up on for good; the reason says what failed and what was tried. Not
    /// recoverable: running it again is a new submission.
    #[error("task {task} failed: {reason}")]
    TaskFailed {
        /// The task.
        task: TaskId,
        /// Why, and what was tried.
        reason: String,
    },
}

impl SwarmError {
    /// The kind of this error: what rules, retry counting and statistics key on.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::CommunicationError(_) => ErrorKind::CommunicationError,
            Self::CoordinationTimeout(_) => ErrorKind::CoordinationTimeout,
            Self::SwarmSizeLimitExceeded(_) => ErrorKind::SwarmSizeLimitExceeded,
            Self::ResourceConflict(_) => ErrorKind::ResourceConflict,
            Self::ConcurrencyError(_) => ErrorKind::ConcurrencyError,
            Self::TransactionFailed(_) => ErrorKind::TransactionFailed,
            Self::AgentNotFound(_) => ErrorKind::AgentNotFound,
            Self::InvalidConfiguration(_) => ErrorKind::InvalidConfiguration,
            Self::ProtocolMismatch(_) => ErrorKind::ProtocolMismatch,
            Self::TaskNotFound(_) => ErrorKind::TaskNotFound,
            Self::Overloaded { .. } => ErrorKind::Overloaded,
            Self::StateCorruption(_) => ErrorKind::StateCorruption,
            Self::Storage(_) => ErrorKind::Storage,
            Self::TaskFailed { .. } => ErrorKind::TaskFailed,
        }
    }

    /// Whether a recovery strategy may handle this error. See [`ErrorKind::is_recoverable`].
    pub fn is_recoverable(&self) -> bool {
        self.kind().is_recoverable()
    }

    /// The error's message without the kind prefix, for matching a substring in a rule.
    ///
    /// ```
    /// use recovery_core::SwarmError;
    /// let e = SwarmError::CoordinationTimeout("task 7 ran 30s".into());
    /// assert_eq!(e.message(), "task 7 ran 30s");
    /// ```
    pub fn message(&self) -> String {
        match self {
            Self::CommunicationError(m)
            | Self::CoordinationTimeout(m)
            | Self::SwarmSizeLimitExceeded(m)
            | Self::ResourceConflict(m)
            | Self::ConcurrencyError(m)
            | Self::TransactionFailed(m)
            | Self::InvalidConfiguration(m)
            | Self::ProtocolMismatch(m)
            | Self::StateCorruption(m)
            | Self::Storage(m) => m.clone(),
            Self::AgentNotFound(id) => id.to_string(),
            Self::TaskNotFound(id) => id.to_string(),
            Self::Overloaded { reason, .. } | Self::TaskFailed { reason, .. } => reason.clone(),
        }
    }
}

/// The kind of a [`SwarmError`], without its payload.
///
/// `Copy`, `Eq` and `Hash`, so it can key maps; its `Display` and `FromStr` use the variant name
/// (`"CommunicationError"`), which is how rules written by hand name kinds.
///
/// ```
/// use recovery_core::ErrorKind;
/// let kind: ErrorKind = "CoordinationTimeout".parse().unwrap();
/// assert_eq!(kind, ErrorKind::CoordinationTimeout);
/// assert_eq!(kind.to_string(), "CoordinationTimeout");
/// assert!("NoSuchKind".parse::<ErrorKind>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// See [`SwarmError::CommunicationError`].
    CommunicationError,
    /// See [`SwarmError::CoordinationTimeout`].
    CoordinationTimeout,
    /// See [`SwarmError::SwarmSizeLimitExceeded`].
    SwarmSizeLimitExceeded,
    /// See [`SwarmError::ResourceConflict`].
    ResourceConflict,
    /// See [`SwarmError::ConcurrencyError`].
    ConcurrencyError,
    /// See [`SwarmError::TransactionFailed`].
    TransactionFailed,
    /// See [`SwarmError::AgentNotFound`].
    AgentNotFound,
    /// See [`SwarmError::InvalidConfiguration`].
    InvalidConfiguration,
    /// See [`SwarmError::ProtocolMismatch`].
    ProtocolMismatch,
    /// See [`SwarmError::TaskNotFound`].
    TaskNotFound,
    /// See [`SwarmError::Overloaded`].
    Overloaded,
    /// See [`SwarmError::StateCorruption`].
    StateCorruption,
    /// See [`SwarmError::Storage`].
    Storage,
    /// See [`SwarmError::TaskFailed`].
    TaskFailed,
}

impl ErrorKind {
    /// Every kind, in declaration order. A slice, so that kinds can be added without breaking
    /// code that iterates over it.
    pub const ALL: &'static [ErrorKind] = &[
        Self::CommunicationError,
        Self::CoordinationTimeout,
        Self::SwarmSizeLimitExceeded,
        Self::ResourceConflict,
        Self::ConcurrencyError,
        Self::TransactionFailed,
        Self::AgentNotFound,
        Self::InvalidConfiguration,
        Self::ProtocolMismatch,
        Self::TaskNotFound,
        Self::Overloaded,
        Self::StateCorruption,
        Self::Storage,
        Self::TaskFailed,
    ];

    /// Whether strategies may handle errors of this kind.
    ///
    /// Recoverable: the spec's six (`CommunicationError`, `CoordinationTimeout`,
    /// `SwarmSizeLimitExceeded`, `ResourceConflict`, `ConcurrencyError`, `TransactionFailed`) and
    /// `Overloaded`, `StateCorruption`, `Storage`. Not recoverable: `AgentNotFound`,
    /// `InvalidConfiguration`, `ProtocolMismatch`, `TaskNotFound`, `TaskFailed`.
    pub const fn is_recoverable(self) -> bool {
        !matches!(
            self,
            Self::AgentNotFound
                | Self::InvalidConfiguration
                | Self::ProtocolMismatch
                | Self::TaskNotFound
                | Self::TaskFailed
        )
    }

    /// The variant name, as `Display` prints it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CommunicationError => "CommunicationError",
            Self::CoordinationTimeout => "CoordinationTimeout",
            Self::SwarmSizeLimitExceeded => "SwarmSizeLimitExceeded",
            Self::ResourceConflict => "ResourceConflict",
            Self::ConcurrencyError => "ConcurrencyError",
            Self::TransactionFailed => "TransactionFailed",
            Self::AgentNotFound => "AgentNotFound",
            Self::InvalidConfiguration => "InvalidConfiguration",
            Self::ProtocolMismatch => "ProtocolMismatch",
            Self::TaskNotFound => "TaskNotFound",
            Self::Overloaded => "Overloaded",
            Self::StateCorruption => "StateCorruption",
            Self::Storage => "Storage",
            Self::TaskFailed => "TaskFailed",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of parsing an [`ErrorKind`] from a name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error kind `{name}`; expected one of: {}", kind_names())]
pub struct UnknownErrorKind {
    /// The name that did not parse.
    pub name: String,
}

fn kind_names() -> String {
    let names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
    names.join(", ")
}

impl FromStr for ErrorKind {
    type Err = UnknownErrorKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownErrorKind { name: s.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(kind: ErrorKind) -> SwarmError {
        let m = || "m".to_owned();
        match kind {
            ErrorKind::CommunicationError => SwarmError::CommunicationError(m()),
            ErrorKind::CoordinationTimeout => SwarmError::CoordinationTimeout(m()),
            ErrorKind::SwarmSizeLimitExceeded => SwarmError::SwarmSizeLimitExceeded(m()),
            ErrorKind::ResourceConflict => SwarmError::ResourceConflict(m()),
            ErrorKind::ConcurrencyError => SwarmError::ConcurrencyError(m()),
            ErrorKind::TransactionFailed => SwarmError::TransactionFailed(m()),
            ErrorKind::AgentNotFound => SwarmError::AgentNotFound(AgentId::new()),
            ErrorKind::InvalidConfiguration => SwarmError::InvalidConfiguration(m()),
            ErrorKind::ProtocolMismatch => SwarmError::ProtocolMismatch(m()),
            ErrorKind::TaskNotFound => SwarmError::TaskNotFound(TaskId::new()),
            ErrorKind::Overloaded => SwarmError::Overloaded {
                reason: m(),
                retry_after: Duration::from_secs(1),
            },
            ErrorKind::StateCorruption => SwarmError::StateCorruption(m()),
            ErrorKind::Storage => SwarmError::Storage(m()),
            ErrorKind::TaskFailed => SwarmError::TaskFailed {
                task: TaskId::new(),
                reason: m(),
            },
        }
    }

    #[test]
    fn every_kind_round_trips_through_its_error_and_its_name() {
        for &kind in ErrorKind::ALL {
            assert_eq!(sample(kind).kind(), kind);
            assert_eq!(kind.as_str().parse::<ErrorKind>(), Ok(kind));
        }
    }

    #[test]
    fn recoverable_split_is_the_specs() {
        let fatal: Vec<_> = ErrorKind::ALL
            .iter()
            .copied()
            .filter(|k| !k.is_recoverable())
            .collect();
        assert_eq!(
            fatal,
            [
                ErrorKind::AgentNotFound,
                ErrorKind::InvalidConfiguration,
                ErrorKind::ProtocolMismatch,
                ErrorKind::TaskNotFound,
                ErrorKind::TaskFailed
            ]
        );
    }

    #[test]
    fn unknown_kind_names_the_choices() {
        let err = "NetworkTimeout".parse::<ErrorKind>().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`NetworkTimeout`"), "{text}");
        assert!(text.contains("CommunicationError"), "{text}");
    }

    #[test]
    fn errors_round_trip_through_serde() {
        for &kind in ErrorKind::ALL {
            let e = sample(kind);
            let json = serde_json::to_string(&e).unwrap();
            assert_eq!(serde_json::from_str::<SwarmError>(&json).unwrap(), e);
        }
    }
}
