//! Background monitoring: resource sampling, stepping degradation, periodic checkpoints.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::manager::RecoveryManager;
use crate::parts::JobParts;

/// The manager's side of monitoring: the attached target, and the loop running, if any.
pub(crate) struct Monitor<T: ?Sized> {
    attached: Arc<Mutex<Option<Weak<T>>>>,
    running: Mutex<Option<CancellationToken>>,
}

impl<T: ?Sized> Default for Monitor<T> {
    fn default() -> Self {
        Self {
            attached: Arc::new(Mutex::new(None)),
            running: Mutex::new(None),
        }
    }
}

fn lock<G>(m: &Mutex<G>) -> std::sync::MutexGuard<'_, G> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: ?Sized> Monitor<T> {
    pub(crate) fn attach(&self, target: Weak<T>) {
        *lock(&self.attached) = Some(target);
    }

    pub(crate) fn attached(&self) -> Option<Weak<T>> {
        lock(&self.attached).clone()
    }

    /// Stop the loop, if one runs (it ends at its next await).
    pub(crate) fn stop(&self) {
        if let Some(cancel) = lock(&self.running).take() {
            cancel.cancel();
        }
    }

    fn is_running(&self) -> bool {
        lock(&self.running)
            .as_ref()
            .is_some_and(|c| !c.is_cancelled())
    }
}

/// Running background monitoring, for an explicit [`shutdown`](Self::shutdown).
///
/// Dropping the handle does not stop monitoring: it runs until the manager is dropped,
/// [`RecoveryManager::stop_monitoring`] is called, or the handle's `shutdown`. Nothing of it
/// keeps running afterwards, and it never keeps the manager or its target alive.
#[derive(Debug)]
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

    /// Whether the monitoring task is still running.
    pub fn is_running(&self) -> bool {
        self.task.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// Start background monitoring (the spec's `recovery_manager.start_monitoring().await;`):
    ///
    /// - every `monitoring_interval`: sample resources into the
    ///   [`resource_monitor`](Self::resource_monitor) (if the manager has a sampler), then
    ///   step degradation on the [`attach`](Self::attach)ed target, which lowers the level when
    ///   pressure has fallen (and raises it when pressure has risen) without any error occurring;
    /// - every `checkpoint_interval` (the first one interval in): take a checkpoint of the
    ///   attached target.
    ///
    /// Each step that fails is logged (WARN) and tried again at the next tick. A target
    /// attached later is picked up at the next tick; while none is attached (or it was
    /// dropped), only sampling runs. Monitoring lasts until the manager is dropped or
    /// [`stop_monitoring`](Self::stop_monitoring) is called; the returned handle may be dropped,
    /// or kept for an explicit [`MonitoringHandle::shutdown`]. Calling this again restarts
    /// monitoring. Must be called inside a tokio runtime.
    ///
    /// ```
    /// # #[cfg(feature = "checkpoint")]
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use recovery_checkpoint::CheckpointRecoveryStrategy;
    /// use recovery_manager::RecoveryManager;
    /// use recovery_testkit::FakeState;
    ///
    /// let recovery_manager = RecoveryManager::<FakeState<u32>>::builder()
    ///     .checkpoint(CheckpointRecoveryStrategy::default())
    ///     .build()
    ///     .unwrap();
    /// let coordinator = Arc::new(FakeState::new(7));
    /// recovery_manager.attach(&coordinator);
    ///
    /// // Start background monitoring
    /// recovery_manager.start_monitoring().await;
    ///
    /// // A checkpoint every `checkpoint_interval` (300 s by default), the handle long dropped.
    /// tokio::time::sleep(Duration::from_secs(3 * 300 + 1)).await;
    /// let store = recovery_manager.checkpoint_strategy().unwrap().store();
    /// assert_eq!(store.list().await.unwrap().len(), 3);
    /// # }
    /// # #[cfg(not(feature = "checkpoint"))]
    /// # fn main() {}
    /// ```
    pub async fn start_monitoring(&self) -> MonitoringHandle {
        let cancel = CancellationToken::new();
        if let Some(old) = lock(&self.monitor.running).replace(cancel.clone()) {
            old.cancel();
        }
        let job = Job {
            attached: Arc::clone(&self.monitor.attached),
            monitoring_interval: self.config().monitoring_interval,
            checkpoint_interval: self.config().checkpoint_interval,
            parts: self.parts.job_parts(),
            history: Arc::clone(&self.history),
        };
        let task = tokio::spawn(job.run(cancel.clone()));
        MonitoringHandle {
            cancel,
            task: Some(task),
        }
    }

    /// Stop background monitoring, if it runs.
    pub fn stop_monitoring(&self) {
        self.monitor.stop();
    }

    /// Whether background monitoring runs.
    pub fn is_monitoring(&self) -> bool {
        self.monitor.is_running()
    }
}

struct Job<T: ?Sized> {
    attached: Arc<Mutex<Option<Weak<T>>>>,
    monitoring_interval: Duration,
    checkpoint_interval: Duration,
    parts: JobParts<T>,
    /// Where an early step on a forecast is recorded.
    history: Arc<crate::history::History>,
}

impl<T: ?Sized + Send + Sync + 'static> Job<T> {
    async fn run(self, cancel: CancellationToken) {
        let mut monitor_tick = tokio::time::interval(self.monitoring_interval);
        monitor_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
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
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => return,
                        () = self.monitor_step() => {}
                    }
                }
                _ = checkpoint_tick.tick() => {
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => return,
                        () = self.checkpoint_step() => {}
                    }
                }
            }
        }
    }

    /// The attached target, if there is one and it still exists.
    fn target(&self) -> Option<Arc<T>> {
        lock(&self.attached).as_ref().and_then(Weak::upgrade)
    }

    async fn monitor_step(&self) {
        self.parts.sample();
        if let Some(target) = self.target() {
            self.parts.step(&target, &self.history).await;
        }
    }

    async fn checkpoint_step(&self) {
        if let Some(target) = self.target() {
            // A failure is logged by `checkpoint`; the next tick tries again.
            let _ = self.parts.checkpoint(&target).await;
        }
    }
}
