//! Bringing an instance's agents back after it restarts, from its store in the shared database.

use recovery_checkpoint::{CheckpointError, CheckpointStore};
use swarm_integration::{AgentStatus, SwarmCheckpoint};

use crate::PgCheckpointStore;

/// The newest intact checkpoint in an instance's store (see
/// [`PgCheckpointStore::for_instance`]), made fit for a new process of that instance: its
/// agents, their trust, the configuration, events and metadata, but none of its tasks (a shared
/// swarm's tasks live in `swarm.tasks`, and the leases the old process held moved on when it
/// died), so no agent is left busy with one. `None` when the store holds no checkpoint.
/// Give it to [`SwarmCoordinator::from_checkpoint`](swarm_integration::SwarmCoordinator::from_checkpoint).
///
/// # Errors
///
/// The store's error, [`CheckpointError::NoValidCheckpoint`] if every checkpoint is damaged,
/// or the codec's if the newest intact one does not decode as a coordinator's state.
pub async fn instance_checkpoint(
    store: &PgCheckpointStore,
) -> Result<Option<SwarmCheckpoint>, CheckpointError> {
    let checkpoint = match store.latest().await {
        Ok(c) => c,
        Err(CheckpointError::Empty) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut state: SwarmCheckpoint = checkpoint.codec.decode(&checkpoint.payload)?;
    state.tasks.clear();
    state.active_assignments.clear();
    for agent in state.agents.values_mut() {
        agent.current_task = None;
        if agent.status == AgentStatus::Busy {
            agent.status = AgentStatus::Idle;
        }
    }
    Ok(Some(state))
}
