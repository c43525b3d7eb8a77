//! Properties of a whole coordinator under generated faults.
//!
//! `prop_no_task_lost_and_never_run_twice`: for any sequence of submissions, executor faults,
//! recoveries, checkpoints and restores, and degradation levels, every accepted task ends
//! completed or failed with a reason (or was refused at submission with an error), the
//! coordinator's audit finds nothing wrong, and no task ever runs on two agents at once (checked
//! by the executor itself, not by the coordinator's bookkeeping).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use recovery_core::{AgentId, ErrorKind, Priority, SwarmError, TaskId};
use recovery_degradation::{Degradable, DegradationLevel};
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, SwarmConfig, SwarmCoordinator, TaskInfo, TaskSpec,
    TaskState,
};

/// What one run of the executor does; the n-th run takes the n-th fault of the script, and
/// every run past the script succeeds.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Works for a while, then succeeds.
    Ok,
    /// The connection drops.
    Comm,
    /// Runs past the task timeout (the coordinator cuts it off).
    Timeout,
    /// A non-recoverable error.
    Protocol,
    /// The agent crashes: it is declared failed and never answers.
    Crash,
    /// The agent reports that the coordinator's state is inconsistent.
    Corrupt,
}

/// What the test does between runs.
#[derive(Debug, Clone)]
enum Op {
    Submit(Priority),
    /// A recovery with no task named, for an error of this kind.
    Recover(ErrorKind),
    Checkpoint,
    /// `recover_from_error(StateCorruption)`: restores the newest checkpoint, if any.
    Restore,
    Level(u8),
    /// Every agent sends a heartbeat (a failed one comes back).
    Revive,
    Wait(u64),
}

const TASK_TIMEOUT_SECS: u64 = 2;

/// The executor: follows the script and checks that no task is in two runs at once.
struct Chaos {
    script: Vec<Fault>,
    next: AtomicUsize,
    running: Mutex<HashSet<TaskId>>,
    running_agents: Mutex<HashMap<AgentId, TaskId>>,
    violations: Mutex<Vec<String>>,
    /// An agent that starts a task while the cancelled future of its previous run is still
    /// alive (after a restore, or a crash and a heartbeat): must never happen.
    agent_overlaps: Mutex<Vec<String>>,
    coordinator: OnceLock<Weak<SwarmCoordinator>>,
}

/// Clears the running flag when a run ends, however it ends (returns, times out, is cancelled).
struct Running<'a> {
    chaos: &'a Chaos,
    task: TaskId,
    agent: AgentId,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.chaos.running.lock().unwrap().remove(&self.task);
        let mut agents = self.chaos.running_agents.lock().unwrap();
        if agents.get(&self.agent) == Some(&self.task) {
            agents.remove(&self.agent);
        }
    }
}

#[async_trait]
impl AgentExecutor for Chaos {
    async fn execute(&self, agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        if !self.running.lock().unwrap().insert(task.id) {
            self.violations.lock().unwrap().push(format!(
                "task {} started on agent {} while another run of it was in flight",
                task.id, agent.id
            ));
        }
        if let Some(other) = self
            .running_agents
            .lock()
            .unwrap()
            .insert(agent.id, task.id)
        {
            self.agent_overlaps.lock().unwrap().push(format!(
                "agent {} started task {} while running task {other}",
                agent.id, task.id
            ));
        }
        let _running = Running {
            chaos: self,
            task: task.id,
            agent: agent.id,
        };
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        match self.script.get(n).copied().unwrap_or(Fault::Ok) {
            Fault::Ok => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                Ok(task.spec.name.as_bytes().to_vec())
            }
            Fault::Comm => {
                tokio::time::sleep(Duration::from_millis(3)).await;
                Err(SwarmError::CommunicationError("connection reset".into()))
            }
            Fault::Timeout => {
                tokio::time::sleep(Duration::from_secs(TASK_TIMEOUT_SECS + 1)).await;
                Ok(b"too late".to_vec())
            }
            Fault::Protocol => Err(SwarmError::ProtocolMismatch("agent speaks v1".into())),
            Fault::Crash => {
                if let Some(c) = self.coordinator.get().and_then(Weak::upgrade) {
                    c.declare_agent_failed(agent.id).unwrap();
                }
                std::future::pending().await
            }
            Fault::Corrupt => Err(SwarmError::StateCorruption(
                "assignment table disagrees with the agent".into(),
            )),
        }
    }
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        5 => Just(Fault::Ok),
        2 => Just(Fault::Comm),
        1 => Just(Fault::Timeout),
        1 => Just(Fault::Protocol),
        1 => Just(Fault::Crash),
        1 => Just(Fault::Corrupt),
    ]
}

fn priority() -> impl Strategy<Value = Priority> {
    prop::sample::select(Priority::ALL.to_vec())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => priority().prop_map(Op::Submit),
        2 => prop::sample::select(vec![
            ErrorKind::CommunicationError,
            ErrorKind::CoordinationTimeout,
            ErrorKind::ConcurrencyError,
            ErrorKind::Overloaded,
        ])
        .prop_map(Op::Recover),
        2 => Just(Op::Checkpoint),
        1 => Just(Op::Restore),
        1 => prop_oneof![3 => Just(0u8), 1 => 1..=3u8].prop_map(Op::Level),
        1 => Just(Op::Revive),
        3 => (0..3_000u64).prop_map(Op::Wait),
    ]
}

fn error_of(kind: ErrorKind) -> SwarmError {
    match kind {
        ErrorKind::CommunicationError => SwarmError::CommunicationError("blip".into()),
        ErrorKind::CoordinationTimeout => SwarmError::CoordinationTimeout("slow".into()),
        ErrorKind::ConcurrencyError => SwarmError::ConcurrencyError("race".into()),
        _ => SwarmError::Overloaded {
            reason: "busy".into(),
            retry_after: Duration::from_secs(1),
        },
    }
}

fn level(l: u8) -> DegradationLevel {
    DegradationLevel::from_u8(l).unwrap_or(DegradationLevel::Normal)
}

/// Runs one generated case; `Err` names the broken invariant.
fn run_case(ops: Vec<Op>, script: Vec<Fault>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let chaos = Arc::new(Chaos {
            script,
            next: AtomicUsize::new(0),
            running: Mutex::new(HashSet::new()),
            running_agents: Mutex::new(HashMap::new()),
            violations: Mutex::new(Vec::new()),
            agent_overlaps: Mutex::new(Vec::new()),
            coordinator: OnceLock::new(),
        });
        let config = SwarmConfig {
            task_timeout_secs: TASK_TIMEOUT_SECS,
            max_attempts_per_task: 5,
            ..SwarmConfig::default()
        };
        let c = SwarmCoordinator::new(config, chaos.clone()).unwrap();
        chaos.coordinator.set(Arc::downgrade(&c)).unwrap();
        let agents: Vec<AgentId> = (0..3)
            .map(|i| {
                c.register_agent(AgentSpec::new(format!("agent-{i}"), [] as [&str; 0]))
                    .unwrap()
            })
            .collect();

        let mut tasks = Vec::new();
        let mut recoveries = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Submit(p) => {
                    match c.submit_task(TaskSpec::new(format!("t{i}")).with_priority(p)) {
                        Ok(id) => {
                            let c2 = c.clone();
                            let run =
                                tokio::spawn(
                                    async move { c2.execute_task_with_recovery(id).await },
                                );
                            tasks.push((id, run));
                        }
                        Err(e) => prop_assert_eq!(e.kind(), ErrorKind::Overloaded, "{}", e),
                    }
                }
                Op::Recover(kind) => {
                    let c2 = c.clone();
                    recoveries.push(tokio::spawn(async move {
                        c2.recover_from_error(error_of(kind), None, None).await
                    }));
                }
                Op::Checkpoint => {
                    c.create_checkpoint().await.unwrap();
                }
                Op::Restore => {
                    let c2 = c.clone();
                    recoveries.push(tokio::spawn(async move {
                        c2.recover_from_error(
                            SwarmError::StateCorruption("generated".into()),
                            None,
                            None,
                        )
                        .await
                    }));
                }
                Op::Level(l) => c.apply_level(level(l)).await.unwrap(),
                Op::Revive => {
                    for &a in &agents {
                        c.heartbeat(a).unwrap();
                    }
                }
                Op::Wait(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            }
            tokio::task::yield_now().await;
        }

        // Let everything finish, normal level; a hang is a failure (time is paused, so the
        // limit costs nothing unless something never ends).
        c.apply_level(DegradationLevel::Normal).await.unwrap();
        let limit = Duration::from_secs(24 * 3600);
        for (id, run) in tasks {
            let outcome = tokio::time::timeout(limit, run).await;
            prop_assert!(outcome.is_ok(), "task {} never finished", id);
            let outcome = outcome.unwrap().unwrap();
            let state = c.task(id).unwrap().state;
            match (&outcome, &state) {
                (Ok(output), TaskState::Completed { output: o, .. }) => {
                    prop_assert_eq!(output, o)
                }
                (Err(SwarmError::TaskFailed { reason, .. }), TaskState::Failed { reason: r }) => {
                    prop_assert!(!r.is_empty());
                    prop_assert_eq!(reason, r);
                }
                _ => prop_assert!(
                    false,
                    "task {} returned {:?} but is {:?}",
                    id,
                    outcome,
                    state
                ),
            }
        }
        for r in recoveries {
            let outcome = tokio::time::timeout(limit, r).await;
            prop_assert!(outcome.is_ok(), "a recovery never finished");
            prop_assert!(outcome.unwrap().unwrap().is_ok());
        }

        for t in c.tasks() {
            match &t.state {
                TaskState::Completed { .. } => {}
                TaskState::Failed { reason } => prop_assert!(!reason.is_empty()),
                other => prop_assert!(false, "task {} ended {:?}", t.id, other),
            }
        }
        let stats = c.stats();
        prop_assert_eq!(stats.unfinished, 0, "{:?}", stats);
        prop_assert_eq!(stats.completed + stats.failed, stats.submitted);
        let audit = c.audit();
        prop_assert!(audit.is_empty(), "{:?}", audit);
        let violations = chaos.violations.lock().unwrap().clone();
        prop_assert!(violations.is_empty(), "{:?}", violations);
        let overlaps = chaos.agent_overlaps.lock().unwrap().clone();
        prop_assert!(overlaps.is_empty(), "{:?}", overlaps);
        Ok(())
    })
}

proptest! {
    #[test]
    fn prop_no_task_lost_and_never_run_twice(
        ops in prop::collection::vec(op(), 1..30),
        script in prop::collection::vec(fault(), 0..40),
    ) {
        run_case(ops, script)?;
    }
}
