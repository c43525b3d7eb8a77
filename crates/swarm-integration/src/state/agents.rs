//! Transitions of agents: joining, leaving, heartbeats, failure, quarantine, release, trust.

use recovery_core::{AgentId, SwarmError};
use recovery_degradation::Feature;
use tokio::time::Instant;

use super::{INITIAL_TRUST, Interruption, SwarmState, TRUST_CRASH_PENALTY};
use crate::model::{AgentInfo, AgentSpec, AgentStatus, SwarmEventKind};

/// What a heartbeat did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Heartbeat {
    /// The agent was failed and is back.
    Revived,
    /// It was healthy; its heartbeat is fresh now.
    Refreshed,
    /// It is quarantined: the heartbeat is recorded, the agent stays out of rotation.
    Quarantined,
}

impl SwarmState {
    /// Register an agent; it starts idle with trust 0.5.
    ///
    /// # Errors
    ///
    /// `Overloaded` while the level pauses new connections; `SwarmSizeLimitExceeded` when
    /// `max_agents` are registered.
    pub(crate) fn register_agent(
        &mut self,
        spec: AgentSpec,
        now: Instant,
    ) -> Result<AgentId, SwarmError> {
        if self.level.pauses(Feature::NewConnections) {
            return Err(SwarmError::Overloaded {
                reason: format!(
                    "degradation level {} pauses new connections; agent `{}` was not registered",
                    self.level, spec.name
                ),
                retry_after: std::time::Duration::from_secs(30),
            });
        }
        if self.agents.len() >= self.config.max_agents {
            return Err(SwarmError::SwarmSizeLimitExceeded(format!(
                "{} agents registered, max_agents is {}",
                self.agents.len(),
                self.config.max_agents
            )));
        }
        let id = self.ids.agent();
        self.agents.insert(
            id,
            AgentInfo {
                id,
                name: spec.name,
                capabilities: spec.capabilities,
                status: AgentStatus::Idle,
                current_task: None,
                completed: 0,
                failures: 0,
            },
        );
        self.trust.insert(id, INITIAL_TRUST);
        self.heartbeats.insert(id, now);
        self.healthy
            .change(self.agents[&id].capabilities.iter(), true);
        self.event(SwarmEventKind::AgentRegistered(id), now);
        self.refresh_idle(id);
        self.dispatch(now);
        Ok(id)
    }

    /// Remove an agent. Its run, if any, is told to stop and its result will be discarded; the
    /// task goes back to waiting for a run.
    pub(crate) fn deregister_agent(
        &mut self,
        agent: AgentId,
        now: Instant,
    ) -> Result<(), SwarmError> {
        if !self.agents.contains_key(&agent) {
            return Err(SwarmError::AgentNotFound(agent));
        }
        self.interrupt_agent_run(agent, Interruption::AgentLeft);
        self.idle.forget(agent);
        self.ejected.remove(&agent);
        if let Some(a) = self.agents.remove(&agent) {
            if Self::is_healthy(a.status) {
                self.healthy.change(a.capabilities.iter(), false);
            }
        }
        self.trust.remove(&agent);
        self.heartbeats.remove(&agent);
        self.release_preferences_of(agent);
        self.event(SwarmEventKind::AgentDeregistered(agent), now);
        Ok(())
    }

    /// Record a heartbeat. A failed agent that sends one is healthy again.
    pub(crate) fn heartbeat(
        &mut self,
        agent: AgentId,
        now: Instant,
    ) -> Result<Heartbeat, SwarmError> {
        let info = self
            .agents
            .get_mut(&agent)
            .ok_or(SwarmError::AgentNotFound(agent))?;
        self.heartbeats.insert(agent, now);
        match info.status {
            AgentStatus::Failed => {
                let status = if info.current_task.is_some() {
                    AgentStatus::Busy
                } else {
                    AgentStatus::Idle
                };
                self.set_status(agent, status);
                self.event(SwarmEventKind::AgentRecovered(agent), now);
                self.dispatch(now);
                Ok(Heartbeat::Revived)
            }
            AgentStatus::Quarantined => Ok(Heartbeat::Quarantined),
            AgentStatus::Idle | AgentStatus::Busy => Ok(Heartbeat::Refreshed),
        }
    }

    /// When `agent` last showed it was alive (a heartbeat, or a run's start or end).
    pub(crate) fn last_heartbeat(&self, agent: AgentId) -> Option<Instant> {
        self.heartbeats.get(&agent).copied()
    }

    /// Declare failed every idle agent silent for longer than `heartbeat_timeout_secs`; returns
    /// them. An agent with a run in flight is never failed by a stale timestamp alone: its run
    /// has its own timeout, and its start and end count as heartbeats.
    pub(crate) fn sweep_heartbeats(&mut self, now: Instant) -> Vec<AgentId> {
        let limit = self.config.heartbeat_timeout();
        let silent: Vec<AgentId> = self
            .idle
            .agents()
            .filter(|a| {
                self.heartbeats
                    .get(a)
                    .is_none_or(|at| now.saturating_duration_since(*at) > limit)
            })
            .collect();
        for &agent in &silent {
            // Idle, so it exists.
            let _ = self.declare_agent_failed(agent, now);
            self.stats.agents_timed_out += 1;
        }
        silent
    }

    /// Declare an agent failed (crashed, unreachable): it takes no work, its run is told to stop
    /// (its result will be discarded), its trust drops. Declaring a failed agent failed again
    /// changes nothing.
    pub(crate) fn declare_agent_failed(
        &mut self,
        agent: AgentId,
        now: Instant,
    ) -> Result<(), SwarmError> {
        let info = self
            .agents
            .get_mut(&agent)
            .ok_or(SwarmError::AgentNotFound(agent))?;
        if info.status == AgentStatus::Failed {
            return Ok(());
        }
        info.failures += 1;
        if let Some(t) = self.trust.get_mut(&agent) {
            *t = (*t - TRUST_CRASH_PENALTY).max(0.0);
        }
        self.set_status(agent, AgentStatus::Failed);
        self.interrupt_agent_run(agent, Interruption::AgentFailed);
        self.event(SwarmEventKind::AgentFailed(agent), now);
        tracing::warn!(target: "swarm_integration::coordinator", %agent, "agent declared failed");
        Ok(())
    }

    /// Take an agent out of rotation; its run is told to stop and its task waits for another.
    pub(crate) fn quarantine_agent(
        &mut self,
        agent: AgentId,
        now: Instant,
    ) -> Result<(), SwarmError> {
        if !self.agents.contains_key(&agent) {
            return Err(SwarmError::AgentNotFound(agent));
        }
        self.set_status(agent, AgentStatus::Quarantined);
        self.interrupt_agent_run(agent, Interruption::AgentQuarantined);
        self.release_preferences_of(agent);
        let _ = now;
        Ok(())
    }

    /// An open circuit breaker takes the agent out of the pick until [`readmit_agent`]: its
    /// trust drops as for a crash, a run it started since is told to stop, and the tasks that
    /// prefer it wait for another. Its status is left alone (a restore cannot put it back in
    /// the pick).
    ///
    /// [`readmit_agent`]: Self::readmit_agent
    pub(crate) fn eject_agent(&mut self, agent: AgentId, now: Instant) -> Result<(), SwarmError> {
        if !self.agents.contains_key(&agent) {
            return Err(SwarmError::AgentNotFound(agent));
        }
        if let Some(t) = self.trust.get_mut(&agent) {
            *t = (*t - TRUST_CRASH_PENALTY).max(0.0);
        }
        self.ejected.insert(agent);
        self.interrupt_agent_run(agent, Interruption::AgentQuarantined);
        self.release_preferences_of(agent);
        self.refresh_idle(agent);
        let _ = now;
        Ok(())
    }

    /// Its breaker's open time is up: the agent is back in the pick (its next run is the
    /// breaker's probe). Returns whether it was out.
    pub(crate) fn readmit_agent(&mut self, agent: AgentId, now: Instant) -> bool {
        if !self.ejected.remove(&agent) {
            return false;
        }
        self.refresh_idle(agent);
        self.dispatch(now);
        true
    }

    /// Put a quarantined or failed agent back into rotation (with a fresh heartbeat). Returns
    /// whether it was out.
    pub(crate) fn release_agent(
        &mut self,
        agent: AgentId,
        now: Instant,
    ) -> Result<bool, SwarmError> {
        let info = self
            .agents
            .get_mut(&agent)
            .ok_or(SwarmError::AgentNotFound(agent))?;
        if !matches!(info.status, AgentStatus::Quarantined | AgentStatus::Failed) {
            return Ok(false);
        }
        let status = if info.current_task.is_some() {
            AgentStatus::Busy
        } else {
            AgentStatus::Idle
        };
        self.set_status(agent, status);
        self.heartbeats.insert(agent, now);
        self.event(SwarmEventKind::AgentRecovered(agent), now);
        self.dispatch(now);
        Ok(true)
    }

    /// Put `agent` in the idle pool if it is idle and runs nothing, else take it out.
    pub(crate) fn refresh_idle(&mut self, agent: AgentId) {
        match self.agents.get(&agent) {
            Some(a)
                if a.status == AgentStatus::Idle
                    && a.current_task.is_none()
                    && !self.ejected.contains(&agent) =>
            {
                let trust = self.trust.get(&agent).copied().unwrap_or(0.0);
                self.idle.insert(agent, trust, &a.capabilities);
            }
            _ => {
                self.idle.remove(agent);
            }
        }
    }

    /// Tell the run on `agent`, if any, to stop; its task goes back to waiting.
    fn interrupt_agent_run(&mut self, agent: AgentId, why: Interruption) {
        let Some(task) = self.agents.get(&agent).and_then(|a| a.current_task) else {
            return;
        };
        self.interrupt_run(task, why);
    }

    /// Forget that tasks prefer `agent` (it left, or is out of rotation).
    fn release_preferences_of(&mut self, agent: AgentId) {
        use crate::model::TaskState;
        for t in self.tasks.values_mut() {
            if t.state == (TaskState::Assigned { agent }) {
                t.state = TaskState::Pending;
            }
        }
    }
}
