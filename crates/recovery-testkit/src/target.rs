//! `FakeTarget`: one system with every capability, for a manager with every strategy.

use recovery_backoff::{Retry, RetryRequest};
use recovery_checkpoint::Checkpointable;
use recovery_core::{AgentId, SwarmError, TaskId, async_trait};
use recovery_degradation::{Degradable, DegradationLevel};
use recovery_healing::{ConfigPatch, ConfigPatchError, Healable, RestartError};

use crate::{FakeHealing, FakeLevel, FakeRetry, FakeState};

/// The four fakes in one system: it retries as [`FakeRetry`], checkpoints a `u64` as
/// [`FakeState`], degrades as [`FakeLevel`], heals as [`FakeHealing`] (components
/// `agent_protocol`, `task_scheduler` and `network_manager`). Reach each through its field.
///
/// ```
/// use std::sync::Arc;
/// use recovery_manager::RecoveryManager;
/// use recovery_testkit::FakeTarget;
///
/// // A target with every capability takes the spec's `RecoveryManager::new()`.
/// let manager = RecoveryManager::<FakeTarget>::new();
/// assert_eq!(manager.strategy_ids().len(), 4);
/// let target = Arc::new(FakeTarget::new());
/// manager.attach(&target);
/// ```
#[derive(Debug)]
pub struct FakeTarget {
    /// What retries do.
    pub retry: FakeRetry,
    /// The checkpointed state.
    pub state: FakeState<u64>,
    /// The degradation level.
    pub level: FakeLevel,
    /// Components, config and work to move.
    pub healing: FakeHealing,
}

impl Default for FakeTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeTarget {
    /// Retries succeed, the state is 0, the level normal, nothing to move.
    pub fn new() -> Self {
        Self {
            retry: FakeRetry::succeeding(),
            state: FakeState::new(0),
            level: FakeLevel::new(),
            healing: FakeHealing::new(["agent_protocol", "task_scheduler", "network_manager"]),
        }
    }
}

#[async_trait]
impl Retry for FakeTarget {
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
        self.retry.retry(request).await
    }
}

#[async_trait]
impl Checkpointable for FakeTarget {
    type State = u64;

    async fn snapshot(&self) -> Result<u64, SwarmError> {
        self.state.snapshot().await
    }

    async fn restore(&self, state: u64) -> Result<(), SwarmError> {
        self.state.restore(state).await
    }
}

#[async_trait]
impl Degradable for FakeTarget {
    async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
        self.level.apply_level(level).await
    }

    async fn current_level(&self) -> DegradationLevel {
        self.level.current_level().await
    }
}

#[async_trait]
impl Healable for FakeTarget {
    async fn restart_component(&self, name: &str) -> Result<(), RestartError> {
        self.healing.restart_component(name).await
    }

    async fn apply_config_patch(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError> {
        self.healing.apply_config_patch(patch).await
    }

    async fn reallocate_from(
        &self,
        agent: Option<AgentId>,
        task: Option<TaskId>,
    ) -> Result<usize, SwarmError> {
        self.healing.reallocate_from(agent, task).await
    }
}
