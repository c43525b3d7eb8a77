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
//! # Guarantees
//!
//! - No task is lost: every submitted task ends completed, or failed with a reason, or was
//!   refused at submission with an error. [`SwarmCoordinator::audit`] checks the invariants.
//! - No task runs twice at once. Every run carries an attempt number and the coordinator's
//!   restore epoch; a result from a superseded run (its agent was declared failed and the task
//!   moved, or a checkpoint was restored under it) is discarded, counted
//!   ([`CoordinatorStats::stale_results_discarded`]) and traced.
//!
//! # What each strategy does to the coordinator
//!
//! | strategy | capability | effect |
//! |---|---|---|
//! | exponential backoff | `Retry` | re-runs the failed task, on another agent if its agent failed; without a task, re-checks heartbeats |
//! | checkpoint | `Checkpointable` | snapshots agents, tasks and assignments, config, trust scores, recent events and metadata ([`SwarmCheckpoint`]); restore puts them all back, keeping tasks submitted or finished since |
//! | degradation | `Degradable` | a level refuses lower priorities at submission (`Overloaded`, with when to retry) and scales `max_parallel_tasks` by 1, 0.75, 0.5, 0.25 |
//! | self-healing | `Healable` | restarts [`COMPONENTS`] (`agent_protocol` reconnects failed agents), patches [`ADJUSTABLE_KEYS`] of the config, moves tasks off failed agents |

mod capabilities;
mod config;
mod coordinator;
mod executor;
mod model;

pub use capabilities::COMPONENTS;
pub use config::{ADJUSTABLE_KEYS, SwarmConfig};
pub use coordinator::{CoordinatorStats, SwarmCoordinator};
pub use executor::AgentExecutor;
pub use model::{
    AgentInfo, AgentSpec, AgentStatus, SwarmCheckpoint, SwarmEvent, SwarmEventKind, TaskInfo,
    TaskSpec, TaskState,
};
