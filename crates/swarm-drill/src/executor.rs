//! The drill's executor: real (small) work, with the fault plan's faults injected.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use recovery_core::AgentId;
use recovery_core::SwarmError;
use swarm_integration::{AgentExecutor, AgentInfo, Probe, SwarmCoordinator, TaskInfo};

use crate::faults::{Fault, FaultRates, decide};
use crate::pressure::Pressure;

/// Runs drill tasks: checksums the payload (the work), unless the plan injects a fault.
pub struct DrillExecutor {
    seed: u64,
    rates: FaultRates,
    coordinator: Mutex<Weak<SwarmCoordinator>>,
    pressure: Arc<Pressure>,
    /// Injected faults, by kind.
    injected: [AtomicU64; Fault::ALL.len()],
    /// How long a crashed agent stays down before it reboots and sends heartbeats again.
    crash_downtime: Duration,
    /// How long a slow (timeout-fault) run takes before it answers after all.
    slow_run: Duration,
    /// Crashed agents, and when they are back up.
    rebooting: Mutex<BTreeMap<AgentId, tokio::time::Instant>>,
}

impl DrillExecutor {
    /// An executor for `seed` and `rates`, driving `pressure` on pressure faults. A run with a
    /// timeout fault answers only after `slow_run` (set it past the coordinator's task timeout).
    pub fn new(seed: u64, rates: FaultRates, pressure: Arc<Pressure>, slow_run: Duration) -> Self {
        Self {
            seed,
            rates,
            coordinator: Mutex::new(Weak::new()),
            pressure,
            injected: Default::default(),
            crash_downtime: Duration::from_millis(200),
            slow_run,
            rebooting: Mutex::new(BTreeMap::new()),
        }
    }

    /// Attach the coordinator the executor crashes agents of and corrupts the state of.
    pub fn attach(&self, coordinator: &Arc<SwarmCoordinator>) {
        *self.coordinator.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(coordinator);
    }

    fn coordinator(&self) -> Option<Arc<SwarmCoordinator>> {
        self.coordinator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .upgrade()
    }

    /// Injected faults by kind.
    pub fn injected(&self) -> BTreeMap<&'static str, u64> {
        Fault::ALL
            .iter()
            .zip(&self.injected)
            .filter(|(f, _)| **f != Fault::None)
            .map(|(f, n)| (f.name(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// The task number the drill wrote into the payload.
    fn task_number(task: &TaskInfo) -> u64 {
        let mut bytes = [0u8; 8];
        let n = task.spec.payload.len().min(8);
        bytes[..n].copy_from_slice(&task.spec.payload[..n]);
        u64::from_le_bytes(bytes)
    }
}

/// The work: FNV-1a over the payload, repeated to cost a few microseconds.
fn work(payload: &[u8]) -> Vec<u8> {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for _ in 0..64 {
        for &b in payload {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h.to_le_bytes().to_vec()
}

#[async_trait::async_trait]
impl AgentExecutor for DrillExecutor {
    async fn execute(&self, agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        let fault = decide(
            self.seed,
            Self::task_number(task),
            task.attempts,
            &self.rates,
        );
        self.injected[fault as usize].fetch_add(1, Ordering::Relaxed);
        match fault {
            Fault::None => {
                tokio::task::yield_now().await;
                Ok(work(&task.spec.payload))
            }
            Fault::Communication => Err(SwarmError::CommunicationError(format!(
                "connection to agent {} reset",
                agent.name
            ))),
            // A slow agent: the coordinator's task timeout ends the run first (unless a healing
            // rule has raised the timeout past `slow_run`, and then the run answers late).
            Fault::Timeout => {
                tokio::time::sleep(self.slow_run).await;
                Ok(work(&task.spec.payload))
            }
            Fault::AgentCrash => {
                self.rebooting
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(agent.id, tokio::time::Instant::now() + self.crash_downtime);
                if let Some(c) = self.coordinator() {
                    let _ = c.declare_agent_failed(agent.id);
                    // The agent reboots after a while and sends a heartbeat again.
                    let (id, downtime) = (agent.id, self.crash_downtime);
                    let weak = Arc::downgrade(&c);
                    tokio::spawn(async move {
                        tokio::time::sleep(downtime).await;
                        if let Some(c) = weak.upgrade() {
                            let _ = c.heartbeat(id);
                        }
                    });
                }
                Err(SwarmError::CommunicationError(format!(
                    "agent {} crashed mid-task",
                    agent.name
                )))
            }
            Fault::StateCorruption => {
                if let Some(c) = self.coordinator() {
                    corrupt(&c, agent);
                }
                Err(SwarmError::StateCorruption(format!(
                    "agent {} found the coordinator's assignment table inconsistent",
                    agent.name
                )))
            }
            Fault::ResourcePressure => {
                self.pressure.spike();
                Err(SwarmError::Overloaded {
                    reason: "memory pressure spike while running the task".into(),
                    retry_after: Duration::from_millis(100),
                })
            }
            Fault::NonRecoverable => Err(SwarmError::ProtocolMismatch(format!(
                "agent {} answered in protocol v1; the coordinator speaks v3",
                agent.name
            ))),
        }
    }

    /// A crashed agent answers once it has rebooted.
    async fn probe(&self, agent: &AgentInfo) -> Probe {
        if self.is_down(agent.id) {
            Probe::Dead(SwarmError::CommunicationError(format!(
                "agent {} is rebooting",
                agent.name
            )))
        } else {
            Probe::Alive
        }
    }

    /// A crashed agent can be reconnected once it has rebooted.
    async fn reconnect(&self, agent: &AgentInfo) -> Result<(), SwarmError> {
        if self.is_down(agent.id) {
            Err(SwarmError::CommunicationError(format!(
                "agent {} is still rebooting",
                agent.name
            )))
        } else {
            Ok(())
        }
    }
}

impl DrillExecutor {
    /// Whether `agent` is still down after a crash.
    fn is_down(&self, agent: AgentId) -> bool {
        let mut rebooting = self.rebooting.lock().unwrap_or_else(|e| e.into_inner());
        match rebooting.get(&agent) {
            Some(up) if tokio::time::Instant::now() < *up => true,
            Some(_) => {
                rebooting.remove(&agent);
                false
            }
            None => false,
        }
    }
}

/// Really damage the coordinator's state, as a bug would: quarantine another healthy agent and
/// scribble over the metadata. Restoring a checkpoint puts both back.
fn corrupt(c: &SwarmCoordinator, running: &AgentInfo) {
    let victim = c.agents().into_iter().find(|a| {
        a.id != running.id
            && a.status == swarm_integration::AgentStatus::Idle
            && a.current_task.is_none()
    });
    if let Some(v) = victim {
        let _ = c.quarantine_agent(v.id);
    }
    c.set_metadata("assignment_table", "corrupt");
}
