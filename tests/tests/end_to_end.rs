//! End-to-end fault tests: a real `SwarmCoordinator` with its recovery manager, faults injected
//! by a scripted executor or by the test, on tokio's paused clock (no wall-clock sleeps).
//!
//! Every test ends by checking that no task was lost: each submitted task is completed or failed
//! with a reason, nothing is unfinished, and `audit()` finds nothing wrong.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy};
use recovery_core::{AgentId, ErrorKind, Priority, RecoveryAction, SwarmError, TaskId};
use recovery_degradation::{Degradable, DegradationLevel};
use recovery_manager::{NO_STRATEGY, RecoveryConfig, RecoveryManager};
use swarm_integration::{
    AgentSpec, AgentStatus, SwarmCheckpoint, SwarmConfig, SwarmCoordinator, SwarmEventKind,
    TaskSpec, TaskState,
};
use tokio::time::Instant;
use workspace_tests::{Scripted, Step, assert_no_task_lost, no_caps};

async fn wait_until_running(c: &SwarmCoordinator, task: TaskId) -> AgentId {
    loop {
        if let TaskState::Running { agent, .. } = c.task(task).unwrap().state {
            return agent;
        }
        tokio::task::yield_now().await;
    }
}

async fn checkpoint_state(c: &SwarmCoordinator, id: uuid::Uuid) -> SwarmCheckpoint {
    let strategy = c.recovery_manager().checkpoint_strategy().unwrap();
    let stored = strategy.store().get(id).await.unwrap();
    stored.codec.decode(&stored.payload).unwrap()
}

/// Three dropped connections, then the run gets through: backoff waits 100, 200, 400 ms (no
/// jitter here) and re-runs the task each time; one recovery, three retries.
#[tokio::test(start_paused = true)]
async fn transient_communication_errors_then_success_through_backoff() {
    let reset = || Step::Fail(SwarmError::CommunicationError("connection reset".into()));
    let exec = Scripted::new([reset(), reset(), reset()]);
    let backoff = ExponentialBackoffStrategy::new(BackoffConfig {
        jitter_factor: 0.0,
        ..BackoffConfig::default()
    })
    .unwrap();
    let manager = RecoveryManager::<SwarmCoordinator>::builder()
        .default_strategies()
        .backoff(backoff)
        .without_sampler()
        .build()
        .unwrap();
    let c = SwarmCoordinator::with_manager(SwarmConfig::default(), exec.clone(), Arc::new(manager))
        .unwrap();
    let agent = c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    let task = c
        .submit_task(TaskSpec::new("sync").with_priority(Priority::High))
        .unwrap();

    let started = Instant::now();
    let output = c.execute_task_with_recovery(task).await.unwrap();
    assert_eq!(output, b"sync");
    assert_eq!(started.elapsed(), Duration::from_millis(700));

    let runs = exec.runs();
    assert_eq!(runs.len(), 4);
    let gaps: Vec<Duration> = runs.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert_eq!(
        gaps,
        [100, 200, 400].map(Duration::from_millis),
        "the delays of the schedule"
    );
    assert!(runs.iter().all(|r| r.task == task && r.agent == agent));

    let history = c.recovery_manager().get_recovery_history().await;
    let ids: Vec<&str> = history.iter().map(|a| a.strategy_id.as_str()).collect();
    assert_eq!(ids, ["exponential_backoff"]);
    assert!(history[0].result.success);
    assert_eq!(
        history[0].result.action,
        RecoveryAction::Retried { attempts: 3 }
    );
    assert_eq!(history[0].failed_task_id, Some(task));
    assert_eq!(history[0].error.kind(), ErrorKind::CommunicationError);
    assert_eq!(c.task(task).unwrap().attempts, 4);
    assert_no_task_lost(&c);
}

/// An agent stops answering mid-task and is declared failed: its run is fenced off, the task
/// moves to the other agent and completes there, and the crashed run's late answer is
/// discarded and counted.
#[tokio::test(start_paused = true)]
async fn an_agent_that_crashes_mid_task_loses_its_task_to_another_agent() {
    let exec = Scripted::new([Step::Block]);
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    let a = c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    let b = c.register_agent(AgentSpec::new("b", no_caps())).unwrap();
    let task = c.submit_task(TaskSpec::new("render")).unwrap();

    let runner = {
        let c = c.clone();
        tokio::spawn(async move { c.execute_task_with_recovery(task).await })
    };
    let crashed = wait_until_running(&c, task).await;
    let healthy = if crashed == a { b } else { a };
    c.declare_agent_failed(crashed).unwrap();
    // The crashed agent answers late; that answer must not count.
    exec.release.notify_waiters();

    let output = runner.await.unwrap().unwrap();
    assert_eq!(output, b"render");
    match c.task(task).unwrap().state {
        TaskState::Completed { agent, output } => {
            assert_eq!(agent, healthy);
            assert_eq!(output, b"render");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(exec.late_answers.load(Ordering::SeqCst), 0);
    let runs = exec.runs();
    assert_eq!(
        runs.iter().map(|r| r.agent).collect::<Vec<_>>(),
        [crashed, healthy]
    );
    let stats = c.stats();
    assert_eq!(stats.stale_results_discarded, 1);
    assert!(
        c.recent_events()
            .iter()
            .any(|e| e.kind == SwarmEventKind::StaleResultDiscarded { task, attempt: 1 })
    );
    assert_eq!(c.agent(crashed).unwrap().status, AgentStatus::Failed);
    assert_eq!(c.agent(crashed).unwrap().current_task, None);

    let history = c.recovery_manager().get_recovery_history().await;
    assert_eq!(history[0].strategy_id, "exponential_backoff");
    assert_eq!(history[0].failed_agent_id, Some(crashed));
    assert!(history[0].result.success);

    // Other work carries on, on the healthy agent only.
    let next = c.submit_task(TaskSpec::new("next")).unwrap();
    c.execute_task_with_recovery(next).await.unwrap();
    assert_eq!(exec.runs().last().unwrap().agent, healthy);
    assert_no_task_lost(&c);
}

/// The coordinator's state is damaged after a checkpoint (metadata, configuration, an agent
/// quarantined, the trust scores moved by new runs): `recover_from_error(StateCorruption)`
/// restores it so that its snapshot equals the checkpoint. A task submitted after the
/// checkpoint survives a second restore.
#[tokio::test(start_paused = true)]
async fn state_corrupted_after_a_checkpoint_is_restored_to_equal_it() {
    let c = SwarmCoordinator::new(SwarmConfig::default(), Scripted::new([])).unwrap();
    let a = c.register_agent(AgentSpec::new("a", ["gpu"])).unwrap();
    let b = c.register_agent(AgentSpec::new("b", no_caps())).unwrap();
    for name in ["one", "two"] {
        let t = c.submit_task(TaskSpec::new(name)).unwrap();
        c.execute_task(t).await.unwrap();
    }
    c.set_metadata("owner", "team-a");
    let checkpoint_id = c.create_checkpoint().await.unwrap();
    let checkpointed = checkpoint_state(&c, checkpoint_id).await;
    assert_eq!(checkpointed, c.snapshot());

    // Damage.
    c.set_metadata("owner", "nobody");
    c.set_metadata("half_written", "yes");
    c.apply_config_patch(&BTreeMap::from([
        ("task_timeout_secs".to_owned(), "7".to_owned()),
        ("max_parallel_tasks".to_owned(), "2".to_owned()),
    ]))
    .unwrap();
    c.quarantine_agent(a).unwrap();
    c.declare_agent_failed(b).unwrap();
    assert_ne!(c.snapshot(), checkpointed);

    let result = c
        .recover_from_error(
            SwarmError::StateCorruption("index does not match the task table".into()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(result.action, RecoveryAction::Restored { checkpoint_id });
    assert_eq!(c.snapshot(), checkpointed);
    assert_eq!(c.config(), SwarmConfig::default());
    assert_eq!(c.parallelism(), (0, 16));
    assert_eq!(c.agent(a).unwrap().status, AgentStatus::Idle);
    assert_eq!(c.agent(b).unwrap().status, AgentStatus::Idle);
    let history = c.recovery_manager().get_recovery_history().await;
    let ids: Vec<&str> = history.iter().map(|h| h.strategy_id.as_str()).collect();
    assert_eq!(ids, ["checkpoint_recovery"]);

    // A task submitted after the checkpoint is not lost by a restore.
    let later = c.submit_task(TaskSpec::new("later")).unwrap();
    c.set_metadata("owner", "nobody");
    let again = c
        .recover_from_error(SwarmError::StateCorruption("again".into()), None, None)
        .await
        .unwrap();
    assert!(again.success);
    assert_eq!(c.task(later).unwrap().state, TaskState::Pending);
    assert_eq!(c.snapshot().metadata, checkpointed.metadata);
    c.execute_task_with_recovery(later).await.unwrap();
    assert_eq!(c.stats().restores, 2);
    assert_no_task_lost(&c);
}

/// Memory at 95 % (past its 85 % threshold by more than 10 %): degradation goes to Critical, a
/// low-priority submission is refused with `Overloaded`, accepted work still runs. When memory
/// falls, monitoring lowers the level by itself and low-priority work is admitted again.
#[tokio::test(start_paused = true)]
async fn memory_pressure_refuses_low_priority_work_and_lifts_when_it_falls() {
    let manager = RecoveryManager::<SwarmCoordinator>::builder()
        .default_strategies()
        .config(RecoveryConfig {
            monitoring_interval: Duration::from_secs(1),
            ..RecoveryConfig::default()
        })
        // The test reports the usage; backoff would "recover" a size-limit error by re-checking
        // heartbeats, so this manager sheds load for it instead.
        .without_sampler()
        .without_backoff()
        .build()
        .unwrap();
    let c = SwarmCoordinator::with_manager(
        SwarmConfig::default(),
        Scripted::new([]),
        Arc::new(manager),
    )
    .unwrap();
    c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    let accepted_low = c
        .submit_task(TaskSpec::new("batch").with_priority(Priority::Low))
        .unwrap();

    let monitor = c.recovery_manager().resource_monitor();
    monitor.update_memory_usage(0.95);
    let result = c
        .recover_from_error(
            SwarmError::SwarmSizeLimitExceeded("task queue full".into()),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(result.success, "{result:?}");
    assert_eq!(result.action, RecoveryAction::Degraded { level: 3 });
    assert_eq!(result.metadata["memory_percent"], "0.95");
    assert_eq!(c.current_level().await, DegradationLevel::Critical);
    assert_eq!(c.parallelism().1, 4, "a quarter of 16 runs at once");

    let refused = c
        .submit_task(TaskSpec::new("prefetch").with_priority(Priority::Low))
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Overloaded);
    match &refused {
        SwarmError::Overloaded {
            reason,
            retry_after,
        } => {
            assert!(reason.contains("low"), "{reason}");
            assert_eq!(*retry_after, Duration::from_secs(30));
        }
        other => panic!("{other:?}"),
    }
    let critical = c
        .submit_task(TaskSpec::new("health").with_priority(Priority::Critical))
        .unwrap();
    // Work accepted before the pressure is never dropped.
    c.execute_task_with_recovery(accepted_low).await.unwrap();
    c.execute_task_with_recovery(critical).await.unwrap();

    // Pressure falls; nothing lifts it until monitoring steps.
    monitor.update_memory_usage(0.1);
    assert!(
        c.submit_task(TaskSpec::new("still refused").with_priority(Priority::Low))
            .is_err()
    );
    let monitoring = c.recovery_manager().start_monitoring().await;
    // One level a step, a step at once and then every second: Minimal, Reduced, Normal.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(c.current_level().await, DegradationLevel::Reduced);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(c.current_level().await, DegradationLevel::Normal);
    assert_eq!(c.parallelism().1, 16);
    let low = c
        .submit_task(TaskSpec::new("prefetch").with_priority(Priority::Low))
        .unwrap();
    c.execute_task_with_recovery(low).await.unwrap();
    monitoring.shutdown().await;

    assert_eq!(c.stats().refused, 2);
    assert_no_task_lost(&c);
}

/// The same with the default manager, through the degradation strategy's monitoring step:
/// memory pressure raises the level (Low refused), and the step after it falls lowers it.
#[tokio::test(start_paused = true)]
async fn memory_pressure_through_the_default_managers_degradation_step() {
    let c = SwarmCoordinator::new(SwarmConfig::default(), Scripted::new([])).unwrap();
    c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    let degradation = c.recovery_manager().degradation_strategy().unwrap().clone();
    let monitor = c.recovery_manager().resource_monitor();

    monitor.update_memory_usage(0.95);
    let change = degradation.step(c.as_ref()).await.unwrap().unwrap();
    assert_eq!(
        (change.from, change.to),
        (DegradationLevel::Normal, DegradationLevel::Critical)
    );
    let refused = c
        .submit_task(TaskSpec::new("batch").with_priority(Priority::Low))
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Overloaded);
    let critical = c
        .submit_task(TaskSpec::new("health").with_priority(Priority::Critical))
        .unwrap();
    c.execute_task_with_recovery(critical).await.unwrap();

    monitor.update_memory_usage(0.1);
    let change = degradation.step(c.as_ref()).await.unwrap().unwrap();
    assert_eq!(change.to, DegradationLevel::Minimal, "one level a step");
    assert!(
        c.submit_task(TaskSpec::new("batch").with_priority(Priority::Low))
            .is_err(),
        "still refused at Minimal"
    );
    degradation.step(c.as_ref()).await.unwrap().unwrap();
    let change = degradation.step(c.as_ref()).await.unwrap().unwrap();
    assert_eq!(change.to, DegradationLevel::Normal);
    let low = c
        .submit_task(TaskSpec::new("batch").with_priority(Priority::Low))
        .unwrap();
    c.execute_task_with_recovery(low).await.unwrap();
    assert_no_task_lost(&c);
}

/// The executor reports a protocol mismatch: no strategy runs, the task fails for good with a
/// reason that says why, and the recovery history asks for manual intervention.
#[tokio::test(start_paused = true)]
async fn a_non_recoverable_error_fails_the_task_and_asks_for_manual_intervention() {
    let exec = Scripted::new([Step::Fail(SwarmError::ProtocolMismatch(
        "agent speaks v1, coordinator v3".into(),
    ))]);
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    let agent = c.register_agent(AgentSpec::new("old", no_caps())).unwrap();
    let task = c.submit_task(TaskSpec::new("handshake")).unwrap();

    let error = c.execute_task_with_recovery(task).await.unwrap_err();
    match &error {
        SwarmError::TaskFailed { task: t, reason } => {
            assert_eq!(*t, task);
            assert!(reason.contains("not recoverable"), "{reason}");
            assert!(reason.contains("agent speaks v1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match c.task(task).unwrap().state {
        TaskState::Failed { reason } => assert!(reason.contains("protocol mismatch"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(exec.runs().len(), 1, "not re-run");

    // The error went to the manager, which ran no strategy and asked for manual intervention.
    let history = c.recovery_manager().get_recovery_history().await;
    assert_eq!(history.len(), 1, "{history:?}");
    let last = history.last().unwrap();
    assert_eq!(last.strategy_id, NO_STRATEGY);
    assert_eq!(last.failed_task_id, Some(task));
    assert_eq!(last.failed_agent_id, Some(agent));
    assert!(matches!(
        last.result.action,
        RecoveryAction::ManualInterventionRequired { .. }
    ));
    assert!(last.result.action_taken.contains("manual intervention"));
    assert!(
        history.iter().all(|h| h.strategy_id == NO_STRATEGY),
        "no strategy ran: {history:?}"
    );
    assert_no_task_lost(&c);
}

/// `max_retries = 5` is five re-runs of a task that always fails, through
/// `execute_task_with_recovery` with every default strategy: the backoff strategy's retries and
/// the coordinator's own re-run after a self-healing restart count against the same five. (It
/// ran 11 times: 1 + 5 retries, a healing restart, 1 re-run with no delay, then 4 more retries,
/// because the manager counted recoveries and the strategy read them as retries.)
#[tokio::test(start_paused = true)]
async fn a_task_that_always_fails_runs_at_most_one_plus_max_retries_times() {
    let down = || Step::Fail(SwarmError::CommunicationError("connection refused".into()));
    let exec = Scripted::new(std::iter::repeat_n(down(), 100));
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    let task = c.submit_task(TaskSpec::new("sync")).unwrap();
    let max_retries = c
        .recovery_manager()
        .backoff_strategy()
        .unwrap()
        .config()
        .max_retries;
    assert_eq!(max_retries, 5);

    let err = c.execute_task_with_recovery(task).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TaskFailed);
    let runs = exec.runs().len();
    assert!(
        runs <= 1 + max_retries as usize,
        "{runs} runs of a task with max_retries = {max_retries}: {err}"
    );
    assert_eq!(runs, 6, "the first run and five retries: {err}");
    assert!(err.to_string().contains("5 of 5 re-runs"), "{err}");
    // Every re-run waited its backoff delay: none came straight after another.
    let at: Vec<Instant> = exec.runs().iter().map(|r| r.at).collect();
    assert!(
        at.windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_millis(90)),
        "{at:?}"
    );
    assert_no_task_lost(&c);
}
