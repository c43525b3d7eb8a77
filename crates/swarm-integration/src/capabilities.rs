//! How the coordinator lends itself to each strategy: the capability traits, implemented for
//! real. Each impl only calls the coordinator's own public operations.

use std::collections::BTreeMap;
use std::time::Duration;

use recovery_backoff::{Retry, RetryRequest};
use recovery_checkpoint::Checkpointable;
use recovery_core::{AgentId, ErrorKind, Priority, SwarmError, TaskId, async_trait};
use recovery_degradation::{Degradable, DegradationLevel};
use recovery_healing::{ConfigPatch, ConfigPatchError, ConfigValue, Healable, RestartError};

use crate::config::ADJUSTABLE_KEYS;
use crate::coordinator::SwarmCoordinator;
use crate::model::{AgentStatus, SwarmCheckpoint, SwarmEventKind, TaskState};

/// How long a refused submitter is told to wait before trying again, without a degradation
/// strategy to say otherwise.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(30);

/// The components [`Healable::restart_component`] knows.
pub const COMPONENTS: [&str; 2] = ["agent_protocol", "task_scheduler"];

/// The degradation level stored as `level`, read back.
pub(crate) fn level_of(level: u8) -> DegradationLevel {
    DegradationLevel::from_u8(level).unwrap_or(DegradationLevel::Critical)
}

/// Whether a task of `priority` is admitted at `level`, or the `Overloaded` refusal that says
/// why and when to try again.
pub(crate) fn admit(
    level: u8,
    priority: Priority,
    retry_after: Duration,
) -> Result<(), SwarmError> {
    level_of(level).admit(priority, None, retry_after)
}

/// The run limit at `level` for a configured `max_parallel_tasks`.
pub(crate) fn scaled_limit(level: u8, max_parallel_tasks: usize) -> usize {
    level_of(level).scaled_limit(max_parallel_tasks).max(1)
}

/// Retry re-runs the failed task (on another agent if its agent failed). Without a task, for a
/// communication error or a timeout, it re-establishes contact: it checks heartbeats and
/// succeeds only if a healthy agent remains; any other task-less error it returns unchanged.
#[async_trait]
impl Retry for SwarmCoordinator {
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
        match request.failed_task_id {
            Some(task) => self.execute_task(task).await.map(drop),
            // Without a task there is no operation to re-run; for a lost connection or a timeout,
            // re-establishing contact is the retry. Any other error is not fixed by a retry.
            None if !matches!(
                request.error.kind(),
                ErrorKind::CommunicationError | ErrorKind::CoordinationTimeout
            ) =>
            {
                Err(request.error)
            }
            None => {
                self.check_heartbeats();
                let healthy = self
                    .agents()
                    .iter()
                    .filter(|a| matches!(a.status, AgentStatus::Idle | AgentStatus::Busy))
                    .count();
                if healthy == 0 {
                    Err(SwarmError::CommunicationError(
                        "no agent answers its heartbeat".into(),
                    ))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Snapshots are [`SwarmCheckpoint`]s with every field of the spec's checkpoint.
#[async_trait]
impl Checkpointable for SwarmCoordinator {
    type State = SwarmCheckpoint;

    async fn snapshot(&self) -> Result<SwarmCheckpoint, SwarmError> {
        Ok(SwarmCoordinator::snapshot(self))
    }

    async fn restore(&self, state: SwarmCheckpoint) -> Result<(), SwarmError> {
        SwarmCoordinator::restore(self, state)
    }

    /// A restore keeps tasks submitted after the checkpoint and tasks that finished after it
    /// (so no task is lost), and on a multi-threaded runtime work resumes on other threads the
    /// moment the restore releases its lock, moving agents' statuses and trust scores. So: the
    /// configuration and metadata equal the checkpoint's, the same agents (names and
    /// capabilities) and trust entries are there, and every task of the checkpoint is there
    /// with its spec, either in its checkpointed state, finished, or run again since.
    fn is_restored(&self, checkpoint: &SwarmCheckpoint, current: &SwarmCheckpoint) -> bool {
        let agents_match = checkpoint.agents.len() == current.agents.len()
            && checkpoint.agents.iter().all(|(id, a)| {
                current
                    .agents
                    .get(id)
                    .is_some_and(|c| c.name == a.name && c.capabilities == a.capabilities)
            });
        let trust_match = checkpoint.trust_scores.len() == current.trust_scores.len()
            && checkpoint
                .trust_scores
                .keys()
                .all(|id| current.trust_scores.contains_key(id));
        let tasks_match = checkpoint.tasks.iter().all(|(id, t)| {
            current.tasks.get(id).is_some_and(|c| {
                c.spec == t.spec
                    && (c.state == t.state
                        || c.state.is_terminal()
                        || (c.attempts > t.attempts
                            && matches!(c.state, TaskState::Assigned { .. } | TaskState::Pending)))
            })
        });
        checkpoint.config == current.config
            && checkpoint.metadata == current.metadata
            && agents_match
            && trust_match
            && tasks_match
    }
}

/// A level changes admission (lower priorities refused with `Overloaded`) and shrinks the run
/// limit; it lifts when the level drops.
#[async_trait]
impl Degradable for SwarmCoordinator {
    async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
        self.set_level(level.as_u8());
        Ok(())
    }

    async fn current_level(&self) -> DegradationLevel {
        level_of(self.level())
    }
}

/// Restart, configuration patches and reallocation act on the coordinator's agents,
/// configuration and assignments.
#[async_trait]
impl Healable for SwarmCoordinator {
    /// `agent_protocol`: every failed agent is reconnected (back to idle, with a fresh
    /// heartbeat). `task_scheduler`: tasks held by agents that can no longer run them go back
    /// to pending, and waiting runs are woken.
    async fn restart_component(&self, name: &str) -> Result<(), RestartError> {
        match name {
            "agent_protocol" => {
                let failed: Vec<AgentId> = self
                    .agents()
                    .into_iter()
                    .filter(|a| a.status == AgentStatus::Failed)
                    .map(|a| a.id)
                    .collect();
                for agent in failed {
                    self.release_agent(agent)
                        .map_err(|e| RestartError::Failed {
                            component: name.to_owned(),
                            reason: e.to_string(),
                        })?;
                }
            }
            "task_scheduler" => {
                self.reallocate(None, None);
            }
            _ => {
                return Err(RestartError::UnknownComponent {
                    component: name.to_owned(),
                });
            }
        }
        self.counters_restart();
        self.record_event(SwarmEventKind::ComponentRestarted(name.to_owned()));
        self.notify_agents();
        Ok(())
    }

    async fn apply_config_patch(&self, patch: &ConfigPatch) -> Result<(), ConfigPatchError> {
        if patch.is_empty() {
            return Err(ConfigPatchError::Empty);
        }
        let mut text = BTreeMap::new();
        for (key, value) in patch.iter() {
            if !ADJUSTABLE_KEYS.iter().any(|(k, ..)| *k == key) {
                return Err(ConfigPatchError::UnknownKey {
                    key: key.to_owned(),
                });
            }
            let raw = match value {
                ConfigValue::Integer(v) => v.to_string(),
                ConfigValue::Text(s) => s.clone(),
                other => {
                    return Err(ConfigPatchError::BadValue {
                        key: key.to_owned(),
                        reason: format!("wants a whole number, got a {}", other.type_name()),
                    });
                }
            };
            text.insert(key.to_owned(), raw);
        }
        SwarmCoordinator::apply_config_patch(self, &text).map_err(|e| {
            let key = text.keys().next().cloned().unwrap_or_default();
            ConfigPatchError::BadValue {
                key,
                reason: e.message(),
            }
        })
    }

    async fn reallocate_from(
        &self,
        agent: Option<AgentId>,
        task: Option<TaskId>,
    ) -> Result<usize, SwarmError> {
        if let Some(agent) = agent {
            if self.agent(agent).is_none() {
                return Err(SwarmError::AgentNotFound(agent));
            }
        }
        Ok(self.reallocate(agent, task))
    }
}
