//! The simulation's own strategy for a wedged scheduling entry: rebuild it.

use std::sync::Weak;

use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo,
    SwarmError, async_trait,
};
use swarm_integration::SwarmCoordinator;

use super::world::World;

/// Rebuilds the failed task's scheduling entry in the world: a success only when the entry was
/// wedged and no longer is, [`RecoveryResult::no_change`] when it was not wedged. Handles
/// `TransactionFailed` at cost 0.3, so by cost it comes after the backoff strategy (0.1),
/// which retries and cannot unwedge anything: the fault mix of the learned-order experiment.
#[derive(Debug)]
pub(crate) struct RebuildEntry {
    pub(crate) world: Weak<World>,
}

#[async_trait]
impl StrategyInfo for RebuildEntry {
    fn strategy_id(&self) -> &str {
        "rebuild_entry"
    }

    fn description(&self) -> &str {
        "rebuilds a task's wedged scheduling entry"
    }

    async fn can_handle(&self, error: &SwarmError) -> bool {
        error.kind() == ErrorKind::TransactionFailed
    }

    async fn cost_estimate(&self) -> f64 {
        0.3
    }

    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<SwarmCoordinator> for RebuildEntry {
    async fn recover(
        &self,
        context: &RecoveryContext<SwarmCoordinator>,
        _error: &SwarmError,
    ) -> RecoveryResult {
        let Some(task) = context.failed_task_id else {
            return RecoveryResult::no_change("no task named: no entry to rebuild");
        };
        let Some(world) = self.world.upgrade() else {
            return RecoveryResult::no_change("the world is gone");
        };
        if world.lock().wedged.remove(&task) {
            RecoveryResult::success(
                RecoveryAction::Custom("rebuilt the scheduling entry".into()),
                format!("rebuilt task {task}'s scheduling entry"),
            )
            .with_confidence(0.9)
        } else {
            RecoveryResult::no_change(format!("task {task}'s scheduling entry is not wedged"))
        }
    }
}
