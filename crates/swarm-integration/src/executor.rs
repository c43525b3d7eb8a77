//! The work itself: what the user plugs in.

use async_trait::async_trait;
use recovery_core::SwarmError;

use crate::model::{AgentInfo, TaskInfo};

/// Runs a task on an agent. The user implements it; the coordinator calls it, enforces the
/// task timeout around it, and fences its result.
///
/// An `Err` should say what went wrong in the error's kind (a `CommunicationError` for a lost
/// connection, `ProtocolMismatch` for an agent that cannot speak to the coordinator), because the
/// kind decides which recovery applies.
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
}
