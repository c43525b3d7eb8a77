//! The coordinator's restartable components, run by a [`Supervisor`] with OTP's restart
//! intensity: a restart stops and starts the component for real, and is `Ok` only when it runs
//! again.

use std::sync::{Arc, Weak};

use recovery_core::async_trait;
use recovery_healing::{Component, Supervisor};

use crate::coordinator::SwarmCoordinator;
use crate::executor::Probe;
use crate::model::AgentStatus;
use crate::state::Reallocate;

/// The components the coordinator has, which `RestartComponent` rules may name.
pub const NAMES: [&str; 2] = ["agent_protocol", "task_scheduler"];

/// A supervisor with the coordinator's components.
pub(crate) fn supervisor(coordinator: Weak<SwarmCoordinator>) -> Supervisor {
    let supervisor = Supervisor::new();
    let protocol = Arc::new(AgentProtocol {
        coordinator: coordinator.clone(),
    });
    let scheduler = Arc::new(TaskScheduler { coordinator });
    supervisor
        .register(NAMES[0], protocol)
        .expect("a fresh supervisor has no components");
    supervisor
        .register(NAMES[1], scheduler)
        .expect("a fresh supervisor has no components");
    supervisor
}

/// `agent_protocol`: the connections to the agents. Restarting it reconnects every failed agent
/// through the executor's [`reconnect`](crate::AgentExecutor::reconnect) and, if the executor can
/// probe, checks it answers; an agent that is back is idle again. It runs when no agent is
/// failed.
struct AgentProtocol {
    coordinator: Weak<SwarmCoordinator>,
}

#[async_trait]
impl Component for AgentProtocol {
    async fn stop(&self) -> Result<(), String> {
        // The failed agents' connections are down already; the healthy ones are kept.
        Ok(())
    }

    async fn start(&self) -> Result<(), String> {
        let Some(c) = self.coordinator.upgrade() else {
            return Err("the coordinator is gone".into());
        };
        let failed: Vec<_> = c
            .agents()
            .into_iter()
            .filter(|a| a.status == AgentStatus::Failed)
            .collect();
        let mut problems = Vec::new();
        for agent in failed {
            if let Err(e) = c.executor.reconnect(&agent).await {
                problems.push(format!("{}: {e}", agent.name));
                continue;
            }
            match c.executor.probe(&agent).await {
                Probe::Alive | Probe::Unsupported => {
                    let _ = c.heartbeat(agent.id);
                }
                Probe::Dead(e) => problems.push(format!("{} does not answer: {e}", agent.name)),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "could not reconnect {} agent(s): {}",
                problems.len(),
                problems.join("; ")
            ))
        }
    }

    async fn is_running(&self) -> bool {
        self.coordinator
            .upgrade()
            .is_some_and(|c| c.agents().iter().all(|a| a.status != AgentStatus::Failed))
    }
}

/// `task_scheduler`: the coordinator's dispatch of waiting work. Restarting it moves tasks off
/// failed and quarantined agents and tells every waiting caller to look again. It runs while the
/// coordinator exists.
struct TaskScheduler {
    coordinator: Weak<SwarmCoordinator>,
}

#[async_trait]
impl Component for TaskScheduler {
    async fn stop(&self) -> Result<(), String> {
        Ok(())
    }

    async fn start(&self) -> Result<(), String> {
        let c = self
            .coordinator
            .upgrade()
            .ok_or_else(|| "the coordinator is gone".to_owned())?;
        c.reallocate(Reallocate::Unhealthy);
        c.transition(|s, now| s.dispatch(now));
        Ok(())
    }

    async fn is_running(&self) -> bool {
        self.coordinator.upgrade().is_some()
    }
}
