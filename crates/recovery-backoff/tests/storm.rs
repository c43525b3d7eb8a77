//! A retry storm on paused tokio time: 1,000 callers of a dependency that is down, for 60 s,
//! sharing one budget. The budget keeps total attempts within `1 + ratio` times the requests
//! (plus its floor); without it they would be `1 + max_retries` times.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use recovery_backoff::{BackoffConfig, RetryBudget, retry};
use recovery_core::SwarmError;
use tokio::time::Instant;

const CALLERS: usize = 1000;
const RUN_FOR: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    attempts: AtomicU64,
}

/// Every caller sends a request once a second (or as soon as its last one finished, if that
/// took longer) until `RUN_FOR` has passed; each request is retried with the default config.
async fn storm(fails: bool, budget: Option<Arc<RetryBudget>>) -> (u64, u64) {
    let counts = Arc::new(Counts::default());
    let config = BackoffConfig::default();
    let deadline = Instant::now() + RUN_FOR;
    let mut callers = Vec::with_capacity(CALLERS);
    for _ in 0..CALLERS {
        let counts = Arc::clone(&counts);
        let budget = budget.clone();
        callers.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let next = Instant::now() + Duration::from_secs(1);
                counts.requests.fetch_add(1, Ordering::Relaxed);
                let op = || {
                    counts.attempts.fetch_add(1, Ordering::Relaxed);
                    async move {
                        if fails {
                            Err(SwarmError::CommunicationError("dependency down".into()))
                        } else {
                            Ok(())
                        }
                    }
                };
                let _ = match &budget {
                    Some(b) => retry(&config, op).budget(b).await,
                    None => retry(&config, op).await,
                };
                tokio::time::sleep_until(next).await;
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    (
        counts.requests.load(Ordering::Relaxed),
        counts.attempts.load(Ordering::Relaxed),
    )
}

#[tokio::test(start_paused = true)]
async fn a_shared_budget_keeps_a_storm_within_its_ratio_and_floor() {
    let budget = Arc::new(RetryBudget::default());
    let (requests, attempts) = storm(true, Some(budget.clone())).await;
    let ratio = attempts as f64 / requests as f64;
    // The floor's allowance: min_per_sec over the run plus one window.
    let floor = f64::from(budget.min_per_sec()) * (RUN_FOR + budget.ttl()).as_secs_f64();
    let bound = 1.0 + budget.retry_ratio() + floor / requests as f64;
    println!(
        "budgeted storm: {requests} requests, {attempts} attempts, ratio {ratio:.4}, bound {bound:.4}"
    );
    assert!(requests >= (CALLERS * 50) as u64, "{requests}");
    assert!(ratio <= bound, "ratio {ratio} > {bound}");
    // The budget was really used, not avoided.
    assert!(ratio > 1.1, "{ratio}");
}

#[tokio::test(start_paused = true)]
async fn without_a_budget_the_same_storm_multiplies_load() {
    let (requests, attempts) = storm(true, None).await;
    assert_eq!(
        attempts,
        requests * 6,
        "one run and max_retries (5) retries each"
    );
}

#[tokio::test(start_paused = true)]
async fn with_no_failures_no_retry_is_made() {
    let budget = Arc::new(RetryBudget::default());
    let (requests, attempts) = storm(false, Some(budget.clone())).await;
    assert_eq!(attempts, requests);
    assert_eq!(requests, (CALLERS * 60) as u64);
}
