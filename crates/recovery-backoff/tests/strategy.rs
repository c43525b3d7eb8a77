//! The strategy through its public API, on paused tokio time: it really retries, waits the
//! schedule's delays, and reports only what happened.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_backoff::{
    BackoffConfig, ExponentialBackoffStrategy, Jitter, Retry, RetryBudget, RetryRequest,
};
use recovery_core::{
    AgentId, RecoveryAction, RecoveryContext, RecoveryStrategy, Sleeper, StrategyInfo, SwarmError,
    TaskId, async_trait,
};
use tokio::time::Instant;

/// An operation whose runs fail with the scripted errors, then succeed; it records when each
/// retry ran and what it was asked.
struct Flaky {
    script: Mutex<Vec<SwarmError>>,
    started: Instant,
    runs: Mutex<Vec<(Duration, RetryRequest)>>,
}

impl Flaky {
    /// Fails with `errors` in order, then succeeds.
    fn new(errors: Vec<SwarmError>) -> Arc<Self> {
        let mut script = errors;
        script.reverse();
        Arc::new(Self {
            script: Mutex::new(script),
            started: Instant::now(),
            runs: Mutex::new(Vec::new()),
        })
    }

    /// Always fails with `error`.
    fn always(error: SwarmError) -> Arc<Self> {
        Self::new(vec![error; 1000])
    }

    fn runs(&self) -> Vec<(Duration, RetryRequest)> {
        self.runs.lock().unwrap().clone()
    }

    fn run_times(&self) -> Vec<Duration> {
        self.runs().into_iter().map(|(t, _)| t).collect()
    }
}

#[async_trait]
impl Retry for Flaky {
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
        self.runs
            .lock()
            .unwrap()
            .push((self.started.elapsed(), request));
        match self.script.lock().unwrap().pop() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}

fn comm(msg: &str) -> SwarmError {
    SwarmError::CommunicationError(msg.into())
}

fn no_jitter() -> ExponentialBackoffStrategy {
    ExponentialBackoffStrategy::new(BackoffConfig::default())
        .unwrap()
        .with_jitter(Jitter::None)
}

#[tokio::test(start_paused = true)]
async fn fails_twice_then_succeeds_is_retried_exactly_twice_with_the_expected_delays() {
    // The original call failed (the error handed to recover); the first retry fails again,
    // the second succeeds: two failures with a CommunicationError, then success.
    let target = Flaky::new(vec![comm("reset again")]);
    let task = TaskId::from_u128(7);
    let agent = AgentId::from_u128(9);
    let ctx = RecoveryContext::new(target.clone())
        .with_task(task)
        .with_agent(agent);
    let strategy = no_jitter();

    let result = strategy.recover(&ctx, &comm("Network timeout")).await;

    assert!(result.success, "{result:?}");
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 2 });
    assert_eq!(result.metadata["attempts"], "2");
    assert_eq!(result.metadata["last_delay_ms"], "200");
    assert_eq!(result.confidence, 0.9);
    assert_eq!(result.recovery_duration, Duration::from_millis(300));
    // Retried exactly twice: after 100 ms, then 200 ms later.
    assert_eq!(
        target.run_times(),
        [Duration::from_millis(100), Duration::from_millis(300)]
    );
    let runs = target.runs();
    assert_eq!(runs[0].1.attempt, 1);
    assert_eq!(runs[1].1.attempt, 2);
    assert_eq!(runs[0].1.failed_task_id, Some(task));
    assert_eq!(runs[0].1.failed_agent_id, Some(agent));
    // Each retry is told the most recent error.
    assert_eq!(runs[0].1.error, comm("Network timeout"));
    assert_eq!(runs[1].1.error, comm("reset again"));
}

#[tokio::test(start_paused = true)]
async fn the_specs_jitter_keeps_each_delay_within_ten_percent() {
    let target = Flaky::new(vec![comm("a"), comm("b")]);
    let strategy = ExponentialBackoffStrategy::new(BackoffConfig::default()).unwrap();
    assert_eq!(strategy.jitter(), Jitter::Proportional(0.1));
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &comm("x"))
        .await;
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 3 });
    let times = target.run_times();
    let gaps: Vec<f64> = std::iter::once(times[0])
        .chain(times.windows(2).map(|w| w[1] - w[0]))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    for (gap, v) in gaps.iter().zip([100.0, 200.0, 400.0]) {
        assert!(*gap >= v * 0.9 - 1e-6 && *gap <= v * 1.1 + 1e-6, "{gaps:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_operation_that_always_fails_stops_after_max_retries_and_reports_failure() {
    let target = Flaky::always(comm("down"));
    let strategy = no_jitter();
    let started = Instant::now();
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &comm("down"))
        .await;

    assert!(!result.success);
    assert!(
        result.continue_recovery,
        "more expensive strategies may run"
    );
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 5 });
    assert!(
        result.action_taken.contains("gave up after 5 retries"),
        "{}",
        result.action_taken
    );
    assert!(
        result.action_taken.contains("down"),
        "{}",
        result.action_taken
    );
    assert_eq!(result.metadata["last_error"], comm("down").to_string());
    assert_eq!(target.runs().len(), 5);
    // 100 + 200 + 400 + 800 + 1600 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(3100));
}

#[tokio::test(start_paused = true)]
async fn retry_count_is_where_the_schedule_starts() {
    let target = Flaky::always(comm("down"));
    let ctx = RecoveryContext::new(target.clone()).with_retry_count(3);
    let result = no_jitter().recover(&ctx, &comm("down")).await;
    assert!(!result.success);
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 2 });
    assert_eq!(result.metadata["retry_count"], "3");
    let runs = target.runs();
    assert_eq!(
        runs.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        [Duration::from_millis(800), Duration::from_millis(2400)]
    );
    assert_eq!(
        runs.iter().map(|(_, r)| r.attempt).collect::<Vec<_>>(),
        [4, 5]
    );

    // Already at max_retries: nothing is run, nothing is claimed, and it says so.
    let spent = Flaky::new(vec![]);
    let ctx = RecoveryContext::new(spent.clone()).with_retry_count(5);
    let started = Instant::now();
    let result = no_jitter().recover(&ctx, &comm("down")).await;
    assert!(!result.success && result.continue_recovery);
    assert!(result.is_no_change(), "{:?}", result.action);
    assert!(
        result.action_taken.contains("no retries left"),
        "{}",
        result.action_taken
    );
    assert!(spent.runs().is_empty());
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn max_retries_bounds_the_reruns_of_a_failure_across_recoveries() {
    // Each recovery is told how many retries earlier ones made (what a manager passes as
    // `retry_count`): however the five are split, there are five re-runs in all.
    for first in 0..=5u32 {
        let target = Flaky::always(comm("down"));
        let strategy = no_jitter();
        let ctx = RecoveryContext::new(target.clone()).with_task(TaskId::from_u128(1));
        // A first recovery that stops after `first` retries: its budget (no floor, `first`
        // retries per request) refuses the rest.
        let capped = no_jitter().with_budget(Arc::new(
            RetryBudget::new(Duration::from_secs(60), 0, f64::from(first)).unwrap(),
        ));
        let r1 = capped.recover(&ctx, &comm("down")).await;
        assert_eq!(r1.retries_made(), first.min(5), "first = {first}");
        let ctx = ctx.with_retry_count(r1.retries_made());
        let r2 = strategy.recover(&ctx, &comm("down")).await;
        assert_eq!(
            target.runs().len(),
            5,
            "first = {first}: {} + {}",
            r1.retries_made(),
            r2.retries_made()
        );
    }
}

#[tokio::test(start_paused = true)]
async fn overloaded_waits_at_least_its_retry_after() {
    let target = Flaky::new(vec![]);
    let ctx = RecoveryContext::new(target.clone()).with_task(TaskId::from_u128(3));
    let overloaded = SwarmError::Overloaded {
        reason: "level Minimal refuses Low".into(),
        retry_after: Duration::from_secs(30),
    };
    let started = Instant::now();
    let result = no_jitter().recover(&ctx, &overloaded).await;
    assert!(result.success, "{result:?}");
    // The schedule's first delay is 100 ms; the system asked for 30 s.
    assert_eq!(target.run_times(), [Duration::from_secs(30)]);
    assert_eq!(started.elapsed(), Duration::from_secs(30));

    // Told to wait longer than max_delay: it does not retry, and does not wait.
    let target = Flaky::new(vec![]);
    let ctx = RecoveryContext::new(target.clone()).with_task(TaskId::from_u128(3));
    let too_long = SwarmError::Overloaded {
        reason: "draining".into(),
        retry_after: Duration::from_secs(600),
    };
    let started = Instant::now();
    let result = no_jitter().recover(&ctx, &too_long).await;
    assert!(!result.success && result.continue_recovery);
    assert!(
        result.action_taken.contains("longer than max_delay"),
        "{}",
        result.action_taken
    );
    assert!(target.runs().is_empty());
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn overload_without_a_task_is_left_to_degradation_at_once() {
    // No task: nothing a re-run could fix, so no schedule is spent on it.
    for error in [
        SwarmError::Overloaded {
            reason: "cpu".into(),
            retry_after: Duration::from_secs(1),
        },
        SwarmError::SwarmSizeLimitExceeded("600 tasks".into()),
    ] {
        let target = Flaky::new(vec![]);
        let started = Instant::now();
        let result = no_jitter()
            .recover(&RecoveryContext::new(target.clone()), &error)
            .await;
        assert!(!result.success && result.continue_recovery, "{result:?}");
        assert!(result.is_no_change(), "{result:?}");
        assert!(target.runs().is_empty());
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}

#[tokio::test(start_paused = true)]
async fn a_non_recoverable_error_is_not_retried() {
    let strategy = no_jitter();
    let target = Flaky::new(vec![]);
    let fatal = SwarmError::ProtocolMismatch("v1 vs v3".into());
    assert!(!strategy.can_handle(&fatal).await);
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &fatal)
        .await;
    assert!(!result.success);
    assert!(result.is_no_change(), "{:?}", result.action);
    assert!(
        target.runs().is_empty(),
        "a non-recoverable error is never retried"
    );

    // A retry that fails with a non-recoverable error ends the retries at once.
    let target = Flaky::new(vec![SwarmError::AgentNotFound(AgentId::from_u128(1))]);
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &comm("x"))
        .await;
    assert!(!result.success);
    assert!(result.continue_recovery);
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 1 });
    assert!(
        result.action_taken.contains("non-recoverable"),
        "{}",
        result.action_taken
    );
    assert_eq!(target.runs().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn state_corruption_is_left_to_checkpoints() {
    let strategy = no_jitter();
    let target = Flaky::new(vec![]);
    let error = SwarmError::StateCorruption("bad".into());
    assert!(!strategy.can_handle(&error).await);
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &error)
        .await;
    assert!(!result.success && result.continue_recovery);
    assert!(target.runs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_specs_example_works() {
    let strategy = ExponentialBackoffStrategy::new(BackoffConfig::default()).unwrap();
    let error = SwarmError::CommunicationError("Network timeout".to_string());
    let s: &dyn RecoveryStrategy<Flaky> = &strategy;
    assert!(s.can_handle(&error).await);
    assert_eq!(s.strategy_id(), "exponential_backoff");
    assert_eq!(s.cost_estimate().await, 0.1);
    assert!(!s.requires_external_resources().await);
    assert!(!s.description().is_empty());
    let bad = BackoffConfig {
        multiplier: f64::NAN,
        ..BackoffConfig::default()
    };
    let e = ExponentialBackoffStrategy::new(bad).unwrap_err();
    assert_eq!(e.field, "multiplier");
    assert!(matches!(
        SwarmError::from(e),
        SwarmError::InvalidConfiguration(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_refusing_budget_stops_retries_before_waiting() {
    let budget = Arc::new(RetryBudget::new(Duration::from_secs(10), 0, 0.0).unwrap());
    let strategy = no_jitter().with_budget(budget.clone());
    assert!(strategy.budget().is_some());
    let target = Flaky::new(vec![]);
    let started = Instant::now();
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &comm("x"))
        .await;
    assert!(!result.success && result.continue_recovery);
    assert!(
        result.action_taken.contains("retry budget exhausted"),
        "{}",
        result.action_taken
    );
    assert!(target.runs().is_empty());
    assert_eq!(started.elapsed(), Duration::ZERO);
}

/// A sleeper that records the delays and returns at once.
#[derive(Default)]
struct RecordingSleeper(Mutex<Vec<Duration>>);

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, delay: Duration) {
        self.0.lock().unwrap().push(delay);
    }
}

#[tokio::test(start_paused = true)]
async fn waits_only_through_the_contexts_sleeper_and_never_for_zero() {
    let sleeper = Arc::new(RecordingSleeper::default());
    let target = Flaky::new(vec![comm("a"), comm("b")]);
    let ctx = RecoveryContext::new(target.clone()).with_sleeper(sleeper.clone());
    let started = Instant::now();
    let result = no_jitter().recover(&ctx, &comm("x")).await;
    assert!(result.success);
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "tokio's clock was not used"
    );
    assert_eq!(
        *sleeper.0.lock().unwrap(),
        [100, 200, 400].map(Duration::from_millis)
    );

    // Zero delays reach no sleeper at all.
    let zero = BackoffConfig {
        initial_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        ..BackoffConfig::default()
    };
    let sleeper = Arc::new(RecordingSleeper::default());
    let target = Flaky::new(vec![comm("a")]);
    let ctx = RecoveryContext::new(target.clone()).with_sleeper(sleeper.clone());
    let result = ExponentialBackoffStrategy::new(zero)
        .unwrap()
        .recover(&ctx, &comm("x"))
        .await;
    assert_eq!(result.action, RecoveryAction::Retried { attempts: 2 });
    assert!(sleeper.0.lock().unwrap().is_empty());
}
