//! The standalone `retry` API on paused tokio time: retries what it should, waits what it
//! should, and costs nothing on the happy path.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use recovery_backoff::{BackoffConfig, Jitter, RetryBudget, retry};
use recovery_core::SwarmError;
use tokio::time::Instant;

/// An operation failing `failures` times with `error`, then returning the run number.
fn failing<'a, E: Clone + 'a>(
    runs: &'a AtomicU32,
    failures: u32,
    error: E,
) -> impl FnMut() -> std::future::Ready<Result<u32, E>> + 'a {
    move || {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        std::future::ready(if run <= failures {
            Err(error.clone())
        } else {
            Ok(run)
        })
    }
}

fn comm() -> SwarmError {
    SwarmError::CommunicationError("reset".into())
}

#[tokio::test(start_paused = true)]
async fn success_at_once_runs_once_and_waits_nothing() {
    let runs = AtomicU32::new(0);
    let mut notified = 0;
    let started = Instant::now();
    let value = retry(&BackoffConfig::default(), failing(&runs, 0, comm()))
        .notify(|_: &SwarmError, _| notified += 1)
        .await;
    assert_eq!(value, Ok(1));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(notified, 0);
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn fails_twice_then_succeeds_with_the_schedules_delays() {
    let runs = AtomicU32::new(0);
    let mut delays = Vec::new();
    let started = Instant::now();
    let value = retry(&BackoffConfig::default(), failing(&runs, 2, comm()))
        .jitter(Jitter::None)
        .notify(|e, d| {
            assert_eq!(*e, comm());
            delays.push(d)
        })
        .await;
    assert_eq!(value, Ok(3));
    assert_eq!(delays, [100, 200].map(Duration::from_millis));
    assert_eq!(started.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn always_failing_returns_the_last_error_after_max_retries() {
    let runs = AtomicU32::new(0);
    let config = BackoffConfig {
        max_retries: 3,
        ..BackoffConfig::default()
    };
    let started = Instant::now();
    let result = retry(&config, failing(&runs, u32::MAX, "boom"))
        .jitter(Jitter::None)
        .await;
    assert_eq!(result, Err("boom"));
    assert_eq!(runs.load(Ordering::SeqCst), 4, "one run and three retries");
    assert_eq!(started.elapsed(), Duration::from_millis(700));
}

#[tokio::test(start_paused = true)]
async fn when_decides_which_errors_are_retried() {
    let runs = AtomicU32::new(0);
    let fatal = SwarmError::ProtocolMismatch("v1".into());
    let result = retry(&BackoffConfig::default(), failing(&runs, 1, fatal.clone()))
        .when(SwarmError::is_recoverable)
        .await;
    assert_eq!(result, Err(fatal));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "a non-recoverable error is not retried"
    );

    // The generic default retries every error, of any type.
    let runs = AtomicU32::new(0);
    let io = || std::io::Error::other("disk");
    let result = retry(&BackoffConfig::default(), || {
        let run = runs.fetch_add(1, Ordering::SeqCst);
        async move { if run == 0 { Err(io()) } else { Ok(()) } }
    })
    .await;
    assert!(result.is_ok());
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn zero_delays_arm_no_timer_and_yield_before_each_rerun() {
    // Polled with a waker that counts its wake-ups and no runtime at all: if a timer were armed
    // (or a runtime needed), this could not complete. Each zero-delay retry yields once: it
    // wakes itself and returns Pending, as `tokio::task::yield_now` does.
    struct Count(AtomicU32);
    impl std::task::Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let config = BackoffConfig {
        initial_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        ..BackoffConfig::default()
    };
    let runs = AtomicU32::new(0);
    let wakes = Arc::new(Count(AtomicU32::new(0)));
    let waker = Waker::from(wakes.clone());
    let mut fut = pin!(retry(&config, failing(&runs, 3, comm())).jitter(Jitter::Full));
    let mut cx = Context::from_waker(&waker);
    for retry in 1..=3 {
        assert_eq!(fut.as_mut().poll(&mut cx), Poll::Pending);
        assert_eq!(
            wakes.0.load(Ordering::SeqCst),
            retry,
            "it asked to be polled again"
        );
        assert_eq!(
            runs.load(Ordering::SeqCst),
            retry,
            "the re-run waits for the next poll"
        );
    }
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(4)));
}

#[tokio::test(flavor = "current_thread")]
async fn an_operation_that_fails_synchronously_does_not_starve_its_thread() {
    // A thousand zero-delay retries of an operation that never awaits, on one thread: another
    // task gets to run between them (before the yield, it ran only once the retry was over).
    let config = BackoffConfig {
        initial_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        max_retries: 1000,
        ..BackoffConfig::default()
    };
    let ticks = Arc::new(AtomicU32::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen_while_retrying = 0;
    let runs = AtomicU32::new(0);
    let result = retry(&config, || {
        runs.fetch_add(1, Ordering::SeqCst);
        seen_while_retrying = seen_while_retrying.max(ticks.load(Ordering::SeqCst));
        std::future::ready(Err::<(), _>("refused"))
    })
    .await;
    ticker.abort();
    assert_eq!(result, Err("refused"));
    assert_eq!(runs.load(Ordering::SeqCst), 1001);
    assert!(
        seen_while_retrying >= 500,
        "the other task ran only {seen_while_retrying} times during 1000 retries"
    );
}

#[tokio::test(start_paused = true)]
async fn adjust_sets_the_delay_from_the_error_and_can_stop() {
    // Retry-After: the error says how long to wait; the schedule's delay is the floor.
    let runs = AtomicU32::new(0);
    let started = Instant::now();
    let overloaded = SwarmError::Overloaded {
        reason: "busy".into(),
        retry_after: Duration::from_secs(30),
    };
    let mut planned_seen = Vec::new();
    let result = retry(&BackoffConfig::default(), failing(&runs, 2, overloaded))
        .jitter(Jitter::None)
        .adjust(|e: &SwarmError, planned| {
            planned_seen.push(planned);
            match e {
                SwarmError::Overloaded { retry_after, .. } => planned.map(|d| d.max(*retry_after)),
                _ => planned,
            }
        })
        .await;
    assert_eq!(result, Ok(3));
    assert_eq!(started.elapsed(), Duration::from_secs(60));
    assert_eq!(
        planned_seen,
        [
            Some(Duration::from_millis(100)),
            Some(Duration::from_millis(200))
        ]
    );

    // `None` stops at once with the error, and `planned` is `None` once no retry is left.
    let runs = AtomicU32::new(0);
    let config = BackoffConfig {
        max_retries: 1,
        ..BackoffConfig::default()
    };
    let mut planned_seen = Vec::new();
    let result = retry(&config, failing(&runs, u32::MAX, "boom"))
        .adjust(|_, planned| {
            planned_seen.push(planned);
            planned
        })
        .await;
    assert_eq!(result, Err("boom"));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(planned_seen.len(), 2);
    assert_eq!(planned_seen[1], None);
    let runs = AtomicU32::new(0);
    let result = retry(&BackoffConfig::default(), failing(&runs, u32::MAX, "boom"))
        .adjust(|_, _| None)
        .await;
    assert_eq!((result, runs.load(Ordering::SeqCst)), (Err("boom"), 1));
}

#[tokio::test(flavor = "current_thread")]
async fn a_custom_sleeper_does_the_waiting() {
    // No paused clock and no real wait: the sleeper records each delay and returns at once.
    let waited = std::sync::Mutex::new(Vec::new());
    let runs = AtomicU32::new(0);
    let started = std::time::Instant::now();
    let result = retry(&BackoffConfig::default(), failing(&runs, 3, comm()))
        .jitter(Jitter::None)
        .sleep(|d: Duration| {
            waited.lock().unwrap().push(d);
            std::future::ready(())
        })
        .await;
    assert_eq!(result, Ok(4));
    assert_eq!(
        *waited.lock().unwrap(),
        [100, 200, 400].map(Duration::from_millis)
    );
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "it slept for real"
    );
}

#[tokio::test(start_paused = true)]
async fn a_budget_is_deposited_once_and_can_refuse() {
    // No floor, one retry per request.
    let budget = Arc::new(RetryBudget::new(Duration::from_secs(10), 0, 1.0).unwrap());
    let runs = AtomicU32::new(0);
    // A success deposits once and withdraws nothing.
    retry(&BackoffConfig::default(), failing(&runs, 0, comm()))
        .budget(&budget)
        .await
        .unwrap();
    assert_eq!(budget.available(), 1);

    // A failing call deposits once more (2 available), then retries twice and is refused.
    let runs = AtomicU32::new(0);
    let result = retry(&BackoffConfig::default(), failing(&runs, u32::MAX, comm()))
        .budget(budget.clone())
        .await;
    assert_eq!(result, Err(comm()));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(budget.available(), 0);

    // A borrowed budget works the same way.
    let local = RetryBudget::new(Duration::from_secs(10), 0, 0.0).unwrap();
    let runs = AtomicU32::new(0);
    let result = retry(&BackoffConfig::default(), failing(&runs, 1, comm()))
        .budget(&local)
        .await;
    assert_eq!(result, Err(comm()));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_future_can_be_spawned() {
    let config = BackoffConfig::default();
    let budget = Arc::new(RetryBudget::default());
    let handle = tokio::spawn(retry(&config, || async { Ok::<_, SwarmError>(5) }).budget(budget));
    assert_eq!(handle.await.unwrap(), Ok(5));
}
