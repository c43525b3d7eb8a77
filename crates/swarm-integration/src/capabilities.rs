//! How the coordinator lends itself to each strategy: the capability traits, implemented for
//! real. Each impl only calls the coordinator's own operations.

use std::collections::BTreeMap;

use recovery_backoff::{Retry, RetryRequest};
use recovery_checkpoint::Checkpointable;
use recovery_core::{AgentId, SwarmError, TaskId, async_trait};
use recovery_degradation::{Degradable, DegradationLevel};
use recovery_healing::{ConfigPatch, ConfigPatchError, ConfigValue, Healable, RestartError};

use crate::config::ADJUSTABLE_KEYS;
use crate::coordinator::SwarmCoordinator;
use crate::executor::Probe;
use crate::model::{AgentStatus, SwarmCheckpoint, TaskState};
use crate::state::{Reallocate, is_restored};

/// How many healthy agents a task-less retry probes when no agent is known to be down.
const PROBES_WITHOUT_A_SUSPECT: usize = 3;

/// A retry re-runs the failed task (on another agent if its agent failed). Without a task it
/// re-establishes contact: it probes the named agent, or every failed agent, or (with none
/// failed) up to three healthy ones, through
/// [`AgentExecutor::probe`](crate::AgentExecutor::probe), and succeeds only if one answered (a
/// failed agent that answers is healthy again). With nothing to probe, or an executor that
/// cannot probe, it says it cannot help (a non-recoverable error, which ends the retries).
#[async_trait]
impl Retry for SwarmCoordinator {
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
        if let Some(task) = request.failed_task_id {
            return self.execute_task(task).await.map(drop);
        }
        let targets: Vec<_> = match request.failed_agent_id {
            Some(agent) => vec![self.agent(agent).ok_or(SwarmError::AgentNotFound(agent))?],
            None => {
                let agents = self.agents();
                let failed: Vec<_> = agents
                    .iter()
                    .filter(|a| a.status == AgentStatus::Failed)
                    .cloned()
                    .collect();
                if failed.is_empty() {
                    // Nobody is known to be down: check the channel on a few healthy agents.
                    agents
                        .into_iter()
                        .filter(|a| a.status != AgentStatus::Quarantined)
                        .take(PROBES_WITHOUT_A_SUSPECT)
                        .collect()
                } else {
                    failed
                }
            }
        };
        if targets.is_empty() {
            return Err(SwarmError::InvalidConfiguration(format!(
                "nothing to retry: the error ({}) names no task and no agent, and no agent is registered",
                request.error
            )));
        }
        let mut last = None;
        for agent in &targets {
            match self.executor.probe(agent).await {
                Probe::Alive => {
                    let _ = self.heartbeat(agent.id);
                    return Ok(());
                }
                Probe::Dead(e) => last = Some(e),
                Probe::Unsupported => {
                    return Err(SwarmError::InvalidConfiguration(
                        "a retry without a task probes agents, and this executor cannot probe: \
                         implement AgentExecutor::probe"
                            .into(),
                    ));
                }
            }
        }
        Err(last.unwrap_or(request.error))
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

    /// The configuration and metadata equal the checkpoint's; each of its agents still
    /// registered has its status and trust (unless it ran work since); each of its tasks still
    /// unfinished has its state (unless it ran since). See the crate docs on restores.
    fn is_restored(&self, checkpoint: &SwarmCheckpoint, current: &SwarmCheckpoint) -> bool {
        is_restored(checkpoint, current)
    }
}

/// A level changes admission (lower priorities refused with `Overloaded`), shrinks the run
/// limit, and pauses features: speculative work waits from Reduced, the maintenance pass and
/// per-task events stop (from Reduced and Minimal), new agents are refused at Critical. It all
/// lifts when the level drops.
#[async_trait]
impl Degradable for SwarmCoordinator {
    async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
        self.set_level(level);
        Ok(())
    }

    async fn current_level(&self) -> DegradationLevel {
        self.level()
    }
}

/// Restarts act on the coordinator's components (see [`COMPONENTS`](crate::COMPONENTS)), patches on its
/// configuration, reallocation on its work.
#[async_trait]
impl Healable for SwarmCoordinator {
    /// `agent_protocol` reconnects every failed agent through the executor; `task_scheduler`
    /// moves work off unhealthy agents and wakes waiting callers. Both go through the
    /// coordinator's supervisor (at most 1 restart in 5 s each), and are `Ok` only once the
    /// component runs again. With nothing to restart (no agent failed, no work stuck), the
    /// answer is [`RestartError::NotNeeded`].
    async fn restart_component(&self, name: &str) -> Result<(), RestartError> {
        let not_needed = |reason: &str| RestartError::NotNeeded {
            component: name.to_owned(),
            reason: reason.to_owned(),
        };
        match name {
            "agent_protocol" => {
                if !self
                    .agents()
                    .iter()
                    .any(|a| a.status == AgentStatus::Failed)
                {
                    return Err(not_needed("no agent's connection is down"));
                }
            }
            "task_scheduler" => {
                let stuck = self.read(|s| {
                    s.tasks.values().any(|t| match t.state {
                        TaskState::Assigned { agent } | TaskState::Running { agent, .. } => {
                            s.agents.get(&agent).is_none_or(|a| {
                                matches!(a.status, AgentStatus::Failed | AgentStatus::Quarantined)
                            })
                        }
                        _ => false,
                    }) || s.stats().waiting > 0
                });
                if !stuck {
                    return Err(not_needed(
                        "no work is held by an unhealthy agent and nobody waits",
                    ));
                }
            }
            _ => {
                return Err(RestartError::UnknownComponent {
                    component: name.to_owned(),
                });
            }
        }
        self.supervisor.restart(name).await?;
        self.transition(|s, now| s.component_restarted(name, now));
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
        // Each key alone first, so the error names the key that is wrong.
        let config = self.config();
        for (key, raw) in &text {
            let one = BTreeMap::from([(key.clone(), raw.clone())]);
            if let Err(e) = config.patched(&one) {
                return Err(ConfigPatchError::BadValue {
                    key: key.clone(),
                    reason: e.message(),
                });
            }
        }
        SwarmCoordinator::apply_config_patch(self, &text).map_err(|e| ConfigPatchError::BadValue {
            key: text.keys().cloned().collect::<Vec<_>>().join(", "),
            reason: e.message(),
        })
    }

    async fn reallocate_from(
        &self,
        agent: Option<AgentId>,
        task: Option<TaskId>,
    ) -> Result<usize, SwarmError> {
        let which = match (agent, task) {
            (Some(agent), _) => {
                if self.agent(agent).is_none() {
                    return Err(SwarmError::AgentNotFound(agent));
                }
                Reallocate::FromAgent(agent)
            }
            (None, Some(task)) => Reallocate::Task(task),
            (None, None) => Reallocate::Unhealthy,
        };
        Ok(self.reallocate(which))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_component_names_are_the_restartable_ones() {
        assert_eq!(crate::COMPONENTS, ["agent_protocol", "task_scheduler"]);
    }
}
