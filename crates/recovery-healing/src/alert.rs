//! Alerts: where `TriggerAlert` sends its message.

use std::fmt;
use std::time::SystemTime;

use recovery_core::{AgentId, ErrorKind, TaskId, async_trait};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// For the record.
    Info,
    /// Someone should look soon.
    Warning,
    /// Someone should look now.
    Critical,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        })
    }
}

/// An alert raised by a `TriggerAlert` rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The rule that raised it.
    pub rule_id: String,
    /// How urgent it is (the rule's).
    pub severity: Severity,
    /// The rule's message.
    pub message: String,
    /// The kind of the error that triggered the rule.
    pub error_kind: ErrorKind,
    /// The error's message (data for people; it is never run or interpreted).
    pub error_message: String,
    /// The agent that failed, if the context named one.
    pub failed_agent_id: Option<AgentId>,
    /// The task that failed, if the context named one.
    pub failed_task_id: Option<TaskId>,
    /// When the alert was raised.
    pub raised_at: SystemTime,
}

/// Why an alert was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AlertError {
    /// The receiving side is gone.
    #[error("the alert receiver is closed")]
    Closed,
    /// The sink is full; the alert was not queued.
    #[error("the alert queue is full")]
    Full,
    /// Another failure, described.
    #[error("alert delivery failed: {0}")]
    Failed(String),
}

/// Where alerts go. A `TriggerAlert` rule reports success only when `send` returned `Ok`.
///
/// ```
/// use recovery_core::async_trait;
/// use recovery_healing::{Alert, AlertError, AlertSink};
///
/// /// Prints alerts to standard error.
/// struct Stderr;
///
/// #[async_trait]
/// impl AlertSink for Stderr {
///     async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
///         eprintln!("[{}] {}: {}", alert.severity, alert.rule_id, alert.message);
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait AlertSink: Send + Sync {
    /// Deliver `alert`; `Ok` means it was handed over.
    async fn send(&self, alert: &Alert) -> Result<(), AlertError>;

    /// Whether delivering needs something outside the process (a network, a pager). Reported
    /// through the strategy's `requires_external_resources`. Default `false`.
    fn is_external(&self) -> bool {
        false
    }
}

/// The default sink: a `tracing` event at `warn` level (`error` for critical alerts), target
/// `recovery_healing::alert`, with the alert's fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingAlertSink;

#[async_trait]
impl AlertSink for TracingAlertSink {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        let agent = alert.failed_agent_id.map(|a| a.to_string());
        let task = alert.failed_task_id.map(|t| t.to_string());
        match alert.severity {
            Severity::Critical => tracing::error!(
                target: "recovery_healing::alert",
                rule_id = %alert.rule_id,
                severity = %alert.severity,
                error_kind = %alert.error_kind,
                error_message = %alert.error_message,
                failed_agent_id = ?agent,
                failed_task_id = ?task,
                "{}", alert.message
            ),
            Severity::Warning | Severity::Info => tracing::warn!(
                target: "recovery_healing::alert",
                rule_id = %alert.rule_id,
                severity = %alert.severity,
                error_kind = %alert.error_kind,
                error_message = %alert.error_message,
                failed_agent_id = ?agent,
                failed_task_id = ?task,
                "{}", alert.message
            ),
        }
        Ok(())
    }
}

/// A sink that queues alerts on a bounded tokio channel, for programs and tests.
///
/// `send` never waits: when the queue is full it fails with [`AlertError::Full`] (so a slow
/// reader cannot stall recovery), and when the receiver is dropped with [`AlertError::Closed`].
///
/// ```
/// use recovery_healing::ChannelAlertSink;
/// let (sink, mut alerts) = ChannelAlertSink::new(16);
/// # drop(sink); assert!(alerts.try_recv().is_err());
/// ```
#[derive(Debug, Clone)]
pub struct ChannelAlertSink {
    tx: mpsc::Sender<Alert>,
}

impl ChannelAlertSink {
    /// A sink and the receiver of its alerts, holding at most `capacity` (at least 1) queued.
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Alert>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx }, rx)
    }
}

#[async_trait]
impl AlertSink for ChannelAlertSink {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        self.tx.try_send(alert.clone()).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AlertError::Full,
            mpsc::error::TrySendError::Closed(_) => AlertError::Closed,
        })
    }
}
