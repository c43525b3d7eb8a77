//! The manager with the strategies of this workspace: registration by builder step (each asking
//! only for its capability), the spec's `new()`, the settings file, `create_checkpoint`, the
//! resource monitor, background monitoring, and a retry counted once. The targets are the
//! testkit's fakes.
// With some features off, some helpers and imports have no user.
#![cfg_attr(
    not(all(
        feature = "backoff",
        feature = "checkpoint",
        feature = "degradation",
        feature = "healing"
    )),
    allow(unused_imports, dead_code)
)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_core::{ErrorKind, SwarmError, TaskId};
use recovery_manager::{RecoveryConfig, RecoveryManager, RecoverySettings};
use recovery_testkit::{FakeLevel, FakeRetry, FakeState, FakeTarget, ScriptedStrategy};

fn comm() -> SwarmError {
    SwarmError::CommunicationError("reset".into())
}

#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
#[test]
fn new_registers_the_four_strategies_in_cost_order() {
    let manager = RecoveryManager::<FakeTarget>::new();
    assert_eq!(
        manager.strategy_ids(),
        [
            "exponential_backoff",
            "self_healing",
            "checkpoint_recovery",
            "graceful_degradation"
        ]
    );
    assert!(manager.backoff_strategy().is_some());
    assert!(manager.checkpoint_strategy().is_some());
    assert!(manager.degradation_strategy().is_some());
}

#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
#[test]
fn with_config_rejects_a_bad_value_naming_the_field() {
    let err = RecoveryManager::<FakeTarget>::with_config(RecoveryConfig {
        max_concurrent_recoveries: 0,
        ..RecoveryConfig::default()
    })
    .err()
    .expect("zero slots is refused");
    assert!(
        err.to_string().contains("max_concurrent_recoveries"),
        "{err}"
    );
}

/// A target that can only retry gets a manager that only retries: the step's bound is its
/// capability, not the features of the build.
#[cfg(feature = "backoff")]
#[tokio::test(start_paused = true)]
async fn a_retry_only_target_gets_a_backoff_only_manager() {
    let manager = RecoveryManager::<FakeRetry>::builder()
        .backoff(recovery_backoff::ExponentialBackoffStrategy::default())
        .build()
        .unwrap();
    assert_eq!(manager.strategy_ids(), ["exponential_backoff"]);
    let target = Arc::new(FakeRetry::failing(1, comm()));
    let result = manager
        .recover(Arc::clone(&target), comm(), None, None)
        .await
        .unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(target.call_count(), 2);
}

#[test]
fn settings_file_errors_name_the_field() {
    let err = RecoverySettings::from_toml_str("[recovery]\nhistory_retention = \"lots\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("history_retention"), "{err}");
    let err = RecoverySettings::from_toml_str("[recovery]\nmax_concurent_recoveries = 3\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("max_concurent_recoveries"), "{err}");
    let err = RecoverySettings::from_toml_str("[recovery]\nmax_concurrent_recoveries = 0\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("[recovery]") && err.contains("max_concurrent_recoveries"),
        "{err}"
    );
    let err = RecoverySettings::from_toml_str("[recovery]\nhistory_retention = 1000000000000\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("history_retention"), "{err}");
}

#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
#[tokio::test]
async fn settings_file_builds_the_manager_it_describes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recovery.toml");
    let text = format!(
        "[recovery]\nmax_concurrent_recoveries = 7\n\
         [checkpoint]\nmax_checkpoints = 2\ndir = {:?}\n\
         [healing]\ndefault_rules = false\n",
        dir.path().join("ckpt")
    );
    std::fs::write(&path, text).unwrap();
    let settings = RecoverySettings::load(&path).unwrap();
    let manager: RecoveryManager<FakeTarget> = settings
        .builder()
        .await
        .unwrap()
        .without_sampler()
        .build()
        .unwrap();
    assert_eq!(manager.config().max_concurrent_recoveries, 7);

    let fake = Arc::new(FakeTarget::new());
    for i in 0..3 {
        fake.state.set(i);
        manager.create_checkpoint(&fake).await.unwrap();
    }
    let files = std::fs::read_dir(dir.path().join("ckpt"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "ckpt"))
        .count();
    assert_eq!(
        files, 2,
        "retention of the [checkpoint] section applies on disk"
    );

    // No default rules: a communication error finds no healing rule.
    manager.remove_strategy("exponential_backoff").await;
    manager
        .recover(Arc::clone(&fake), comm(), None, None)
        .await
        .unwrap();
    assert!(
        fake.healing.restarts().is_empty(),
        "without the default rules nothing restarts agent_protocol"
    );
}

#[cfg(feature = "checkpoint")]
#[tokio::test]
async fn create_checkpoint_needs_a_checkpoint_strategy() {
    let manager = RecoveryManager::<FakeState<u64>>::empty(RecoveryConfig::default()).unwrap();
    let err = manager
        .create_checkpoint(&FakeState::new(0))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfiguration);
    assert!(err.to_string().contains(".checkpoint("), "{err}");

    let manager = RecoveryManager::<FakeState<u64>>::builder()
        .checkpoint(recovery_checkpoint::CheckpointRecoveryStrategy::default())
        .build()
        .unwrap();
    let fake = Arc::new(FakeState::new(41));
    let id = manager.create_checkpoint(&fake).await.unwrap();
    fake.set(99);
    // The spec's line: the strategy takes the `Arc` the caller holds.
    let strategy = manager.checkpoint_strategy().unwrap();
    strategy
        .restore_from_checkpoint(&fake, Some(id))
        .await
        .unwrap();
    assert_eq!(fake.get(), 41);
}

/// A sampler that counts its calls and reports what the test sets.
#[cfg(feature = "degradation")]
#[derive(Clone, Default)]
struct Scripted {
    calls: Arc<AtomicUsize>,
    cpu: Arc<Mutex<f64>>,
}

#[cfg(feature = "degradation")]
impl recovery_degradation::ResourceSampler for Scripted {
    fn sample(&mut self) -> recovery_degradation::Sample {
        self.calls.fetch_add(1, Ordering::SeqCst);
        recovery_degradation::Sample {
            cpu: Some(*self.cpu.lock().unwrap()),
            memory: Some(0.1),
        }
    }
}

#[cfg(feature = "degradation")]
fn degradation() -> recovery_degradation::GracefulDegradationStrategy {
    recovery_degradation::GracefulDegradationStrategy::new(
        recovery_degradation::DegradationConfig::default(),
        Arc::new(recovery_degradation::ResourceMonitor::new()),
    )
    .unwrap()
}

#[cfg(feature = "degradation")]
#[tokio::test(start_paused = true)]
async fn monitoring_samples_and_lifts_degradation_without_an_error() {
    use recovery_degradation::DegradationLevel;

    let sampler = Scripted::default();
    *sampler.cpu.lock().unwrap() = 0.99;
    let manager = RecoveryManager::<FakeLevel>::builder()
        .config(RecoveryConfig {
            monitoring_interval: Duration::from_secs(1),
            ..RecoveryConfig::default()
        })
        .degradation(degradation())
        .sampler(sampler.clone())
        .build()
        .unwrap();
    let fake = Arc::new(FakeLevel::new());
    manager.attach(&fake);
    let handle = manager.start_monitoring().await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(sampler.calls.load(Ordering::SeqCst) >= 1);
    assert_eq!(
        manager.resource_monitor().get_usage().await.cpu_percent,
        0.99
    );
    assert!(
        fake.level() > DegradationLevel::Normal,
        "pressure raised the level: {:?}",
        fake.level()
    );

    // Pressure falls: within a few ticks the level is back to normal, no error needed.
    *sampler.cpu.lock().unwrap() = 0.2;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(fake.level(), DegradationLevel::Normal);

    // Shutting down stops everything: no more samples.
    handle.shutdown().await;
    let calls = sampler.calls.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(sampler.calls.load(Ordering::SeqCst), calls);
}

/// The spec's lines as written: the handle is dropped, and monitoring goes on taking a
/// checkpoint every interval, of a target attached after it started, until the manager is
/// dropped.
#[cfg(feature = "checkpoint")]
#[tokio::test(start_paused = true)]
async fn monitoring_started_as_the_spec_writes_it_lasts_until_the_manager_is_dropped() {
    let recovery_manager = RecoveryManager::<FakeState<u64>>::builder()
        .config(RecoveryConfig {
            checkpoint_interval: Duration::from_secs(300),
            ..RecoveryConfig::default()
        })
        .checkpoint(recovery_checkpoint::CheckpointRecoveryStrategy::default())
        .build()
        .unwrap();
    let store = Arc::clone(recovery_manager.checkpoint_strategy().unwrap().store());

    // Start background monitoring
    recovery_manager.start_monitoring().await;
    assert!(recovery_manager.is_monitoring());

    // Attached after monitoring started: picked up at the next tick.
    tokio::time::sleep(Duration::from_secs(100)).await;
    let target = Arc::new(FakeState::new(7));
    recovery_manager.attach(&target);
    tokio::time::sleep(Duration::from_secs(201)).await;
    assert_eq!(store.list().await.unwrap().len(), 1, "one interval in");
    tokio::time::sleep(Duration::from_secs(3 * 300)).await;
    assert_eq!(store.list().await.unwrap().len(), 4);

    // Monitoring keeps no reference to its manager: dropping the manager ends it.
    drop(recovery_manager);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        store.list().await.unwrap().len(),
        4,
        "nothing runs after the manager is gone"
    );
    assert_eq!(
        Arc::strong_count(&target),
        1,
        "monitoring held only a weak reference"
    );
}

#[cfg(feature = "checkpoint")]
#[tokio::test(start_paused = true)]
async fn stop_monitoring_and_shutdown_stop_it() {
    let manager = RecoveryManager::<FakeState<u64>>::builder()
        .config(RecoveryConfig {
            checkpoint_interval: Duration::from_secs(10),
            ..RecoveryConfig::default()
        })
        .checkpoint(recovery_checkpoint::CheckpointRecoveryStrategy::default())
        .build()
        .unwrap();
    let store = Arc::clone(manager.checkpoint_strategy().unwrap().store());
    let target = Arc::new(FakeState::new(1));
    manager.attach(&target);

    let handle = manager.start_monitoring().await;
    tokio::time::sleep(Duration::from_secs(25)).await;
    assert_eq!(store.list().await.unwrap().len(), 2);
    assert!(handle.is_running());
    handle.shutdown().await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(store.list().await.unwrap().len(), 2);

    manager.start_monitoring().await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(store.list().await.unwrap().len(), 3);
    manager.stop_monitoring();
    assert!(!manager.is_monitoring());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(store.list().await.unwrap().len(), 3);
}

#[cfg(feature = "healing")]
#[tokio::test]
async fn healing_runs_through_the_manager_and_really_acts() {
    use recovery_healing::ConfigValue;
    use recovery_testkit::FakeHealing;

    let manager = RecoveryManager::<FakeHealing>::builder()
        .healing(recovery_healing::SelfHealingStrategy::new())
        .build()
        .unwrap();
    let fake = Arc::new(FakeHealing::new(["agent_protocol"]));
    let result = manager
        .recover(
            Arc::clone(&fake),
            SwarmError::CoordinationTimeout("slow".into()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(
        fake.config().get("task_timeout_secs"),
        Some(ConfigValue::Integer(600))
    );
}

#[cfg(feature = "backoff")]
#[tokio::test(start_paused = true)]
async fn backoff_really_retries_through_the_manager() {
    let manager = RecoveryManager::<FakeRetry>::builder()
        .backoff(recovery_backoff::ExponentialBackoffStrategy::default())
        .build()
        .unwrap();
    let fake = Arc::new(FakeRetry::failing(2, comm()));
    let started = tokio::time::Instant::now();
    let result = manager
        .recover(Arc::clone(&fake), comm(), None, None)
        .await
        .unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(fake.call_count(), 3);
    // 100 + 200 + 400 ms, give or take the default 10% jitter.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(630) && waited <= Duration::from_millis(770),
        "{waited:?}"
    );
}

/// `max_retries = 5` is five re-runs of a task's failure in all, however many recoveries it
/// takes: the manager adds up the retries each recovery reports. (It used to count recoveries,
/// and the backoff strategy read the count as retries: each new recovery of an always-failing
/// task started over near the beginning of the schedule.)
#[cfg(feature = "backoff")]
#[tokio::test(start_paused = true)]
async fn a_failure_gets_max_retries_reruns_across_recoveries() {
    use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy, RetryBudget};

    // A budget that allows two retries per recovery splits the five across three recoveries.
    let budget = Arc::new(RetryBudget::new(Duration::from_secs(1), 0, 2.0).unwrap());
    let manager = RecoveryManager::<FakeRetry>::builder()
        .backoff(
            ExponentialBackoffStrategy::new(BackoffConfig {
                max_retries: 5,
                ..BackoffConfig::default()
            })
            .unwrap()
            .with_budget(budget),
        )
        .build()
        .unwrap();
    let fake = Arc::new(FakeRetry::always_failing(comm()));
    let task = TaskId::from_u128(42);
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        // The budget's window passes between recoveries.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let result = manager
            .recover(Arc::clone(&fake), comm(), Some(task), None)
            .await
            .unwrap();
        assert!(!result.success);
        outcomes.push((result.retries_made(), result.is_no_change()));
    }
    assert_eq!(fake.call_count(), 5, "{outcomes:?}");
    assert_eq!(
        outcomes,
        [
            (2, false),
            (2, false),
            (1, false),
            (0, true),
            (0, true),
            (0, true)
        ]
    );
    assert_eq!(manager.retries_made(task), 5);
    // Each retry was told which it was: 1 to 5.
    let attempts: Vec<u32> = fake.calls().iter().map(|c| c.request.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    // Another task's failure has its own five.
    let other = manager
        .recover(Arc::clone(&fake), comm(), Some(TaskId::from_u128(43)), None)
        .await
        .unwrap();
    assert_eq!(other.retries_made(), 2);
}

/// A degradation that finds the level already right changed nothing: not a success, so the
/// manager goes on to the next strategy (it used to stop there, on a "success" of 0.6).
#[cfg(feature = "degradation")]
#[tokio::test]
async fn a_no_effect_degradation_is_not_a_success_and_the_manager_moves_on() {
    use recovery_degradation::DegradationLevel;

    let degradation = degradation();
    let monitor = Arc::clone(degradation.monitor());
    let next = Arc::new(ScriptedStrategy::succeeding("after_degradation").with_cost(0.9));
    let manager = RecoveryManager::<FakeLevel>::builder()
        .degradation(degradation)
        .strategy(next.clone())
        .build()
        .unwrap();
    let fake = Arc::new(FakeLevel::new());
    // The load calls for Reduced, and the target already runs at Reduced.
    monitor.update_cpu_usage(0.81);
    fake.set_level(DegradationLevel::Reduced);
    let error = SwarmError::SwarmSizeLimitExceeded("500 tasks".into());
    let result = manager
        .recover(Arc::clone(&fake), error, None, None)
        .await
        .unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(next.call_count(), 1, "the manager went on");
    assert_eq!(
        result.metadata["strategies_tried"],
        "graceful_degradation,after_degradation"
    );
    let history = manager.get_recovery_history().await;
    assert!(!history[0].result.success && history[0].result.is_no_change());
    assert!(fake.applied().is_empty(), "nothing was applied");
}
