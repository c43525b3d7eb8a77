//! `RecordingAlertSink`: keeps every alert a rule raised.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use recovery_core::async_trait;
use recovery_healing::{Alert, AlertError, AlertSink};

/// An [`AlertSink`] that keeps the alerts it is sent, and can refuse them.
///
/// ```
/// use std::sync::Arc;
/// use recovery_healing::SelfHealingStrategy;
/// use recovery_testkit::RecordingAlertSink;
///
/// let sink = Arc::new(RecordingAlertSink::new());
/// let strategy = SelfHealingStrategy::empty().with_alert_sink(sink.clone());
/// # let _ = strategy;
/// assert!(sink.alerts().is_empty());
/// ```
#[derive(Debug, Default)]
pub struct RecordingAlertSink {
    alerts: Mutex<Vec<Alert>>,
    refuse: AtomicBool,
}

impl RecordingAlertSink {
    /// A sink that accepts every alert.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse alerts with [`AlertError::Failed`] (or accept again).
    pub fn refuse(&self, refuse: bool) {
        self.refuse.store(refuse, Ordering::SeqCst);
    }

    /// The alerts accepted so far, in order.
    pub fn alerts(&self) -> Vec<Alert> {
        self.alerts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[async_trait]
impl AlertSink for RecordingAlertSink {
    async fn send(&self, alert: &Alert) -> Result<(), AlertError> {
        if self.refuse.load(Ordering::SeqCst) {
            return Err(AlertError::Failed("refused (fake)".into()));
        }
        self.alerts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(alert.clone());
        Ok(())
    }
}
