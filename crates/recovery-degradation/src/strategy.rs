//! `GracefulDegradationStrategy`: applies the level that measured usage calls for.

use std::sync::Arc;

use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError,
    async_trait,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{DegradationConfig, LevelPolicy};
use crate::controller::LevelController;
use crate::degradable::Degradable;
use crate::early::EarlyDecision;
use crate::error::InvalidDegradationConfig;
use crate::level::{DegradationLevel, Pressure};
use crate::monitor::{ResourceMonitor, ResourceUsage};

/// A level change that [`GracefulDegradationStrategy::step`] applied.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LevelChange {
    /// The level the target ran at before.
    pub from: DegradationLevel,
    /// The level it runs at now.
    pub to: DegradationLevel,
    /// The usage that called for the change.
    pub usage: ResourceUsage,
    /// Its pressure.
    pub pressure: Pressure,
    /// Set when the level was stepped early, on a forecast (see
    /// [`GracefulDegradationStrategy::with_prediction`]): the seconds until the pressure was
    /// forecast to reach the thresholds.
    pub forecast_secs: Option<f64>,
}

/// Sheds load when resources run short, and lifts the shedding when they recover.
///
/// It reads the [`ResourceMonitor`] (fed by the coordinator's counters and by a
/// [`ResourceSampler`](crate::ResourceSampler)), computes the level the usage calls for through
/// one [`LevelController`] (so hysteresis holds across errors and monitoring steps alike), and
/// applies it to the target through [`Degradable`].
///
/// - [`recover`](RecoveryStrategy::recover) (on `SwarmSizeLimitExceeded`,
///   `CoordinationTimeout`, `ResourceConflict`, `ConcurrencyError`, `Overloaded`) only ever
///   raises the level or keeps it: an error is no time to lift shedding. If the measured usage
///   calls for Normal, or the target already runs at the level the usage calls for (or
///   higher), it changes nothing and says so: [`RecoveryResult::no_change`] (not a success,
///   `continue_recovery: true`, `metadata["applied"] = "false"` when a level was already in
///   force), since nothing it could do would help with this error. Otherwise it applies the level,
///   checks `current_level()`, and reports success (confidence 0.8) only if the target runs at
///   it; if the target refuses or does not get there, failure.
///   Every result carries the measured usage in its metadata (`cpu_percent`,
///   `memory_percent`, `active_connections`, `active_tasks`, `pressure`, `pressure_resource`,
///   `level_before`, `level`).
/// - [`step`](Self::step) is what a monitoring loop calls: it moves the level up **or down** as
///   the usage calls for, with no error needed.
///
/// Cost 0.4, no external resources (the spec's).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU8, Ordering};
/// use recovery_core::{async_trait, RecoveryAction, RecoveryContext, RecoveryStrategy, SwarmError};
/// use recovery_degradation::{Degradable, DegradationConfig, DegradationLevel, GracefulDegradationStrategy, ResourceMonitor};
///
/// #[derive(Default)]
/// struct Coordinator { level: AtomicU8 }
/// #[async_trait]
/// impl Degradable for Coordinator {
///     async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
///         self.level.store(level.as_u8(), Ordering::SeqCst);
///         Ok(())
///     }
///     async fn current_level(&self) -> DegradationLevel {
///         DegradationLevel::from_u8(self.level.load(Ordering::SeqCst)).unwrap()
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let monitor = Arc::new(ResourceMonitor::new());
/// let strategy = GracefulDegradationStrategy::new(DegradationConfig::default(), monitor.clone())?;
/// let coordinator = Arc::new(Coordinator::default());
///
/// monitor.update_cpu_usage(0.95);
/// let error = SwarmError::SwarmSizeLimitExceeded("600 tasks".into());
/// let result = strategy.recover(&RecoveryContext::new(coordinator.clone()), &error).await;
/// assert!(result.success);
/// assert_eq!(result.action, RecoveryAction::Degraded { level: 3 });
/// assert_eq!(result.metadata["cpu_percent"], "0.95");
///
/// // Pressure falls: the monitoring loop's steps bring the level down, one level a step,
/// // no error needed.
/// monitor.update_cpu_usage(0.3);
/// let change = strategy.step(coordinator.as_ref()).await?.unwrap();
/// assert_eq!((change.from, change.to), (DegradationLevel::Critical, DegradationLevel::Minimal));
/// strategy.step(coordinator.as_ref()).await?;
/// strategy.step(coordinator.as_ref()).await?;
/// assert_eq!(coordinator.current_level().await, DegradationLevel::Normal);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct GracefulDegradationStrategy {
    config: DegradationConfig,
    policy: LevelPolicy,
    monitor: Arc<ResourceMonitor>,
    controller: Mutex<LevelController>,
    /// The trend of the pressure, when prediction is on.
    prediction: Option<std::sync::Mutex<Prediction>>,
}

#[derive(Debug)]
struct Prediction {
    early: crate::early::Early,
    started: tokio::time::Instant,
}

impl Default for GracefulDegradationStrategy {
    /// The default thresholds and policy, with a fresh monitor.
    fn default() -> Self {
        let policy = LevelPolicy::default();
        Self {
            config: DegradationConfig::default(),
            controller: Mutex::new(LevelController::new_unchecked(policy.clone())),
            policy,
            monitor: Arc::new(ResourceMonitor::new()),
            prediction: None,
        }
    }
}

impl GracefulDegradationStrategy {
    /// A strategy reading `monitor` against `config` (checked), with the default
    /// [`LevelPolicy`].
    pub fn new(
        config: DegradationConfig,
        monitor: Arc<ResourceMonitor>,
    ) -> Result<Self, InvalidDegradationConfig> {
        config.validate()?;
        let policy = LevelPolicy::default();
        Ok(Self {
            config,
            controller: Mutex::new(LevelController::new(policy.clone())?),
            policy,
            monitor,
            prediction: None,
        })
    }

    /// The same strategy stepping the level early (predictive recovery, off by default): each
    /// monitoring [`step`](Self::step) feeds each resource's usage over its threshold to its
    /// own [`Trend`](crate::predict::Trend). When one is forecast to reach the next level's
    /// entry point within `config.lead_time`, the step applies that next level (at most
    /// Minimal: Critical is entered only on measured pressure), holds it until a lead time after
    /// the forecast crossing, and its [`LevelChange`] carries the forecast. A steep ramp climbs
    /// one level per forecast. Noise does not trigger it (see
    /// [`crate::predict`]; for a monitoring interval of 10 s or more see
    /// [`TrendConfig::responsive`](crate::predict::TrendConfig::responsive)).
    ///
    /// # Errors
    ///
    /// [`InvalidDegradationConfig`] naming `prediction` and the bad field.
    pub fn with_prediction(
        self,
        config: crate::predict::TrendConfig,
    ) -> Result<Self, InvalidDegradationConfig> {
        config.validate()?;
        Ok(Self {
            prediction: Some(std::sync::Mutex::new(Prediction {
                early: crate::early::Early::new(
                    &crate::predict::Trend::new(config.clone()),
                    config.lead_time.as_secs_f64(),
                ),
                started: tokio::time::Instant::now(),
            })),
            ..self
        })
    }

    /// The same strategy with `policy` (checked) instead of the default one.
    pub fn with_policy(self, policy: LevelPolicy) -> Result<Self, InvalidDegradationConfig> {
        let controller = LevelController::new(policy.clone())?;
        Ok(Self {
            policy,
            controller: Mutex::new(controller),
            ..self
        })
    }

    /// The monitor this strategy reads (the coordinator and samplers update it).
    pub fn monitor(&self) -> &Arc<ResourceMonitor> {
        &self.monitor
    }

    /// The thresholds.
    pub fn config(&self) -> &DegradationConfig {
        &self.config
    }

    /// The level policy.
    pub fn policy(&self) -> &LevelPolicy {
        &self.policy
    }

    /// The level the strategy last saw the target run at.
    pub async fn level(&self) -> DegradationLevel {
        self.controller.lock().await.level()
    }

    /// The monitoring step: read usage, run the hysteresis from the level the target runs at,
    /// and apply a higher **or lower** level if the usage calls for one.
    ///
    /// Returns `Ok(None)` when the level stays, `Ok(Some(change))` once the target runs at the
    /// new level, and `Err` when the target refused the level (its error) or reported `Ok` but
    /// does not run at it (`ConcurrencyError`). Steps (and `recover`) are serialised: two
    /// concurrent calls never interleave their reads and applies, so the target's
    /// `apply_level` must not itself call back into this strategy.
    pub async fn step<T: Degradable + ?Sized>(
        &self,
        target: &T,
    ) -> Result<Option<LevelChange>, SwarmError> {
        let mut controller = self.controller.lock().await;
        let from = target.current_level().await;
        controller.set_level(from);
        let usage = self.monitor.usage();
        let each = Pressure::each(&usage, &self.config);
        let pressure = Pressure::largest(&each);
        let mut to = controller.peek_pressure(pressure.value);
        let mut forecast_secs = None;
        if let Some(p) = &self.prediction {
            let mut p = p.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let t = p.started.elapsed().as_secs_f64();
            match p.early.decide(t, &each, from, to, &self.policy) {
                EarlyDecision::Plain => {}
                EarlyDecision::Early { level, in_secs } => {
                    to = level;
                    forecast_secs = Some(in_secs);
                    tracing::info!(
                        in_secs, pressure = pressure.value, resource = %pressure.resource, to = %level,
                        "pressure forecast to reach the next threshold: stepping the level early"
                    );
                }
                EarlyDecision::Held { level } => to = level,
            }
        }
        if to == from {
            return Ok(None);
        }
        self.apply(&mut controller, target, from, to).await?;
        Ok(Some(LevelChange {
            from,
            to,
            usage,
            pressure,
            forecast_secs,
        }))
    }

    /// Apply `to` and check the target runs at it; the controller follows what the target
    /// really runs at.
    async fn apply<T: Degradable + ?Sized>(
        &self,
        controller: &mut LevelController,
        target: &T,
        from: DegradationLevel,
        to: DegradationLevel,
    ) -> Result<(), SwarmError> {
        let applied = target.apply_level(to).await;
        let now = target.current_level().await;
        controller.set_level(now);
        applied?;
        if now != to {
            return Err(SwarmError::ConcurrencyError(format!(
                "degradation level {to} was applied but the target runs at {now}"
            )));
        }
        tracing::info!(from = %from, to = %to, "degradation level changed");
        Ok(())
    }
}

fn with_usage(
    result: RecoveryResult,
    usage: &ResourceUsage,
    pressure: &Pressure,
    before: DegradationLevel,
    level: DegradationLevel,
) -> RecoveryResult {
    result
        .with_metadata("cpu_percent", usage.cpu_percent.to_string())
        .with_metadata("memory_percent", usage.memory_percent.to_string())
        .with_metadata("active_connections", usage.active_connections.to_string())
        .with_metadata("active_tasks", usage.active_tasks.to_string())
        .with_metadata("pressure", format!("{:.4}", pressure.value))
        .with_metadata("pressure_resource", pressure.resource.to_string())
        .with_metadata("level_before", before.to_string())
        .with_metadata("level", level.to_string())
}

fn handles(error: &SwarmError) -> bool {
    matches!(
        error,
        SwarmError::SwarmSizeLimitExceeded(_)
            | SwarmError::CoordinationTimeout(_)
            | SwarmError::ResourceConflict(_)
            | SwarmError::ConcurrencyError(_)
            | SwarmError::Overloaded { .. }
    )
}

#[async_trait]
impl StrategyInfo for GracefulDegradationStrategy {
    fn strategy_id(&self) -> &str {
        "graceful_degradation"
    }

    fn description(&self) -> &str {
        "sheds low-priority work and shrinks limits to the level that measured resource usage calls for"
    }

    async fn can_handle(&self, error: &SwarmError) -> bool {
        handles(error)
    }

    async fn cost_estimate(&self) -> f64 {
        0.4
    }

    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl<T: Degradable + ?Sized> RecoveryStrategy<T> for GracefulDegradationStrategy {
    async fn recover(&self, context: &RecoveryContext<T>, error: &SwarmError) -> RecoveryResult {
        let started = Instant::now();
        if !handles(error) {
            return RecoveryResult::no_change(format!(
                "graceful degradation does not handle {}",
                error.kind()
            ));
        }
        let target = context.target.as_ref();
        let mut controller = self.controller.lock().await;
        let before = target.current_level().await;
        controller.set_level(before);
        let usage = self.monitor.usage();
        let pressure = Pressure::of(&usage, &self.config);
        // An error is no time to lift shedding: raise or keep, never lower.
        let called = controller.peek_pressure(pressure.value);
        let wanted = called.max(before);

        let result = if called == DegradationLevel::Normal {
            RecoveryResult::no_change(format!(
                "no resource pressure measured ({usage}); degrading would not help"
            ))
        } else if wanted == before {
            RecoveryResult::no_change(if called == before {
                format!(
                    "already running at degradation level {before}, which the measured usage ({usage}) calls for"
                )
            } else {
                format!(
                    "already running at degradation level {before}; the measured usage ({usage}) calls for no more"
                )
            })
            .with_metadata("applied", "false")
        } else {
            match self.apply(&mut controller, target, before, wanted).await {
                Ok(()) => RecoveryResult::success(
                    RecoveryAction::Degraded {
                        level: wanted.as_u8(),
                    },
                    format!(
                        "degraded from level {before} to {wanted}: {} pressure {:.2} ({usage})",
                        pressure.resource, pressure.value
                    ),
                )
                .with_confidence(0.8)
                .with_metadata("applied", "true"),
                Err(e) => RecoveryResult::failure(
                    RecoveryAction::None,
                    format!("could not apply degradation level {wanted}: {e}"),
                ),
            }
        };
        let level = controller.level();
        drop(controller);
        with_usage(result, &usage, &pressure, before, level).with_duration(started.elapsed())
    }
}
