//! The coordinator's own behaviour, with a scripted executor and no recovery strategies.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recovery_core::{ErrorKind, Priority, SwarmError};
use recovery_manager::{RecoveryConfig, RecoveryManager};
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, AgentStatus, SwarmConfig, SwarmCoordinator, TaskInfo,
    TaskSpec, TaskState,
};
use tokio::sync::Notify;

/// An executor whose behaviour per run is set by the test.
struct Script {
    runs: AtomicU32,
    behaviour: Mutex<Box<dyn FnMut(u32) -> Step + Send>>,
    release: Notify,
}

enum Step {
    Ok(&'static [u8]),
    Err(SwarmError),
    /// Wait until `release` is notified, then succeed.
    Block,
    /// Never return.
    Hang,
}

#[async_trait::async_trait]
impl AgentExecutor for Script {
    async fn execute(&self, _agent: &AgentInfo, _task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        let n = self.runs.fetch_add(1, Ordering::SeqCst);
        let step = (self.behaviour.lock().unwrap())(n);
        match step {
            Step::Ok(out) => Ok(out.to_vec()),
            Step::Err(e) => Err(e),
            Step::Block => {
                self.release.notified().await;
                Ok(b"late".to_vec())
            }
            Step::Hang => std::future::pending().await,
        }
    }
}

fn script(f: impl FnMut(u32) -> Step + Send + 'static) -> Arc<Script> {
    Arc::new(Script {
        runs: AtomicU32::new(0),
        behaviour: Mutex::new(Box::new(f)),
        release: Notify::new(),
    })
}

fn coordinator(config: SwarmConfig, exec: Arc<Script>) -> Arc<SwarmCoordinator> {
    let manager = Arc::new(RecoveryManager::empty(RecoveryConfig::default()).unwrap());
    SwarmCoordinator::with_manager(config, exec, manager).unwrap()
}

#[tokio::test]
async fn a_task_runs_on_a_capable_agent_and_completes() {
    let exec = script(|_| Step::Ok(b"done"));
    let c = coordinator(SwarmConfig::default(), exec.clone());
    let _plain = c.register_agent(AgentSpec::new("plain", ["io"])).unwrap();
    let gpu = c.register_agent(AgentSpec::new("gpu", ["gpu"])).unwrap();
    let t = c
        .submit_task(TaskSpec::new("render").requiring("gpu"))
        .unwrap();
    assert_eq!(c.execute_task(t).await.unwrap(), b"done");
    match c.task(t).unwrap().state {
        TaskState::Completed { agent, .. } => assert_eq!(agent, gpu),
        other => panic!("{other:?}"),
    }
    // A completed task returns its output again without running.
    assert_eq!(c.execute_task(t).await.unwrap(), b"done");
    assert_eq!(exec.runs.load(Ordering::SeqCst), 1);
    assert!(c.trust_score(gpu).unwrap() > 0.5);
    assert!(c.audit().is_empty());
}

#[tokio::test]
async fn a_task_no_agent_can_run_is_a_clear_error() {
    let c = coordinator(SwarmConfig::default(), script(|_| Step::Ok(b"")));
    c.register_agent(AgentSpec::new("plain", ["io"])).unwrap();
    let t = c
        .submit_task(TaskSpec::new("render").requiring("gpu"))
        .unwrap();
    let e = c.execute_task(t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceConflict);
    assert!(e.to_string().contains("capability `gpu`"), "{e}");
}

#[tokio::test]
async fn a_recoverable_failure_leaves_the_task_pending_and_a_fatal_one_fails_it() {
    let c = coordinator(
        SwarmConfig::default(),
        script(|n| match n {
            0 => Step::Err(SwarmError::CommunicationError("reset".into())),
            _ => Step::Err(SwarmError::ProtocolMismatch("v1".into())),
        }),
    );
    c.register_agent(AgentSpec::new("a", [] as [&str; 0]))
        .unwrap();
    let t = c.submit_task(TaskSpec::new("t")).unwrap();
    assert_eq!(
        c.execute_task(t).await.unwrap_err().kind(),
        ErrorKind::CommunicationError
    );
    assert_eq!(c.task(t).unwrap().state, TaskState::Pending);
    assert_eq!(
        c.execute_task(t).await.unwrap_err().kind(),
        ErrorKind::ProtocolMismatch
    );
    assert!(matches!(c.task(t).unwrap().state, TaskState::Failed { .. }));
    assert_eq!(
        c.execute_task(t).await.unwrap_err().kind(),
        ErrorKind::TaskFailed
    );
}

#[tokio::test(start_paused = true)]
async fn the_task_timeout_is_enforced() {
    let c = coordinator(
        SwarmConfig {
            task_timeout_secs: 5,
            ..Default::default()
        },
        script(|_| Step::Hang),
    );
    c.register_agent(AgentSpec::new("a", [] as [&str; 0]))
        .unwrap();
    let t = c.submit_task(TaskSpec::new("t")).unwrap();
    let started = tokio::time::Instant::now();
    let e = c.execute_task(t).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::CoordinationTimeout);
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    assert_eq!(c.task(t).unwrap().state, TaskState::Pending);
    assert!(c.audit().is_empty());
}

#[tokio::test]
async fn a_result_from_a_failed_agent_is_discarded_and_the_task_runs_again_elsewhere() {
    let exec = script(|n| {
        if n == 0 {
            Step::Block
        } else {
            Step::Ok(b"fresh")
        }
    });
    let c = coordinator(SwarmConfig::default(), exec.clone());
    let a = c
        .register_agent(AgentSpec::new("a", [] as [&str; 0]))
        .unwrap();
    let t = c.submit_task(TaskSpec::new("t")).unwrap();
    let runner = {
        let c = c.clone();
        tokio::spawn(async move { c.execute_task(t).await })
    };
    while c.agent(a).unwrap().status != AgentStatus::Busy {
        tokio::task::yield_now().await;
    }
    let b = c
        .register_agent(AgentSpec::new("b", [] as [&str; 0]))
        .unwrap();
    c.declare_agent_failed(a).unwrap();
    exec.release.notify_waiters();
    let e = runner.await.unwrap().unwrap_err();
    // Interrupted: a retry (on another agent) is what helps, never a rollback.
    assert_eq!(e.kind(), ErrorKind::CommunicationError);
    assert!(e.to_string().contains("discarded"), "{e}");
    assert_eq!(c.stats().stale_results_discarded, 1);
    assert_eq!(c.execute_task(t).await.unwrap(), b"fresh");
    match c.task(t).unwrap().state {
        TaskState::Completed { agent, output } => {
            assert_eq!(agent, b);
            assert_eq!(output, b"fresh");
        }
        other => panic!("{other:?}"),
    }
    assert!(c.audit().is_empty(), "{:?}", c.audit());
}

#[tokio::test]
async fn a_task_never_runs_twice_at_once() {
    let exec = script(|_| Step::Block);
    let c = coordinator(SwarmConfig::default(), exec.clone());
    c.register_agent(AgentSpec::new("a", [] as [&str; 0]))
        .unwrap();
    c.register_agent(AgentSpec::new("b", [] as [&str; 0]))
        .unwrap();
    let t = c.submit_task(TaskSpec::new("t")).unwrap();
    let first = {
        let c = c.clone();
        tokio::spawn(async move { c.execute_task(t).await })
    };
    while !matches!(c.task(t).unwrap().state, TaskState::Running { .. }) {
        tokio::task::yield_now().await;
    }
    // A second caller joins the run in flight and gets its outcome.
    let second = {
        let c = c.clone();
        tokio::spawn(async move { c.execute_task(t).await })
    };
    while c.stats().running != 1 {
        tokio::task::yield_now().await;
    }
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    exec.release.notify_waiters();
    assert_eq!(first.await.unwrap().unwrap(), b"late");
    assert_eq!(second.await.unwrap().unwrap(), b"late");
    assert_eq!(exec.runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn snapshot_restore_snapshot_is_equal_and_puts_every_field_back() {
    let c = coordinator(SwarmConfig::default(), script(|_| Step::Ok(b"x")));
    let a = c.register_agent(AgentSpec::new("a", ["io"])).unwrap();
    let t1 = c
        .submit_task(TaskSpec::new("one").with_priority(Priority::High))
        .unwrap();
    c.execute_task(t1).await.unwrap();
    let t2 = c.submit_task(TaskSpec::new("two")).unwrap();
    c.set_metadata("owner", "team-a");
    let before = c.snapshot();

    // Damage: the agent is quarantined, config changes, metadata is lost.
    c.quarantine_agent(a).unwrap();
    c.apply_config_patch(&BTreeMap::from([("task_timeout_secs".into(), "9".into())]))
        .unwrap();
    c.set_metadata("owner", "garbage");
    assert_ne!(c.snapshot(), before);

    c.restore(before.clone()).unwrap();
    assert_eq!(c.snapshot(), before);
    assert_eq!(c.agent(a).unwrap().status, AgentStatus::Idle);
    assert_eq!(c.config().task_timeout_secs, 300);
    assert_eq!(c.task(t2).unwrap().state, TaskState::Pending);
    assert_eq!(c.stats().restores, 1);
}

#[tokio::test]
async fn restore_never_loses_a_task_submitted_or_finished_after_the_checkpoint() {
    let c = coordinator(SwarmConfig::default(), script(|_| Step::Ok(b"x")));
    c.register_agent(AgentSpec::new("a", [] as [&str; 0]))
        .unwrap();
    let old = c.submit_task(TaskSpec::new("old")).unwrap();
    let checkpoint = c.snapshot();
    c.execute_task(old).await.unwrap();
    let new = c.submit_task(TaskSpec::new("new")).unwrap();
    c.restore(checkpoint).unwrap();
    assert!(matches!(
        c.task(old).unwrap().state,
        TaskState::Completed { .. }
    ));
    assert_eq!(c.task(new).unwrap().state, TaskState::Pending);
    assert_eq!(c.execute_task(new).await.unwrap(), b"x");
}

#[tokio::test]
async fn a_restore_under_a_running_task_fences_its_result() {
    let exec = script(|n| {
        if n == 0 {
            Step::Block
        } else {
            Step::Ok(b"second")
        }
    });
    let c = coordinator(SwarmConfig::default(), exec.clone());
    c.register_agent(AgentSpec::new("a", [] as [&str; 0]))
        .unwrap();
    let t = c.submit_task(TaskSpec::new("t")).unwrap();
    let checkpoint = c.snapshot();
    let runner = {
        let c = c.clone();
        tokio::spawn(async move { c.execute_task(t).await })
    };
    while !matches!(c.task(t).unwrap().state, TaskState::Running { .. }) {
        tokio::task::yield_now().await;
    }
    c.restore(checkpoint).unwrap();
    exec.release.notify_waiters();
    assert_eq!(
        runner.await.unwrap().unwrap_err().kind(),
        ErrorKind::CommunicationError
    );
    assert_eq!(c.execute_task(t).await.unwrap(), b"second");
    assert_eq!(c.stats().stale_results_discarded, 1);
}

#[test]
fn a_bad_config_names_the_field() {
    let manager = Arc::new(RecoveryManager::empty(RecoveryConfig::default()).unwrap());
    let err = SwarmCoordinator::with_manager(
        SwarmConfig {
            task_timeout_secs: 0,
            ..Default::default()
        },
        script(|_| Step::Ok(b"")),
        manager,
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidConfiguration);
    assert!(err.to_string().contains("task_timeout_secs"), "{err}");
}

#[tokio::test]
async fn agents_beyond_the_limit_are_refused() {
    let c = coordinator(
        SwarmConfig {
            max_agents: 1,
            ..Default::default()
        },
        script(|_| Step::Ok(b"")),
    );
    c.register_agent(AgentSpec::new("a", [] as [&str; 0]))
        .unwrap();
    let e = c
        .register_agent(AgentSpec::new("b", [] as [&str; 0]))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::SwarmSizeLimitExceeded);
}

/// Regression (found by the drill at a 5% crash rate): a crashed agent that comes back still
/// holds the task it was running, as assigned. It must not stay reserved for that task, or
/// tasks waiting for an agent while that task waits for a recovery slot deadlock.
#[tokio::test(start_paused = true)]
async fn an_agent_holding_a_merely_assigned_task_can_be_taken_by_another() {
    let exec = script(|n| if n == 0 { Step::Block } else { Step::Ok(b"ok") });
    let c = coordinator(SwarmConfig::default(), exec.clone());
    let x = c.register_agent(AgentSpec::new("x", ["io"])).unwrap();
    let a = c.submit_task(TaskSpec::new("a")).unwrap();
    let b = c.submit_task(TaskSpec::new("b")).unwrap();

    let run_a = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.execute_task(a).await })
    };
    while exec.runs.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    c.declare_agent_failed(x).unwrap();
    let err = run_a.await.unwrap().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::CommunicationError, "{err}");
    c.heartbeat(x).unwrap();
    assert_eq!(c.agent(x).unwrap().current_task, None, "its run ended");

    let started = tokio::time::Instant::now();
    assert_eq!(c.execute_task(b).await.unwrap(), b"ok");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "b did not wait for a"
    );
    assert_eq!(
        c.task(a).unwrap().state,
        TaskState::Pending,
        "a was released, not lost"
    );
    assert_eq!(c.execute_task(a).await.unwrap(), b"ok");
    assert!(c.audit().is_empty(), "{:?}", c.audit());
}

#[tokio::test]
async fn the_coordinator_reports_its_agents_and_runs_to_the_resource_monitor() {
    let exec = script(|_| Step::Block);
    let c = coordinator(SwarmConfig::default(), exec.clone());
    let monitor = c.recovery_manager().resource_monitor();
    let x = c.register_agent(AgentSpec::new("x", ["io"])).unwrap();
    c.register_agent(AgentSpec::new("y", ["io"])).unwrap();
    assert_eq!(monitor.get_usage().await.active_connections, 2);
    c.deregister_agent(x).unwrap();
    assert_eq!(monitor.get_usage().await.active_connections, 1);

    let t = c.submit_task(TaskSpec::new("t")).unwrap();
    let run = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.execute_task(t).await })
    };
    while exec.runs.load(Ordering::SeqCst) == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(monitor.get_usage().await.active_tasks, 1);
    exec.release.notify_one();
    run.await.unwrap().unwrap();
    assert_eq!(monitor.get_usage().await.active_tasks, 0);
}
