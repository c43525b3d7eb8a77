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
fn zero_delays_arm_no_timer() {
    // Polled once with a waker that does nothing and no runtime at all: if a timer were armed
    // (or a runtime needed), this could not complete in one poll.
    let config = BackoffConfig {
        initial_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
        ..BackoffConfig::default()
    };
    let runs = AtomicU32::new(0);
    let mut fut = pin!(retry(&config, failing(&runs, 3, comm())).jitter(Jitter::Full));
    let mut cx = Context::from_waker(Waker::noop());
    assert_eq!(fut.as_mut().poll(&mut cx), Poll::Ready(Ok(4)));
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
