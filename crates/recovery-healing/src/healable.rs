//! `Healable`: what the self-healing strategy needs from the system it heals.

use recovery_core::{AgentId, SwarmError, TaskId, async_trait};

use crate::error::{ConfigPatchError, RestartError};
use crate::rule::ConfigPatch;

/// The capability the [`SelfHealingStrategy`](crate::SelfHealingStrategy) acts through.
///
/// A target implements it, typically with the parts of this crate: a [`Supervisor`] for
/// restarts and a [`TunableConfig`] for patches. Alerts and scripts need nothing from the target:
/// the strategy holds the [`AlertSink`](crate::AlertSink) and [`ScriptRunner`](crate::ScriptRunner).
///
/// [`Supervisor`]: crate::Supervisor
/// [`TunableConfig`]: crate::TunableConfig
///
/// ```
/// use std::sync::Arc;
/// use recovery_core::{async_trait, AgentId, SwarmError, TaskId};
/// use recovery_healing::{ConfigPatch, ConfigPatchError, ConfigSchema, Healable, RestartError, Supervisor, TunableConfig};
///
/// struct Coordinator { supervisor: Supervisor, config: TunableConfig }
///
/// #[async_trait]
/// impl Healable for Coordinator {
///     async fn restart_component(&self, name: &str) -> Result<(), RestartError> {
///         self.supervisor.restart(name).await
///     }
///     async fn apply_config_patch(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError> {
///         self.config.apply(patch)
///     }
///     async fn reallocate_from(&self, agent: Option<AgentId>, task: Option<TaskId>) -> Result<usize, SwarmError> {
///         Ok(0) // a real coordinator moves the agent's queued and running tasks here
///     }
/// }
/// ```
#[async_trait]
pub trait Healable: Send + Sync {
    /// Stop and start the named component and return `Ok` only once it runs again.
    ///
    /// An unknown name is [`RestartError::UnknownComponent`]; a restart past the target's
    /// restart intensity is [`RestartError::IntensityExceeded`] (the strategy then escalates).
    async fn restart_component(&self, name: &str) -> Result<(), RestartError>;

    /// Apply `patch` all or nothing: on error, no key changed, and the error names the bad key
    /// and why.
    async fn apply_config_patch(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError>;

    /// Move the work of the failed `agent` (all its queued and running tasks), or if no agent
    /// is named the failed `task`, to healthy agents, and return how many tasks moved. A task
    /// must never be lost, nor run by two agents at once.
    async fn reallocate_from(
        &self,
        agent: Option<AgentId>,
        task: Option<TaskId>,
    ) -> Result<usize, SwarmError>;
}

/// A shared system heals as the system does, so `&Arc<System>` can be passed where a
/// `Healable` is wanted.
#[async_trait]
impl<T: Healable + ?Sized> Healable for std::sync::Arc<T> {
    async fn restart_component(&self, name: &str) -> Result<(), RestartError> {
        (**self).restart_component(name).await
    }

    async fn apply_config_patch(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError> {
        (**self).apply_config_patch(patch).await
    }

    async fn reallocate_from(
        &self,
        agent: Option<AgentId>,
        task: Option<TaskId>,
    ) -> Result<usize, SwarmError> {
        (**self).reallocate_from(agent, task).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use recovery_core::RecoveryStrategy;

    use super::Healable;
    use crate::{AlertSink, Component, SelfHealingStrategy};

    // Fails to compile the day a capability trait stops being object-safe, or the strategy
    // stops working over a `dyn Healable` target.
    fn _object_safe(
        _: Arc<dyn Healable>,
        _: Arc<dyn AlertSink>,
        _: Arc<dyn Component>,
    ) -> Arc<dyn RecoveryStrategy<dyn Healable>> {
        Arc::new(SelfHealingStrategy::new())
    }
}
