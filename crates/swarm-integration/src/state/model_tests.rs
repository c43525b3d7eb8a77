//! A model-based property: random sequences of transitions, several callers per task, agents
//! that come, go, fail and come back, restores, level changes, checked after every step against
//! a plain reference model and the audit.

use std::collections::HashMap;
use std::time::Duration;

use proptest::prelude::*;
use recovery_core::{AgentId, SwarmError, TaskId};
use recovery_degradation::DegradationLevel;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::*;
use crate::model::{AgentSpec, TaskSpec, TaskState};

#[derive(Debug, Clone)]
enum Op {
    Register(u8),
    Deregister(u8),
    Fail(u8),
    Heartbeat(u8),
    Quarantine(u8),
    Release(u8),
    Submit(u8),
    Begin(u8),
    Finish(u8, u8),
    GiveUp(u8),
    CancelWait(u8),
    FailTask(u8),
    Snapshot,
    Restore,
    Level(u8),
    Sweep(u8),
    Reallocate,
    Maintain,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..3).prop_map(Op::Register),
        1 => any::<u8>().prop_map(Op::Deregister),
        1 => any::<u8>().prop_map(Op::Fail),
        1 => any::<u8>().prop_map(Op::Heartbeat),
        1 => any::<u8>().prop_map(Op::Quarantine),
        1 => any::<u8>().prop_map(Op::Release),
        4 => (0u8..4).prop_map(Op::Submit),
        6 => any::<u8>().prop_map(Op::Begin),
        6 => (any::<u8>(), 0u8..4).prop_map(|(i, o)| Op::Finish(i, o)),
        1 => any::<u8>().prop_map(Op::GiveUp),
        1 => any::<u8>().prop_map(Op::CancelWait),
        1 => any::<u8>().prop_map(Op::FailTask),
        1 => Just(Op::Snapshot),
        1 => Just(Op::Restore),
        1 => (0u8..4).prop_map(Op::Level),
        1 => (0u8..4).prop_map(Op::Sweep),
        1 => Just(Op::Reallocate),
        1 => Just(Op::Maintain),
    ]
}

/// The reference: which run of each task is in flight (until it ends, also when told to stop),
/// which is current (not told to stop), and how each task ended.
#[derive(Default)]
struct Model {
    in_flight: HashMap<TaskId, u32>,
    current: HashMap<TaskId, u32>,
    attempts: HashMap<TaskId, u32>,
    ended: HashMap<TaskId, bool>,
}

impl Model {
    /// A run started: the task had none, and its attempt is the next one.
    fn started(&mut self, t: &RunTicket) -> Result<(), TestCaseError> {
        prop_assert!(
            !self.in_flight.contains_key(&t.task.id),
            "task {} runs twice at once",
            t.task.id
        );
        self.in_flight.insert(t.task.id, t.attempt);
        let attempts = self.attempts.entry(t.task.id).or_default();
        prop_assert!(
            t.attempt > *attempts,
            "attempt {} after {}",
            t.attempt,
            attempts
        );
        *attempts = t.attempt;
        self.current.insert(t.task.id, t.attempt);
        Ok(())
    }
}

fn pick<T: Clone>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[i as usize % items.len()].clone())
}

proptest! {
    #[test]
    fn prop_transitions_keep_the_invariants_and_agree_with_the_model(
        ops in prop::collection::vec(op(), 1..120)
    ) {
        let t0 = Instant::now();
        let config = SwarmConfig {
            max_parallel_tasks: 3,
            finished_retention: 4,
            outcome_log: 4,
            max_attempts_per_task: 5,
            ..SwarmConfig::default()
        };
        let mut s = SwarmState::new(config, IdSource::seeded(9), t0);
        let mut now = t0;
        let mut model = Model::default();
        let mut agents: Vec<AgentId> = Vec::new();
        let mut tasks: Vec<TaskId> = Vec::new();
        let mut tickets: Vec<RunTicket> = Vec::new();
        let mut waiting: Vec<(WaiterId, oneshot::Receiver<Wake>)> = Vec::new();
        let mut checkpoint = None;
        let caps = ["a", "b", "c"];
        for op in ops {
            now += Duration::from_millis(250);
            match op {
                Op::Register(c) => {
                    if let Ok(id) = s.register_agent(AgentSpec::new("x", [caps[c as usize]]), now) {
                        agents.push(id);
                    }
                }
                Op::Deregister(i) => {
                    if let Some(a) = pick(&agents, i) {
                        s.deregister_agent(a, now).unwrap();
                        agents.retain(|x| *x != a);
                    }
                }
                Op::Fail(i) => if let Some(a) = pick(&agents, i) { s.declare_agent_failed(a, now).unwrap(); },
                Op::Heartbeat(i) => if let Some(a) = pick(&agents, i) { s.heartbeat(a, now).unwrap(); },
                Op::Quarantine(i) => if let Some(a) = pick(&agents, i) { s.quarantine_agent(a, now).unwrap(); },
                Op::Release(i) => if let Some(a) = pick(&agents, i) { s.release_agent(a, now).unwrap(); },
                Op::Submit(c) => {
                    let spec = match c {
                        3 => TaskSpec::new("any"),
                        c => TaskSpec::new("t").requiring(caps[c as usize]),
                    };
                    if let Ok(t) = s.submit(spec, Duration::from_secs(1), now) {
                        tasks.push(t);
                    }
                }
                Op::Begin(i) => {
                    let Some(t) = pick(&tasks, i) else { continue };
                    match s.begin(t, now) {
                        Begin::Run(ticket) => {
                            model.started(&ticket)?;
                            tickets.push(*ticket);
                        }
                        Begin::Wait { id, rx } => waiting.push((id, rx)),
                        Begin::Join(_) => prop_assert!(model.in_flight.contains_key(&t)),
                        Begin::Settled(r) => match model.ended.get(&t).copied() {
                            Some(completed) => prop_assert_eq!(completed, r.is_ok()),
                            // It had all its runs: failed just now.
                            None => {
                                prop_assert!(r.is_err());
                                model.ended.insert(t, false);
                            }
                        },
                        Begin::Refused(e) => prop_assert!(
                            matches!(e, SwarmError::ResourceConflict(_) | SwarmError::TaskNotFound(_)),
                            "{e}"
                        ),
                        Begin::Deferred(_) => {}
                    }
                }
                Op::Finish(i, o) => {
                    if tickets.is_empty() { continue; }
                    let ticket = tickets.remove(i as usize % tickets.len());
                    let outcome = match o {
                        0 | 1 => RunOutcome::Output(vec![o]),
                        2 => RunOutcome::Error(SwarmError::CommunicationError("x".into())),
                        _ => RunOutcome::Error(SwarmError::ProtocolMismatch("v1".into())),
                    };
                    let expect_current = model.current.get(&ticket.task.id) == Some(&ticket.attempt)
                        && !ticket.cancel.is_cancelled();
                    let f = s.finish_run(ticket.id(), outcome, now);
                    model.in_flight.remove(&ticket.task.id);
                    if model.current.get(&ticket.task.id) == Some(&ticket.attempt) {
                        model.current.remove(&ticket.task.id);
                    }
                    match f.end {
                        RunEnd::Applied(r) => {
                            prop_assert!(expect_current, "a superseded run was applied");
                            match r {
                                Ok(_) => { model.ended.insert(ticket.task.id, true); }
                                Err(e) if !e.is_recoverable() => { model.ended.insert(ticket.task.id, false); }
                                Err(_) => {}
                            }
                        }
                        RunEnd::Discarded(_) => prop_assert!(!expect_current, "a current run was discarded"),
                    }
                }
                Op::GiveUp(i) => {
                    if tickets.is_empty() { continue; }
                    let ticket = tickets.remove(i as usize % tickets.len());
                    model.current.remove(&ticket.task.id);
                    model.in_flight.remove(&ticket.task.id);
                    s.abandon(ticket.id(), now);
                }
                Op::CancelWait(i) => {
                    if waiting.is_empty() { continue; }
                    let (id, mut rx) = waiting.remove(i as usize % waiting.len());
                    if let Some(ticket) = s.cancel_wait(id, &mut rx) {
                        model.started(&ticket)?;
                        model.current.remove(&ticket.task.id);
                        model.in_flight.remove(&ticket.task.id);
                        s.abandon(ticket.id(), now);
                    }
                }
                Op::FailTask(i) => {
                    if let Some(t) = pick(&tasks, i) {
                        if s.fail_task(t, "given up".into(), now) {
                            model.ended.insert(t, false);
                        }
                    }
                }
                Op::Snapshot => checkpoint = Some(s.snapshot()),
                Op::Restore => {
                    if let Some(c) = checkpoint.clone() {
                        s.restore(c, now).unwrap();
                    }
                }
                Op::Level(l) => s.set_level(DegradationLevel::from_u8(l).unwrap(), now),
                Op::Sweep(k) => {
                    now += Duration::from_secs(u64::from(k) * 20);
                    s.sweep_heartbeats(now);
                }
                Op::Reallocate => { s.reallocate(Reallocate::Unhealthy, now); }
                Op::Maintain => { s.maintain(now); }
            }
            // Runs handed to waiting callers.
            let mut still = Vec::new();
            for (id, mut rx) in waiting.drain(..) {
                match rx.try_recv() {
                    Ok(Wake::Run(ticket)) => {
                        model.started(&ticket)?;
                        tickets.push(*ticket);
                    }
                    Ok(Wake::Again) | Err(oneshot::error::TryRecvError::Closed) => {}
                    Err(oneshot::error::TryRecvError::Empty) => still.push((id, rx)),
                }
            }
            waiting = still;
            // Runs told to stop are no longer current.
            for t in &tickets {
                if t.cancel.is_cancelled() && model.current.get(&t.task.id) == Some(&t.attempt) {
                    model.current.remove(&t.task.id);
                }
            }
            let problems = s.audit();
            prop_assert!(problems.is_empty(), "after {:?}: {:#?}", s.stats(), problems);
            // Every task ended as the model says, or is unfinished; none is lost.
            for (t, completed) in &model.ended {
                if let Some(info) = s.tasks.get(t) {
                    match &info.state {
                        TaskState::Completed { .. } => prop_assert!(*completed),
                        TaskState::Failed { .. } => prop_assert!(!*completed),
                        other => prop_assert!(false, "task {} ended, now {:?}", t, other),
                    }
                }
            }
            let st = s.stats();
            prop_assert_eq!(st.completed, model.ended.values().filter(|c| **c).count() as u64);
            prop_assert_eq!(st.failed, model.ended.values().filter(|c| !**c).count() as u64);
            prop_assert_eq!(st.submitted, tasks.len() as u64);
            prop_assert!(s.runs.len() <= s.run_limit().max(3), "{} runs, limit {}", s.runs.len(), s.run_limit());
        }
    }
}
