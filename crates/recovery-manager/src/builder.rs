//! Building a manager with the default strategies, or with strategies of your own making.

#[cfg(any(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "backoff")]
use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy};
#[cfg(feature = "checkpoint")]
use recovery_checkpoint::CheckpointRecoveryStrategy;
#[cfg(feature = "degradation")]
use recovery_degradation::{
    DegradationConfig, GracefulDegradationStrategy, ResourceMonitor, ResourceSampler, SystemSampler,
};
#[cfg(feature = "healing")]
use recovery_healing::SelfHealingStrategy;

use crate::config::{InvalidRecoveryConfig, RecoveryConfig};
use crate::manager::{DEFAULT_RETRY_WINDOW, RecoveryManager};
use crate::parts::Parts;
use crate::target::RecoveryTarget;

/// Builds a [`RecoveryManager`] with the strategies of the enabled features, each replaceable or
/// removable.
///
/// Without changes it builds what [`RecoveryManager::new`] builds: every enabled strategy with
/// its defaults (backoff 100 ms ×2 up to 5 retries, healing's two spec rules, 10 checkpoints in
/// memory, degradation at the spec's thresholds with a host sampler for monitoring).
///
/// ```
/// # #[cfg(all(feature = "checkpoint", feature = "degradation"))]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use recovery_checkpoint::{CheckpointRecoveryStrategy, FileStore};
/// use recovery_manager::{RecoveryConfig, RecoveryManager};
/// use std::sync::Arc;
///
/// let dir = tempfile::tempdir()?;
/// let store = Arc::new(FileStore::open(dir.path())?);
/// let builder = RecoveryManager::builder()
///     .config(RecoveryConfig { max_concurrent_recoveries: 8, ..RecoveryConfig::default() })
///     .checkpoint(CheckpointRecoveryStrategy::with_store(store, 15)?)
///     .without_sampler();
/// // `builder.build::<MyCoordinator>()?` then gives the manager.
/// # let _ = builder;
/// # Ok(()) }
/// # #[cfg(not(all(feature = "checkpoint", feature = "degradation")))]
/// # fn main() {}
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct RecoveryManagerBuilder {
    config: RecoveryConfig,
    retry_window: Duration,
    #[cfg(feature = "backoff")]
    backoff: Option<ExponentialBackoffStrategy>,
    #[cfg(feature = "healing")]
    healing: Option<SelfHealingStrategy>,
    #[cfg(feature = "checkpoint")]
    checkpoint: Option<CheckpointRecoveryStrategy>,
    #[cfg(feature = "degradation")]
    degradation: Option<GracefulDegradationStrategy>,
    #[cfg(feature = "degradation")]
    sampler: Option<Box<dyn ResourceSampler>>,
}

impl std::fmt::Debug for RecoveryManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RecoveryManagerBuilder");
        d.field("config", &self.config)
            .field("retry_window", &self.retry_window);
        #[cfg(feature = "backoff")]
        d.field("backoff", &self.backoff.is_some());
        #[cfg(feature = "healing")]
        d.field("healing", &self.healing.is_some());
        #[cfg(feature = "checkpoint")]
        d.field("checkpoint", &self.checkpoint.is_some());
        #[cfg(feature = "degradation")]
        d.field("degradation", &self.degradation.is_some())
            .field("sampler", &self.sampler.is_some());
        d.finish()
    }
}

impl Default for RecoveryManagerBuilder {
    fn default() -> Self {
        Self {
            config: RecoveryConfig::default(),
            retry_window: DEFAULT_RETRY_WINDOW,
            #[cfg(feature = "backoff")]
            backoff: Some(
                ExponentialBackoffStrategy::new(BackoffConfig::default())
                    .expect("the default backoff config is valid"),
            ),
            #[cfg(feature = "healing")]
            healing: Some(SelfHealingStrategy::new()),
            #[cfg(feature = "checkpoint")]
            checkpoint: Some(CheckpointRecoveryStrategy::default()),
            #[cfg(feature = "degradation")]
            degradation: Some(
                GracefulDegradationStrategy::new(
                    DegradationConfig::default(),
                    Arc::new(ResourceMonitor::new()),
                )
                .expect("the default degradation config is valid"),
            ),
            #[cfg(feature = "degradation")]
            sampler: Some(Box::new(SystemSampler::host())),
        }
    }
}

impl RecoveryManagerBuilder {
    /// The manager's configuration (checked by [`build`](Self::build)).
    pub fn config(mut self, config: RecoveryConfig) -> Self {
        self.config = config;
        self
    }

    /// Count earlier recoveries within `window` towards `retry_count` (default
    /// [`DEFAULT_RETRY_WINDOW`]).
    pub fn retry_window(mut self, window: Duration) -> Self {
        self.retry_window = window;
        self
    }

    /// Use this backoff strategy instead of the default one.
    #[cfg(feature = "backoff")]
    pub fn backoff(mut self, strategy: ExponentialBackoffStrategy) -> Self {
        self.backoff = Some(strategy);
        self
    }

    /// Register no backoff strategy.
    #[cfg(feature = "backoff")]
    pub fn without_backoff(mut self) -> Self {
        self.backoff = None;
        self
    }

    /// Use this healing strategy (its rules, alert sink, scripts) instead of the default one.
    #[cfg(feature = "healing")]
    pub fn healing(mut self, strategy: SelfHealingStrategy) -> Self {
        self.healing = Some(strategy);
        self
    }

    /// Register no healing strategy.
    #[cfg(feature = "healing")]
    pub fn without_healing(mut self) -> Self {
        self.healing = None;
        self
    }

    /// Use this checkpoint strategy (its store and retention) instead of 10 checkpoints in memory.
    #[cfg(feature = "checkpoint")]
    pub fn checkpoint(mut self, strategy: CheckpointRecoveryStrategy) -> Self {
        self.checkpoint = Some(strategy);
        self
    }

    /// Register no checkpoint strategy (and take no checkpoints while monitoring).
    #[cfg(feature = "checkpoint")]
    pub fn without_checkpoint(mut self) -> Self {
        self.checkpoint = None;
        self
    }

    /// Use this degradation strategy; its monitor becomes the manager's
    /// [`resource_monitor`](RecoveryManager::resource_monitor).
    #[cfg(feature = "degradation")]
    pub fn degradation(mut self, strategy: GracefulDegradationStrategy) -> Self {
        self.degradation = Some(strategy);
        self
    }

    /// Register no degradation strategy (the manager still has a resource monitor).
    #[cfg(feature = "degradation")]
    pub fn without_degradation(mut self) -> Self {
        self.degradation = None;
        self
    }

    /// Sample resources with `sampler` while monitoring (default: [`SystemSampler::host`]).
    #[cfg(feature = "degradation")]
    pub fn sampler(mut self, sampler: impl ResourceSampler + 'static) -> Self {
        self.sampler = Some(Box::new(sampler));
        self
    }

    /// Sample nothing while monitoring: the usage is what the system itself reports to the
    /// monitor (for tests, and for systems that measure their own load).
    #[cfg(feature = "degradation")]
    pub fn without_sampler(mut self) -> Self {
        self.sampler = None;
        self
    }

    /// Check the configuration and build the manager, registering the strategies in cost
    /// order (backoff, healing, checkpoint, degradation).
    ///
    /// # Errors
    ///
    /// [`InvalidRecoveryConfig`] naming the bad field of the configuration.
    pub fn build<T: RecoveryTarget + ?Sized>(
        self,
    ) -> Result<RecoveryManager<T>, InvalidRecoveryConfig> {
        self.config.validate()?;
        #[cfg(feature = "checkpoint")]
        let checkpoint = self.checkpoint.map(Arc::new);
        #[cfg(feature = "degradation")]
        let degradation = self.degradation.map(Arc::new);
        let parts = Parts {
            #[cfg(feature = "checkpoint")]
            checkpoint: checkpoint.clone(),
            #[cfg(feature = "degradation")]
            monitor: degradation
                .as_ref()
                .map_or_else(Default::default, |s| Arc::clone(s.monitor())),
            #[cfg(feature = "degradation")]
            degradation: degradation.clone(),
            #[cfg(feature = "degradation")]
            sampler: self.sampler.map(|s| Arc::new(std::sync::Mutex::new(s))),
        };
        let manager =
            RecoveryManager::unchecked(self.config, parts).with_retry_window(self.retry_window);
        #[cfg(feature = "backoff")]
        if let Some(s) = self.backoff {
            manager.register(Arc::new(s));
        }
        #[cfg(feature = "healing")]
        if let Some(s) = self.healing {
            manager.register(Arc::new(s));
        }
        #[cfg(feature = "checkpoint")]
        if let Some(s) = checkpoint {
            manager.register(s);
        }
        #[cfg(feature = "degradation")]
        if let Some(s) = degradation {
            manager.register(s);
        }
        Ok(manager)
    }
}
