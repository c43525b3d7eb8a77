//! recovery-core's contract as another crate sees it.

use std::sync::Arc;

use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo,
    SwarmError, async_trait,
};

struct Echo;

#[async_trait]
impl StrategyInfo for Echo {
    fn strategy_id(&self) -> &str {
        "echo"
    }
    fn description(&self) -> &str {
        "reports the target's value"
    }
    async fn can_handle(&self, error: &SwarmError) -> bool {
        error.is_recoverable()
    }
    async fn cost_estimate(&self) -> f64 {
        0.5
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<u32> for Echo {
    async fn recover(&self, ctx: &RecoveryContext<u32>, _error: &SwarmError) -> RecoveryResult {
        RecoveryResult::success(RecoveryAction::Custom(ctx.target.to_string()), "echoed")
    }
}

#[tokio::test]
async fn a_strategy_from_outside_core_acts_on_its_target() {
    let s: Arc<dyn RecoveryStrategy<u32>> = Arc::new(Echo);
    let err = SwarmError::ResourceConflict("lock".into());
    assert!(s.can_handle(&err).await);
    assert!(
        !s.can_handle(&SwarmError::InvalidConfiguration("x".into()))
            .await
    );
    let r = s.recover(&RecoveryContext::new(Arc::new(41)), &err).await;
    assert_eq!(r.action, RecoveryAction::Custom("41".into()));
    assert_eq!(err.kind(), ErrorKind::ResourceConflict);
}
