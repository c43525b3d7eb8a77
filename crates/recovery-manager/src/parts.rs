//! What the manager keeps of the strategies of this workspace beside the strategy list, and the
//! methods that need them.
//!
//! The bounds follow what is registered: a builder step that registers, say, the checkpoint
//! strategy requires `T: Checkpointable` and keeps a type-erased [`Checkpointer<T>`] for the
//! monitoring loop, so that nothing later (monitoring, `create_checkpoint`) needs the bound
//! again, and a feature turned on elsewhere in a build adds no bound to code that compiled
//! without it.

use std::marker::PhantomData;
#[cfg(any(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
use std::sync::Arc;

#[cfg(feature = "backoff")]
use recovery_backoff::ExponentialBackoffStrategy;
#[cfg(feature = "checkpoint")]
use recovery_checkpoint::{CheckpointError, CheckpointRecoveryStrategy, Checkpointable};
#[cfg(any(feature = "checkpoint", feature = "degradation"))]
use recovery_core::async_trait;
#[cfg(feature = "checkpoint")]
use recovery_core::{SwarmError, SwarmResult};
#[cfg(feature = "degradation")]
use recovery_degradation::{
    Degradable, GracefulDegradationStrategy, LevelChange, ResourceMonitor, ResourceSampler,
};
#[cfg(feature = "checkpoint")]
use uuid::Uuid;

#[cfg(any(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
use crate::manager::RecoveryManager;

/// Takes a checkpoint of a `T`: the checkpoint strategy, with its `T: Checkpointable` bound
/// checked where it was registered.
#[cfg(feature = "checkpoint")]
#[async_trait]
pub(crate) trait Checkpointer<T: ?Sized + Send + Sync>: Send + Sync {
    async fn checkpoint(&self, target: &T) -> Result<Uuid, CheckpointError>;
}

#[cfg(feature = "checkpoint")]
#[async_trait]
impl<T: Checkpointable + ?Sized> Checkpointer<T> for CheckpointRecoveryStrategy {
    async fn checkpoint(&self, target: &T) -> Result<Uuid, CheckpointError> {
        self.create_checkpoint(target).await
    }
}

/// Steps degradation on a `T`: the degradation strategy, with its `T: Degradable` bound checked
/// where it was registered.
#[cfg(feature = "degradation")]
#[async_trait]
pub(crate) trait Stepper<T: ?Sized + Send + Sync>: Send + Sync {
    async fn step(&self, target: &T) -> Result<Option<LevelChange>, recovery_core::SwarmError>;
    /// The strategy's id, under which an early step is recorded.
    fn id(&self) -> &str;
}

#[cfg(feature = "degradation")]
#[async_trait]
impl<T: Degradable + ?Sized> Stepper<T> for GracefulDegradationStrategy {
    async fn step(&self, target: &T) -> Result<Option<LevelChange>, recovery_core::SwarmError> {
        GracefulDegradationStrategy::step(self, target).await
    }

    fn id(&self) -> &str {
        recovery_core::StrategyInfo::strategy_id(self)
    }
}

/// A sampler shared by the manager and its monitoring loop.
#[cfg(feature = "degradation")]
pub(crate) type SharedSampler = Arc<std::sync::Mutex<Box<dyn ResourceSampler>>>;

/// Handles to the registered strategies of this workspace that background work and the
/// convenience methods use.
pub(crate) struct Parts<T: ?Sized> {
    #[cfg(feature = "backoff")]
    pub(crate) backoff: Option<Arc<ExponentialBackoffStrategy>>,
    #[cfg(feature = "healing")]
    pub(crate) healing: Option<Arc<recovery_healing::SelfHealingStrategy>>,
    #[cfg(feature = "checkpoint")]
    pub(crate) checkpoint: Option<Arc<CheckpointRecoveryStrategy>>,
    #[cfg(feature = "checkpoint")]
    pub(crate) checkpointer: Option<Arc<dyn Checkpointer<T>>>,
    #[cfg(feature = "degradation")]
    pub(crate) degradation: Option<Arc<GracefulDegradationStrategy>>,
    #[cfg(feature = "degradation")]
    pub(crate) stepper: Option<Arc<dyn Stepper<T>>>,
    #[cfg(feature = "degradation")]
    pub(crate) monitor: Arc<ResourceMonitor>,
    #[cfg(feature = "degradation")]
    pub(crate) sampler: Option<SharedSampler>,
    _target: PhantomData<fn(&T)>,
}

impl<T: ?Sized> Default for Parts<T> {
    fn default() -> Self {
        Self {
            #[cfg(feature = "backoff")]
            backoff: None,
            #[cfg(feature = "healing")]
            healing: None,
            #[cfg(feature = "checkpoint")]
            checkpoint: None,
            #[cfg(feature = "checkpoint")]
            checkpointer: None,
            #[cfg(feature = "degradation")]
            degradation: None,
            #[cfg(feature = "degradation")]
            stepper: None,
            #[cfg(feature = "degradation")]
            monitor: Arc::new(ResourceMonitor::new()),
            #[cfg(feature = "degradation")]
            sampler: None,
            _target: PhantomData,
        }
    }
}

/// What the monitoring loop needs: the sampler, the stepper, the checkpointer.
pub(crate) struct JobParts<T: ?Sized> {
    #[cfg(feature = "checkpoint")]
    checkpointer: Option<Arc<dyn Checkpointer<T>>>,
    #[cfg(feature = "degradation")]
    stepper: Option<Arc<dyn Stepper<T>>>,
    #[cfg(feature = "degradation")]
    monitor: Arc<ResourceMonitor>,
    #[cfg(feature = "degradation")]
    sampler: Option<SharedSampler>,
    _target: PhantomData<fn(&T)>,
}

impl<T: ?Sized + Send + Sync> Parts<T> {
    pub(crate) fn job_parts(&self) -> JobParts<T> {
        JobParts {
            #[cfg(feature = "checkpoint")]
            checkpointer: self.checkpointer.clone(),
            #[cfg(feature = "degradation")]
            stepper: self.stepper.clone(),
            #[cfg(feature = "degradation")]
            monitor: Arc::clone(&self.monitor),
            #[cfg(feature = "degradation")]
            sampler: self.sampler.clone(),
            _target: PhantomData,
        }
    }
}

impl<T: ?Sized + Send + Sync> JobParts<T> {
    /// Take a resource sample, if there is a sampler.
    pub(crate) fn sample(&self) {
        #[cfg(feature = "degradation")]
        if let Some(sampler) = &self.sampler {
            let sample = sampler
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .sample_into(&self.monitor);
            tracing::trace!(target: "recovery_manager::monitoring", cpu = ?sample.cpu, memory = ?sample.memory, "resources sampled");
        }
    }

    /// Step degradation on `target`, if a degradation strategy is registered; a step taken
    /// early on a forecast also takes a checkpoint and is recorded in `history`.
    pub(crate) async fn step(&self, target: &T, history: &crate::history::History) {
        #[cfg(feature = "degradation")]
        if let Some(stepper) = &self.stepper {
            match stepper.step(target).await {
                Ok(Some(change)) => {
                    crate::metrics::degradation_level(change.to.as_u8());
                    tracing::info!(
                        target: "recovery_manager::monitoring",
                        from = %change.from, to = %change.to, "degradation level changed by monitoring"
                    );
                    if let Some(in_secs) = change.forecast_secs {
                        // Stepped early on a forecast: keep a state from before the pressure.
                        tracing::warn!(
                            target: "recovery_manager::monitoring",
                            in_secs, to = %change.to,
                            "pressure forecast to reach the thresholds: level stepped early, checkpoint taken"
                        );
                        let checkpoint = self.checkpoint(target).await;
                        record_early_step(history, stepper.id(), &change, in_secs, checkpoint);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    target: "recovery_manager::monitoring",
                    error = %e,
                    "degradation step failed"
                ),
            }
        }
        let _ = (target, history);
    }

    /// Take a checkpoint of `target`, if a checkpoint strategy is registered; its id, or why
    /// none was taken.
    pub(crate) async fn checkpoint(&self, target: &T) -> Result<String, String> {
        #[cfg(feature = "checkpoint")]
        if let Some(checkpointer) = &self.checkpointer {
            let taken = checkpointer.checkpoint(target).await;
            crate::metrics::checkpoint_created(taken.is_ok());
            return match taken {
                Ok(id) => {
                    tracing::debug!(
                        target: "recovery_manager::monitoring",
                        checkpoint_id = %id,
                        "periodic checkpoint taken"
                    );
                    Ok(id.to_string())
                }
                Err(e) => {
                    tracing::warn!(
                        target: "recovery_manager::monitoring",
                        error = %e,
                        "periodic checkpoint failed"
                    );
                    Err(e.to_string())
                }
            };
        }
        let _ = target;
        Err("no checkpoint strategy is registered".to_owned())
    }
}

/// Record an early step in the history: an attempt of the degradation strategy for the
/// forecast overload, with the forecast and the checkpoint in its metadata.
#[cfg(feature = "degradation")]
fn record_early_step(
    history: &crate::history::History,
    strategy_id: &str,
    change: &LevelChange,
    in_secs: f64,
    checkpoint: Result<String, String>,
) {
    use recovery_core::{RecoveryAction, RecoveryResult, SwarmError};
    let reason = format!(
        "pressure forecast to reach the thresholds in {in_secs:.0} s: level stepped from {} to {} early",
        change.from, change.to
    );
    let mut result = RecoveryResult::success(
        RecoveryAction::Degraded {
            level: change.to.as_u8(),
        },
        match &checkpoint {
            Ok(id) => format!("{reason}, checkpoint {id} taken"),
            Err(why) => format!("{reason}, no checkpoint: {why}"),
        },
    )
    .with_metadata("forecast_secs", format!("{in_secs:.1}"));
    if let Ok(id) = checkpoint {
        result = result.with_metadata("checkpoint_id", id);
    }
    let evicted = history.push(crate::history::Entry {
        id: uuid::Uuid::new_v4(),
        recovery_id: uuid::Uuid::new_v4(),
        timestamp: std::time::SystemTime::now(),
        strategy_id: Arc::from(strategy_id),
        error: SwarmError::Overloaded {
            reason: format!("forecast: {reason}"),
            retry_after: std::time::Duration::ZERO,
        },
        failed_task_id: None,
        failed_agent_id: None,
        retry_count: 0,
        result,
    });
    drop(evicted);
}

#[cfg(feature = "backoff")]
impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// The registered backoff strategy, if any (its `max_retries` bounds the re-runs of a
    /// failure).
    pub fn backoff_strategy(&self) -> Option<&Arc<ExponentialBackoffStrategy>> {
        self.parts.backoff.as_ref()
    }
}

#[cfg(feature = "healing")]
impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// The registered self-healing strategy, if any (to add rules, or to tell it which
    /// components the target has).
    pub fn healing_strategy(&self) -> Option<&Arc<recovery_healing::SelfHealingStrategy>> {
        self.parts.healing.as_ref()
    }
}

#[cfg(feature = "degradation")]
impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// The resource monitor that the degradation strategy reads and monitoring samples into:
    /// the degradation strategy's, or a monitor of the manager's own without one. The system
    /// reports its connections and tasks here.
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

    /// The registered degradation strategy, if any.
    pub fn degradation_strategy(&self) -> Option<&Arc<GracefulDegradationStrategy>> {
        self.parts.degradation.as_ref()
    }

    /// Take a resource sample now, as monitoring does each interval (nothing without a
    /// sampler).
    pub fn sample_resources(&self) {
        self.parts.job_parts().sample();
    }
}

#[cfg(feature = "checkpoint")]
impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// The registered checkpoint strategy, if any (to list or restore checkpoints).
    pub fn checkpoint_strategy(&self) -> Option<&Arc<CheckpointRecoveryStrategy>> {
        self.parts.checkpoint.as_ref()
    }

    /// Take a checkpoint of `target` with the registered checkpoint strategy and return its id
    /// (what the spec's `coordinator.create_checkpoint()` calls).
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration` if the manager has no checkpoint strategy; otherwise the
    /// strategy's error (the snapshot failed, or the store could not write it durably), in
    /// which case no checkpoint was added.
    pub async fn create_checkpoint(&self, target: &T) -> SwarmResult<Uuid> {
        let checkpointer = self.parts.checkpointer.as_ref().ok_or_else(|| {
            SwarmError::InvalidConfiguration(
                "this manager has no checkpoint strategy: register one with the builder's \
                 `.checkpoint(..)` (the `checkpoint` feature)"
                    .into(),
            )
        })?;
        let taken = checkpointer.checkpoint(target).await;
        crate::metrics::checkpoint_created(taken.is_ok());
        Ok(taken?)
    }
}
