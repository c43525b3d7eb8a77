//! The coordinator bugs of issue 14, each with the test that found it failing on the code
//! before the rebuild (the commit says how each failed), on tokio's paused clock.

use std::sync::Arc;
use std::time::Duration;

use recovery_core::SwarmError;
use swarm_integration::{AgentSpec, AgentStatus, SwarmConfig, SwarmCoordinator, TaskSpec};
use workspace_tests::{Scripted, Step, assert_no_task_lost, no_caps};

/// Bug 1: heartbeats were written only at registration, so once `heartbeat_timeout_secs`
/// passed, the next sweep declared every agent failed, a busy one included. Runs count as
/// heartbeats, and an agent with a run in flight is not failed by a stale timestamp.
#[tokio::test(start_paused = true)]
async fn working_agents_are_not_declared_dead_after_the_heartbeat_timeout() {
    let exec = Scripted::new([Step::Sleep(Duration::from_secs(280))]);
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    let long = c.register_agent(AgentSpec::new("long", ["z"])).unwrap();
    let x = c.register_agent(AgentSpec::new("x", ["x"])).unwrap();
    let y = c.register_agent(AgentSpec::new("y", ["y"])).unwrap();
    // A long task (280 s, under the 300 s task timeout) on `long`.
    let long_task = c.submit_task(TaskSpec::new("long").requiring("z")).unwrap();
    let running = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.execute_task_with_recovery(long_task).await })
    };
    while c.agent(long).unwrap().status != AgentStatus::Busy {
        tokio::task::yield_now().await;
    }
    // Short tasks on x and y every 10 s for four minutes, with a sweep after each.
    for round in 0..24 {
        let cap = if round % 2 == 0 { "x" } else { "y" };
        let t = c
            .submit_task(TaskSpec::new("short").requiring(cap))
            .unwrap();
        c.execute_task_with_recovery(t).await.unwrap();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let swept = c.check_heartbeats();
        assert!(swept.is_empty(), "round {round}: {swept:?} declared failed");
    }
    for a in [long, x, y] {
        assert_ne!(c.agent(a).unwrap().status, AgentStatus::Failed);
    }
    running.await.unwrap().unwrap();
    assert_no_task_lost(&c);
}

/// Bug 2: a task whose capable agents are all down, under resource pressure, looped for ever:
/// the pick's `ResourceConflict` came back before a run started, and degradation's no-effect
/// "success" kept the loop going. Every call returns, and the error says what was tried.
#[tokio::test(start_paused = true)]
async fn a_task_nobody_can_run_under_pressure_returns_and_says_what_was_tried() {
    let c = SwarmCoordinator::new(SwarmConfig::default(), Scripted::new([])).unwrap();
    let gpu = c.register_agent(AgentSpec::new("gpu", ["gpu"])).unwrap();
    c.register_agent(AgentSpec::new("cpu", ["cpu"])).unwrap();
    c.declare_agent_failed(gpu).unwrap();
    c.recovery_manager()
        .resource_monitor()
        .update_memory_usage(0.95);
    let t = c
        .submit_task(TaskSpec::new("render").requiring("gpu"))
        .unwrap();
    let outcome = tokio::time::timeout(
        Duration::from_secs(24 * 3600),
        c.execute_task_with_recovery(t),
    )
    .await
    .expect("execute_task_with_recovery never returned");
    let SwarmError::TaskFailed { reason, .. } = outcome.unwrap_err() else {
        panic!("expected the task to fail")
    };
    assert!(reason.contains("ResourceConflict"), "{reason}");
    assert!(reason.contains("gpu"), "{reason}");
    let history = c.recovery_manager().get_recovery_history().await;
    assert!(history.len() < 20, "{} attempts", history.len());
    assert_no_task_lost(&c);
}

/// Bug 3: a second caller of a running task got `ConcurrencyError`, and the checkpoint
/// strategy took it: two callers on one 60 s task rolled each other back, and the task failed.
/// The second caller waits for the run in flight; nothing is rolled back.
#[tokio::test(start_paused = true)]
async fn two_callers_on_one_long_task_share_its_run() {
    let exec = Scripted::new([Step::Sleep(Duration::from_secs(60))]);
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    c.register_agent(AgentSpec::new("b", no_caps())).unwrap();
    c.create_checkpoint().await.unwrap();
    let t = c.submit_task(TaskSpec::new("long")).unwrap();
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let c = Arc::clone(&c);
            tokio::spawn(async move { c.execute_task_with_recovery(t).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap(), b"long");
    }
    assert_eq!(exec.runs().len(), 1, "one run, shared");
    assert_eq!(c.stats().restores, 0, "nobody rolled the swarm back");
    assert_no_task_lost(&c);
}

/// Bug 3, the other half: a task marked failed while its run went on left its agent busy with
/// no task for ever. Failing it stops the run and frees the agent.
#[tokio::test(start_paused = true)]
async fn failing_a_running_task_frees_its_agent() {
    let exec = Scripted::new([Step::Sleep(Duration::from_secs(60))]);
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    let a = c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    let t = c.submit_task(TaskSpec::new("long")).unwrap();
    let run = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.execute_task(t).await })
    };
    while c.agent(a).unwrap().status != AgentStatus::Busy {
        tokio::task::yield_now().await;
    }
    c.fail_task(t, "the operator gave up");
    assert!(run.await.unwrap().is_err());
    let agent = c.agent(a).unwrap();
    assert_eq!(
        (agent.status, agent.current_task),
        (AgentStatus::Idle, None)
    );
    assert!(c.audit().is_empty(), "{:?}", c.audit());
}

/// Bug 4: finished tasks and their outputs stayed in the table for ever. They leave it after
/// the retention; the counters still account for every one.
#[tokio::test(start_paused = true)]
async fn finished_tasks_leave_the_table_after_the_retention() {
    let c = SwarmCoordinator::new(SwarmConfig::default(), Scripted::new([])).unwrap();
    c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    for i in 0..12_000 {
        let t = c.submit_task(TaskSpec::new(format!("t{i}"))).unwrap();
        c.execute_task(t).await.unwrap();
    }
    assert!(c.tasks().len() <= 10_000, "{} tasks kept", c.tasks().len());
    let stats = c.stats();
    assert_eq!((stats.submitted, stats.completed), (12_000, 12_000));
    assert!(
        c.snapshot().tasks.is_empty(),
        "a checkpoint holds live state only"
    );
    assert!(c.audit().is_empty(), "{:?}", c.audit());
}

/// Bug 6: `restore` never updated the monitor's connection count.
#[tokio::test(start_paused = true)]
async fn a_restore_leaves_the_connection_count_right() {
    let c = SwarmCoordinator::new(SwarmConfig::default(), Scripted::new([])).unwrap();
    let a = c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    c.register_agent(AgentSpec::new("b", no_caps())).unwrap();
    let checkpoint = c.snapshot();
    c.deregister_agent(a).unwrap();
    c.restore(checkpoint).unwrap();
    let monitor = c.recovery_manager().resource_monitor();
    assert_eq!(monitor.active_connections(), c.agents().len() as u64);
}

/// Bug 6: a rejected config patch named the first key of the patch, not the bad one.
#[tokio::test(start_paused = true)]
async fn a_rejected_patch_names_the_bad_key() {
    use recovery_healing::{ConfigPatch, ConfigPatchError, Healable};
    let c = SwarmCoordinator::new(SwarmConfig::default(), Scripted::new([])).unwrap();
    let patch = ConfigPatch::new()
        .set("heartbeat_timeout_secs", 10)
        .set("task_timeout_secs", 0);
    match Healable::apply_config_patch(&*c, &patch).await.unwrap_err() {
        ConfigPatchError::BadValue { key, .. } => assert_eq!(key, "task_timeout_secs"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.config().heartbeat_timeout_secs, 30, "all or nothing");
}

/// Bug 6: tasks still waiting for an agent counted as active tasks in the resource monitor.
#[tokio::test(start_paused = true)]
async fn tasks_waiting_for_an_agent_are_not_active() {
    let exec = Scripted::new([Step::Sleep(Duration::from_secs(60))]);
    let c = SwarmCoordinator::new(SwarmConfig::default(), exec.clone()).unwrap();
    c.register_agent(AgentSpec::new("a", no_caps())).unwrap();
    let mut callers = Vec::new();
    for i in 0..6 {
        let t = c.submit_task(TaskSpec::new(format!("t{i}"))).unwrap();
        let c = Arc::clone(&c);
        callers.push(tokio::spawn(async move { c.execute_task(t).await }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let monitor = c.recovery_manager().resource_monitor();
    assert_eq!(monitor.active_tasks(), 1, "one runs, five wait");
    for caller in callers {
        let _ = caller.await;
    }
    assert_eq!(monitor.active_tasks(), 0);
}
