//! A program whose system implements only `Retry`, built in the same build as
//! swarm-integration (see `tests/unification.rs`). If a feature ever adds a bound again, this
//! crate stops compiling, and `cargo xtask test` fails.

use std::sync::Arc;

use recovery_backoff::{ExponentialBackoffStrategy, Retry, RetryRequest};
use recovery_core::{SwarmError, async_trait};
use recovery_manager::{InvalidRecoveryConfig, RecoveryManager};

// In the build, so that its features are unified with ours.
use swarm_integration as _;

/// Sends a message to a peer; can re-send it, and can do nothing else.
#[derive(Debug, Default)]
pub struct Sender {
    /// Sends that fail before one gets through.
    pub failures_left: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl Retry for Sender {
    async fn retry(&self, _request: RetryRequest) -> Result<(), SwarmError> {
        use std::sync::atomic::Ordering;
        let left = self.failures_left.load(Ordering::SeqCst);
        if left > 0 {
            self.failures_left.store(left - 1, Ordering::SeqCst);
            return Err(SwarmError::CommunicationError("peer did not answer".into()));
        }
        Ok(())
    }
}

/// A manager that only retries, for a `Sender`.
///
/// # Errors
///
/// Never, with the default configuration.
pub fn manager() -> Result<Arc<RecoveryManager<Sender>>, InvalidRecoveryConfig> {
    Ok(Arc::new(
        RecoveryManager::builder()
            .backoff(ExponentialBackoffStrategy::default())
            .build()?,
    ))
}
