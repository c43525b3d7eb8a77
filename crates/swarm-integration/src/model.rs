//! The coordinator's data: agents, tasks, events, and the checkpoint that holds them all.

use std::collections::{BTreeMap, BTreeSet};

use recovery_core::{AgentId, Priority, TaskId};
use serde::{Deserialize, Serialize};

use crate::config::SwarmConfig;

/// An agent's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AgentStatus {
    /// Ready for work.
    Idle,
    /// Running a task.
    Busy,
    /// Declared failed (crashed, or silent past the heartbeat timeout); gets no work until it
    /// is restarted or sends a heartbeat.
    Failed,
    /// Taken out of rotation on purpose (too many failures); gets no work until released.
    Quarantined,
}

/// What the coordinator knows about an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentInfo {
    /// The agent's id.
    pub id: AgentId,
    /// A name for people.
    pub name: String,
    /// What the agent can do; a task that requires a capability goes only to agents that have it.
    pub capabilities: BTreeSet<String>,
    /// Its status.
    pub status: AgentStatus,
    /// The task running on it, while a run is in flight.
    pub current_task: Option<TaskId>,
    /// Tasks it completed.
    pub completed: u64,
    /// Runs of tasks that failed on it.
    pub failures: u64,
}

/// How to register an agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentSpec {
    /// A name for people.
    pub name: String,
    /// What the agent can do.
    pub capabilities: BTreeSet<String>,
}

impl AgentSpec {
    /// An agent called `name` with the given capabilities.
    pub fn new<I, S>(name: impl Into<String>, capabilities: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            name: name.into(),
            capabilities: capabilities.into_iter().map(Into::into).collect(),
        }
    }
}

/// How to submit a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// A name for people.
    pub name: String,
    /// Under load, lower priorities are refused first.
    pub priority: Priority,
    /// A capability the running agent must have, if any.
    pub required_capability: Option<String>,
    /// The work's input, opaque to the coordinator.
    pub payload: Vec<u8>,
    /// Speculative work (prefetch, a hedged duplicate): accepted, but not started while a
    /// degradation level pauses speculative work.
    #[serde(default)]
    pub speculative: bool,
}

impl TaskSpec {
    /// A task called `name` with normal priority, no required capability and no payload.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Set the priority.
    pub fn with_priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }

    /// Require a capability.
    pub fn requiring(mut self, capability: impl Into<String>) -> Self {
        self.required_capability = Some(capability.into());
        self
    }

    /// Set the payload.
    pub fn with_payload(mut self, payload: impl Into<Vec<u8>>) -> Self {
        self.payload = payload.into();
        self
    }

    /// Mark the task speculative (see the `speculative` field).
    pub fn as_speculative(mut self) -> Self {
        self.speculative = true;
        self
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Accepted, waiting for an agent.
    Pending,
    /// Waiting for a run, with the agent it last ran on (after a restore of a checkpoint taken
    /// while it ran): that agent is preferred for its next run, but not reserved.
    Assigned {
        /// The agent it prefers.
        agent: AgentId,
    },
    /// Running on an agent.
    Running {
        /// The agent running it.
        agent: AgentId,
        /// The fencing token of this run: a result from any other attempt is discarded.
        attempt: u32,
    },
    /// Finished with an output.
    Completed {
        /// The agent that finished it.
        agent: AgentId,
        /// What the executor returned.
        output: Vec<u8>,
    },
    /// Given up on, with the reason.
    Failed {
        /// Why, and what was tried.
        reason: String,
    },
}

impl TaskState {
    /// Whether the task has finished, one way or the other.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Completed { .. } | Self::Failed { .. })
    }
}

/// What the coordinator knows about a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// The task's id.
    pub id: TaskId,
    /// How it was submitted.
    pub spec: TaskSpec,
    /// Where it is.
    pub state: TaskState,
    /// How many runs were started (the latest run's fencing token).
    pub attempts: u32,
    /// The error of the latest failed run, if any.
    pub last_error: Option<String>,
    /// The agent of the latest run, if any run started.
    #[serde(default)]
    pub last_agent: Option<AgentId>,
    /// Submission order, used to run equal priorities first-come first-served.
    pub sequence: u64,
}

/// Something that happened, kept in a bounded list of recent events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmEvent {
    /// Milliseconds since the coordinator started.
    pub at_ms: u64,
    /// What happened.
    pub kind: SwarmEventKind,
}

/// The kinds of [`SwarmEvent`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SwarmEventKind {
    /// An agent joined.
    AgentRegistered(AgentId),
    /// An agent left.
    AgentDeregistered(AgentId),
    /// An agent was declared failed.
    AgentFailed(AgentId),
    /// A failed or quarantined agent is back.
    AgentRecovered(AgentId),
    /// A task was accepted.
    TaskSubmitted(TaskId),
    /// A task finished.
    TaskCompleted(TaskId),
    /// A task was given up on.
    TaskFailed(TaskId),
    /// A task was moved off a failed agent.
    TaskReassigned {
        /// The task.
        task: TaskId,
        /// The agent it left.
        from: AgentId,
    },
    /// A result from a superseded run was discarded.
    StaleResultDiscarded {
        /// The task.
        task: TaskId,
        /// The stale run's attempt.
        attempt: u32,
    },
    /// The degradation level changed.
    LevelChanged(u8),
    /// A component was restarted.
    ComponentRestarted(String),
    /// The configuration was patched.
    ConfigChanged(BTreeMap<String, String>),
    /// The state was restored from a checkpoint.
    Restored,
}

/// Everything needed to rebuild a coordinator: the spec's `SwarmCheckpoint`.
///
/// A checkpoint holds the coordinator's state as it should be after a restore: a task that was
/// running is recorded as assigned to its agent (a run in flight does not survive a restore, and
/// its result will be discarded by fencing), and its agent as idle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SwarmCheckpoint {
    /// Agents and their states.
    pub agents: BTreeMap<AgentId, AgentInfo>,
    /// Every task the coordinator knows, with its state and assignment.
    pub tasks: BTreeMap<TaskId, TaskInfo>,
    /// The active task assignments (task to agent), as a separate index.
    pub active_assignments: BTreeMap<TaskId, AgentId>,
    /// The execution configuration.
    pub config: SwarmConfig,
    /// Each agent's trust score, in `0.0..=1.0`.
    pub trust_scores: BTreeMap<AgentId, f64>,
    /// The recent events.
    pub recent_events: Vec<SwarmEvent>,
    /// Free-form metadata (for example the degradation level, the coordinator's name).
    pub metadata: BTreeMap<String, String>,
}
