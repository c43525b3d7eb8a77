//! Building a manager: each strategy registered by a step whose bound is that strategy's
//! capability, and `new()` for a target that has all four.

use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "backoff")]
use recovery_backoff::{ExponentialBackoffStrategy, Retry};
#[cfg(feature = "checkpoint")]
use recovery_checkpoint::{CheckpointRecoveryStrategy, Checkpointable};
use recovery_core::RecoveryStrategy;
#[cfg(feature = "degradation")]
use recovery_degradation::{Degradable, GracefulDegradationStrategy, ResourceSampler};
#[cfg(feature = "healing")]
use recovery_healing::{Healable, SelfHealingStrategy};

use crate::config::{InvalidRecoveryConfig, RecoveryConfig};
use crate::learned::{LearnedOrder, LearningConfig};
use crate::manager::{DEFAULT_RETRY_WINDOW, RecoveryManager};
use crate::parts::Parts;

/// Builds a [`RecoveryManager`] for a target `T`, one strategy at a time.
///
/// Each step of a strategy of this workspace asks only for that strategy's capability:
/// [`backoff`](Self::backoff) for `T: Retry`, [`checkpoint`](Self::checkpoint) for
/// `T: Checkpointable`, [`degradation`](Self::degradation) for `T: Degradable`,
/// [`healing`](Self::healing) for `T: Healable`; [`strategy`](Self::strategy) adds one of your
/// own. So a system that can only retry gets a manager that only retries, whatever features
/// other crates in the same build turn on.
///
/// ```
/// # #[cfg(feature = "backoff")]
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use recovery_backoff::{ExponentialBackoffStrategy, Retry, RetryRequest};
/// use recovery_core::{async_trait, SwarmError};
/// use recovery_manager::{RecoveryConfig, RecoveryManager};
///
/// /// Can re-send a message, and nothing else.
/// struct Sender;
/// #[async_trait]
/// impl Retry for Sender {
///     async fn retry(&self, _: RetryRequest) -> Result<(), SwarmError> { Ok(()) }
/// }
///
/// let manager = RecoveryManager::<Sender>::builder()
///     .config(RecoveryConfig { max_concurrent_recoveries: 8, ..RecoveryConfig::default() })
///     .backoff(ExponentialBackoffStrategy::default())
///     .build()?;
/// let result = manager
///     .recover(Arc::new(Sender), SwarmError::CommunicationError("reset".into()), None, None)
///     .await?;
/// assert!(result.success);
/// # Ok(()) }
/// # #[cfg(not(feature = "backoff"))]
/// # fn main() {}
/// ```
///
/// Strategies run by cost whatever the order of the steps; a second step for the same
/// strategy of this workspace replaces the first.
#[must_use = "a builder does nothing until `build` is called"]
pub struct RecoveryManagerBuilder<T: ?Sized + Send + Sync + 'static> {
    config: RecoveryConfig,
    retry_window: Duration,
    #[cfg(feature = "backoff")]
    backoff: Option<Arc<dyn RecoveryStrategy<T>>>,
    #[cfg(feature = "healing")]
    healing: Option<Arc<dyn RecoveryStrategy<T>>>,
    #[cfg(feature = "checkpoint")]
    checkpoint: Option<Arc<dyn RecoveryStrategy<T>>>,
    #[cfg(feature = "degradation")]
    degradation: Option<Arc<dyn RecoveryStrategy<T>>>,
    custom: Vec<Arc<dyn RecoveryStrategy<T>>>,
    learning: Option<LearningConfig>,
    evidence: Vec<crate::learned::LearnedEstimate>,
    pub(crate) parts: Parts<T>,
}

impl<T: ?Sized + Send + Sync + 'static> std::fmt::Debug for RecoveryManagerBuilder<T> {
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
            .field("sampler", &self.parts.sampler.is_some());
        d.field("custom", &self.custom.len())
            .field("learning", &self.learning)
            .field("evidence", &self.evidence.len())
            .finish()
    }
}

impl<T: ?Sized + Send + Sync + 'static> Default for RecoveryManagerBuilder<T> {
    fn default() -> Self {
        Self {
            config: RecoveryConfig::default(),
            retry_window: DEFAULT_RETRY_WINDOW,
            #[cfg(feature = "backoff")]
            backoff: None,
            #[cfg(feature = "healing")]
            healing: None,
            #[cfg(feature = "checkpoint")]
            checkpoint: None,
            #[cfg(feature = "degradation")]
            degradation: None,
            custom: Vec::new(),
            learning: None,
            evidence: Vec::new(),
            parts: Parts::default(),
        }
    }
}

impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// A builder with no strategy and the default configuration.
    pub fn builder() -> RecoveryManagerBuilder<T> {
        RecoveryManagerBuilder::default()
    }
}

impl<T: ?Sized + Send + Sync + 'static> RecoveryManagerBuilder<T> {
    /// A builder with no strategy and the default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The manager's configuration (checked by [`build`](Self::build)).
    pub fn config(mut self, config: RecoveryConfig) -> Self {
        self.config = config;
        self
    }

    /// Forget a task's earlier retries once it has had no recovery for `window` (default
    /// [`DEFAULT_RETRY_WINDOW`]).
    pub fn retry_window(mut self, window: Duration) -> Self {
        self.retry_window = window;
        self
    }

    /// Order the applicable strategies by what they achieved instead of by cost alone: per
    /// error kind and strategy, a Beta posterior of the chance it recovers (updated from every
    /// attempt, older evidence decaying), candidates by ascending `cost / p` with `p` drawn
    /// from the posterior (Thompson sampling, from `config.seed`, so runs replay). Only
    /// strategies whose `can_handle` is true are ever ordered. What it knows is in
    /// [`RecoveryStatistics::learned_order`](crate::RecoveryStatistics::learned_order).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::Arc;
    /// use recovery_core::{ErrorKind, SwarmError};
    /// use recovery_manager::{LearningConfig, RecoveryManager};
    /// use recovery_testkit::ScriptedStrategy;
    ///
    /// // The cheap strategy never recovers a storage error; the dear one always does.
    /// let manager = RecoveryManager::<()>::builder()
    ///     .strategy(Arc::new(ScriptedStrategy::failing("cheap").with_cost(0.1)))
    ///     .strategy(Arc::new(ScriptedStrategy::succeeding("dear").with_cost(0.3)))
    ///     .learned_order(LearningConfig { seed: 1, ..LearningConfig::default() })
    ///     .build()
    ///     .unwrap();
    /// for _ in 0..50 {
    ///     manager.recover(Arc::new(()), SwarmError::Storage("disk".into()), None, None).await.unwrap();
    /// }
    /// let stats = manager.statistics().await;
    /// let first = &stats.time_to_recovery[&ErrorKind::Storage].first_strategy;
    /// assert!(first["dear"] > first.get("cheap").copied().unwrap_or(0));
    /// # }
    /// ```
    pub fn learned_order(mut self, config: LearningConfig) -> Self {
        self.learning = Some(config);
        self
    }

    /// Start the learned order from what an earlier manager's knew, instead of from the prior
    /// alone: its [`RecoveryStatistics::learned_order`](crate::RecoveryStatistics::learned_order),
    /// kept across a restart (the estimates serialise; keep them wherever the service keeps
    /// state). Evidence adds to evidence given before. Needs
    /// [`learned_order`](Self::learned_order); [`build`](Self::build) refuses evidence without it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::sync::Arc;
    /// use recovery_core::SwarmError;
    /// use recovery_manager::{LearnedEstimate, LearningConfig, RecoveryManager};
    /// use recovery_testkit::ScriptedStrategy;
    ///
    /// let build = |evidence: Vec<LearnedEstimate>| {
    ///     RecoveryManager::<()>::builder()
    ///         .strategy(Arc::new(ScriptedStrategy::failing("cheap").with_cost(0.1)))
    ///         .strategy(Arc::new(ScriptedStrategy::succeeding("dear").with_cost(0.3)))
    ///         .learned_order(LearningConfig { seed: 1, ..LearningConfig::default() })
    ///         .learned_evidence(evidence)
    ///         .build()
    ///         .unwrap()
    /// };
    /// let before = build(Vec::new());
    /// for _ in 0..50 {
    ///     before.recover(Arc::new(()), SwarmError::Storage("disk".into()), None, None).await.unwrap();
    /// }
    /// // Kept across the restart, as JSON here.
    /// let kept = serde_json::to_string(&before.statistics().await.learned_order).unwrap();
    /// let after = build(serde_json::from_str(&kept).unwrap());
    /// after.recover(Arc::new(()), SwarmError::Storage("disk".into()), None, None).await.unwrap();
    /// // It does not learn again: the first recovery tries the strategy that works, alone.
    /// let tried: Vec<_> = after.get_recovery_history().await.into_iter().map(|a| a.strategy_id).collect();
    /// assert_eq!(tried, ["dear"]);
    /// # }
    /// ```
    pub fn learned_evidence(mut self, evidence: Vec<crate::learned::LearnedEstimate>) -> Self {
        self.evidence.extend(evidence);
        self
    }

    /// Use the fixed cost order (the default).
    pub fn fixed_order(mut self) -> Self {
        self.learning = None;
        self
    }

    /// Register a strategy of your own (after those of this workspace, among equal costs).
    pub fn strategy(mut self, strategy: Arc<dyn RecoveryStrategy<T>>) -> Self {
        self.custom.push(strategy);
        self
    }

    /// Register `strategy` as the backoff strategy; its `max_retries` is the limit on re-runs
    /// of a failure ([`RecoveryManager::backoff_strategy`]).
    #[cfg(feature = "backoff")]
    pub fn backoff(mut self, strategy: ExponentialBackoffStrategy) -> Self
    where
        T: Retry,
    {
        let strategy = Arc::new(strategy);
        self.parts.backoff = Some(Arc::clone(&strategy));
        self.backoff = Some(strategy);
        self
    }

    /// Register no backoff strategy.
    #[cfg(feature = "backoff")]
    pub fn without_backoff(mut self) -> Self {
        self.parts.backoff = None;
        self.backoff = None;
        self
    }

    /// Register `strategy` as the self-healing strategy (its rules, alert sink, scripts).
    #[cfg(feature = "healing")]
    pub fn healing(mut self, strategy: SelfHealingStrategy) -> Self
    where
        T: Healable,
    {
        let strategy = Arc::new(strategy);
        self.parts.healing = Some(Arc::clone(&strategy));
        self.healing = Some(strategy);
        self
    }

    /// Register no healing strategy.
    #[cfg(feature = "healing")]
    pub fn without_healing(mut self) -> Self {
        self.parts.healing = None;
        self.healing = None;
        self
    }

    /// Register `strategy` as the checkpoint strategy (its store and retention); monitoring
    /// takes a checkpoint with it every `checkpoint_interval`, and
    /// [`RecoveryManager::create_checkpoint`] uses it.
    #[cfg(feature = "checkpoint")]
    pub fn checkpoint(mut self, strategy: CheckpointRecoveryStrategy) -> Self
    where
        T: Checkpointable,
    {
        let strategy = Arc::new(strategy);
        self.parts.checkpoint = Some(Arc::clone(&strategy));
        self.parts.checkpointer = Some(strategy.clone());
        self.checkpoint = Some(strategy);
        self
    }

    /// Register no checkpoint strategy (and take no checkpoints while monitoring).
    #[cfg(feature = "checkpoint")]
    pub fn without_checkpoint(mut self) -> Self {
        self.parts.checkpoint = None;
        self.parts.checkpointer = None;
        self.checkpoint = None;
        self
    }

    /// Register `strategy` as the degradation strategy; its monitor becomes the manager's
    /// [`resource_monitor`](RecoveryManager::resource_monitor), and monitoring steps it every
    /// `monitoring_interval`.
    #[cfg(feature = "degradation")]
    pub fn degradation(mut self, strategy: GracefulDegradationStrategy) -> Self
    where
        T: Degradable,
    {
        let strategy = Arc::new(strategy);
        self.parts.monitor = Arc::clone(strategy.monitor());
        self.parts.degradation = Some(Arc::clone(&strategy));
        self.parts.stepper = Some(strategy.clone());
        self.degradation = Some(strategy);
        self
    }

    /// Register no degradation strategy (the manager still has a resource monitor).
    #[cfg(feature = "degradation")]
    pub fn without_degradation(mut self) -> Self {
        self.parts.degradation = None;
        self.parts.stepper = None;
        self.degradation = None;
        self
    }

    /// Sample resources with `sampler` while monitoring, into the resource monitor (by
    /// default nothing is sampled: the usage is what the system reports to the monitor).
    #[cfg(feature = "degradation")]
    pub fn sampler(mut self, sampler: impl ResourceSampler + 'static) -> Self {
        self.parts.sampler = Some(Arc::new(std::sync::Mutex::new(Box::new(sampler))));
        self
    }

    /// Sample nothing while monitoring.
    #[cfg(feature = "degradation")]
    pub fn without_sampler(mut self) -> Self {
        self.parts.sampler = None;
        self
    }

    /// Check the configuration and build the manager. The strategies of this workspace are
    /// registered first (backoff, healing, checkpoint, degradation: their cost order), then
    /// yours, in the order given.
    ///
    /// # Errors
    ///
    /// [`InvalidRecoveryConfig`] naming the bad field of the configuration (or of the
    /// learned order's, as `learning.<field>`).
    pub fn build(self) -> Result<RecoveryManager<T>, InvalidRecoveryConfig> {
        self.config.validate()?;
        let invalid = |e: crate::learned::InvalidLearningConfig| InvalidRecoveryConfig {
            field: match e.field {
                "decay" => "learning.decay",
                "prior_successes" => "learning.prior_successes",
                "evidence" => "learning.evidence",
                _ => "learning.prior_failures",
            },
            problem: e.problem,
        };
        let learned = match self.learning {
            Some(config) => {
                config.validate().map_err(invalid)?;
                Some(LearnedOrder::with_evidence(config, &self.evidence).map_err(invalid)?)
            }
            None if !self.evidence.is_empty() => {
                return Err(InvalidRecoveryConfig {
                    field: "learning.evidence",
                    problem: "evidence was given but the order is fixed; call `learned_order` \
                              (or add a `[learning]` section) to use it"
                        .to_owned(),
                });
            }
            None => None,
        };
        let manager =
            RecoveryManager::unchecked(self.config, self.parts, self.retry_window, learned);
        let ours: Vec<Option<Arc<dyn RecoveryStrategy<T>>>> = vec![
            #[cfg(feature = "backoff")]
            self.backoff,
            #[cfg(feature = "healing")]
            self.healing,
            #[cfg(feature = "checkpoint")]
            self.checkpoint,
            #[cfg(feature = "degradation")]
            self.degradation,
        ];
        for strategy in ours.into_iter().flatten().chain(self.custom) {
            manager.register(strategy);
        }
        Ok(manager)
    }
}

#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
mod defaults {
    use super::*;
    use recovery_backoff::BackoffConfig;
    use recovery_degradation::{DegradationConfig, ResourceMonitor};

    impl<T> RecoveryManagerBuilder<T>
    where
        T: Retry + Checkpointable + Degradable + Healable + ?Sized + 'static,
    {
        /// Register the four strategies of this workspace with their defaults (backoff
        /// 100 ms ×2 up to 5 retries, healing's two spec rules, 10 checkpoints in memory,
        /// degradation at the spec's thresholds) and, with the `sysinfo` feature, the host
        /// sampler. What [`RecoveryManager::new`] builds.
        pub fn default_strategies(self) -> Self {
            let builder = self
                .backoff(
                    ExponentialBackoffStrategy::new(BackoffConfig::default())
                        .expect("the default backoff config is valid"),
                )
                .healing(SelfHealingStrategy::new())
                .checkpoint(CheckpointRecoveryStrategy::default())
                .degradation(
                    GracefulDegradationStrategy::new(
                        DegradationConfig::default(),
                        Arc::new(ResourceMonitor::new()),
                    )
                    .expect("the default degradation config is valid"),
                );
            #[cfg(feature = "sysinfo")]
            let builder = builder.sampler(recovery_degradation::SystemSampler::host());
            builder
        }
    }

    impl<T> RecoveryManager<T>
    where
        T: Retry + Checkpointable + Degradable + Healable + ?Sized + 'static,
    {
        /// The spec's `RecoveryManager::new()`: the default configuration and the four
        /// strategies of this workspace with their defaults, for a target with all four
        /// capabilities (see [`RecoveryManagerBuilder::default_strategies`]). With fewer
        /// features, or a target with fewer capabilities, use [`builder`](Self::builder).
        pub fn new() -> Self {
            Self::with_config(RecoveryConfig::default())
                .expect("the default configuration is valid")
        }

        /// The spec's `RecoveryManager::with_config(config)`: [`new`](Self::new) with `config`.
        ///
        /// # Errors
        ///
        /// [`InvalidRecoveryConfig`] naming the bad field.
        pub fn with_config(config: RecoveryConfig) -> Result<Self, InvalidRecoveryConfig> {
            RecoveryManagerBuilder::default()
                .config(config)
                .default_strategies()
                .build()
        }
    }

    impl<T> Default for RecoveryManager<T>
    where
        T: Retry + Checkpointable + Degradable + Healable + ?Sized + 'static,
    {
        fn default() -> Self {
            Self::new()
        }
    }
}
