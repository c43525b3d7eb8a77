//! The transitions, one by one, without a runtime: time is an argument.

use std::time::Duration;

use recovery_core::{Priority, SwarmError, TaskId};
use recovery_degradation::DegradationLevel;
use tokio::time::Instant;

use super::*;
use crate::model::{AgentSpec, AgentStatus, TaskSpec, TaskState};

const RETRY_AFTER: Duration = Duration::from_secs(30);

fn state(config: SwarmConfig) -> (SwarmState, Instant) {
    let t0 = Instant::now();
    (SwarmState::new(config, IdSource::seeded(1), t0), t0)
}

fn clean(s: &SwarmState) {
    let problems = s.audit();
    assert!(problems.is_empty(), "{problems:#?}");
}

fn run_of(begin: Begin) -> RunTicket {
    match begin {
        Begin::Run(t) => *t,
        other => panic!("expected a run, got {other:?}"),
    }
}

fn ok(s: &mut SwarmState, t: &RunTicket, now: Instant) -> Finished {
    s.finish_run(t.id(), RunOutcome::Output(b"done".to_vec()), now)
}

#[test]
fn a_run_starts_on_an_idle_agent_and_completes() {
    let (mut s, t0) = state(SwarmConfig::default());
    let a = s.register_agent(AgentSpec::new("a", ["gpu"]), t0).unwrap();
    let task = s
        .submit(TaskSpec::new("t").requiring("gpu"), RETRY_AFTER, t0)
        .unwrap();
    let ticket = run_of(s.begin(task, t0));
    assert_eq!(ticket.agent.id, a);
    assert_eq!(ticket.attempt, 1);
    assert_eq!(s.agents[&a].status, AgentStatus::Busy);
    clean(&s);
    let f = ok(&mut s, &ticket, t0 + Duration::from_secs(1));
    assert!(matches!(f.end, RunEnd::Applied(Ok(_))));
    assert!(matches!(s.tasks[&task].state, TaskState::Completed { .. }));
    assert_eq!(s.agents[&a].status, AgentStatus::Idle);
    assert!(matches!(s.begin(task, t0), Begin::Settled(Ok(_))));
    assert_eq!(s.stats().completed, 1);
    clean(&s);
}

/// Bug 1 of issue 14: heartbeats were written only at registration, so after
/// `heartbeat_timeout_secs` every agent was declared failed, busy ones included. A run's start
/// and end count as a heartbeat, and an agent with a run in flight is never failed by a stale
/// timestamp alone.
#[test]
fn runs_count_as_heartbeats_and_a_busy_agent_is_never_swept() {
    let (mut s, t0) = state(SwarmConfig::default());
    let timeout = s.config.heartbeat_timeout();
    let worker = s
        .register_agent(AgentSpec::new("worker", ["x"]), t0)
        .unwrap();
    let long = s.register_agent(AgentSpec::new("long", ["y"]), t0).unwrap();
    let silent = s
        .register_agent(AgentSpec::new("silent", ["z"]), t0)
        .unwrap();
    // `worker` runs short tasks all the time; `long` runs one task far longer than the timeout.
    let long_task = s
        .submit(TaskSpec::new("long").requiring("y"), RETRY_AFTER, t0)
        .unwrap();
    let long_run = run_of(s.begin(long_task, t0));
    let mut now = t0;
    for _ in 0..10 {
        now += timeout / 2;
        let t = s
            .submit(TaskSpec::new("short").requiring("x"), RETRY_AFTER, now)
            .unwrap();
        let ticket = run_of(s.begin(t, now));
        ok(&mut s, &ticket, now);
        assert_eq!(s.last_heartbeat(worker), Some(now));
    }
    let swept = s.sweep_heartbeats(now);
    assert_eq!(
        swept,
        [silent],
        "only the agent that showed no sign of life"
    );
    assert_eq!(s.agents[&worker].status, AgentStatus::Idle);
    assert_eq!(
        s.agents[&long].status,
        AgentStatus::Busy,
        "its run is in flight"
    );
    assert!(!long_run.cancel.is_cancelled());
    assert_eq!(s.stats().agents_timed_out, 1);
    clean(&s);
}

#[test]
fn no_healthy_capable_agent_is_a_refusal_and_a_busy_one_is_a_wait() {
    let (mut s, t0) = state(SwarmConfig::default());
    let t = s
        .submit(TaskSpec::new("t").requiring("gpu"), RETRY_AFTER, t0)
        .unwrap();
    let Begin::Refused(e) = s.begin(t, t0) else {
        panic!("expected a refusal")
    };
    assert!(
        e.to_string()
            .contains("no healthy agent has capability `gpu`"),
        "{e}"
    );
    let a = s.register_agent(AgentSpec::new("a", ["gpu"]), t0).unwrap();
    s.declare_agent_failed(a, t0).unwrap();
    assert!(
        matches!(s.begin(t, t0), Begin::Refused(_)),
        "only a failed one"
    );
    s.heartbeat(a, t0).unwrap();
    let first = run_of(s.begin(t, t0));
    let u = s
        .submit(TaskSpec::new("u").requiring("gpu"), RETRY_AFTER, t0)
        .unwrap();
    let Begin::Wait { mut rx, .. } = s.begin(u, t0) else {
        panic!("expected a wait")
    };
    assert_eq!(s.stats().waiting, 1);
    clean(&s);
    // The run's end hands the freed agent straight to the waiting caller.
    ok(&mut s, &first, t0);
    let Ok(Wake::Run(handed)) = rx.try_recv() else {
        panic!("the waiter got no run")
    };
    assert_eq!((handed.task.id, handed.agent.id), (u, a));
    assert_eq!(s.stats().waiting, 0);
    clean(&s);
}

/// Bug 3 of issue 14: a second caller of a running task got `ConcurrencyError`, which recovery
/// turned into a rollback. Now it joins the run in flight.
#[test]
fn a_second_caller_of_a_running_task_joins_it() {
    let (mut s, t0) = state(SwarmConfig::default());
    s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    let t = s.submit(TaskSpec::new("t"), RETRY_AFTER, t0).unwrap();
    let ticket = run_of(s.begin(t, t0));
    let Begin::Join(notify) = s.begin(t, t0) else {
        panic!("expected a join")
    };
    let f = ok(&mut s, &ticket, t0);
    assert!(f.watchers.is_some_and(|w| Arc::ptr_eq(&w, &notify)));
    assert!(matches!(s.begin(t, t0), Begin::Settled(Ok(_))));
}

/// Bug 3 of issue 14: marking a task failed while it ran left its agent busy with no task for
/// ever. Now its run is told to stop, and its end frees the agent.
#[test]
fn failing_a_running_task_stops_its_run_and_frees_its_agent() {
    let (mut s, t0) = state(SwarmConfig::default());
    let a = s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    let t = s.submit(TaskSpec::new("t"), RETRY_AFTER, t0).unwrap();
    let ticket = run_of(s.begin(t, t0));
    assert!(s.fail_task(t, "given up".into(), t0));
    assert!(ticket.cancel.is_cancelled());
    clean(&s);
    let f = s.finish_run(ticket.id(), RunOutcome::Cancelled, t0);
    assert!(matches!(f.end, RunEnd::Discarded(_)));
    assert_eq!(s.agents[&a].status, AgentStatus::Idle);
    assert_eq!(s.agents[&a].current_task, None);
    assert!(matches!(s.tasks[&t].state, TaskState::Failed { .. }));
    assert_eq!(s.stats().failed, 1);
    clean(&s);
}

#[test]
fn a_failed_agents_run_is_discarded_and_the_task_waits_for_another() {
    let (mut s, t0) = state(SwarmConfig::default());
    let a = s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    let b = s.register_agent(AgentSpec::new("b", ["x"]), t0).unwrap();
    let t = s.submit(TaskSpec::new("t"), RETRY_AFTER, t0).unwrap();
    let first = run_of(s.begin(t, t0));
    s.declare_agent_failed(first.agent.id, t0).unwrap();
    assert!(first.cancel.is_cancelled());
    assert_eq!(s.tasks[&t].state, TaskState::Pending);
    clean(&s);
    // Its late answer changes nothing.
    let f = ok(&mut s, &first, t0);
    assert!(matches!(f.end, RunEnd::Discarded(_)));
    assert_eq!(s.stats().stale_results_discarded, 1);
    let second = run_of(s.begin(t, t0));
    assert_ne!(second.agent.id, first.agent.id);
    assert!([a, b].contains(&second.agent.id));
    assert_eq!(second.attempt, 2);
    clean(&s);
}

/// Bug 4 of issue 14: every finished task stayed in the table for ever.
#[test]
fn finished_tasks_leave_the_table_past_the_retention_and_are_still_counted() {
    let config = SwarmConfig {
        finished_retention: 3,
        outcome_log: 2,
        ..SwarmConfig::default()
    };
    let (mut s, t0) = state(config);
    s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    let mut ids = Vec::new();
    for i in 0..10 {
        let t = s
            .submit(TaskSpec::new(format!("t{i}")), RETRY_AFTER, t0)
            .unwrap();
        let ticket = run_of(s.begin(t, t0));
        ok(&mut s, &ticket, t0);
        ids.push(t);
        clean(&s);
    }
    assert_eq!(s.tasks.len(), 3);
    assert!(ids[7..].iter().all(|t| s.tasks.contains_key(t)));
    let st = s.stats();
    assert_eq!((st.submitted, st.completed, st.evicted), (10, 10, 7));
    let kept: Vec<TaskId> = s.outcomes().map(|o| o.id).collect();
    assert_eq!(kept, ids[5..7]);
    assert!(matches!(
        s.begin(ids[0], t0),
        Begin::Refused(SwarmError::TaskNotFound(_))
    ));
    // The maintenance pass lets go of the rest once they are old enough.
    assert_eq!(
        s.maintain(t0 + s.config.finished_max_age() + Duration::from_secs(1)),
        3
    );
    assert!(s.tasks.is_empty());
    clean(&s);
}

#[test]
fn waiters_are_served_by_priority_and_only_as_many_as_slots_free() {
    let config = SwarmConfig {
        max_parallel_tasks: 1,
        ..SwarmConfig::default()
    };
    let (mut s, t0) = state(config);
    s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    s.register_agent(AgentSpec::new("b", ["x"]), t0).unwrap();
    let zero = s.submit(TaskSpec::new("0"), RETRY_AFTER, t0).unwrap();
    let first = run_of(s.begin(zero, t0));
    let mut rxs = Vec::new();
    for p in [Priority::Low, Priority::High, Priority::Normal] {
        let t = s
            .submit(TaskSpec::new("w").with_priority(p), RETRY_AFTER, t0)
            .unwrap();
        let Begin::Wait { rx, .. } = s.begin(t, t0) else {
            panic!("the one slot is taken")
        };
        rxs.push((p, rx));
    }
    ok(&mut s, &first, t0);
    let served: Vec<Priority> = rxs
        .iter_mut()
        .filter_map(|(p, rx)| matches!(rx.try_recv(), Ok(Wake::Run(_))).then_some(*p))
        .collect();
    assert_eq!(served, [Priority::High], "one slot freed, one caller woken");
    clean(&s);
}

#[test]
fn a_level_scales_the_run_limit_and_pauses_features() {
    let config = SwarmConfig {
        max_parallel_tasks: 8,
        ..SwarmConfig::default()
    };
    let (mut s, t0) = state(config);
    s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    assert_eq!(s.run_limit(), 8);
    s.set_level(DegradationLevel::Minimal, t0);
    assert_eq!(s.run_limit(), 4);
    // Detailed telemetry is paused: no per-task events.
    let before = s.events.len();
    let t = s
        .submit(
            TaskSpec::new("t").with_priority(Priority::High),
            RETRY_AFTER,
            t0,
        )
        .unwrap();
    assert_eq!(s.events.len(), before);
    // Low priority is refused; speculative work waits for the level to change.
    assert!(
        s.submit(
            TaskSpec::new("low").with_priority(Priority::Low),
            RETRY_AFTER,
            t0
        )
        .is_err()
    );
    let spec = s
        .submit(
            TaskSpec::new("s")
                .with_priority(Priority::High)
                .as_speculative(),
            RETRY_AFTER,
            t0,
        )
        .unwrap();
    assert!(matches!(s.begin(spec, t0), Begin::Deferred(_)));
    assert_eq!(
        s.maintain(t0 + Duration::from_secs(86_400)),
        0,
        "maintenance is paused"
    );
    // New connections are refused at Critical.
    s.set_level(DegradationLevel::Critical, t0);
    let e = s
        .register_agent(AgentSpec::new("late", ["x"]), t0)
        .unwrap_err();
    assert!(e.to_string().contains("pauses new connections"), "{e}");
    s.set_level(DegradationLevel::Normal, t0);
    run_of(s.begin(t, t0));
    assert!(s.register_agent(AgentSpec::new("late", ["x"]), t0).is_ok());
    clean(&s);
}

#[test]
fn a_restore_puts_the_checkpoint_back_and_keeps_what_it_cannot_know() {
    let (mut s, t0) = state(SwarmConfig::default());
    let a = s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    let b = s.register_agent(AgentSpec::new("b", ["x"]), t0).unwrap();
    let old = s.submit(TaskSpec::new("old"), RETRY_AFTER, t0).unwrap();
    let checkpoint = s.snapshot();
    // After the checkpoint: a corruption (b quarantined, metadata scribbled), a new agent, a
    // new task, and a run of the old one in flight.
    s.quarantine_agent(b, t0).unwrap();
    s.metadata
        .insert("assignment_table".into(), "corrupt".into());
    let c = s.register_agent(AgentSpec::new("c", ["x"]), t0).unwrap();
    let new = s.submit(TaskSpec::new("new"), RETRY_AFTER, t0).unwrap();
    let running = run_of(s.begin(old, t0));
    s.restore(checkpoint.clone(), t0).unwrap();
    clean(&s);
    assert_eq!(
        s.agents[&b].status,
        AgentStatus::Idle,
        "the corruption is undone"
    );
    assert!(s.metadata.is_empty());
    assert!(
        s.agents.contains_key(&c),
        "an agent registered after it stays"
    );
    assert_eq!(
        s.tasks[&new].state,
        TaskState::Pending,
        "a task submitted after it stays"
    );
    assert!(running.cancel.is_cancelled());
    // The run that was in flight is fenced off by the epoch.
    assert!(matches!(ok(&mut s, &running, t0).end, RunEnd::Discarded(_)));
    assert!(is_restored(&checkpoint, &s.snapshot()));
    // A restore that did not undo a corruption is not a restore.
    s.quarantine_agent(a, t0).unwrap();
    assert!(!is_restored(&checkpoint, &s.snapshot()));
    clean(&s);
    assert_eq!(s.stats().restores, 1);
}

#[test]
fn reallocation_moves_work_off_unhealthy_agents_only() {
    let (mut s, t0) = state(SwarmConfig::default());
    let a = s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    let t = s.submit(TaskSpec::new("t"), RETRY_AFTER, t0).unwrap();
    let ticket = run_of(s.begin(t, t0));
    assert_eq!(
        s.reallocate(Reallocate::FromAgent(a), t0),
        0,
        "a healthy agent keeps its run"
    );
    assert_eq!(s.reallocate(Reallocate::Unhealthy, t0), 0);
    s.quarantine_agent(a, t0).unwrap();
    assert!(
        ticket.cancel.is_cancelled(),
        "quarantine told the run to stop"
    );
    clean(&s);
}

/// Found by the simulation: a second caller queued for an agent stayed queued when the first
/// caller's run of the same task started, behind higher-priority work, and found the task gone
/// from the table when its turn came. Starting a run tells the task's other waiters to look
/// again (they join the run).
#[test]
fn other_waiters_of_a_task_join_its_run_when_it_starts() {
    let (mut s, t0) = state(SwarmConfig::default());
    s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    let busy = s.submit(TaskSpec::new("busy"), RETRY_AFTER, t0).unwrap();
    let busy_run = run_of(s.begin(busy, t0));
    let task = s
        .submit(
            TaskSpec::new("low").with_priority(Priority::Low),
            RETRY_AFTER,
            t0,
        )
        .unwrap();
    let (Begin::Wait { rx: mut first, .. }, Begin::Wait { rx: mut second, .. }) =
        (s.begin(task, t0), s.begin(task, t0))
    else {
        panic!("both callers wait for the agent");
    };
    ok(&mut s, &busy_run, t0 + Duration::from_secs(1));
    assert!(matches!(first.try_recv(), Ok(Wake::Run(_))));
    assert!(
        matches!(second.try_recv(), Ok(Wake::Again)),
        "the second caller is told to look again, and joins the run"
    );
    assert_eq!(s.stats().waiting, 0);
    assert!(matches!(s.begin(task, t0), Begin::Join(_)));
    clean(&s);
}

/// Found by the simulation: a finished task left the table (past `finished_retention`) while a
/// caller was still on its way to its outcome, which then got `TaskNotFound`. A task with a
/// caller stays until the last one leaves.
#[test]
fn a_finished_task_stays_in_the_table_while_a_caller_waits_for_its_outcome() {
    let (mut s, t0) = state(SwarmConfig {
        finished_retention: 1,
        ..SwarmConfig::default()
    });
    s.register_agent(AgentSpec::new("a", ["x"]), t0).unwrap();
    let (a, b) = (
        s.submit(TaskSpec::new("a"), RETRY_AFTER, t0).unwrap(),
        s.submit(TaskSpec::new("b"), RETRY_AFTER, t0).unwrap(),
    );
    s.enter(a);
    let run = run_of(s.begin(a, t0));
    ok(&mut s, &run, t0);
    let run = run_of(s.begin(b, t0));
    ok(&mut s, &run, t0);
    clean(&s);
    assert!(
        matches!(s.begin(a, t0), Begin::Settled(Ok(_))),
        "a is kept for its caller"
    );
    s.leave(a);
    assert!(
        !s.tasks.contains_key(&a),
        "the last caller left: a leaves the table"
    );
    assert!(s.outcomes().any(|o| o.id == a && o.completed));
    assert!(matches!(
        s.begin(a, t0),
        Begin::Refused(SwarmError::TaskNotFound(_))
    ));
    clean(&s);
}
