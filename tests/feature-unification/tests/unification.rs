//! The backoff-only manager of a Retry-only program works, with every strategy feature of
//! recovery-manager turned on by another crate of the build.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use feature_unification::{Sender, manager};
use recovery_core::SwarmError;

#[tokio::test(start_paused = true)]
async fn a_retry_only_system_recovers_through_a_backoff_only_manager() {
    let manager = manager().unwrap();
    assert_eq!(manager.strategy_ids(), ["exponential_backoff"]);
    // The other features are on in this build (swarm-integration turned them on): their
    // methods exist, and ask nothing of `Sender`.
    assert!(manager.checkpoint_strategy().is_none());
    assert!(manager.degradation_strategy().is_none());
    let sender = Arc::new(Sender {
        failures_left: AtomicU32::new(2),
    });
    let error = SwarmError::CommunicationError("peer did not answer".into());
    let result = manager.recover(sender, error, None, None).await.unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(result.retries_made(), 3);
}
