//! A swarm coordinator that recovers its own work: agents, tasks, a user-supplied
//! [`AgentExecutor`], and a [`RecoveryManager`](recovery_manager::RecoveryManager) whose
//! strategies act on the coordinator through the capability traits it implements.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use recovery_core::{Priority, SwarmError};
//! use swarm_integration::{AgentExecutor, AgentInfo, AgentSpec, SwarmConfig, SwarmCoordinator, TaskInfo, TaskSpec};
//!
//! /// Loses its connection on the first run, then works.
//! struct Flaky(AtomicU32);
//!
//! #[async_trait::async_trait]
//! impl AgentExecutor for Flaky {
//!     async fn execute(&self, _agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
//!         if self.0.fetch_add(1, Ordering::SeqCst) == 0 {
//!             return Err(SwarmError::CommunicationError("connection reset".into()));
//!         }
//!         Ok(task.spec.payload.to_ascii_uppercase())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), SwarmError> {
//! let coordinator = SwarmCoordinator::new(SwarmConfig::default(), Arc::new(Flaky(AtomicU32::new(0))))?;
//! coordinator.register_agent(AgentSpec::new("worker-1", ["text"]))?;
//! let task = coordinator.submit_task(TaskSpec::new("shout").with_payload(b"hi".to_vec()).with_priority(Priority::High))?;
//!
//! // The first run fails; exponential backoff waits 100 ms and re-runs it.
//! let output = coordinator.execute_task_with_recovery(task).await?;
//! assert_eq!(output, b"HI");
//!
//! let history = coordinator.recovery_manager().get_recovery_history().await;
//! assert_eq!(history[0].strategy_id, "exponential_backoff");
//! assert!(history[0].result.success);
//!
//! let checkpoint_id = coordinator.create_checkpoint().await?;
//! # let _ = checkpoint_id;
//! # Ok(()) }
//! ```
//!
//! # How it is built
//!
//! A synchronous state machine inside a thin async shell. The state (agents, trust, tasks, runs
//! in flight, callers waiting for an agent, events, finished tasks) changes only through plain
//! `&mut self` transitions that take the time as an argument and return what the shell must do:
//! carry out a run, wake callers. The shell holds the lock for one transition at a time, never
//! across an await, and after each one reports its load (agents as connections, runs in flight
//! as active tasks) to the resource monitor. Idle agents are indexed by capability (most
//! trusted first) and waiting callers by the capability their task needs (highest priority,
//! then oldest): a run's end hands its agent straight to the one caller it can serve, so the
//! cost of a transition does not grow with the swarm.
//!
//! # Guarantees
//!
//! - No task is lost: every submitted task ends completed, or failed with a reason, or was
//!   refused at submission with an error; counters account for tasks that left the table.
//!   [`SwarmCoordinator::audit`] checks the invariants.
//! - No task runs twice at once. Every run carries an attempt number and the coordinator's
//!   restore epoch; a result from a superseded run (its agent was declared failed or left, the
//!   task was moved or failed, a checkpoint was restored under it) is discarded, counted
//!   ([`CoordinatorStats::stale_results_discarded`]) and traced.
//! - A second caller of a running task waits for its run and shares its outcome: "already
//!   running" is never an error a strategy sees.
//! - An agent with a run in flight is never declared failed by a stale heartbeat: a run's start
//!   and end count as heartbeats, an executor can report more ([`RunContext::heartbeat`]), and
//!   only idle agents are swept.
//! - Memory is bounded by the configuration, not by the tasks ever run: finished tasks leave
//!   the table after `finished_retention` (count) and `finished_max_age_secs` (age, on
//!   [`SwarmCoordinator::maintain`]); a checkpoint holds live state only.
//! - [`execute_task_with_recovery`](SwarmCoordinator::execute_task_with_recovery) always
//!   returns: at most `max_recovery_rounds` rounds in `recovery_time_limit_secs`, and only an
//!   effect counts as progress.
//!
//! # What each strategy does to the coordinator
//!
//! | strategy | capability | effect |
//! |---|---|---|
//! | exponential backoff | `Retry` | re-runs the failed task, on another agent if its agent failed; without a task, probes the named agent (or the failed ones) through [`AgentExecutor::probe`] and succeeds only if one answers |
//! | checkpoint | `Checkpointable` | snapshots agents, unfinished tasks and their assignments, config, trust scores, recent events and metadata ([`SwarmCheckpoint`]); restore puts them back and checks status, trust and task states, keeping agents registered and tasks submitted or finished since |
//! | degradation | `Degradable` | a level refuses lower priorities at submission, scales `max_parallel_tasks` by 1, 0.75, 0.5, 0.25, defers speculative work and the maintenance pass (Reduced), stops per-task events (Minimal), refuses new agents (Critical) |
//! | self-healing | `Healable` | restarts [`COMPONENTS`] through a supervisor with restart intensity (`agent_protocol` reconnects failed agents through [`AgentExecutor::reconnect`], `task_scheduler` moves work off unhealthy agents), patches [`ADJUSTABLE_KEYS`] of the config, moves tasks off failed agents; a restart with nothing to do is `no_change` |

mod breaker;
mod capabilities;
mod components;
mod config;
mod coordinator;
mod executor;
mod ids;
mod journal;
mod model;
mod recovery;
mod run;
mod state;

pub use components::NAMES as COMPONENTS;
pub use config::{ADJUSTABLE_KEYS, MAX_COUNT, SwarmConfig};
pub use coordinator::{CoordinatorOptions, SwarmCoordinator, Violation};
pub use executor::{AgentExecutor, Heartbeats, Probe, RunContext};
pub use journal::{PriorRecovery, RecoveryJournal};
pub use model::{
    AgentInfo, AgentSpec, AgentStatus, SwarmCheckpoint, SwarmEvent, SwarmEventKind, TaskInfo,
    TaskSpec, TaskState,
};
pub use state::{CoordinatorStats, FinishedTask, Reallocate};
