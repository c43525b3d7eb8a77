//! The recovery manager.

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use recovery_core::{
    AgentId, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, SwarmError,
    SwarmResult, TaskId,
};
use smallvec::SmallVec;
use tokio::time::Instant;
use tracing::Instrument;
use uuid::Uuid;

use crate::clock::WallClock;
use crate::config::{InvalidRecoveryConfig, RecoveryConfig};
use crate::history::{Entry, History, NO_STRATEGY, RecoveryAttempt, RecoveryStatistics};
use crate::intern::intern;
use crate::ledger::RetryLedger;
use crate::metrics::{self as names, StrategyMetrics};
use crate::parts::Parts;
use crate::slot::{Slot, Slots};
use crate::striped::Striped;

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
    /// When the error happened; `None` (the default) means when the recovery gets its slot and
    /// starts work.
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
}

/// Chooses, runs and records recovery strategies for a target system `T`.
///
/// See the [crate docs](crate) for an example, the selection rules, and the metric names.
pub struct RecoveryManager<T: ?Sized + Send + Sync + 'static> {
    config: RecoveryConfig,
    strategies: Striped<[Registered<T>]>,
    slots: Arc<Slots>,
    history: History,
    ledger: Mutex<RetryLedger>,
    #[cfg_attr(
        not(any(feature = "checkpoint", feature = "degradation")),
        allow(dead_code)
    )]
    pub(crate) parts: Parts,
    attached: Mutex<Option<Weak<T>>>,
    /// The name under which decisions to run no strategy are recorded.
    no_strategy: Named,
    /// Recoveries' timestamps, from the monotonic clock read as they start.
    wall: WallClock,
}

/// A registered strategy and its name.
struct Registered<T: ?Sized> {
    strategy: Arc<dyn RecoveryStrategy<T>>,
    name: Arc<Named>,
}

/// A strategy id and its metric keys, made once at registration so that recording an attempt
/// copies neither.
struct Named {
    id: &'static str,
    metrics: StrategyMetrics,
}

impl Named {
    fn new(id: &str) -> Self {
        let id = intern(id);
        let metrics = StrategyMetrics::new(metrics::SharedString::const_str(id));
        Self { id, metrics }
    }
}

impl<T: ?Sized> Clone for Registered<T> {
    fn clone(&self) -> Self {
        Self {
            strategy: Arc::clone(&self.strategy),
            name: Arc::clone(&self.name),
        }
    }
}

impl<T: ?Sized + Send + Sync> Registered<T> {
    fn new(strategy: Arc<dyn RecoveryStrategy<T>>) -> Self {
        let name = Arc::new(Named::new(strategy.strategy_id()));
        Self { strategy, name }
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
            slots: Arc::new(Slots::new(config.max_concurrent_recoveries)),
            history: History::new(config.history_retention),
            ledger: Mutex::new(RetryLedger::new(DEFAULT_RETRY_WINDOW)),
            strategies: Striped::new(|| Arc::from(Vec::new())),
            parts,
            attached: Mutex::new(None),
            no_strategy: Named::new(NO_STRATEGY),
            wall: WallClock::new(),
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
        let registered = Registered::new(strategy);
        self.strategies.replace(|current| {
            let mut list = current.to_vec();
            list.push(registered.clone());
            (Arc::from(list), ())
        });
    }

    /// Remove the strategy with this id; returns whether one was removed.
    pub async fn remove_strategy(&self, strategy_id: &str) -> bool {
        self.strategies.replace(|current| {
            let list: Vec<_> = current
                .iter()
                .filter(|s| s.name.id != strategy_id)
                .cloned()
                .collect();
            let removed = list.len() != current.len();
            (Arc::from(list), removed)
        })
    }

    /// The ids of the registered strategies, in registration order.
    pub fn strategy_ids(&self) -> Vec<String> {
        self.strategies
            .get()
            .iter()
            .map(|s| s.name.id.to_string())
            .collect()
    }

    /// Recover `target` from `error`: the spec's entry point. See [`RecoveryManager::recover_with`].
    ///
    /// An `async fn` in effect: nothing happens until the returned future is polled.
    pub fn recover(
        &self,
        target: Arc<T>,
        error: SwarmError,
        failed_task_id: Option<TaskId>,
        failed_agent_id: Option<AgentId>,
    ) -> impl Future<Output = SwarmResult<RecoveryResult>> + Send + '_ {
        self.recover_with(
            RecoveryRequest::new(target, error)
                .with_task(failed_task_id)
                .with_agent(failed_agent_id),
        )
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
    /// An `async fn` in effect, except that the recovery's id and its `recovery` span are made
    /// when it is called; nothing else happens until the returned future is polled. The future
    /// is boxed: the recovery's state (about 600 bytes) is written once, and a caller's own
    /// future holds and moves a pointer to it, not a copy.
    ///
    /// # Errors
    ///
    /// `CoordinationTimeout` if the request's deadline passed before any strategy could start.
    pub fn recover_with(
        &self,
        request: RecoveryRequest<T>,
    ) -> impl Future<Output = SwarmResult<RecoveryResult>> + Send + '_ {
        let recovery_id = Uuid::new_v4();
        let span = tracing::info_span!(
            "recovery",
            %recovery_id,
            error_kind = %request.error.kind(),
            task = request.failed_task_id.map(tracing::field::display),
            agent = request.failed_agent_id.map(tracing::field::display),
        );
        Box::pin(self.run(recovery_id, request).instrument(span))
    }

    // An `async move` block rather than an `async fn`, and the request used in place, never
    // destructured: an `async fn` keeps both its arguments and a moved copy of them in its
    // future, and the future is moved (copied) on every call.
    #[expect(
        clippy::manual_async_fn,
        reason = "an async fn would keep a second copy of the request in its future"
    )]
    fn run(
        &self,
        recovery_id: Uuid,
        request: RecoveryRequest<T>,
    ) -> impl Future<Output = SwarmResult<RecoveryResult>> + Send + '_ {
        async move {
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
                let at = SystemTime::now();
                let a = attempt(0);
                self.record(&a, &self.no_strategy, request.error, result.clone(), at);
                return Ok(result);
            }

            let strategies = self.strategies.get();
            let mut candidates: SmallVec<[&Registered<T>; 4]> = SmallVec::new();
            for s in strategies.iter() {
                if s.strategy.can_handle(&request.error).await {
                    candidates.push(s);
                }
            }
            if candidates.len() > 1 {
                let mut costed: SmallVec<[_; 8]> = SmallVec::new();
                for (order, s) in candidates.iter().enumerate() {
                    costed.push((s.strategy.cost_estimate().await, order, *s));
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
                let at = SystemTime::now();
                let a = attempt(0);
                self.record(&a, &self.no_strategy, request.error, result.clone(), at);
                return Ok(result);
            }

            let slot = match request.deadline {
                // Boxed: a timer is large, and most recoveries have no deadline.
                Some(d) => Box::pin(tokio::time::timeout_at(d, Slot::acquire(&self.slots)))
                    .await
                    .map_err(|_| {
                        SwarmError::CoordinationTimeout(
                            "recovery deadline passed while waiting for a free recovery slot"
                                .into(),
                        )
                    })?,
                None => Slot::acquire(&self.slots).await,
            };
            // The clock is read once the slot is held (`t0` is also the first strategy's start,
            // and gives the wall-clock time), then as each strategy ends and each later one starts.
            let t0 = Instant::now();
            let wall = self.wall.at(t0);
            // Only a recovery that names its task has earlier ones to count.
            let retry_count = match request.failed_task_id {
                Some(_) => lock(&self.ledger).next(kind, request.failed_task_id, t0),
                None => 0,
            };
            let context =
                RecoveryContext::at(request.target, request.error_timestamp.unwrap_or(wall))
                    .with_task(request.failed_task_id)
                    .with_agent(request.failed_agent_id)
                    .with_retry_count(retry_count)
                    .with_sleeper(slot);

            // Each attempt but the last is recorded as it ends, with a copy of the error; the last
            // leaves the loop unrecorded and takes the error itself. Only a result that another
            // strategy follows is kept across an await, boxed (the future stays small).
            let mut followed: Option<Box<RecoveryResult>> = None;
            let mut tried = 0;
            let last: Option<(RecoveryResult, &Named, SystemTime)> = loop {
                let Some(registered) = candidates.get(tried) else {
                    break None;
                };
                let started = if tried == 0 { t0 } else { Instant::now() };
                if request.deadline.is_some_and(|d| started >= d) {
                    break None;
                }
                let mut result = registered.strategy.recover(&context, &request.error).await;
                let ended = Instant::now();
                if result.recovery_duration.is_zero() {
                    result.recovery_duration = ended - started;
                }
                let at = wall + (ended - t0);
                tried += 1;
                let done = (result.success && result.confidence > 0.5) || !result.continue_recovery;
                if done || tried == candidates.len() {
                    break Some((result, &registered.name, at));
                }
                let a = attempt(retry_count);
                self.record(
                    &a,
                    &registered.name,
                    request.error.clone(),
                    result.clone(),
                    at,
                );
                followed = Some(Box::new(result));
            };
            let mut result = match (last, followed) {
                (Some((result, name, at)), _) => {
                    let a = attempt(retry_count);
                    self.record(&a, name, request.error, result.clone(), at);
                    result
                }
                (None, Some(followed)) => *followed,
                (None, None) => {
                    return Err(SwarmError::CoordinationTimeout(
                        "recovery deadline passed before any strategy started".into(),
                    ));
                }
            };
            drop(context);
            if tried > 1 {
                let names: Vec<&str> = candidates[..tried].iter().map(|s| s.name.id).collect();
                result
                    .metadata
                    .insert("strategies_tried".to_owned(), names.join(","));
            }
            Ok(result)
        }
    }

    /// Emit the attempt's event and metrics and add it to the history.
    fn record(
        &self,
        a: &AttemptRecord,
        strategy: &Named,
        error: SwarmError,
        result: RecoveryResult,
        timestamp: SystemTime,
    ) {
        let id = Uuid::new_v4();
        tracing::info!(
            recovery_attempt_id = %id,
            strategy_used = strategy.id,
            error_type = %error,
            success = result.success,
            confidence = result.confidence,
            duration_ms = result.recovery_duration.as_millis() as u64,
            "Recovery attempt completed"
        );
        strategy.metrics.record(
            error.kind(),
            result.success,
            result.recovery_duration.as_secs_f64(),
        );
        let evicted = self.history.push(Entry {
            id,
            recovery_id: a.recovery_id,
            timestamp,
            strategy_id: strategy.id,
            error,
            failed_task_id: a.failed_task_id,
            failed_agent_id: a.failed_agent_id,
            retry_count: a.retry_count,
            result,
        });
        // Freed outside the ring position's lock.
        drop(evicted);
    }

    /// The attempts the history holds, oldest first (at most `history_retention`).
    pub async fn get_recovery_history(&self) -> Vec<RecoveryAttempt> {
        self.history.snapshot()
    }

    /// Attempts, success rates and duration percentiles, per strategy and per error kind, over
    /// the attempts the history holds.
    pub async fn statistics(&self) -> RecoveryStatistics {
        self.history.statistics()
    }

    /// How many recoveries could start work right now.
    pub fn available_slots(&self) -> usize {
        self.slots.available()
    }
}

struct AttemptRecord {
    recovery_id: Uuid,
    failed_task_id: Option<TaskId>,
    failed_agent_id: Option<AgentId>,
    retry_count: u32,
}
#[cfg(test)]
mod tests {
    use super::*;

    /// The recovery's state is written into its box once, but a large state still costs that
    /// write and the memory: keep it small. 560 bytes with rustc 1.95; an `async fn` layer or a
    /// large local kept across an await shows up here. Callers hold only the box.
    #[test]
    fn the_recover_future_stays_small() {
        let m = RecoveryManager::<()>::empty(RecoveryConfig::default()).expect("valid");
        let request =
            RecoveryRequest::new(Arc::new(()), SwarmError::CommunicationError("reset".into()));
        let state = std::mem::size_of_val(&m.run(Uuid::nil(), request));
        assert!(state <= 768, "the recovery's state grew to {state} bytes");
        let boxed = m.recover(
            Arc::new(()),
            SwarmError::CommunicationError("reset".into()),
            None,
            None,
        );
        assert_eq!(std::mem::size_of_val(&boxed), std::mem::size_of::<usize>());
    }
}
