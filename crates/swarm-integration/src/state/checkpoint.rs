//! Snapshots and restores: the checkpoint holds the live state; a restore puts it back and keeps
//! what the checkpoint cannot know about.

use std::collections::BTreeMap;

use recovery_core::{SwarmError, TaskId};
use tokio::time::Instant;

use super::{Interruption, Restored, SwarmState};
use crate::model::{AgentStatus, SwarmCheckpoint, TaskInfo, TaskState};

impl SwarmState {
    /// The coordinator's state as a checkpoint holds it: every agent (a busy one as idle: its
    /// run does not survive a restore), every unfinished task (a running one as assigned to its
    /// agent), the configuration, trust, recent events and metadata. Finished tasks are not
    /// live state: a restore keeps them as they are.
    pub(crate) fn snapshot(&self) -> SwarmCheckpoint {
        let tasks: BTreeMap<TaskId, TaskInfo> = self
            .tasks
            .values()
            .filter(|t| !t.state.is_terminal())
            .map(|t| {
                let mut t = t.clone();
                if let TaskState::Running { agent, .. } = t.state {
                    t.state = TaskState::Assigned { agent };
                }
                (t.id, t)
            })
            .collect();
        let agents = self
            .agents
            .values()
            .map(|a| {
                let mut a = a.clone();
                if a.status == AgentStatus::Busy {
                    a.status = AgentStatus::Idle;
                }
                a.current_task = None;
                (a.id, a)
            })
            .collect();
        let active_assignments = tasks
            .values()
            .filter_map(|t| match t.state {
                TaskState::Assigned { agent } => Some((t.id, agent)),
                _ => None,
            })
            .collect();
        SwarmCheckpoint {
            agents,
            tasks,
            active_assignments,
            config: self.config.clone(),
            trust_scores: self.trust.iter().map(|(a, t)| (*a, *t)).collect(),
            recent_events: self.events.iter().cloned().collect(),
            metadata: self.metadata.clone(),
        }
    }

    /// Put `checkpoint` back. Every run in flight is told to stop (its result will be
    /// discarded, fenced by the restore epoch), and every waiting caller asks again.
    ///
    /// What the checkpoint holds is put back: each of its agents' status and trust, its
    /// unfinished tasks' states, the configuration, events and metadata. What it cannot know
    /// is kept, so that no task is lost and no live connection is forgotten:
    ///
    /// - a task submitted after the checkpoint stays, waiting for a run;
    /// - a task that finished after the checkpoint stays finished (and one that finished and
    ///   left the table is not brought back);
    /// - an agent registered after the checkpoint stays as it is; one that left after it is
    ///   not brought back.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration` if the checkpoint's configuration does not validate (nothing is
    /// changed then).
    pub(crate) fn restore(
        &mut self,
        checkpoint: SwarmCheckpoint,
        now: Instant,
    ) -> Result<Restored, SwarmError> {
        checkpoint.config.validate()?;
        let running: Vec<TaskId> = self.runs.keys().copied().collect();
        for task in &running {
            self.interrupt_run(*task, Interruption::Restored);
        }
        self.epoch += 1;
        let mut restored_tasks: BTreeMap<TaskId, TaskInfo> = checkpoint.tasks;
        for t in self.tasks.values_mut() {
            if t.state.is_terminal() {
                continue;
            }
            match restored_tasks.remove(&t.id) {
                Some(r) if !r.state.is_terminal() => {
                    t.state = match r.state {
                        TaskState::Running { agent, .. } => TaskState::Assigned { agent },
                        other => other,
                    };
                    t.last_error = r.last_error;
                    // Fencing tokens only grow.
                    t.attempts = t.attempts.max(r.attempts);
                }
                _ => {
                    if matches!(t.state, TaskState::Running { .. }) {
                        t.state = TaskState::Pending;
                    }
                }
            }
        }
        for (id, mut a) in checkpoint.agents {
            let Some(current) = self.agents.get(&id) else {
                continue;
            };
            // A run still ending on the agent keeps it busy until it ends.
            a.current_task = current.current_task;
            if a.status == AgentStatus::Busy
                || (a.status == AgentStatus::Idle && a.current_task.is_some())
            {
                a.status = if a.current_task.is_some() {
                    AgentStatus::Busy
                } else {
                    AgentStatus::Idle
                };
            }
            if let Some(&trust) = checkpoint.trust_scores.get(&id) {
                self.trust.insert(id, trust);
            }
            self.agents.insert(id, a);
        }
        for agent in self.agents.keys() {
            self.heartbeats.insert(*agent, now);
        }
        self.rebuild_indexes();
        self.events = checkpoint.recent_events.into();
        self.metadata = checkpoint.metadata;
        self.config = checkpoint.config;
        // No event: snapshot, restore, snapshot again gives the same snapshot. The restore is
        // counted, and traced.
        self.stats.restores += 1;
        let mut watchers: Vec<_> = self.watchers.drain().map(|(_, w)| w).collect();
        watchers.push(std::sync::Arc::clone(&self.level_changed));
        for id in self.waiters.ids() {
            if let Some(w) = self.waiters.remove(id) {
                let _ = w.tx.send(super::Wake::Again);
            }
        }
        tracing::info!(
            target: "swarm_integration::coordinator",
            runs_cancelled = running.len(),
            "coordinator state restored from a checkpoint"
        );
        Ok(Restored { watchers })
    }

    /// A coordinator's state rebuilt from `checkpoint` by a new process (after the old one
    /// crashed): its agents (each as it was, busy ones idle, with a fresh heartbeat: they must
    /// keep sending heartbeats to stay healthy), its unfinished tasks (a running one waiting
    /// again, preferring its agent), configuration, trust, events and metadata. The counters
    /// start over: the adopted tasks are the ones submitted.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration` if the checkpoint's configuration does not validate.
    pub(crate) fn adopt(
        checkpoint: SwarmCheckpoint,
        ids: crate::ids::IdSource,
        now: Instant,
    ) -> Result<Self, SwarmError> {
        checkpoint.config.validate()?;
        let mut state = SwarmState::new(checkpoint.config.clone(), ids, now);
        for (id, mut a) in checkpoint.agents {
            a.current_task = None;
            if a.status == AgentStatus::Busy {
                a.status = AgentStatus::Idle;
            }
            state.heartbeats.insert(id, now);
            state.agents.insert(id, a);
        }
        for (id, trust) in checkpoint.trust_scores {
            if state.agents.contains_key(&id) {
                state.trust.insert(id, trust);
            }
        }
        let mut tasks: Vec<TaskInfo> = checkpoint
            .tasks
            .into_values()
            .filter(|t| !t.state.is_terminal())
            .collect();
        tasks.sort_by_key(|t| t.sequence);
        for mut t in tasks {
            if let TaskState::Running { agent, .. } = t.state {
                t.state = TaskState::Assigned { agent };
            }
            t.sequence = state.next_sequence;
            state.next_sequence += 1;
            state.stats.submitted += 1;
            state.stats.unfinished += 1;
            state.tasks.insert(t.id, t);
        }
        state.events = checkpoint.recent_events.into();
        state.metadata = checkpoint.metadata;
        state.rebuild_indexes();
        Ok(state)
    }

    /// Rebuild the idle pool and the healthy counts from the agents.
    pub(crate) fn rebuild_indexes(&mut self) {
        self.idle.clear();
        self.healthy.clear();
        let mut ids: Vec<_> = self.agents.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let a = &self.agents[&id];
            if Self::is_healthy(a.status) {
                self.healthy.change(a.capabilities.iter(), true);
            }
            self.refresh_idle(id);
        }
    }
}

/// Whether `current`, a snapshot taken just after restoring `checkpoint`, shows the restore took
/// effect (what `Checkpointable::is_restored` answers for a coordinator).
///
/// The configuration and metadata equal the checkpoint's. Every agent of the checkpoint that is
/// still registered has its capabilities, and, unless it ran work since (its run counts moved),
/// its status and trust. Every task of the checkpoint that is still in the table has its spec
/// and, unless it ran or finished since, its state. So a restore that did not undo a corruption
/// (an agent wrongly quarantined, a trust score zeroed, a task state changed) is not reported
/// as a success, while work that went on on other threads right after the restore is allowed.
pub(crate) fn is_restored(checkpoint: &SwarmCheckpoint, current: &SwarmCheckpoint) -> bool {
    let agents_match = checkpoint
        .agents
        .iter()
        .all(|(id, a)| match current.agents.get(id) {
            None => true,
            Some(c) => {
                let moved_on = c.completed != a.completed || c.failures != a.failures;
                c.name == a.name
                    && c.capabilities == a.capabilities
                    && (moved_on
                        || (c.status == a.status
                            && checkpoint.trust_scores.get(id) == current.trust_scores.get(id)))
            }
        });
    let tasks_match = checkpoint
        .tasks
        .iter()
        .all(|(id, t)| match current.tasks.get(id) {
            // Finished since (a snapshot holds unfinished tasks only).
            None => true,
            Some(c) => c.spec == t.spec && (c.state == t.state || c.attempts > t.attempts),
        });
    checkpoint.config == current.config
        && checkpoint.metadata == current.metadata
        && agents_match
        && tasks_match
}
