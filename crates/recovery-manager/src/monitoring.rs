//! Background monitoring: resource sampling, stepping degradation, periodic checkpoints.

use std::sync::Weak;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::manager::RecoveryManager;
use crate::target::RecoveryTarget;

/// Running background monitoring. Dropping the handle, or [`shutdown`](Self::shutdown), stops
/// it; nothing of it keeps running afterwards.
#[derive(Debug)]
#[must_use = "monitoring stops when its handle is dropped"]
pub struct MonitoringHandle {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl MonitoringHandle {
    /// Stop monitoring and wait until its task has ended.
    pub async fn shutdown(mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            // The task ends at its next await point; a panic in it is reported, not re-raised.
            if let Err(e) = task.await {
                tracing::error!(error = %e, "the monitoring task ended abnormally");
            }
        }
    }

    /// Whether the monitoring task is still running (it ends by itself when the attached
    /// target is dropped).
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for MonitoringHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl<T: RecoveryTarget + ?Sized> RecoveryManager<T> {
    /// Start background monitoring and return its handle:
    ///
    /// - every `monitoring_interval`: sample resources into the
    ///   [`resource_monitor`](Self::resource_monitor) (unless built `without_sampler`), then
    ///   step degradation on the [`attach`](Self::attach)ed target, which lowers the level when
    ///   pressure has fallen (and raises it when pressure has risen) without any error occurring;
    /// - every `checkpoint_interval`: take a checkpoint of the attached target.
    ///
    /// Each step that fails is logged (WARN) and tried again at the next tick. With no target
    /// attached, only sampling runs. Monitoring ends when the handle is dropped, when
    /// [`MonitoringHandle::shutdown`] is called, or when the attached target is dropped.
    /// Must be called inside a tokio runtime.
    pub async fn start_monitoring(&self) -> MonitoringHandle {
        let cancel = CancellationToken::new();
        let job = Job {
            target: self.attached(),
            monitoring_interval: self.config().monitoring_interval,
            checkpoint_interval: self.config().checkpoint_interval,
            #[cfg(feature = "degradation")]
            monitor: self.resource_monitor(),
            #[cfg(feature = "degradation")]
            sampler: self.parts.sampler.clone(),
            #[cfg(feature = "degradation")]
            degradation: self.parts.degradation.clone(),
            #[cfg(feature = "checkpoint")]
            checkpoint: self.parts.checkpoint.clone(),
        };
        let task = tokio::spawn(job.run(cancel.clone()));
        MonitoringHandle {
            cancel,
            task: Some(task),
        }
    }
}

struct Job<T: ?Sized> {
    target: Option<Weak<T>>,
    monitoring_interval: std::time::Duration,
    #[cfg_attr(not(feature = "checkpoint"), allow(dead_code))]
    checkpoint_interval: std::time::Duration,
    #[cfg(feature = "degradation")]
    monitor: std::sync::Arc<recovery_degradation::ResourceMonitor>,
    #[cfg(feature = "degradation")]
    sampler:
        Option<std::sync::Arc<std::sync::Mutex<Box<dyn recovery_degradation::ResourceSampler>>>>,
    #[cfg(feature = "degradation")]
    degradation: Option<std::sync::Arc<recovery_degradation::GracefulDegradationStrategy>>,
    #[cfg(feature = "checkpoint")]
    checkpoint: Option<std::sync::Arc<recovery_checkpoint::CheckpointRecoveryStrategy>>,
}

impl<T: RecoveryTarget + ?Sized> Job<T> {
    async fn run(self, cancel: CancellationToken) {
        let mut monitor_tick = tokio::time::interval(self.monitoring_interval);
        monitor_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first checkpoint is taken one interval in, not at start.
        let mut checkpoint_tick = tokio::time::interval_at(
            Instant::now() + self.checkpoint_interval,
            self.checkpoint_interval,
        );
        checkpoint_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return,
                _ = monitor_tick.tick() => {
                    if !self.monitor_step().await {
                        return;
                    }
                }
                _ = checkpoint_tick.tick() => {
                    if !self.checkpoint_step().await {
                        return;
                    }
                }
            }
        }
    }

    /// Whether monitoring should go on: false once an attached target is gone.
    fn target_alive(&self) -> Option<Option<std::sync::Arc<T>>> {
        match &self.target {
            None => Some(None),
            Some(weak) => weak.upgrade().map(Some),
        }
    }

    async fn monitor_step(&self) -> bool {
        #[cfg(feature = "degradation")]
        if let Some(sampler) = &self.sampler {
            let sample = sampler
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .sample_into(&self.monitor);
            tracing::trace!(cpu = ?sample.cpu, memory = ?sample.memory, "resources sampled");
        }
        let Some(target) = self.target_alive() else {
            return false;
        };
        #[cfg(feature = "degradation")]
        if let (Some(target), Some(strategy)) = (&target, &self.degradation) {
            match strategy.step(&**target).await {
                Ok(Some(change)) => tracing::info!(
                    from = %change.from, to = %change.to, "degradation level changed by monitoring"
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "degradation step failed"),
            }
        }
        let _ = target;
        true
    }

    async fn checkpoint_step(&self) -> bool {
        let Some(target) = self.target_alive() else {
            return false;
        };
        #[cfg(feature = "checkpoint")]
        if let (Some(target), Some(strategy)) = (&target, &self.checkpoint) {
            match strategy.create_checkpoint(&**target).await {
                Ok(id) => tracing::debug!(checkpoint_id = %id, "periodic checkpoint taken"),
                Err(e) => tracing::warn!(error = %e, "periodic checkpoint failed"),
            }
        }
        let _ = target;
        true
    }
}
