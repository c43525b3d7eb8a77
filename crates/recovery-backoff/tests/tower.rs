//! `BackoffPolicy` under tower's `RetryLayer`, on a paused clock: the delays it waits, the
//! errors it leaves alone, a fresh schedule per request, and one `RetryBudget` shared by two
//! services stopping a retry storm across both.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_backoff::{BackoffConfig, BackoffPolicy, Jitter, RetryBudget};
use tokio::time::Instant;
use tower::retry::RetryLayer;
use tower::{Service, ServiceBuilder, ServiceExt};

fn config(max_retries: u32) -> BackoffConfig {
    BackoffConfig {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(10),
        multiplier: 2.0,
        max_retries,
        jitter_factor: 0.0,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Failure {
    Transient,
    Fatal,
}

/// A service whose first `failures` calls fail with `error`; it records when each call came.
fn flaky(
    failures: u32,
    error: Failure,
    calls: Arc<Mutex<Vec<Instant>>>,
) -> impl Service<u32, Response = u32, Error = Failure, Future = impl Send> + Clone {
    tower::service_fn(move |req: u32| {
        let n = {
            let mut calls = calls.lock().unwrap();
            calls.push(Instant::now());
            calls.len() as u32
        };
        let error = error.clone();
        async move {
            if n <= failures {
                Err(error)
            } else {
                Ok(req * 2)
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn a_service_failing_twice_then_succeeding_is_retried_after_100_then_200_ms() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let policy = BackoffPolicy::new(config(5)).jitter(Jitter::None);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(flaky(2, Failure::Transient, calls.clone()));
    let start = Instant::now();
    assert_eq!(service.oneshot(21).await, Ok(42));
    let at: Vec<Duration> = calls.lock().unwrap().iter().map(|t| *t - start).collect();
    assert_eq!(
        at,
        [
            Duration::ZERO,
            Duration::from_millis(100),
            Duration::from_millis(300)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_error_the_predicate_refuses_is_returned_at_once() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let policy = BackoffPolicy::new(config(5)).when(|e: &Failure| *e == Failure::Transient);
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(flaky(10, Failure::Fatal, calls.clone()));
    assert_eq!(service.oneshot(1).await, Err(Failure::Fatal));
    assert_eq!(calls.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn every_request_gets_its_own_max_retries() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let policy = BackoffPolicy::new(config(2)).jitter(Jitter::None);
    let mut service = ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(flaky(u32::MAX, Failure::Transient, calls.clone()));
    for _ in 0..3 {
        let r = service.ready().await.unwrap().call(1).await;
        assert_eq!(r, Err(Failure::Transient));
    }
    // 3 requests, each 1 call and 2 retries.
    assert_eq!(calls.lock().unwrap().len(), 9);
}

/// Two services whose backend is down, 200 requests each, with a retry ratio of 0.1 and no
/// floor: without the budget they would make 200 × 2 × 3 retries; with it, at most a tenth of
/// the requests are retried, counted over both services.
#[tokio::test(start_paused = true)]
async fn a_shared_budget_stops_a_storm_across_two_services() {
    let budget = Arc::new(RetryBudget::new(Duration::from_secs(10), 0, 0.1).unwrap());
    let calls = [
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(Mutex::new(Vec::new())),
    ];
    let policy = BackoffPolicy::new(config(3))
        .jitter(Jitter::None)
        .budget(budget.clone());
    let mut services: Vec<_> = calls
        .iter()
        .map(|c| {
            ServiceBuilder::new()
                .layer(RetryLayer::new(policy.clone()))
                .service(flaky(u32::MAX, Failure::Transient, c.clone()))
        })
        .collect();
    let failed = AtomicU32::new(0);
    for _ in 0..200 {
        for s in &mut services {
            if s.ready().await.unwrap().call(1).await.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let total: usize = calls.iter().map(|c| c.lock().unwrap().len()).sum();
    let retries = total - 400;
    assert_eq!(failed.load(Ordering::Relaxed), 400);
    assert!(
        retries <= 40,
        "{retries} retries for 400 requests at a ratio of 0.1"
    );
    // Both services' requests fund it: 400 deposits allow about 40 retries (200, one
    // service's, would allow 20).
    assert!(
        retries >= 30,
        "the shared budget allows a tenth of all requests: {retries}"
    );
}
