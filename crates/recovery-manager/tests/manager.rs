//! The manager's behaviour with scripted strategies: selection, concurrency, history, deadlines.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_core::{
    AgentId, ErrorKind, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy,
    StrategyInfo, SwarmError, TaskId, async_trait,
};
use recovery_manager::{NO_STRATEGY, RecoveryConfig, RecoveryManager, RecoveryRequest};
use tokio::time::Instant;

/// A strategy whose answers are set by the test, and which records what it was asked.
struct Scripted {
    id: &'static str,
    cost: f64,
    handles: Vec<ErrorKind>,
    outcome: fn(&RecoveryContext<Log>) -> RecoveryResult,
    delay: Duration,
}

/// The target: a log of which strategies ran, and a gauge of how many do work at once.
#[derive(Default)]
struct Log {
    ran: Mutex<Vec<String>>,
    retry_counts: Mutex<Vec<u32>>,
    working: AtomicUsize,
    max_working: AtomicUsize,
}

#[async_trait]
impl StrategyInfo for Scripted {
    fn strategy_id(&self) -> &str {
        self.id
    }
    fn description(&self) -> &str {
        "scripted"
    }
    async fn can_handle(&self, error: &SwarmError) -> bool {
        self.handles.contains(&error.kind())
    }
    async fn cost_estimate(&self) -> f64 {
        self.cost
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<Log> for Scripted {
    async fn recover(&self, ctx: &RecoveryContext<Log>, _error: &SwarmError) -> RecoveryResult {
        ctx.sleep(self.delay).await;
        let log = &ctx.target;
        let now = log.working.fetch_add(1, Ordering::SeqCst) + 1;
        log.max_working.fetch_max(now, Ordering::SeqCst);
        // Some work that spans a scheduling point, so overlapping work would be seen.
        tokio::task::yield_now().await;
        log.ran.lock().unwrap().push(self.id.to_owned());
        log.retry_counts.lock().unwrap().push(ctx.retry_count);
        log.working.fetch_sub(1, Ordering::SeqCst);
        (self.outcome)(ctx)
    }
}

fn ok(_: &RecoveryContext<Log>) -> RecoveryResult {
    RecoveryResult::success(RecoveryAction::Custom("done".into()), "done")
}
fn fail(_: &RecoveryContext<Log>) -> RecoveryResult {
    RecoveryResult::failure(RecoveryAction::None, "did not help")
}
fn weak(_: &RecoveryContext<Log>) -> RecoveryResult {
    RecoveryResult::success(RecoveryAction::None, "partly")
        .with_confidence(0.4)
        .with_continue_recovery(true)
}
fn give_up(_: &RecoveryContext<Log>) -> RecoveryResult {
    RecoveryResult::failure(RecoveryAction::None, "stop").with_continue_recovery(false)
}

fn strategy(
    id: &'static str,
    cost: f64,
    outcome: fn(&RecoveryContext<Log>) -> RecoveryResult,
) -> Arc<Scripted> {
    Arc::new(Scripted {
        id,
        cost,
        handles: vec![ErrorKind::CommunicationError, ErrorKind::StateCorruption],
        outcome,
        delay: Duration::ZERO,
    })
}

fn comm() -> SwarmError {
    SwarmError::CommunicationError("reset".into())
}

fn manager() -> RecoveryManager<Log> {
    RecoveryManager::empty(RecoveryConfig::default()).unwrap()
}

#[tokio::test]
async fn cheapest_first_ties_in_registration_order_and_stop_at_a_confident_success() {
    let m = manager();
    m.add_strategy(strategy("expensive", 0.9, ok)).await;
    m.add_strategy(strategy("tie_a", 0.2, fail)).await;
    m.add_strategy(strategy("cheap_weak", 0.1, weak)).await;
    m.add_strategy(strategy("tie_b", 0.2, ok)).await;
    m.add_strategy(strategy("never", 0.95, ok)).await;
    let log = Arc::new(Log::default());
    let r = m.recover(log.clone(), comm(), None, None).await.unwrap();
    assert_eq!(*log.ran.lock().unwrap(), ["cheap_weak", "tie_a", "tie_b"]);
    assert!(r.success);
    assert_eq!(r.metadata["strategies_tried"], "cheap_weak,tie_a,tie_b");
    let history = m.get_recovery_history().await;
    let ids: Vec<_> = history.iter().map(|a| a.strategy_id.as_str()).collect();
    assert_eq!(ids, ["cheap_weak", "tie_a", "tie_b"]);
    assert!(
        history
            .iter()
            .all(|a| a.recovery_id == history[0].recovery_id)
    );
}

#[tokio::test]
async fn a_result_that_says_stop_stops() {
    let m = manager();
    m.add_strategy(strategy("stopper", 0.1, give_up)).await;
    m.add_strategy(strategy("later", 0.2, ok)).await;
    let log = Arc::new(Log::default());
    let r = m.recover(log.clone(), comm(), None, None).await.unwrap();
    assert!(!r.success);
    assert_eq!(*log.ran.lock().unwrap(), ["stopper"]);
}

#[tokio::test]
async fn non_recoverable_errors_run_no_strategy() {
    let m = manager();
    m.add_strategy(Arc::new(Scripted {
        handles: ErrorKind::ALL.to_vec(),
        ..Arc::into_inner(strategy("any", 0.1, ok)).unwrap()
    }))
    .await;
    let log = Arc::new(Log::default());
    for error in [
        SwarmError::AgentNotFound(AgentId::new()),
        SwarmError::InvalidConfiguration("max_agents = 0".into()),
        SwarmError::ProtocolMismatch("v1 vs v3".into()),
    ] {
        let r = m.recover(log.clone(), error, None, None).await.unwrap();
        assert!(!r.success && !r.continue_recovery);
        assert!(
            r.action_taken.contains("manual intervention required"),
            "{}",
            r.action_taken
        );
        assert!(matches!(
            r.action,
            RecoveryAction::ManualInterventionRequired { .. }
        ));
    }
    assert!(log.ran.lock().unwrap().is_empty());
    let h = m.get_recovery_history().await;
    assert_eq!(h.len(), 3);
    assert!(h.iter().all(|a| a.strategy_id == NO_STRATEGY));
}

#[tokio::test]
async fn an_error_no_strategy_handles_is_a_failure_that_says_so() {
    let m = manager();
    m.add_strategy(strategy("comm_only", 0.1, ok)).await;
    let r = m
        .recover(
            Arc::new(Log::default()),
            SwarmError::TransactionFailed("x".into()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(!r.success);
    assert!(
        r.action_taken
            .contains("no registered strategy can handle TransactionFailed"),
        "{}",
        r.action_taken
    );
}

fn retried_twice(_: &RecoveryContext<Log>) -> RecoveryResult {
    RecoveryResult::failure(
        RecoveryAction::Retried { attempts: 2 },
        "two retries, no luck",
    )
}
fn retry_worked(_: &RecoveryContext<Log>) -> RecoveryResult {
    RecoveryResult::success(RecoveryAction::Retried { attempts: 1 }, "the retry worked")
}

/// `retry_count` is the retries already made for this failure of this task: what earlier
/// recoveries of the task reported, whatever the error's kind, until a retry works.
#[tokio::test]
async fn retry_count_adds_up_the_retries_earlier_recoveries_of_the_task_made() {
    let m = manager();
    m.add_strategy(strategy("retrying", 0.1, retried_twice))
        .await;
    let log = Arc::new(Log::default());
    let (t1, t2) = (TaskId::from_u128(1), TaskId::from_u128(2));
    for (error, task) in [
        (comm(), Some(t1)),
        (comm(), Some(t1)),
        (comm(), Some(t2)),
        (SwarmError::StateCorruption("x".into()), Some(t1)),
        (comm(), None),
    ] {
        m.recover(log.clone(), error, task, None).await.unwrap();
    }
    assert_eq!(*log.retry_counts.lock().unwrap(), [0, 2, 0, 4, 0]);
    assert_eq!(m.retries_made(t1), 6);

    // A caller that counts its own re-runs says so.
    m.recover_with(
        RecoveryRequest::new(log.clone(), comm())
            .with_task(t2)
            .with_retry_count(9),
    )
    .await
    .unwrap();
    assert_eq!(log.retry_counts.lock().unwrap()[5], 9);

    // Within one recovery, a later strategy sees the retries an earlier one made.
    let m = manager();
    m.add_strategy(strategy("first", 0.1, retried_twice)).await;
    m.add_strategy(strategy("second", 0.2, retry_worked)).await;
    let log = Arc::new(Log::default());
    m.recover(log.clone(), comm(), Some(t1), None)
        .await
        .unwrap();
    assert_eq!(*log.retry_counts.lock().unwrap(), [0, 2]);
    // The retry worked: the failure is over, and the next one starts at 0.
    assert_eq!(m.retries_made(t1), 0);
}

#[tokio::test(start_paused = true)]
async fn waiting_holds_no_slot_and_no_more_than_the_limit_work_at_once() {
    let m = Arc::new(manager());
    m.add_strategy(Arc::new(Scripted {
        delay: Duration::from_millis(100),
        ..Arc::into_inner(strategy("waits", 0.1, ok)).unwrap()
    }))
    .await;
    let log = Arc::new(Log::default());
    let start = Instant::now();
    let mut handles = Vec::new();
    for i in 0..1000u128 {
        let (m, log) = (m.clone(), log.clone());
        handles.push(tokio::spawn(async move {
            m.recover(log, comm(), Some(TaskId::from_u128(i)), None)
                .await
                .unwrap()
        }));
    }
    for h in handles {
        assert!(h.await.unwrap().success);
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(log.ran.lock().unwrap().len(), 1000);
    let max = log.max_working.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "{max} recoveries worked at once");
    assert_eq!(m.available_slots(), 3);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_recovery_releases_its_slot_and_keeps_history_consistent() {
    let m = Arc::new(manager());
    m.add_strategy(Arc::new(Scripted {
        delay: Duration::from_secs(10),
        ..Arc::into_inner(strategy("slow", 0.1, ok)).unwrap()
    }))
    .await;
    let log = Arc::new(Log::default());
    let fut = m.recover(log.clone(), comm(), None, None);
    // Poll it until it is inside the strategy's delay, then drop it.
    assert!(
        tokio::time::timeout(Duration::from_secs(1), fut)
            .await
            .is_err()
    );
    assert_eq!(m.available_slots(), 3);
    assert!(m.get_recovery_history().await.is_empty());
}

/// A strategy that works forever (never reaching a delay), to drop a recovery mid-work.
struct Stuck;

#[async_trait]
impl StrategyInfo for Stuck {
    fn strategy_id(&self) -> &str {
        "stuck"
    }
    fn description(&self) -> &str {
        "never finishes"
    }
    async fn can_handle(&self, _: &SwarmError) -> bool {
        true
    }
    async fn cost_estimate(&self) -> f64 {
        0.0
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<Log> for Stuck {
    async fn recover(&self, _: &RecoveryContext<Log>, _: &SwarmError) -> RecoveryResult {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_a_recovery_mid_work_releases_its_slot() {
    let m = manager();
    m.add_strategy(Arc::new(Stuck)).await;
    let log = Arc::new(Log::default());
    let mut busy = Box::pin(m.recover(log.clone(), comm(), None, None));
    assert!(futures_poll_once(busy.as_mut()).await.is_none());
    assert_eq!(m.available_slots(), 2, "the stuck recovery holds a slot");
    drop(busy);
    assert_eq!(m.available_slots(), 3);
    assert!(m.get_recovery_history().await.is_empty());
}

async fn futures_poll_once<F: std::future::Future + Unpin>(f: F) -> Option<F::Output> {
    tokio::time::timeout(Duration::from_millis(1), f).await.ok()
}

/// The deadline bounds the whole recovery: a strategy still at work when it passes is stopped,
/// and no other starts.
#[tokio::test(start_paused = true)]
async fn the_deadline_stops_a_strategy_at_work_and_starts_no_other() {
    let m = manager();
    m.add_strategy(Arc::new(Scripted {
        delay: Duration::from_secs(2),
        ..Arc::into_inner(strategy("first", 0.1, fail)).unwrap()
    }))
    .await;
    m.add_strategy(strategy("second", 0.2, ok)).await;
    let log = Arc::new(Log::default());
    let request = RecoveryRequest::new(log.clone(), comm())
        .with_deadline(Instant::now() + Duration::from_secs(1));
    let started = Instant::now();
    let r = m.recover_with(request).await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "returned at the deadline"
    );
    assert!(!r.success);
    assert!(!r.continue_recovery);
    assert!(
        r.action_taken
            .contains("deadline passed while first was at work"),
        "{}",
        r.action_taken
    );
    assert!(
        log.ran.lock().unwrap().is_empty(),
        "first was stopped mid-work and second never started"
    );

    let past = RecoveryRequest::new(log.clone(), comm()).with_deadline(Instant::now());
    let e = m.recover_with(past).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CoordinationTimeout);
}

#[tokio::test]
async fn statistics_match_the_history() {
    let m = RecoveryManager::empty(RecoveryConfig {
        history_retention: 5,
        ..Default::default()
    })
    .unwrap();
    m.add_strategy(strategy("weak", 0.1, weak)).await;
    m.add_strategy(strategy("ok", 0.2, ok)).await;
    let log = Arc::new(Log::default());
    for _ in 0..4 {
        m.recover(log.clone(), comm(), None, None).await.unwrap();
    }
    let history = m.get_recovery_history().await;
    assert_eq!(history.len(), 5);
    let stats = m.statistics().await;
    assert_eq!(stats.overall.attempts, 5);
    let rate = history.iter().filter(|a| a.result.success).count() as f64 / history.len() as f64;
    assert_eq!(stats.overall.success_rate(), rate);
    assert_eq!(
        stats.by_error_kind[&ErrorKind::CommunicationError].attempts,
        5
    );
}

#[tokio::test]
async fn remove_strategy_by_id() {
    let m = manager();
    m.add_strategy(strategy("a", 0.1, ok)).await;
    m.add_strategy(strategy("b", 0.1, ok)).await;
    assert!(m.remove_strategy("a").await);
    assert!(!m.remove_strategy("a").await);
    assert_eq!(m.strategy_ids(), ["b"]);
}

#[test]
fn a_bad_config_is_refused() {
    let e = RecoveryManager::<Log>::empty(RecoveryConfig {
        history_retention: 0,
        ..Default::default()
    })
    .err()
    .unwrap();
    assert_eq!(e.field, "history_retention");
}
