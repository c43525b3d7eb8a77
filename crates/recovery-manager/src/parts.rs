//! What the manager keeps of the default strategies besides the strategy list, and the methods
//! that need them.

#[cfg(any(feature = "checkpoint", feature = "degradation"))]
use std::sync::Arc;

#[cfg(feature = "checkpoint")]
use recovery_checkpoint::{CheckpointRecoveryStrategy, Checkpointable};
#[cfg(feature = "checkpoint")]
use recovery_core::{SwarmError, SwarmResult};
#[cfg(feature = "degradation")]
use recovery_degradation::{GracefulDegradationStrategy, ResourceMonitor, ResourceSampler};
#[cfg(feature = "checkpoint")]
use uuid::Uuid;

use crate::builder::RecoveryManagerBuilder;
use crate::config::{InvalidRecoveryConfig, RecoveryConfig};
use crate::manager::RecoveryManager;
use crate::target::RecoveryTarget;

/// Shared handles to the strategies that background work and convenience methods use.
#[derive(Default)]
pub(crate) struct Parts {
    #[cfg(feature = "checkpoint")]
    pub(crate) checkpoint: Option<Arc<CheckpointRecoveryStrategy>>,
    #[cfg(feature = "degradation")]
    pub(crate) degradation: Option<Arc<GracefulDegradationStrategy>>,
    #[cfg(feature = "degradation")]
    pub(crate) monitor: Arc<ResourceMonitor>,
    #[cfg(feature = "degradation")]
    pub(crate) sampler: Option<Arc<std::sync::Mutex<Box<dyn ResourceSampler>>>>,
}

impl RecoveryManager<()> {
    /// A builder for a manager with the enabled strategies, each replaceable or removable.
    ///
    /// (Named on `RecoveryManager<()>` so that `RecoveryManager::builder()` needs no type; the
    /// target type is chosen by [`RecoveryManagerBuilder::build`].)
    pub fn builder() -> RecoveryManagerBuilder {
        RecoveryManagerBuilder::default()
    }
}

impl<T: RecoveryTarget + ?Sized> RecoveryManager<T> {
    /// A manager with the default configuration and every enabled strategy with its defaults:
    /// the spec's `RecoveryManager::new()`.
    pub fn new() -> Self {
        Self::with_config(RecoveryConfig::default()).expect("the default configuration is valid")
    }

    /// A manager with `config` and every enabled strategy with its defaults.
    ///
    /// # Errors
    ///
    /// [`InvalidRecoveryConfig`] naming the bad field.
    pub fn with_config(config: RecoveryConfig) -> Result<Self, InvalidRecoveryConfig> {
        RecoveryManagerBuilder::default().config(config).build()
    }
}

impl<T: RecoveryTarget + ?Sized> Default for RecoveryManager<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "degradation")]
impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// The resource monitor that the degradation strategy reads and monitoring samples into.
    /// The system reports its connections and tasks here.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use recovery_manager::{RecoveryConfig, RecoveryManager};
    /// let manager = RecoveryManager::<()>::empty(RecoveryConfig::default()).unwrap();
    /// let resource_monitor = manager.resource_monitor();
    /// resource_monitor.update_cpu_usage(0.85);
    /// let usage = resource_monitor.get_usage().await;
    /// assert_eq!(usage.cpu_percent, 0.85);
    /// # }
    /// ```
    pub fn resource_monitor(&self) -> Arc<ResourceMonitor> {
        Arc::clone(&self.parts.monitor)
    }

    /// The registered default degradation strategy, if any.
    pub fn degradation_strategy(&self) -> Option<&Arc<GracefulDegradationStrategy>> {
        self.parts.degradation.as_ref()
    }
}

#[cfg(feature = "checkpoint")]
impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// The registered default checkpoint strategy, if any (to list or restore checkpoints).
    pub fn checkpoint_strategy(&self) -> Option<&Arc<CheckpointRecoveryStrategy>> {
        self.parts.checkpoint.as_ref()
    }
}

#[cfg(feature = "checkpoint")]
impl<T: Checkpointable + ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// Take a checkpoint of `target` with the checkpoint strategy and return its id.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration` if the manager has no checkpoint strategy; otherwise the
    /// strategy's error (the snapshot failed, or the store could not write it durably), in
    /// which case no checkpoint was added.
    pub async fn create_checkpoint(&self, target: &T) -> SwarmResult<Uuid> {
        let strategy = self.parts.checkpoint.as_ref().ok_or_else(|| {
            SwarmError::InvalidConfiguration(
                "this manager has no checkpoint strategy: build it with the `checkpoint` feature \
                 and without `without_checkpoint()`"
                    .into(),
            )
        })?;
        Ok(strategy.create_checkpoint(target).await?)
    }
}
