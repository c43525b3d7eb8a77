//! The simulated world around the coordinator: the agents as processes (up, crashed, silent),
//! the faults armed for the next runs, the pressure waves, and the trace of events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use recovery_checkpoint::{
    Checkpoint, CheckpointError, CheckpointInfo, CheckpointStore, Codec, MemoryStore,
};
use recovery_core::{AgentId, SwarmError, TaskId, async_trait};
use recovery_degradation::{ResourceSampler, Sample};
use swarm_integration::{AgentExecutor, AgentInfo, Probe, SwarmCoordinator, TaskInfo};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::trace::Trace;

/// A fault armed for the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunFault {
    Communication,
    Hang,
    Corruption,
    /// The task's scheduling entry wedges until it is rebuilt.
    Wedge,
    /// The agent runs a bad deploy.
    Broken,
}

impl RunFault {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Communication => "communication",
            Self::Hang => "hang",
            Self::Corruption => "corruption",
            Self::Wedge => "wedged",
            Self::Broken => "bad_agent",
        }
    }
}

/// One agent process.
#[derive(Debug)]
pub(crate) struct SimAgent {
    pub(crate) name: String,
    /// Its id with the current coordinator (a new coordinator process gives new ones).
    pub(crate) id: AgentId,
    pub(crate) gpu: bool,
    /// Crashed, back up at this time.
    pub(crate) down_until: Option<Instant>,
    /// Sends no heartbeats until this time (it still works and answers probes).
    pub(crate) silent_until: Option<Instant>,
    /// A bad deploy: until this time every run on it fails, though it answers probes and
    /// heartbeats (what a circuit breaker is for).
    pub(crate) broken_until: Option<Instant>,
    /// Still part of the swarm (churn takes agents away).
    pub(crate) present: bool,
    /// Wakes its running task when it crashes.
    pub(crate) crashed: Arc<Notify>,
}

impl SimAgent {
    pub(crate) fn is_down(&self, now: Instant) -> bool {
        self.down_until.is_some_and(|t| now < t)
    }

    pub(crate) fn is_broken(&self, now: Instant) -> bool {
        self.broken_until.is_some_and(|t| now < t)
    }

    pub(crate) fn is_silent(&self, now: Instant) -> bool {
        self.silent_until.is_some_and(|t| now < t)
    }
}

/// A wave of pressure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wave {
    pub(crate) start: Instant,
    pub(crate) end: Instant,
    pub(crate) amplitude: f64,
    /// How long the wave takes to build up to its amplitude (zero: a step).
    pub(crate) ramp: Duration,
}

impl Wave {
    /// The wave's pressure at `now`: rising linearly over its ramp, then its amplitude.
    fn at(&self, now: Instant) -> f64 {
        if now < self.start {
            return 0.0;
        }
        let into = now - self.start;
        if into >= self.ramp {
            self.amplitude
        } else {
            self.amplitude * into.as_secs_f64() / self.ramp.as_secs_f64()
        }
    }
}

/// Everything the executor, the sampler and the drivers share.
#[derive(Debug)]
pub(crate) struct WorldState {
    pub(crate) agents: Vec<SimAgent>,
    pub(crate) armed: VecDeque<RunFault>,
    pub(crate) waves: Vec<Wave>,
    pub(crate) coordinator: Weak<SwarmCoordinator>,
    pub(crate) trace: Trace,
    /// Faults injected, by kind.
    pub(crate) injected: BTreeMap<&'static str, u64>,
    /// Tasks hit by a fault, and when, waiting to complete.
    pub(crate) hit: BTreeMap<TaskId, (&'static str, Instant)>,
    /// Time from a fault to recovery, by kind.
    pub(crate) recovered: BTreeMap<&'static str, Vec<Duration>>,
    /// Wedged tasks: their runs fail until their scheduling entry is rebuilt (or a new
    /// coordinator starts).
    pub(crate) wedged: std::collections::BTreeSet<TaskId>,
}

/// The world, behind one lock (everything runs on one thread; the lock is never held across an
/// await).
#[derive(Debug)]
pub(crate) struct World(Mutex<WorldState>);

impl World {
    pub(crate) fn new(trace: Trace) -> Arc<Self> {
        Arc::new(Self(Mutex::new(WorldState {
            agents: Vec::new(),
            armed: VecDeque::new(),
            waves: Vec::new(),
            coordinator: Weak::new(),
            trace,
            injected: BTreeMap::new(),
            hit: BTreeMap::new(),
            recovered: BTreeMap::new(),
            wedged: std::collections::BTreeSet::new(),
        })))
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, WorldState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl WorldState {
    pub(crate) fn agent_of(&self, id: AgentId) -> Option<&SimAgent> {
        self.agents.iter().find(|a| a.present && a.id == id)
    }

    /// Count an injected fault.
    pub(crate) fn injected(&mut self, kind: &'static str) {
        *self.injected.entry(kind).or_default() += 1;
    }

    /// A fault of `kind` recovered `after` it was injected.
    pub(crate) fn recovered(&mut self, kind: &'static str, after: Duration) {
        self.recovered.entry(kind).or_default().push(after);
    }

    /// The pressure waves' amplitude at `now` (expired waves are dropped).
    pub(crate) fn pressure(&mut self, now: Instant) -> f64 {
        self.waves.retain(|w| now < w.end);
        self.waves.iter().map(|w| w.at(now)).sum()
    }
}

/// What the drill writes into a task's payload: its length, and the client's number for it.
pub(crate) fn payload(length: Duration, client: u64) -> Vec<u8> {
    let mut p = (length.as_millis() as u64).to_le_bytes().to_vec();
    p.extend_from_slice(&client.to_le_bytes());
    p
}

fn length_of(task: &TaskInfo) -> Duration {
    let mut ms = [0u8; 8];
    let n = task.spec.payload.len().min(8);
    ms[..n].copy_from_slice(&task.spec.payload[..n]);
    Duration::from_millis(u64::from_le_bytes(ms))
}

/// Runs a task for its length, unless the agent is down or a fault is armed.
#[derive(Debug)]
pub(crate) struct SimExecutor {
    pub(crate) world: Arc<World>,
    /// How long a hung run takes (past any task timeout).
    pub(crate) hang: Duration,
}

#[async_trait]
impl AgentExecutor for SimExecutor {
    async fn execute(&self, agent: &AgentInfo, task: &TaskInfo) -> Result<Vec<u8>, SwarmError> {
        let now = Instant::now();
        let (fault, crashed) = {
            let mut w = self.world.lock();
            let Some(a) = w.agent_of(agent.id) else {
                return Err(SwarmError::CommunicationError(format!(
                    "agent {} is gone",
                    agent.name
                )));
            };
            if a.is_down(now) {
                return Err(SwarmError::CommunicationError(format!(
                    "agent {} refuses the connection: it is down",
                    agent.name
                )));
            }
            let crashed = Arc::clone(&a.crashed);
            let fault = if a.is_broken(now) {
                Some(RunFault::Broken)
            } else if w.wedged.contains(&task.id) {
                Some(RunFault::Wedge)
            } else {
                let fault = w.armed.pop_front();
                if let Some(f) = fault {
                    w.injected(f.name());
                    w.hit.entry(task.id).or_insert((f.name(), now));
                    if f == RunFault::Wedge {
                        w.wedged.insert(task.id);
                    }
                }
                fault
            };
            (fault, crashed)
        };
        let length = match fault {
            Some(RunFault::Communication | RunFault::Wedge | RunFault::Broken) => {
                length_of(task) / 4
            }
            Some(RunFault::Hang) => self.hang,
            Some(RunFault::Corruption) => Duration::ZERO,
            None => length_of(task),
        };
        let notified = crashed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        tokio::select! {
            biased;
            () = &mut notified => {
                return Err(SwarmError::CommunicationError(format!(
                    "agent {} crashed mid-task",
                    agent.name
                )));
            }
            () = tokio::time::sleep(length) => {}
        }
        match fault {
            Some(RunFault::Communication) => Err(SwarmError::CommunicationError(format!(
                "connection to agent {} reset",
                agent.name
            ))),
            Some(RunFault::Broken) => Err(SwarmError::CommunicationError(format!(
                "agent {} answered with garbage: its runtime is broken",
                agent.name
            ))),
            Some(RunFault::Wedge) => Err(SwarmError::TransactionFailed(format!(
                "task {}'s scheduling entry is wedged: the commit on agent {} timed out",
                task.id, agent.name
            ))),
            Some(RunFault::Corruption) => {
                let c = self.world.lock().coordinator.upgrade();
                if let Some(c) = c {
                    corrupt(&c, agent.id);
                }
                Err(SwarmError::StateCorruption(format!(
                    "agent {} found the coordinator's assignment table inconsistent",
                    agent.name
                )))
            }
            _ => Ok(task.spec.payload.clone()),
        }
    }

    async fn probe(&self, agent: &AgentInfo) -> Probe {
        let w = self.world.lock();
        match w.agent_of(agent.id) {
            Some(a) if !a.is_down(Instant::now()) => Probe::Alive,
            _ => Probe::Dead(SwarmError::CommunicationError(format!(
                "agent {} does not answer",
                agent.name
            ))),
        }
    }

    async fn reconnect(&self, agent: &AgentInfo) -> Result<(), SwarmError> {
        let w = self.world.lock();
        match w.agent_of(agent.id) {
            Some(a) if !a.is_down(Instant::now()) => Ok(()),
            _ => Err(SwarmError::CommunicationError(format!(
                "agent {} is not up",
                agent.name
            ))),
        }
    }
}

/// Damage the coordinator's state as a bug would: quarantine another idle agent, scribble over
/// the metadata. Restoring a checkpoint puts both back.
fn corrupt(c: &SwarmCoordinator, running: AgentId) {
    let victim = c.agents().into_iter().find(|a| {
        a.id != running
            && a.status == swarm_integration::AgentStatus::Idle
            && a.current_task.is_none()
    });
    if let Some(v) = victim {
        let _ = c.quarantine_agent(v.id);
    }
    c.set_metadata("assignment_table", "corrupt");
}

/// CPU and memory from the swarm's load and the pressure waves, never from the host.
#[derive(Debug)]
pub(crate) struct SimSampler {
    pub(crate) world: Weak<World>,
}

impl ResourceSampler for SimSampler {
    fn sample(&mut self) -> Sample {
        let Some(world) = self.world.upgrade() else {
            return Sample::default();
        };
        let now = Instant::now();
        let (coordinator, wave) = {
            let mut w = world.lock();
            (w.coordinator.upgrade(), w.pressure(now))
        };
        let load = coordinator.map_or(0.0, |c| {
            let s = c.stats();
            let agents = c.agents().len().max(1);
            s.running as f64 / agents as f64
        });
        Sample {
            cpu: Some((0.15 + 0.6 * load + wave * 0.5).clamp(0.0, 1.0)),
            memory: Some((0.35 + 0.3 * load + wave).clamp(0.0, 1.0)),
        }
    }
}

/// The checkpoint store, in memory, whose next writes can be made to fail.
#[derive(Debug, Default)]
pub(crate) struct FlakyStore {
    inner: MemoryStore,
    fail_next: std::sync::atomic::AtomicU32,
    pub(crate) written: std::sync::atomic::AtomicU64,
    pub(crate) failed: std::sync::atomic::AtomicU64,
}

impl FlakyStore {
    /// Make the next write fail.
    pub(crate) fn fail_next_write(&self) {
        self.fail_next
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[async_trait]
impl CheckpointStore for FlakyStore {
    async fn put(&self, codec: Codec, payload: Vec<u8>) -> Result<CheckpointInfo, CheckpointError> {
        use std::sync::atomic::Ordering::Relaxed;
        if self
            .fail_next
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            self.failed.fetch_add(1, Relaxed);
            return Err(CheckpointError::Io {
                op: "write",
                path: "memory".into(),
                source: std::io::Error::other("injected write failure"),
            });
        }
        let info = self.inner.put(codec, payload).await?;
        self.written.fetch_add(1, Relaxed);
        Ok(info)
    }

    async fn get(&self, id: uuid::Uuid) -> Result<Checkpoint, CheckpointError> {
        self.inner.get(id).await
    }

    async fn list(&self) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        self.inner.list().await
    }

    async fn delete(&self, id: uuid::Uuid) -> Result<(), CheckpointError> {
        self.inner.delete(id).await
    }
}
