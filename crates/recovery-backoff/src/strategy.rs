//! `ExponentialBackoffStrategy`: waits, re-runs the failed operation, and reports what happened.

use std::sync::Arc;
use std::time::Duration;

use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError,
    TaskId, async_trait,
};
use tokio::time::Instant;

use crate::budget::RetryBudget;
use crate::config::BackoffConfig;
use crate::error::BackoffConfigError;
use crate::jitter::Jitter;
use crate::retry::{Retry, RetryRequest};
use crate::schedule::Backoff;

/// Retries the failed operation with exponential backoff and jitter, through [`Retry`].
///
/// [`recover`](RecoveryStrategy::recover) starts at the context's `retry_count` (the retries
/// already made for this failure of this task, by earlier recoveries or by the caller) and,
/// while fewer than `max_retries` retries have been made:
///
/// 1. takes the next delay of the schedule ([`BackoffConfig::delay`] of the retry's index, with
///    the strategy's [`Jitter`]); for [`SwarmError::Overloaded`] the delay is at least the
///    error's `retry_after` (the system said when it is worth asking again), and a `retry_after`
///    longer than `max_delay` stops the recovery at once instead of waiting that long;
/// 2. asks the [`RetryBudget`], if one is set, for a retry; if it refuses, stops with failure
///    ("retry budget exhausted") before waiting, since waiting would only hold the recovery;
/// 3. waits the delay through [`RecoveryContext::sleep`] (so a manager can release its
///    concurrency slot; a zero delay arms no timer);
/// 4. calls [`Retry::retry`] with a [`RetryRequest`] naming the context's task and agent.
///
/// So `max_retries = 5` means at most five re-runs of a failed operation, whichever recoveries
/// make them: a recovery that starts with `retry_count = 5` makes none.
///
/// `Ok` from the target is the only way to success: [`RecoveryAction::Retried`] with the number
/// of retries this recovery made, confidence 0.9. A non-recoverable error from a retry stops the
/// retries (retrying cannot fix it) with failure and `continue_recovery: true`: the manager,
/// which sees the error kinds, decides what comes next. Past `max_retries` the result is failure
/// naming the retries made and the last error, with `continue_recovery: true`, so the manager
/// moves on to more expensive strategies. A failed result that made retries still says so
/// (`Retried { attempts }` with `success: false`), so a manager can count them. Every result's
/// metadata has `attempts` (retries made), `retry_count` (where this recovery started),
/// `last_delay_ms` and, on failure, `last_error`.
///
/// Nothing to do is not a success: with no retries left, or for an error that a re-run cannot
/// fix here, the result is [`RecoveryResult::no_change`] at once, with no delay spent. That is
/// the case for `Overloaded` and `SwarmSizeLimitExceeded` when the context names no task: there
/// is no operation to run again, and shedding load (degradation) should act at once.
///
/// Handles every recoverable kind except `StateCorruption` (retrying a corrupt state does not
/// help; a checkpoint does): `CommunicationError`, `CoordinationTimeout`, `ConcurrencyError`,
/// `TransactionFailed`, `ResourceConflict`, `SwarmSizeLimitExceeded`, `Overloaded`, `Storage`.
/// Cost 0.1, no external resources (the spec's).
///
/// If a budget is set, each `recover` that may retry deposits once (for the operation's failed
/// first run) and withdraws once before each retry.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy, Retry, RetryRequest};
/// use recovery_core::{async_trait, RecoveryAction, RecoveryContext, RecoveryStrategy, StrategyInfo, SwarmError};
///
/// struct Flaky { runs: AtomicU32 }
/// #[async_trait]
/// impl Retry for Flaky {
///     async fn retry(&self, _request: RetryRequest) -> Result<(), SwarmError> {
///         match self.runs.fetch_add(1, Ordering::SeqCst) {
///             0 => Err(SwarmError::CommunicationError("reset".into())),
///             _ => Ok(()),
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The spec's lines.
/// let strategy = ExponentialBackoffStrategy::new(BackoffConfig::default())?;
/// let error = SwarmError::CommunicationError("test".to_string());
/// assert!(strategy.can_handle(&error).await);
///
/// let target = Arc::new(Flaky { runs: AtomicU32::new(0) });
/// let result = strategy.recover(&RecoveryContext::new(target.clone()), &error).await;
/// assert!(result.success);
/// assert_eq!(result.action, RecoveryAction::Retried { attempts: 2 });
/// assert_eq!(target.runs.load(Ordering::SeqCst), 2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ExponentialBackoffStrategy {
    config: BackoffConfig,
    jitter: Jitter,
    budget: Option<Arc<RetryBudget>>,
    seed: Option<u64>,
}

impl Default for ExponentialBackoffStrategy {
    /// The spec's defaults, the spec's jitter, no budget.
    fn default() -> Self {
        let config = BackoffConfig::default();
        Self {
            jitter: config.default_jitter(),
            config,
            budget: None,
            seed: None,
        }
    }
}

impl ExponentialBackoffStrategy {
    /// A strategy with `config` (checked), its [default jitter](BackoffConfig::default_jitter)
    /// and no budget.
    ///
    /// # Errors
    ///
    /// [`BackoffConfigError`] naming the bad field.
    pub fn new(config: BackoffConfig) -> Result<Self, BackoffConfigError> {
        config.validate()?;
        Ok(Self {
            jitter: config.default_jitter(),
            config,
            budget: None,
            seed: None,
        })
    }

    /// The same strategy with `jitter`.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same strategy drawing its retries from `budget` (share it with other callers of the
    /// same dependency).
    pub fn with_budget(mut self, budget: Arc<RetryBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The same strategy drawing its jitter from generators seeded from `seed`, so that a run
    /// replays exactly (simulations, reproducible drills). Each recovery's generator is seeded
    /// from `seed`, the failed task and the retry count, so recoveries do not share a stream
    /// and their order does not matter.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The config.
    pub fn config(&self) -> &BackoffConfig {
        &self.config
    }

    /// The jitter.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The budget, if one is set.
    pub fn budget(&self) -> Option<&Arc<RetryBudget>> {
        self.budget.as_ref()
    }

    fn handles(error: &SwarmError) -> bool {
        matches!(
            error,
            SwarmError::CommunicationError(_)
                | SwarmError::CoordinationTimeout(_)
                | SwarmError::ConcurrencyError(_)
                | SwarmError::TransactionFailed(_)
                | SwarmError::ResourceConflict(_)
                | SwarmError::SwarmSizeLimitExceeded(_)
                | SwarmError::Overloaded { .. }
                | SwarmError::Storage(_)
        )
    }

    /// Why this recovery cannot make a retry that could help, if it cannot.
    fn nothing_to_retry(
        &self,
        error: &SwarmError,
        task: Option<TaskId>,
        done: u32,
    ) -> Option<String> {
        if !Self::handles(error) {
            return Some(format!(
                "exponential backoff does not retry {}",
                error.kind()
            ));
        }
        if task.is_none()
            && matches!(
                error,
                SwarmError::Overloaded { .. } | SwarmError::SwarmSizeLimitExceeded(_)
            )
        {
            return Some(format!(
                "{} names no task, so there is nothing to run again; shedding load must act",
                error.kind()
            ));
        }
        if done >= self.config.max_retries {
            return Some(format!(
                "no retries left: {done} of max_retries {} already made for this failure",
                self.config.max_retries
            ));
        }
        None
    }

    /// The schedule for a recovery that starts after `done` retries of `task`'s failure.
    fn schedule(&self, task: Option<TaskId>, done: u32) -> Backoff {
        let schedule = Backoff::new(&self.config, self.jitter).starting_at(done);
        match self.seed {
            Some(seed) => {
                let task = task.map_or(0, |t| t.as_uuid().as_u128());
                let mixed = seed ^ (task as u64) ^ ((task >> 64) as u64).rotate_left(17);
                schedule.with_seed(mixed ^ u64::from(done).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            }
            None => schedule,
        }
    }
}

/// What a recovery did, for the result's metadata.
struct Tally {
    start: u32,
    attempts: u32,
    last_delay: Duration,
}

impl Tally {
    fn finish(&self, result: RecoveryResult, started: Instant) -> RecoveryResult {
        let result = if self.attempts > 0 {
            result.with_action(RecoveryAction::Retried {
                attempts: self.attempts,
            })
        } else {
            result
        };
        result
            .with_metadata("attempts", self.attempts.to_string())
            .with_metadata("retry_count", self.start.to_string())
            .with_metadata("last_delay_ms", self.last_delay.as_millis().to_string())
            .with_duration(started.elapsed())
    }

    fn failed(&self, started: Instant, why: String, last_error: &SwarmError) -> RecoveryResult {
        self.finish(
            RecoveryResult::failure(RecoveryAction::None, why)
                .with_metadata("last_error", last_error.to_string()),
            started,
        )
    }
}

#[async_trait]
impl StrategyInfo for ExponentialBackoffStrategy {
    fn strategy_id(&self) -> &str {
        "exponential_backoff"
    }

    fn description(&self) -> &str {
        "re-runs the failed operation after exponentially growing, jittered delays"
    }

    async fn can_handle(&self, error: &SwarmError) -> bool {
        Self::handles(error)
    }

    async fn cost_estimate(&self) -> f64 {
        0.1
    }

    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl<T: Retry + ?Sized> RecoveryStrategy<T> for ExponentialBackoffStrategy {
    async fn recover(&self, context: &RecoveryContext<T>, error: &SwarmError) -> RecoveryResult {
        let started = Instant::now();
        let mut tally = Tally {
            start: context.retry_count,
            attempts: 0,
            last_delay: Duration::ZERO,
        };
        if let Some(why) = self.nothing_to_retry(error, context.failed_task_id, context.retry_count)
        {
            return tally.finish(RecoveryResult::no_change(why), started);
        }
        // The least delay the system asked for, and whether it is longer than we may wait.
        let least = match error {
            SwarmError::Overloaded { retry_after, .. } => *retry_after,
            _ => Duration::ZERO,
        };
        if least > self.config.max_delay {
            return tally.failed(
                started,
                format!(
                    "the system asks to wait {least:?} before trying again, longer than max_delay ({:?}); not retrying",
                    self.config.max_delay
                ),
                error,
            );
        }
        if let Some(budget) = &self.budget {
            budget.deposit();
        }
        let max = self.config.max_retries;
        let mut schedule = self.schedule(context.failed_task_id, context.retry_count);
        let mut last_error = error.clone();
        while let Some(delay) = schedule.next() {
            let retry_number = schedule.attempt();
            let delay = delay.max(least);
            if let Some(budget) = &self.budget {
                if !budget.withdraw() {
                    return tally.failed(
                        started,
                        format!(
                            "retry budget exhausted after {} retries; last error: {last_error}",
                            tally.attempts
                        ),
                        &last_error,
                    );
                }
            }
            context.sleep(delay).await;
            tally.last_delay = delay;
            tally.attempts += 1;
            let request = RetryRequest::new(last_error.clone(), retry_number)
                .with_task(context.failed_task_id)
                .with_agent(context.failed_agent_id);
            match context.target.retry(request).await {
                Ok(()) => {
                    tracing::debug!(attempts = tally.attempts, "retried operation succeeded");
                    return tally.finish(
                        RecoveryResult::success(
                            RecoveryAction::Retried {
                                attempts: tally.attempts,
                            },
                            format!(
                                "operation succeeded on retry {retry_number} after waiting {delay:?}"
                            ),
                        )
                        .with_confidence(0.9),
                        started,
                    );
                }
                Err(e) if !e.is_recoverable() => {
                    return tally.failed(
                        started,
                        format!(
                            "retry {retry_number} failed with a non-recoverable error, so retrying stopped: {e}"
                        ),
                        &e,
                    );
                }
                Err(e) => {
                    tracing::debug!(retry = retry_number, error = %e, "retry failed");
                    last_error = e;
                }
            }
        }
        tally.failed(
            started,
            format!(
                "gave up after {} retries in this recovery (max_retries {max}, retry_count {}); last error: {last_error}",
                tally.attempts, context.retry_count
            ),
            &last_error,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recovery_core::ErrorKind;

    #[tokio::test]
    async fn handles_every_recoverable_kind_but_state_corruption() {
        let strategy = ExponentialBackoffStrategy::default();
        for &kind in ErrorKind::ALL {
            let error = sample(kind);
            let handled = strategy.can_handle(&error).await;
            assert_eq!(
                handled,
                kind.is_recoverable() && kind != ErrorKind::StateCorruption,
                "{kind}"
            );
        }
    }

    fn sample(kind: ErrorKind) -> SwarmError {
        use recovery_core::{AgentId, TaskId};
        let m = || "x".to_string();
        match kind {
            ErrorKind::CommunicationError => SwarmError::CommunicationError(m()),
            ErrorKind::CoordinationTimeout => SwarmError::CoordinationTimeout(m()),
            ErrorKind::SwarmSizeLimitExceeded => SwarmError::SwarmSizeLimitExceeded(m()),
            ErrorKind::ResourceConflict => SwarmError::ResourceConflict(m()),
            ErrorKind::ConcurrencyError => SwarmError::ConcurrencyError(m()),
            ErrorKind::TransactionFailed => SwarmError::TransactionFailed(m()),
            ErrorKind::AgentNotFound => SwarmError::AgentNotFound(AgentId::new()),
            ErrorKind::InvalidConfiguration => SwarmError::InvalidConfiguration(m()),
            ErrorKind::ProtocolMismatch => SwarmError::ProtocolMismatch(m()),
            ErrorKind::TaskNotFound => SwarmError::TaskNotFound(TaskId::new()),
            ErrorKind::Overloaded => SwarmError::Overloaded {
                reason: m(),
                retry_after: Duration::from_secs(1),
            },
            ErrorKind::StateCorruption => SwarmError::StateCorruption(m()),
            ErrorKind::Storage => SwarmError::Storage(m()),
            ErrorKind::TaskFailed => SwarmError::TaskFailed {
                task: TaskId::new(),
                reason: m(),
            },
            other => panic!("a new error kind {other} needs a sample here"),
        }
    }
}
