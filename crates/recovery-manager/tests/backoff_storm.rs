//! The must-show: 1,000 tasks each fail once with a `CommunicationError` and then
//! succeed, recovered through the real exponential-backoff strategy with 3 recovery slots.
#![cfg(feature = "backoff")]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy, Retry, RetryRequest};
use recovery_core::{RecoveryAction, SwarmError, TaskId, async_trait};
use recovery_manager::{RecoveryConfig, RecoveryManager};

/// Tasks that fail their first run; a retry succeeds. Counts how many retries work at once.
#[derive(Default)]
struct Tasks {
    retried: Mutex<HashSet<TaskId>>,
    working: AtomicUsize,
    max_working: AtomicUsize,
}

#[async_trait]
impl Retry for Tasks {
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
        let now = self.working.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_working.fetch_max(now, Ordering::SeqCst);
        // Work that spans scheduling points, so overlapping retries would be seen.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
        let task = request
            .failed_task_id
            .expect("every recovery names its task");
        let first = self.retried.lock().unwrap().insert(task);
        self.working.fetch_sub(1, Ordering::SeqCst);
        assert!(first, "task {task} was retried twice");
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_failed_tasks_recover_in_well_under_a_second_with_three_slots() {
    let manager = Arc::new(
        RecoveryManager::<Tasks>::empty(RecoveryConfig {
            max_concurrent_recoveries: 3,
            ..RecoveryConfig::default()
        })
        .unwrap(),
    );
    let backoff = ExponentialBackoffStrategy::new(BackoffConfig {
        initial_delay: Duration::from_millis(100),
        ..BackoffConfig::default()
    })
    .unwrap();
    manager.add_strategy(Arc::new(backoff)).await;
    let tasks = Arc::new(Tasks::default());

    let started = tokio::time::Instant::now();
    let mut joins = Vec::new();
    for i in 0..1000u128 {
        let manager = Arc::clone(&manager);
        let tasks = Arc::clone(&tasks);
        joins.push(tokio::spawn(async move {
            manager
                .recover(
                    tasks,
                    SwarmError::CommunicationError("connection reset".into()),
                    Some(TaskId::from_u128(i + 1)),
                    None,
                )
                .await
                .unwrap()
        }));
    }
    for join in joins {
        let result = join.await.unwrap();
        assert!(result.success, "{result:?}");
        assert_eq!(result.action, RecoveryAction::Retried { attempts: 1 });
    }
    let took = started.elapsed();

    assert_eq!(tasks.retried.lock().unwrap().len(), 1000);
    assert!(took < Duration::from_secs(1), "took {took:?} of tokio time");
    assert!(
        took >= Duration::from_millis(90),
        "each waited its first delay (100 ms ± 10%): {took:?}"
    );
    let max = tasks.max_working.load(Ordering::SeqCst);
    assert!(max <= 3, "{max} recoveries worked at once");
    assert!(max >= 2, "the slots were used in parallel ({max})");
    assert_eq!(manager.available_slots(), 3);
}
