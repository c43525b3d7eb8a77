//! The strategy through its public API: recovery results, and levels that rise and fall with
//! usage while a coordinator refuses and completes work (paused time).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_core::{
    Priority, RecoveryAction, RecoveryContext, RecoveryStrategy, StrategyInfo, SwarmError,
    async_trait,
};
use recovery_degradation::{
    Degradable, DegradationConfig, DegradationLevel, GracefulDegradationStrategy, LevelChange,
    LevelPolicy, Pressure, ResourceMonitor,
};

/// A coordinator: refuses what its level does not admit, runs what it accepted to the end, and
/// records every level it was asked to apply.
struct FakeCoordinator {
    level: Mutex<DegradationLevel>,
    applied: Mutex<Vec<DegradationLevel>>,
    monitor: Arc<ResourceMonitor>,
    config: DegradationConfig,
    retry_after: Duration,
    accepted: AtomicUsize,
    completed: Arc<AtomicUsize>,
    /// Whether apply_level fails (the system cannot degrade).
    refuse_levels: bool,
    /// Whether apply_level says Ok without changing anything (a broken implementation).
    lie: bool,
}

impl FakeCoordinator {
    fn new(monitor: Arc<ResourceMonitor>) -> Self {
        Self {
            level: Mutex::new(DegradationLevel::Normal),
            applied: Mutex::new(Vec::new()),
            monitor,
            config: DegradationConfig::default(),
            retry_after: LevelPolicy::default().retry_after,
            accepted: AtomicUsize::new(0),
            completed: Arc::new(AtomicUsize::new(0)),
            refuse_levels: false,
            lie: false,
        }
    }

    fn level(&self) -> DegradationLevel {
        *self.level.lock().unwrap()
    }

    /// Submit work of `priority` that runs for `runs_for`; refused with the level's error, or
    /// accepted and run to completion whatever the level does afterwards.
    fn submit(&self, priority: Priority, runs_for: Duration) -> Result<(), SwarmError> {
        let cause = Pressure::of(&self.monitor.usage(), &self.config).resource;
        self.level()
            .admit(priority, Some(cause), self.retry_after)?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        let guard = self.monitor.track_task();
        let completed = Arc::clone(&self.completed);
        tokio::spawn(async move {
            tokio::time::sleep(runs_for).await;
            completed.fetch_add(1, Ordering::SeqCst);
            drop(guard);
        });
        Ok(())
    }
}

#[async_trait]
impl Degradable for FakeCoordinator {
    async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
        if self.refuse_levels {
            return Err(SwarmError::ResourceConflict(
                "executor is being resized".into(),
            ));
        }
        if !self.lie {
            *self.level.lock().unwrap() = level;
            self.applied.lock().unwrap().push(level);
        }
        Ok(())
    }

    async fn current_level(&self) -> DegradationLevel {
        self.level()
    }
}

fn strategy(monitor: &Arc<ResourceMonitor>) -> GracefulDegradationStrategy {
    GracefulDegradationStrategy::new(DegradationConfig::default(), Arc::clone(monitor)).unwrap()
}

#[tokio::test(start_paused = true)]
async fn levels_rise_and_fall_with_usage_refusing_by_priority_and_completing_accepted_work() {
    let monitor = Arc::new(ResourceMonitor::new());
    let strategy = Arc::new(strategy(&monitor));
    let coordinator = Arc::new(FakeCoordinator::new(Arc::clone(&monitor)));

    // The manager's monitoring loop, every 250 ms.
    let changes = Arc::new(Mutex::new(Vec::<LevelChange>::new()));
    let loop_handle = {
        let (strategy, coordinator, changes) = (
            Arc::clone(&strategy),
            Arc::clone(&coordinator),
            Arc::clone(&changes),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if let Some(change) = strategy.step(coordinator.as_ref()).await.unwrap() {
                    changes.lock().unwrap().push(change);
                }
            }
        })
    };

    use DegradationLevel::*;
    // (cpu fraction, the level expected after the loop has seen it)
    let script = [
        (0.50, Normal),
        (0.81, Reduced),  // pressure 1.0125: Reduced entered at 1.0
        (0.79, Reduced),  // 0.9875: within the 0.05 margin, kept
        (0.85, Minimal),  // 1.0625: Minimal entered at 1.05
        (0.90, Critical), // 1.125: Critical entered at 1.10
        (0.86, Critical), // 1.075: kept (left below 1.05)
        (0.83, Minimal),  // 1.0375: Critical left, Minimal kept (left below 1.0)
        (0.78, Reduced),  // 0.975: Minimal left, Reduced kept (left below 0.95)
        (0.75, Normal),   // 0.9375: Reduced left
    ];
    let mut refused = 0;
    for (cpu, expected) in script {
        monitor.update_cpu_usage(cpu);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(coordinator.level(), expected, "cpu {cpu}");
        assert_eq!(strategy.level().await, expected);
        for priority in Priority::ALL {
            // Long work: it is still running when the level rises further.
            match coordinator.submit(priority, Duration::from_secs(2)) {
                Ok(()) => assert!(expected.admits(priority), "{expected} admitted {priority}"),
                Err(SwarmError::Overloaded {
                    reason,
                    retry_after,
                }) => {
                    refused += 1;
                    assert!(!expected.admits(priority), "{expected} refused {priority}");
                    assert_eq!(retry_after, Duration::from_secs(30));
                    assert!(
                        reason.contains(&format!("degradation level {expected}"))
                            && reason.contains(&format!("this work is {priority}"))
                            && reason.contains("pressure from cpu"),
                        "{reason}"
                    );
                }
                Err(other) => panic!("refused with the wrong error: {other}"),
            }
        }
    }
    // Normal 4x, Reduced 3 levels x 3 admitted, Minimal 2x2, Critical 2x1.
    assert_eq!(refused, 4 * 9 - (4 + 4 + 9 + 4 + 2));

    let entered: Vec<_> = changes.lock().unwrap().iter().map(|c| c.to).collect();
    assert_eq!(
        entered,
        [Reduced, Minimal, Critical, Minimal, Reduced, Normal]
    );
    assert_eq!(*coordinator.applied.lock().unwrap(), entered);
    for change in changes.lock().unwrap().iter() {
        assert!(change.pressure.value >= 0.0 && change.usage.cpu_percent > 0.0);
    }

    // Every accepted piece of work completes, including low-priority work accepted at Normal
    // before the level rose to Critical.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let accepted = coordinator.accepted.load(Ordering::SeqCst);
    assert_eq!(accepted, 4 + 4 + 9 + 4 + 2);
    assert_eq!(coordinator.completed.load(Ordering::SeqCst), accepted);
    assert_eq!(monitor.active_tasks(), 0);
    loop_handle.abort();
}

#[tokio::test(start_paused = true)]
async fn task_count_alone_drives_the_level() {
    let monitor = Arc::new(ResourceMonitor::new());
    let strategy = strategy(&monitor);
    let coordinator = FakeCoordinator::new(Arc::clone(&monitor));
    monitor.set_active_tasks(560);
    let change = strategy.step(&coordinator).await.unwrap().unwrap();
    assert_eq!(change.to, DegradationLevel::Critical);
    assert_eq!(change.pressure.resource.to_string(), "tasks");
    assert_eq!(strategy.step(&coordinator).await.unwrap(), None);
    monitor.set_active_tasks(10);
    // Down one level a step (gradual recovery): Critical, Minimal, Reduced, Normal.
    for (from, to) in [
        (DegradationLevel::Critical, DegradationLevel::Minimal),
        (DegradationLevel::Minimal, DegradationLevel::Reduced),
        (DegradationLevel::Reduced, DegradationLevel::Normal),
    ] {
        let change = strategy.step(&coordinator).await.unwrap().unwrap();
        assert_eq!((change.from, change.to), (from, to));
    }
    assert_eq!(strategy.step(&coordinator).await.unwrap(), None);
}

fn ctx(target: &Arc<FakeCoordinator>) -> RecoveryContext<FakeCoordinator> {
    RecoveryContext::new(Arc::clone(target))
}

#[tokio::test]
async fn recover_applies_the_level_usage_calls_for_and_reports_the_usage() {
    let monitor = Arc::new(ResourceMonitor::new());
    let strategy = strategy(&monitor);
    let target = Arc::new(FakeCoordinator::new(Arc::clone(&monitor)));
    monitor.update_memory_usage(0.90);
    monitor.set_active_connections(12);
    let error = SwarmError::SwarmSizeLimitExceeded("601 agents".into());
    let result = strategy.recover(&ctx(&target), &error).await;
    assert!(result.success, "{result:?}");
    assert_eq!(result.action, RecoveryAction::Degraded { level: 2 });
    assert_eq!(target.level(), DegradationLevel::Minimal);
    assert_eq!(result.confidence, 0.8);
    assert!(!result.continue_recovery);
    assert_eq!(result.metadata["memory_percent"], "0.9");
    assert_eq!(result.metadata["cpu_percent"], "0");
    assert_eq!(result.metadata["active_connections"], "12");
    assert_eq!(result.metadata["active_tasks"], "0");
    assert_eq!(result.metadata["pressure_resource"], "memory");
    assert_eq!(result.metadata["level_before"], "normal");
    assert_eq!(result.metadata["level"], "minimal");
    assert_eq!(result.metadata["applied"], "true");

    // Again at the same usage: nothing to apply, and it says so; not a success, so a manager
    // goes on to what else could help.
    let again = strategy.recover(&ctx(&target), &error).await;
    assert!(!again.success && again.continue_recovery, "{again:?}");
    assert!(again.is_no_change(), "{:?}", again.action);
    assert_eq!(again.metadata["applied"], "false");
    assert_eq!(*target.applied.lock().unwrap(), [DegradationLevel::Minimal]);

    // Usage has fallen within Minimal's margin: recover keeps the level, never lowers it.
    monitor.update_memory_usage(0.86);
    let kept = strategy.recover(&ctx(&target), &error).await;
    assert!(kept.is_no_change(), "{kept:?}");
    assert_eq!(target.level(), DegradationLevel::Minimal);
}

#[tokio::test]
async fn recover_without_pressure_fails_and_changes_nothing() {
    let monitor = Arc::new(ResourceMonitor::new());
    let strategy = strategy(&monitor);
    let target = Arc::new(FakeCoordinator::new(Arc::clone(&monitor)));
    monitor.update_cpu_usage(0.3);
    let error = SwarmError::CoordinationTimeout("task 4 ran 30 s".into());
    let result = strategy.recover(&ctx(&target), &error).await;
    assert!(!result.success);
    assert!(result.continue_recovery);
    assert!(result.is_no_change(), "{:?}", result.action);
    assert!(
        result
            .action_taken
            .contains("no resource pressure measured"),
        "{}",
        result.action_taken
    );
    assert_eq!(result.metadata["cpu_percent"], "0.3");
    assert!(target.applied.lock().unwrap().is_empty());
}

#[tokio::test]
async fn recover_fails_when_the_target_cannot_or_does_not_degrade() {
    let monitor = Arc::new(ResourceMonitor::new());
    monitor.update_cpu_usage(0.99);
    let error = SwarmError::Overloaded {
        reason: "queue full".into(),
        retry_after: Duration::from_secs(1),
    };

    let refusing = Arc::new(FakeCoordinator {
        refuse_levels: true,
        ..FakeCoordinator::new(Arc::clone(&monitor))
    });
    let s = strategy(&monitor);
    let result = s.recover(&ctx(&refusing), &error).await;
    assert!(!result.success && result.continue_recovery);
    assert!(result.action_taken.contains("executor is being resized"));
    assert_eq!(s.level().await, DegradationLevel::Normal);

    let lying = Arc::new(FakeCoordinator {
        lie: true,
        ..FakeCoordinator::new(Arc::clone(&monitor))
    });
    let s = strategy(&monitor);
    let result = s.recover(&ctx(&lying), &error).await;
    assert!(!result.success);
    assert!(
        result.action_taken.contains("runs at normal"),
        "{}",
        result.action_taken
    );
    let e = s.step(lying.as_ref()).await.unwrap_err();
    assert!(matches!(e, SwarmError::ConcurrencyError(_)), "{e}");
}

#[tokio::test]
async fn handles_the_specs_kinds_and_overload_only() {
    let s = GracefulDegradationStrategy::default();
    let handled = [
        SwarmError::SwarmSizeLimitExceeded(String::new()),
        SwarmError::CoordinationTimeout(String::new()),
        SwarmError::ResourceConflict(String::new()),
        SwarmError::ConcurrencyError(String::new()),
        SwarmError::Overloaded {
            reason: String::new(),
            retry_after: Duration::ZERO,
        },
    ];
    for e in &handled {
        assert!(s.can_handle(e).await, "{e}");
    }
    let not_handled = [
        SwarmError::CommunicationError(String::new()),
        SwarmError::TransactionFailed(String::new()),
        SwarmError::StateCorruption(String::new()),
        SwarmError::InvalidConfiguration(String::new()),
    ];
    for e in &not_handled {
        assert!(!s.can_handle(e).await, "{e}");
    }
    let monitor = Arc::new(ResourceMonitor::new());
    monitor.update_cpu_usage(1.0);
    let s = strategy(&monitor);
    let target = Arc::new(FakeCoordinator::new(Arc::clone(&monitor)));
    let result = s.recover(&ctx(&target), &not_handled[0]).await;
    assert!(!result.success);
    assert!(target.applied.lock().unwrap().is_empty());

    assert_eq!(s.strategy_id(), "graceful_degradation");
    assert_eq!(s.cost_estimate().await, 0.4);
    assert!(!s.requires_external_resources().await);
}

#[tokio::test]
async fn works_through_a_trait_object_and_checks_its_settings() {
    let monitor = Arc::new(ResourceMonitor::new());
    monitor.update_cpu_usage(0.9);
    let s: Arc<dyn RecoveryStrategy<dyn Degradable>> = Arc::new(strategy(&monitor));
    let target: Arc<dyn Degradable> = Arc::new(FakeCoordinator::new(Arc::clone(&monitor)));
    let result = s
        .recover(
            &RecoveryContext::new(Arc::clone(&target)),
            &SwarmError::ResourceConflict("lock".into()),
        )
        .await;
    assert!(result.success);
    assert_eq!(target.current_level().await, DegradationLevel::Critical);

    let bad = DegradationConfig {
        cpu_threshold: 0.0,
        ..Default::default()
    };
    let e = GracefulDegradationStrategy::new(bad, Arc::clone(&monitor)).unwrap_err();
    assert_eq!(e.field, "cpu_threshold");
    assert!(matches!(
        SwarmError::from(e),
        SwarmError::InvalidConfiguration(_)
    ));
    let e = strategy(&monitor)
        .with_policy(LevelPolicy {
            hysteresis_margin: 0.5,
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.field, "hysteresis_margin");
    let tuned = strategy(&monitor)
        .with_policy(LevelPolicy {
            minimal_at: 1.2,
            critical_at: 1.25,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(tuned.policy().minimal_at, 1.2);
    assert!(Arc::ptr_eq(tuned.monitor(), &monitor));
}
