//! The work itself, and the agents' connections: what the user plugs in.

use async_trait::async_trait;
use recovery_core::{AgentId, SwarmError};

use crate::model::{AgentInfo, TaskInfo};

/// What a probe of an agent found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The agent answered.
    Alive,
    /// The agent did not answer, or answered that it cannot work.
    Dead(SwarmError),
    /// This executor has no way to probe agents.
    Unsupported,
}

/// Where a run reports that its agent is alive, for the length of one run.
pub trait Heartbeats: Send + Sync {
    /// The agent of this run is alive now.
    fn beat(&self, agent: AgentId);
}

/// One run of a task on an agent, as [`AgentExecutor::execute_run`] gets it: the agent, the
/// task, and a way to report heartbeats while a long run goes on.
pub struct RunContext<'a> {
    pub(crate) agent: &'a AgentInfo,
    pub(crate) task: &'a TaskInfo,
    pub(crate) heartbeats: &'a dyn Heartbeats,
}

impl std::fmt::Debug for RunContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunContext")
            .field("agent", &self.agent.id)
            .field("task", &self.task.id)
            .finish_non_exhaustive()
    }
}

impl<'a> RunContext<'a> {
    /// The agent the run is on.
    pub fn agent(&self) -> &'a AgentInfo {
        self.agent
    }

    /// The task, as it was when the run started.
    pub fn task(&self) -> &'a TaskInfo {
        self.task
    }

    /// Report that the agent is alive (a run's start and end count as heartbeats already; a run
    /// that takes longer than `heartbeat_timeout_secs` may report more).
    pub fn heartbeat(&self) {
        self.heartbeats.beat(self.agent.id);
    }
}

/// Runs a task on an agent, and (optionally) probes and reconnects agents. The user implements
/// it; the coordinator calls it, enforces the task timeout around each run, and fences its
/// result.
///
/// An `Err` should say what went wrong in the error's kind (a `CommunicationError` for a lost
/// connection, `ProtocolMismatch` for an agent that cannot speak to the coordinator), because the
/// kind decides which recovery applies.
///
/// Only [`execute`](Self::execute) is required. The other methods have defaults, and a new one
/// will only ever be added with a default:
///
/// - [`execute_run`](Self::execute_run) gets a [`RunContext`] that can report heartbeats;
/// - [`probe`](Self::probe) asks an agent whether it is alive (default: [`Probe::Unsupported`]),
///   what a retry with no task does;
/// - [`reconnect`](Self::reconnect) re-establishes an agent's connection (default: not
///   supported), what restarting the `agent_protocol` component does.
///
/// ```
/// use swarm_integration::{AgentExecutor, AgentInfo, TaskInfo};
/// use recovery_core::SwarmError;
///
/// /// Echoes the payload back, upper-cased.
/// struct Upper;
///
/// #[async_trait::async_trait]
/// impl AgentExecutor for Upper {
///     async fn execute(&self, _agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
///         Ok(task.spec.payload.to_ascii_uppercase())
///     }
/// }
/// ```
#[async_trait]
pub trait AgentExecutor: Send + Sync + 'static {
    /// Run `task` on `agent` and return its output.
    async fn execute(&self, agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError>;

    /// Run the task of `run` on its agent; by default [`execute`](Self::execute). Override it
    /// to report heartbeats during a long run ([`RunContext::heartbeat`]).
    async fn execute_run(&self, run: &RunContext<'_>) -> Result<Vec<u8>, SwarmError> {
        self.execute(run.agent, run.task).await
    }

    /// Ask `agent` whether it is alive.
    async fn probe(&self, agent: &AgentInfo) -> Probe {
        let _ = agent;
        Probe::Unsupported
    }

    /// Re-establish `agent`'s connection; `Ok` once it is connected again.
    ///
    /// # Errors
    ///
    /// By default `InvalidConfiguration`: this executor cannot reconnect agents.
    async fn reconnect(&self, agent: &AgentInfo) -> Result<(), SwarmError> {
        Err(SwarmError::InvalidConfiguration(format!(
            "this executor cannot reconnect agents (agent {}): implement AgentExecutor::reconnect",
            agent.name
        )))
    }
}
