//! Properties of a whole coordinator with several callers per task, agent churn, capabilities
//! nobody has (or only failed agents have), resource pressure, checkpoints and restores, on a
//! multi-thread runtime (real races) and on tokio's paused clock (long horizons): every call
//! returns, no task is lost, none runs twice at once (checked by the executor itself), no agent
//! is busy without a run.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use proptest::prelude::*;
use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy};
use recovery_core::{AgentId, SwarmError, TaskId};
use recovery_degradation::{Degradable, DegradationLevel};
use recovery_manager::{RecoveryConfig, RecoveryManager};
use swarm_integration::{
    AgentExecutor, AgentInfo, AgentSpec, Probe, SwarmConfig, SwarmCoordinator, TaskInfo, TaskSpec,
    TaskState,
};

#[derive(Debug, Clone, Copy)]
enum Fault {
    Ok,
    Comm,
    Crash,
    Corrupt,
}

#[derive(Debug, Clone)]
enum Op {
    /// A task needing capability `cap` (3: none; 2: one nobody has), run by `callers` callers.
    Submit {
        cap: u8,
        callers: u8,
    },
    Register(u8),
    Deregister(u8),
    Crash(u8),
    Return(u8),
    Level(u8),
    Checkpoint,
    Restore,
    Wait(u8),
}

const CAPS: [&str; 3] = ["a", "b", "nobody"];

/// Follows its fault script and checks that no task, and no agent, is in two runs at once.
struct Chaos {
    script: Vec<Fault>,
    next: AtomicUsize,
    running: Mutex<HashSet<TaskId>>,
    agents: Mutex<HashMap<AgentId, TaskId>>,
    down: Mutex<HashSet<AgentId>>,
    violations: Mutex<Vec<String>>,
    coordinator: OnceLock<Weak<SwarmCoordinator>>,
    unit: Duration,
}

struct Running<'a>(&'a Chaos, TaskId, AgentId);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.lock().unwrap().remove(&self.1);
        let mut agents = self.0.agents.lock().unwrap();
        if agents.get(&self.2) == Some(&self.1) {
            agents.remove(&self.2);
        }
    }
}

#[async_trait]
impl AgentExecutor for Chaos {
    async fn execute(&self, agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        if !self.running.lock().unwrap().insert(task.id) {
            self.violations
                .lock()
                .unwrap()
                .push(format!("task {} ran twice at once", task.id));
        }
        if let Some(other) = self.agents.lock().unwrap().insert(agent.id, task.id) {
            self.violations.lock().unwrap().push(format!(
                "agent {} ran {} and {other} at once",
                agent.id, task.id
            ));
        }
        let _running = Running(self, task.id, agent.id);
        tokio::time::sleep(self.unit).await;
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        match self.script.get(n).copied().unwrap_or(Fault::Ok) {
            Fault::Ok => Ok(task.spec.name.as_bytes().to_vec()),
            Fault::Comm => Err(SwarmError::CommunicationError("reset".into())),
            Fault::Crash => {
                self.down.lock().unwrap().insert(agent.id);
                if let Some(c) = self.coordinator.get().and_then(Weak::upgrade) {
                    let _ = c.declare_agent_failed(agent.id);
                }
                std::future::pending().await
            }
            Fault::Corrupt => Err(SwarmError::StateCorruption("inconsistent".into())),
        }
    }

    async fn probe(&self, agent: &AgentInfo) -> Probe {
        if self.down.lock().unwrap().contains(&agent.id) {
            Probe::Dead(SwarmError::CommunicationError("down".into()))
        } else {
            Probe::Alive
        }
    }

    async fn reconnect(&self, agent: &AgentInfo) -> Result<(), SwarmError> {
        self.down.lock().unwrap().remove(&agent.id);
        Ok(())
    }
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0u8..4, 1u8..=3).prop_map(|(cap, callers)| Op::Submit { cap, callers }),
        2 => (0u8..2).prop_map(Op::Register),
        1 => any::<u8>().prop_map(Op::Deregister),
        1 => any::<u8>().prop_map(Op::Crash),
        2 => any::<u8>().prop_map(Op::Return),
        1 => prop_oneof![3 => Just(0u8), 1 => 1..=3u8].prop_map(Op::Level),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Restore),
        3 => any::<u8>().prop_map(Op::Wait),
    ]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![6 => Just(Fault::Ok), 2 => Just(Fault::Comm), 1 => Just(Fault::Crash), 1 => Just(Fault::Corrupt)]
}

fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
    }
}

fn run_case(ops: Vec<Op>, script: Vec<Fault>, multi_thread: bool) -> Result<(), TestCaseError> {
    runtime(multi_thread).block_on(async move {
        // Real time on the multi-thread runtime: short runs and delays.
        let unit = if multi_thread {
            Duration::from_millis(1)
        } else {
            Duration::from_secs(1)
        };
        let chaos = Arc::new(Chaos {
            script,
            next: AtomicUsize::new(0),
            running: Mutex::new(HashSet::new()),
            agents: Mutex::new(HashMap::new()),
            down: Mutex::new(HashSet::new()),
            violations: Mutex::new(Vec::new()),
            coordinator: OnceLock::new(),
            unit,
        });
        let backoff = ExponentialBackoffStrategy::new(BackoffConfig {
            initial_delay: unit,
            max_delay: unit * 20,
            max_retries: 3,
            ..BackoffConfig::default()
        })
        .unwrap()
        .with_seed(7);
        let manager = RecoveryManager::builder()
            .config(RecoveryConfig::default())
            .default_strategies()
            .backoff(backoff)
            .without_sampler()
            .build()
            .unwrap();
        let config = SwarmConfig {
            task_timeout_secs: if multi_thread { 1 } else { 30 },
            max_parallel_tasks: 4,
            max_attempts_per_task: 6,
            ..SwarmConfig::default()
        };
        let c = SwarmCoordinator::with_manager(config, chaos.clone(), Arc::new(manager)).unwrap();
        chaos.coordinator.set(Arc::downgrade(&c)).unwrap();
        let mut agents: Vec<AgentId> = (0..3)
            .map(|i| {
                c.register_agent(AgentSpec::new(format!("x{i}"), [CAPS[i % 2]]))
                    .unwrap()
            })
            .collect();
        let mut calls = Vec::new();
        let mut tasks = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            match op {
                Op::Submit { cap, callers } => {
                    let spec = match cap {
                        3 => TaskSpec::new(format!("t{i}")),
                        cap => TaskSpec::new(format!("t{i}")).requiring(CAPS[cap as usize]),
                    };
                    let Ok(t) = c.submit_task(spec) else { continue };
                    tasks.push(t);
                    for _ in 0..callers {
                        let c = Arc::clone(&c);
                        calls.push((
                            t,
                            tokio::spawn(async move { c.execute_task_with_recovery(t).await }),
                        ));
                    }
                }
                Op::Register(cap) => {
                    if let Ok(a) = c.register_agent(AgentSpec::new("late", [CAPS[cap as usize]])) {
                        agents.push(a);
                    }
                }
                Op::Deregister(i) => {
                    if agents.len() > 1 {
                        let a = agents.remove(i as usize % agents.len());
                        c.deregister_agent(a).unwrap();
                    }
                }
                Op::Crash(i) => {
                    let a = agents[i as usize % agents.len()];
                    chaos.down.lock().unwrap().insert(a);
                    c.declare_agent_failed(a).unwrap();
                }
                Op::Return(i) => {
                    let a = agents[i as usize % agents.len()];
                    chaos.down.lock().unwrap().remove(&a);
                    c.heartbeat(a).unwrap();
                }
                Op::Level(l) => {
                    c.apply_level(DegradationLevel::from_u8(l).unwrap())
                        .await
                        .unwrap();
                }
                Op::Checkpoint => {
                    c.create_checkpoint().await.unwrap();
                }
                Op::Restore => {
                    let c = Arc::clone(&c);
                    tokio::spawn(async move {
                        let _ = c
                            .recover_from_error(
                                SwarmError::StateCorruption("generated".into()),
                                None,
                                None,
                            )
                            .await;
                    });
                }
                Op::Wait(n) => tokio::time::sleep(unit * u32::from(n % 16)).await,
            }
            let audit = c.audit();
            prop_assert!(audit.is_empty(), "after op {}: {:?}", i, audit);
        }
        // Every agent back and the level normal, so that what can finish does.
        c.apply_level(DegradationLevel::Normal).await.unwrap();
        for &a in &agents {
            chaos.down.lock().unwrap().remove(&a);
            c.heartbeat(a).unwrap();
        }
        let limit = if multi_thread {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(30 * 24 * 3600)
        };
        for (t, call) in calls {
            let outcome = tokio::time::timeout(limit, call).await;
            prop_assert!(outcome.is_ok(), "a call for task {} never returned", t);
            let outcome = outcome.unwrap().unwrap();
            match (&outcome, c.task(t).map(|t| t.state)) {
                (Ok(_), Some(TaskState::Completed { .. }) | None) => {}
                (Err(SwarmError::TaskFailed { .. }), Some(TaskState::Failed { .. }) | None) => {}
                (other, state) => {
                    prop_assert!(false, "task {} returned {:?}, is {:?}", t, other, state)
                }
            }
        }
        let stats = c.stats();
        prop_assert_eq!(stats.unfinished, 0, "{:?}", stats);
        prop_assert_eq!(stats.submitted, tasks.len() as u64);
        prop_assert_eq!(stats.completed + stats.failed, stats.submitted);
        let audit = c.audit();
        prop_assert!(audit.is_empty(), "{:?}", audit);
        let violations = chaos.violations.lock().unwrap().clone();
        prop_assert!(violations.is_empty(), "{:?}", violations);
        Ok(())
    })
}

proptest! {
    #[test]
    fn prop_many_callers_churn_and_restores_on_a_multi_thread_runtime(
        ops in prop::collection::vec(op(), 1..40),
        script in prop::collection::vec(fault(), 0..40),
    ) {
        run_case(ops, script, true)?;
    }

    #[test]
    fn prop_many_callers_churn_and_restores_on_paused_time(
        ops in prop::collection::vec(op(), 1..40),
        script in prop::collection::vec(fault(), 0..40),
    ) {
        run_case(ops, script, false)?;
    }
}
