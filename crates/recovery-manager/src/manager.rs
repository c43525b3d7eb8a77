//! The recovery manager.

use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::{Duration, SystemTime};

use metrics::SharedString;
use recovery_core::{
    AgentId, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, SwarmError,
    SwarmResult, TaskId,
};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{InvalidRecoveryConfig, RecoveryConfig};
use crate::history::{History, NO_STRATEGY, RecoveryAttempt, RecoveryStatistics};
use crate::ledger::RetryLedger;
use crate::metrics as names;
use crate::parts::Parts;
use crate::slot::Slot;

/// The default window within which earlier recoveries of the same error kind and task count
/// towards `retry_count`: 5 minutes.
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(300);

/// One recovery to run: the target, the error, what failed, and an optional deadline.
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use recovery_core::{SwarmError, TaskId};
/// use recovery_manager::RecoveryRequest;
///
/// let request = RecoveryRequest::new(Arc::new(()), SwarmError::CommunicationError("reset".into()))
///     .with_task(TaskId::from_u128(3))
///     .with_deadline(tokio::time::Instant::now() + Duration::from_secs(5));
/// assert!(request.deadline.is_some());
/// ```
#[derive(Debug)]
pub struct RecoveryRequest<T: ?Sized> {
    /// The system to recover.
    pub target: Arc<T>,
    /// What went wrong.
    pub error: SwarmError,
    /// The failed task, if any.
    pub failed_task_id: Option<TaskId>,
    /// The failed agent, if any.
    pub failed_agent_id: Option<AgentId>,
    /// Past this instant no further strategy starts (one already running is not interrupted).
    pub deadline: Option<Instant>,
    /// When the error happened; `None` (the default) means when the recovery starts.
    pub error_timestamp: Option<SystemTime>,
}

impl<T: ?Sized> RecoveryRequest<T> {
    /// A request to recover `target` from `error`.
    pub fn new(target: Arc<T>, error: SwarmError) -> Self {
        Self {
            target,
            error,
            failed_task_id: None,
            failed_agent_id: None,
            deadline: None,
            error_timestamp: None,
        }
    }

    /// Say when the error happened (by default, when the recovery starts).
    pub fn with_error_timestamp(mut self, at: SystemTime) -> Self {
        self.error_timestamp = Some(at);
        self
    }

    /// Name the failed task.
    pub fn with_task(mut self, task: impl Into<Option<TaskId>>) -> Self {
        self.failed_task_id = task.into();
        self
    }

    /// Name the failed agent.
    pub fn with_agent(mut self, agent: impl Into<Option<AgentId>>) -> Self {
        self.failed_agent_id = agent.into();
        self
    }

    /// Start no strategy after `deadline`.
    pub fn with_deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// Chooses, runs and records recovery strategies for a target system `T`.
///
/// See the [crate docs](crate) for an example, the selection rules, and the metric names.
pub struct RecoveryManager<T: ?Sized + Send + Sync + 'static> {
    config: RecoveryConfig,
    strategies: RwLock<Arc<[Registered<T>]>>,
    semaphore: Arc<Semaphore>,
    history: Mutex<History>,
    ledger: Mutex<RetryLedger>,
    #[cfg_attr(
        not(any(feature = "checkpoint", feature = "degradation")),
        allow(dead_code)
    )]
    pub(crate) parts: Parts,
    attached: Mutex<Option<Weak<T>>>,
}

/// A registered strategy and its id, shared so that labelling a metric or a span with it
/// allocates nothing.
struct Registered<T: ?Sized> {
    strategy: Arc<dyn RecoveryStrategy<T>>,
    id: Arc<str>,
}

impl<T: ?Sized> Clone for Registered<T> {
    fn clone(&self) -> Self {
        Self {
            strategy: Arc::clone(&self.strategy),
            id: Arc::clone(&self.id),
        }
    }
}

impl<T: ?Sized + Send + Sync> Registered<T> {
    fn new(strategy: Arc<dyn RecoveryStrategy<T>>) -> Self {
        let id = Arc::from(strategy.strategy_id());
        Self { strategy, id }
    }
}

fn lock<G>(m: &Mutex<G>) -> std::sync::MutexGuard<'_, G> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// A manager with no strategies and the given configuration (checked first).
    ///
    /// `RecoveryManager::new()` and `with_config` also register the strategies of the enabled
    /// features; `empty` registers none, and needs no capability of `T`.
    pub fn empty(config: RecoveryConfig) -> Result<Self, InvalidRecoveryConfig> {
        config.validate()?;
        Ok(Self::unchecked(config, Parts::default()))
    }

    /// A manager with `config` (already checked) and the default strategies' `parts`.
    pub(crate) fn unchecked(config: RecoveryConfig, parts: Parts) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(config.max_concurrent_recoveries)),
            history: Mutex::new(History::new(config.history_retention)),
            ledger: Mutex::new(RetryLedger::new(DEFAULT_RETRY_WINDOW)),
            strategies: RwLock::new(Arc::from(Vec::new())),
            parts,
            attached: Mutex::new(None),
            config,
        }
    }

    /// Name the system that [`start_monitoring`](Self::start_monitoring) steps and
    /// checkpoints. The manager keeps only a weak reference, so a coordinator that owns its
    /// manager can attach itself without a cycle; monitoring ends when the target is dropped.
    pub fn attach(&self, target: &Arc<T>) {
        *lock(&self.attached) = Some(Arc::downgrade(target));
    }

    /// The attached target, if it still exists.
    pub(crate) fn attached(&self) -> Option<Weak<T>> {
        lock(&self.attached).clone()
    }

    /// Count earlier recoveries within `window` (instead of [`DEFAULT_RETRY_WINDOW`]) towards
    /// `retry_count`.
    pub fn with_retry_window(self, window: Duration) -> Self {
        *lock(&self.ledger) = RetryLedger::new(window);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &RecoveryConfig {
        &self.config
    }

    /// Register a strategy. Among strategies of equal cost, the earlier registered runs first.
    pub async fn add_strategy(&self, strategy: Arc<dyn RecoveryStrategy<T>>) {
        self.register(strategy);
    }

    /// [`add_strategy`](Self::add_strategy), for callers that are not async (the builder).
    pub(crate) fn register(&self, strategy: Arc<dyn RecoveryStrategy<T>>) {
        let mut guard = self
            .strategies
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<_> = guard.iter().cloned().collect();
        list.push(Registered::new(strategy));
        *guard = Arc::from(list);
    }

    /// Remove the strategy with this id; returns whether one was removed.
    pub async fn remove_strategy(&self, strategy_id: &str) -> bool {
        let mut guard = self
            .strategies
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let list: Vec<_> = guard
            .iter()
            .filter(|s| &*s.id != strategy_id)
            .cloned()
            .collect();
        let removed = list.len() != guard.len();
        *guard = Arc::from(list);
        removed
    }

    /// The ids of the registered strategies, in registration order.
    pub fn strategy_ids(&self) -> Vec<String> {
        self.current_strategies()
            .iter()
            .map(|s| s.id.to_string())
            .collect()
    }

    fn current_strategies(&self) -> Arc<[Registered<T>]> {
        Arc::clone(
            &self
                .strategies
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Recover `target` from `error`: the spec's entry point. See [`RecoveryManager::recover_with`].
    pub async fn recover(
        &self,
        target: Arc<T>,
        error: SwarmError,
        failed_task_id: Option<TaskId>,
        failed_agent_id: Option<AgentId>,
    ) -> SwarmResult<RecoveryResult> {
        self.recover_with(
            RecoveryRequest::new(target, error)
                .with_task(failed_task_id)
                .with_agent(failed_agent_id),
        )
        .await
    }

    /// Recover as `request` says.
    ///
    /// - A non-recoverable error runs no strategy: the result says manual intervention is
    ///   required (`success` and `continue_recovery` false).
    /// - Otherwise the strategies whose `can_handle` is true run by ascending `cost_estimate`
    ///   (ties in registration order) until one succeeds with confidence above 0.5 or a result
    ///   says not to continue. The last result is returned; its metadata lists the strategies
    ///   tried (`strategies_tried`).
    /// - At most `max_concurrent_recoveries` recoveries do work at once; one that waits out a
    ///   delay gives its slot away meanwhile. Dropping the returned future releases the slot;
    ///   the history then holds only the attempts that finished.
    ///
    /// # Errors
    ///
    /// `CoordinationTimeout` if the request's deadline passed before any strategy could start.
    pub async fn recover_with(&self, request: RecoveryRequest<T>) -> SwarmResult<RecoveryResult> {
        let recovery_id = Uuid::new_v4();
        let span = tracing::info_span!(
            "recovery",
            %recovery_id,
            error_kind = %request.error.kind(),
            task = request.failed_task_id.map(tracing::field::display),
            agent = request.failed_agent_id.map(tracing::field::display),
        );
        self.run(recovery_id, request).instrument(span).await
    }

    async fn run(
        &self,
        recovery_id: Uuid,
        request: RecoveryRequest<T>,
    ) -> SwarmResult<RecoveryResult> {
        let RecoveryRequest {
            target,
            error,
            failed_task_id,
            failed_agent_id,
            deadline,
            error_timestamp,
        } = request;
        // The clock is read here, then once as each strategy starts and ends.
        let wall = SystemTime::now();
        let t0 = Instant::now();
        let error_timestamp = error_timestamp.unwrap_or(wall);
        let kind = error.kind();
        let mut attempt = AttemptRecord {
            recovery_id,
            error: &error,
            failed_task_id,
            failed_agent_id,
            retry_count: 0,
        };

        if !kind.is_recoverable() {
            metrics::counter!(names::MANUAL_INTERVENTIONS, "error_kind" => kind.as_str())
                .increment(1);
            let result =
                RecoveryResult::manual_intervention(format!("{kind} is not recoverable: {error}"));
            self.record(
                &attempt,
                SharedString::const_str(NO_STRATEGY),
                &result,
                wall,
            );
            return Ok(result);
        }

        // Only a recovery that names its task has earlier ones to count (no clock read otherwise).
        if failed_task_id.is_some() {
            attempt.retry_count = lock(&self.ledger).next(kind, failed_task_id, t0);
        }

        let strategies = self.current_strategies();
        let mut candidates: Vec<&Registered<T>> = Vec::with_capacity(strategies.len());
        for s in strategies.iter() {
            if s.strategy.can_handle(&error).await {
                candidates.push(s);
            }
        }
        if candidates.len() > 1 {
            let mut costed = Vec::with_capacity(candidates.len());
            for (order, s) in candidates.into_iter().enumerate() {
                costed.push((s.strategy.cost_estimate().await, order, s));
            }
            costed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            candidates = costed.into_iter().map(|(_, _, s)| s).collect();
        }
        if candidates.is_empty() {
            let result = RecoveryResult::failure(
                RecoveryAction::None,
                format!("no registered strategy can handle {kind}"),
            )
            .with_continue_recovery(false);
            self.record(
                &attempt,
                SharedString::const_str(NO_STRATEGY),
                &result,
                wall,
            );
            return Ok(result);
        }

        let slot = match deadline {
            Some(d) => tokio::time::timeout_at(d, Slot::acquire(&self.semaphore))
                .await
                .map_err(|_| {
                    SwarmError::CoordinationTimeout(
                        "recovery deadline passed while waiting for a free recovery slot".into(),
                    )
                })?,
            None => Slot::acquire(&self.semaphore).await,
        };
        let context = RecoveryContext::at(target, error_timestamp)
            .with_task(failed_task_id)
            .with_agent(failed_agent_id)
            .with_retry_count(attempt.retry_count)
            .with_sleeper(slot);

        // Only needed (and allocated) when more than one strategy may run.
        let mut tried: Vec<&str> = Vec::new();
        let several = candidates.len() > 1;
        let mut last: Option<RecoveryResult> = None;
        for registered in candidates {
            let started = Instant::now();
            if deadline.is_some_and(|d| started >= d) {
                break;
            }
            let mut result = registered.strategy.recover(&context, &error).await;
            let ended = Instant::now();
            if result.recovery_duration.is_zero() {
                result.recovery_duration = ended - started;
            }
            self.record(
                &attempt,
                SharedString::from_shared(Arc::clone(&registered.id)),
                &result,
                wall + (ended - t0),
            );
            if several {
                tried.push(&registered.id);
            }
            let done = (result.success && result.confidence > 0.5) || !result.continue_recovery;
            last = Some(result);
            if done {
                break;
            }
        }
        drop(context);
        match last {
            Some(mut result) => {
                if tried.len() > 1 {
                    result
                        .metadata
                        .insert("strategies_tried".to_owned(), tried.join(","));
                }
                Ok(result)
            }
            None => Err(SwarmError::CoordinationTimeout(
                "recovery deadline passed before any strategy started".into(),
            )),
        }
    }

    fn record(
        &self,
        a: &AttemptRecord<'_>,
        strategy_id: SharedString,
        result: &RecoveryResult,
        timestamp: SystemTime,
    ) {
        let id = Uuid::new_v4();
        let kind = a.error.kind();
        tracing::info!(
            recovery_attempt_id = %id,
            strategy_used = &*strategy_id,
            error_type = %a.error,
            success = result.success,
            confidence = result.confidence,
            duration_ms = result.recovery_duration.as_millis() as u64,
            "Recovery attempt completed"
        );
        let outcome = if result.success { "success" } else { "failure" };
        metrics::counter!(
            names::ATTEMPTS,
            "strategy" => strategy_id.clone(),
            "error_kind" => kind.as_str(),
            "outcome" => outcome,
        )
        .increment(1);
        metrics::histogram!(names::DURATION, "strategy" => strategy_id.clone())
            .record(result.recovery_duration.as_secs_f64());
        lock(&self.history).push(RecoveryAttempt {
            id,
            recovery_id: a.recovery_id,
            timestamp,
            strategy_id: strategy_id.to_string(),
            error: a.error.clone(),
            failed_task_id: a.failed_task_id,
            failed_agent_id: a.failed_agent_id,
            retry_count: a.retry_count,
            result: result.clone(),
        });
    }

    /// The attempts the history holds, oldest first (at most `history_retention`).
    pub async fn get_recovery_history(&self) -> Vec<RecoveryAttempt> {
        lock(&self.history).snapshot()
    }

    /// Attempts, success rates and duration percentiles, per strategy and per error kind, over
    /// the attempts the history holds.
    pub async fn statistics(&self) -> RecoveryStatistics {
        lock(&self.history).statistics()
    }

    /// How many recoveries could start work right now.
    pub fn available_slots(&self) -> usize {
        self.semaphore.available_permits()
    }
}

struct AttemptRecord<'a> {
    recovery_id: Uuid,
    error: &'a SwarmError,
    failed_task_id: Option<TaskId>,
    failed_agent_id: Option<AgentId>,
    retry_count: u32,
}
