//! The recovery manager: selection by cost, bounded concurrency, the retry ledger, the history.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use recovery_core::{
    AgentId, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, SwarmError,
    SwarmResult, TaskId,
};
use smallvec::SmallVec;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::config::{InvalidRecoveryConfig, RecoveryConfig};
use crate::history::{Entry, History, NO_STRATEGY, RecoveryAttempt, RecoveryStatistics};
use crate::learned::{Candidate, LearnedOrder};
use crate::ledger::RetryLedger;
use crate::metrics::{self as names, StrategyMetrics};
use crate::monitoring::Monitor;
use crate::parts::Parts;
use crate::slot::Slot;

/// The default window within which a task's earlier retries count towards its `retry_count`:
/// 5 minutes without a recovery ends a failure.
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
///     .with_retry_count(2)
///     .with_deadline(tokio::time::Instant::now() + Duration::from_secs(5));
/// assert!(request.deadline.is_some());
/// ```
#[derive(Debug)]
#[non_exhaustive]
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
    /// When the error happened; `None` (the default) means when the recovery gets its slot and
    /// starts work.
    pub error_timestamp: Option<SystemTime>,
    /// The retries already made for this failure, if the caller counts them itself (a caller
    /// that re-runs the operation on its own after a recovery fixed its surroundings); `None`
    /// (the default) takes the manager's count for the task.
    pub retry_count: Option<u32>,
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
            retry_count: None,
        }
    }

    /// Say when the error happened (by default, when the recovery gets its slot).
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

    /// Say how many retries were already made for this failure (instead of the manager's
    /// count).
    pub fn with_retry_count(mut self, retries: u32) -> Self {
        self.retry_count = Some(retries);
        self
    }
}

/// Chooses, runs and records recovery strategies for a target system `T`.
///
/// See the [crate docs](crate) for an example, the selection rules, and the metric names.
pub struct RecoveryManager<T: ?Sized + Send + Sync + 'static> {
    config: RecoveryConfig,
    strategies: ArcSwap<Vec<Registered<T>>>,
    slots: Arc<Semaphore>,
    pub(crate) history: Arc<History>,
    ledger: Mutex<RetryLedger>,
    #[cfg_attr(
        not(any(feature = "backoff", feature = "checkpoint", feature = "degradation")),
        allow(dead_code)
    )]
    pub(crate) parts: Parts<T>,
    pub(crate) monitor: Monitor<T>,
    /// The learned strategy order, if it is on (else the fixed cost order).
    learned: Option<LearnedOrder>,
    /// The name under which decisions to run no strategy are recorded.
    no_strategy: Named,
}

/// A registered strategy and its name.
struct Registered<T: ?Sized> {
    strategy: Arc<dyn RecoveryStrategy<T>>,
    name: Arc<Named>,
}

impl<T: ?Sized> Clone for Registered<T> {
    fn clone(&self) -> Self {
        Self {
            strategy: Arc::clone(&self.strategy),
            name: Arc::clone(&self.name),
        }
    }
}

/// A strategy id and its metric keys, made once at registration.
struct Named {
    id: Arc<str>,
    metrics: StrategyMetrics,
    /// Attempts since the strategy was registered (the history keeps only the last ones).
    attempts: std::sync::atomic::AtomicU64,
}

impl Named {
    fn new(id: &str) -> Self {
        let id: Arc<str> = Arc::from(id);
        let metrics = StrategyMetrics::new(metrics::SharedString::from_shared(Arc::clone(&id)));
        Self {
            id,
            metrics,
            attempts: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

fn lock<G>(m: &Mutex<G>) -> std::sync::MutexGuard<'_, G> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: ?Sized + Send + Sync + 'static> RecoveryManager<T> {
    /// A manager with no strategies and the given configuration (checked first).
    ///
    /// It needs no capability of `T`; add strategies with [`add_strategy`](Self::add_strategy),
    /// or build one with [`builder`](Self::builder).
    ///
    /// # Errors
    ///
    /// [`InvalidRecoveryConfig`] naming the bad field.
    pub fn empty(config: RecoveryConfig) -> Result<Self, InvalidRecoveryConfig> {
        config.validate()?;
        Ok(Self::unchecked(
            config,
            Parts::default(),
            DEFAULT_RETRY_WINDOW,
            None,
        ))
    }

    /// A manager with `config` (already checked), the default strategies' `parts`.
    pub(crate) fn unchecked(
        config: RecoveryConfig,
        parts: Parts<T>,
        retry_window: Duration,
        learned: Option<LearnedOrder>,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(config.max_concurrent_recoveries)),
            history: Arc::new(History::new(config.history_retention)),
            ledger: Mutex::new(RetryLedger::new(retry_window)),
            strategies: ArcSwap::from_pointee(Vec::new()),
            parts,
            monitor: Monitor::default(),
            learned,
            no_strategy: Named::new(NO_STRATEGY),
            config,
        }
    }

    /// Name the system that [`start_monitoring`](Self::start_monitoring) steps and
    /// checkpoints, also after monitoring started. The manager keeps only a weak reference, so a
    /// coordinator that owns its manager can attach itself without a cycle.
    pub fn attach(&self, target: &Arc<T>) {
        self.monitor.attach(Arc::downgrade(target));
    }

    /// The attached target, if it still exists.
    pub fn attached(&self) -> Option<Arc<T>> {
        self.monitor.attached().as_ref().and_then(Weak::upgrade)
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
        let registered = Registered {
            name: Arc::new(Named::new(strategy.strategy_id())),
            strategy,
        };
        self.strategies.rcu(|current| {
            let mut list = Vec::clone(current);
            list.push(registered.clone());
            list
        });
    }

    /// Remove the strategy with this id; returns whether one was removed.
    pub async fn remove_strategy(&self, strategy_id: &str) -> bool {
        let before = self.strategies.rcu(|current| {
            current
                .iter()
                .filter(|s| &*s.name.id != strategy_id)
                .cloned()
                .collect::<Vec<_>>()
        });
        let removed = before.iter().any(|s| &*s.name.id == strategy_id);
        if let (true, Some(order)) = (removed, &self.learned) {
            order.forget(strategy_id);
        }
        removed
    }

    /// Attempts of each registered strategy since it was registered, by id: totals, unlike the
    /// statistics, which cover the history's last `history_retention` attempts. Cheap (one
    /// atomic per strategy) and never waits.
    pub fn attempts_by_strategy(&self) -> std::collections::BTreeMap<String, u64> {
        self.strategies
            .load()
            .iter()
            .map(|s| {
                let n = s.name.attempts.load(std::sync::atomic::Ordering::Relaxed);
                (s.name.id.to_string(), n)
            })
            .collect()
    }

    /// The ids of the registered strategies, in registration order.
    pub fn strategy_ids(&self) -> Vec<String> {
        self.strategies
            .load()
            .iter()
            .map(|s| s.name.id.to_string())
            .collect()
    }

    /// Recover `target` from `error`: the spec's entry point. See [`RecoveryManager::recover_with`].
    ///
    /// # Errors
    ///
    /// As [`recover_with`](Self::recover_with).
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
    ///   says not to continue. A result with no effect ([`RecoveryResult::no_change`]) is not a
    ///   success, so the next strategy runs. The last result is returned; its metadata lists
    ///   the strategies tried (`strategies_tried`).
    /// - Each strategy's context has `retry_count`: the retries already made for this failure
    ///   of this task (the request's count if it gives one, else the manager's, which adds up
    ///   what earlier recoveries of the task reported), plus those earlier strategies of this
    ///   recovery made.
    /// - The request's deadline bounds the whole recovery: a strategy still at work when it
    ///   passes is stopped (its future dropped) and the result says so.
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
        let kind = request.error.kind();
        let attempt = |retry_count| AttemptRecord {
            recovery_id,
            failed_task_id: request.failed_task_id,
            failed_agent_id: request.failed_agent_id,
            retry_count,
        };

        if !kind.is_recoverable() {
            metrics::counter!(names::MANUAL_INTERVENTIONS, "error_kind" => kind.as_str())
                .increment(1);
            let result = RecoveryResult::manual_intervention(format!(
                "{kind} is not recoverable: {}",
                request.error
            ));
            self.record(
                &attempt(0),
                &self.no_strategy,
                &request.error,
                &result,
                SystemTime::now(),
            );
            return Ok(result);
        }

        let strategies = self.strategies.load_full();
        let mut candidates: SmallVec<[(f64, &Registered<T>); 4]> = SmallVec::new();
        for s in strategies.iter() {
            if s.strategy.can_handle(&request.error).await {
                candidates.push((s.strategy.cost_estimate().await, s));
            }
        }
        match &self.learned {
            Some(order) => {
                let list: SmallVec<[Candidate<'_>; 4]> = candidates
                    .iter()
                    .map(|&(cost, s)| Candidate {
                        id: &s.name.id,
                        cost,
                    })
                    .collect();
                let ranked = order.rank(kind, &list);
                candidates = ranked.into_iter().map(|i| candidates[i]).collect();
            }
            // Stable: ties keep registration order.
            None => candidates.sort_by(|a, b| a.0.total_cmp(&b.0)),
        }
        if candidates.is_empty() {
            let result =
                RecoveryResult::no_change(format!("no registered strategy can handle {kind}"))
                    .with_continue_recovery(false);
            self.record(
                &attempt(0),
                &self.no_strategy,
                &request.error,
                &result,
                SystemTime::now(),
            );
            return Ok(result);
        }

        let slot = match request.deadline {
            Some(d) => tokio::time::timeout_at(d, Slot::acquire(&self.slots))
                .await
                .map_err(|_| {
                    SwarmError::CoordinationTimeout(
                        "recovery deadline passed while waiting for a free recovery slot".into(),
                    )
                })?,
            None => Slot::acquire(&self.slots).await,
        };
        let t0 = Instant::now();
        let wall = SystemTime::now();
        let earlier = match (request.retry_count, request.failed_task_id) {
            (Some(n), _) => n,
            (None, Some(task)) => lock(&self.ledger).retries_made(task, t0),
            (None, None) => 0,
        };
        let mut context =
            RecoveryContext::at(request.target, request.error_timestamp.unwrap_or(wall))
                .with_task(request.failed_task_id)
                .with_agent(request.failed_agent_id)
                .with_retry_count(earlier)
                .with_sleeper(slot);

        let mut retries = 0u32;
        let mut tried = 0;
        let mut last: Option<RecoveryResult> = None;
        for (_, registered) in &candidates {
            let started = Instant::now();
            if request.deadline.is_some_and(|d| started >= d) {
                break;
            }
            context.retry_count = earlier.saturating_add(retries);
            let recovering = registered.strategy.recover(&context, &request.error);
            let mut result = match request.deadline {
                // A strategy still at work at the deadline is stopped (its future dropped, as
                // a caller that goes away drops it): the deadline bounds the whole recovery,
                // waits for a slot after a delay included.
                Some(d) => tokio::time::timeout_at(d, recovering)
                    .await
                    .unwrap_or_else(|_| {
                        RecoveryResult::failure(
                            RecoveryAction::None,
                            format!(
                                "the recovery deadline passed while {} was at work; it was stopped",
                                registered.name.id
                            ),
                        )
                        .with_continue_recovery(false)
                    }),
                None => recovering.await,
            };
            let ended = Instant::now();
            if result.recovery_duration.is_zero() {
                result.recovery_duration = ended - started;
            }
            retries = retries.saturating_add(result.retries_made());
            tried += 1;
            let at = wall + (ended - t0);
            self.record(
                &attempt(context.retry_count),
                &registered.name,
                &request.error,
                &result,
                at,
            );
            let recovered = result.success && result.confidence > 0.5;
            if let Some(order) = &self.learned {
                order.observe(kind, &registered.name.id, recovered);
            }
            let done = recovered || !result.continue_recovery;
            last = Some(result);
            if done {
                break;
            }
        }
        drop(context);
        let Some(mut result) = last else {
            return Err(SwarmError::CoordinationTimeout(
                "recovery deadline passed before any strategy started".into(),
            ));
        };
        if let Some(task) = request.failed_task_id {
            let retry_worked = result.success && result.retries_made() > 0;
            lock(&self.ledger).record(task, retries, retry_worked, Instant::now());
        }
        if tried > 1 {
            let names: Vec<&str> = candidates[..tried]
                .iter()
                .map(|(_, s)| &*s.name.id)
                .collect();
            result
                .metadata
                .insert("strategies_tried".to_owned(), names.join(","));
        }
        Ok(result)
    }

    /// Emit the attempt's event and metrics and add it to the history.
    fn record(
        &self,
        a: &AttemptRecord,
        strategy: &Named,
        error: &SwarmError,
        result: &RecoveryResult,
        timestamp: SystemTime,
    ) {
        let id = Uuid::new_v4();
        tracing::info!(
            recovery_attempt_id = %id,
            strategy_used = &*strategy.id,
            error_type = %error,
            success = result.success,
            confidence = result.confidence,
            duration_ms = result.recovery_duration.as_millis() as u64,
            "Recovery attempt completed"
        );
        strategy
            .attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        strategy.metrics.record(
            error.kind(),
            result.success,
            result.recovery_duration.as_secs_f64(),
        );
        if result.success {
            names::effect(&result.action);
        }
        let evicted = self.history.push(Entry {
            id,
            recovery_id: a.recovery_id,
            timestamp,
            strategy_id: Arc::clone(&strategy.id),
            error: error.clone(),
            failed_task_id: a.failed_task_id,
            failed_agent_id: a.failed_agent_id,
            retry_count: a.retry_count,
            result: result.clone(),
        });
        // Freed outside the history's lock.
        drop(evicted);
    }

    /// The attempts the history holds, oldest first (at most `history_retention`).
    pub async fn get_recovery_history(&self) -> Vec<RecoveryAttempt> {
        self.history.snapshot()
    }

    /// Attempts, success rates and duration percentiles, per strategy and per error kind, over
    /// the attempts the history holds.
    pub async fn statistics(&self) -> RecoveryStatistics {
        let mut statistics = self.history.statistics();
        if let Some(order) = &self.learned {
            statistics.learned_order = order.estimates();
        }
        statistics
    }

    /// How many recoveries could start work right now.
    pub fn available_slots(&self) -> usize {
        self.slots.available_permits()
    }

    /// The retries already made for `task`'s current failure, as the next recovery of it would
    /// be told.
    pub fn retries_made(&self, task: TaskId) -> u32 {
        lock(&self.ledger).retries_made(task, Instant::now())
    }

    /// How many attempts the history holds (at most `history_retention`).
    pub fn history_len(&self) -> usize {
        self.history.len()
    }

    /// How many tasks the retry ledger holds (at most 100,000, for the bounded-memory checks).
    pub fn ledger_len(&self) -> usize {
        lock(&self.ledger).len()
    }
}

impl<T: ?Sized + Send + Sync + 'static> Drop for RecoveryManager<T> {
    fn drop(&mut self) {
        self.monitor.stop();
    }
}

struct AttemptRecord {
    recovery_id: Uuid,
    failed_task_id: Option<TaskId>,
    failed_agent_id: Option<AgentId>,
    retry_count: u32,
}
