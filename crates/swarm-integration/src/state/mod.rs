//! The coordinator's state and every transition of it, as plain synchronous functions.
//!
//! [`SwarmState`] holds the tables: agents and their trust, tasks, runs in flight, the callers
//! waiting for an agent, recent events, the finished tasks it keeps and the outcomes of those it
//! let go of. Every change is a `&mut self` method that takes the time as an argument and
//! returns a named type saying what the async shell must do (carry out a run, wake a caller).
//! Nothing here is `async`, takes a lock or reads a clock, so every transition is unit-tested
//! without a runtime, and a model-based property test drives random sequences of them.
//!
//! The invariants [`SwarmState::audit`] checks after any transition: no task lost (every
//! accepted task is unfinished, finished in the table, or counted as finished and let go of);
//! no task runs twice at once; no agent is busy without a run; the counters agree with the
//! tables; the indexes agree with the agents; memory within the configured limits.

mod agents;
mod audit;
mod checkpoint;
mod index;
#[cfg(test)]
mod model_tests;
mod tasks;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use recovery_core::{AgentId, SwarmError, TaskId};
use recovery_degradation::{DegradationLevel, Feature};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(crate) use checkpoint::is_restored;
pub(crate) use index::Map;
use index::{Healthy, IdlePool, Waiters};
pub(crate) use index::{WaiterId, Wake};
pub(crate) use tasks::settled;

use crate::config::SwarmConfig;
use crate::ids::IdSource;
use crate::model::{AgentInfo, SwarmEvent, SwarmEventKind, TaskInfo};

/// How much a completed run raises an agent's trust, and a failed one lowers it.
pub(crate) const TRUST_REWARD: f64 = 0.01;
pub(crate) const TRUST_PENALTY: f64 = 0.05;
pub(crate) const TRUST_CRASH_PENALTY: f64 = 0.2;
pub(crate) const INITIAL_TRUST: f64 = 0.5;

/// A run the shell must carry out: the task and agent as they were when it started, its fencing
/// token (`attempt` and the restore `epoch`), and how it is told to stop.
#[derive(Debug, Clone)]
pub(crate) struct RunTicket {
    pub(crate) task: TaskInfo,
    pub(crate) agent: AgentInfo,
    pub(crate) attempt: u32,
    pub(crate) epoch: u64,
    pub(crate) cancel: CancellationToken,
}

impl RunTicket {
    /// What identifies the run when it ends.
    pub(crate) fn id(&self) -> RunId {
        RunId {
            task: self.task.id,
            attempt: self.attempt,
            epoch: self.epoch,
        }
    }
}

/// A run's fencing token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RunId {
    pub(crate) task: TaskId,
    pub(crate) attempt: u32,
    pub(crate) epoch: u64,
}

/// Why a run was told to stop before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interruption {
    AgentFailed,
    AgentLeft,
    AgentQuarantined,
    Reallocated,
    Restored,
    TaskFailed,
    CallerLeft,
}

impl fmt::Display for Interruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AgentFailed => "its agent was declared failed",
            Self::AgentLeft => "its agent left the swarm",
            Self::AgentQuarantined => "its agent was quarantined",
            Self::Reallocated => "the task was moved to another agent",
            Self::Restored => "the coordinator was restored from a checkpoint",
            Self::TaskFailed => "the task was failed for good",
            Self::CallerLeft => "the caller stopped waiting for it",
        })
    }
}

/// A run in flight.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) attempt: u32,
    pub(crate) epoch: u64,
    pub(crate) agent: AgentId,
    pub(crate) cancel: CancellationToken,
    /// Set when the run was told to stop; its result will be discarded.
    pub(crate) interrupted: Option<Interruption>,
}

/// What [`SwarmState::begin`] decided for a caller that wants its task run.
#[derive(Debug)]
pub(crate) enum Begin {
    /// A run started: carry it out.
    Run(Box<RunTicket>),
    /// The task had finished: its outcome.
    Settled(Result<Vec<u8>, SwarmError>),
    /// No agent or run slot is free: wait for the receiver (a run, or "ask again").
    Wait {
        id: WaiterId,
        rx: tokio::sync::oneshot::Receiver<Wake>,
    },
    /// Another caller's run of the task is in flight: wait for it to end, then ask again.
    Join(Arc<Notify>),
    /// The task is speculative and the level pauses speculative work: wait for the level to
    /// change, then ask again. The task stays accepted.
    Deferred(Arc<Notify>),
    /// The task cannot run now, and waiting would not help: the error says why.
    Refused(SwarmError),
}

/// How a run ended, as the shell saw it.
#[derive(Debug)]
pub(crate) enum RunOutcome {
    Output(Vec<u8>),
    Error(SwarmError),
    TimedOut(Duration),
    Cancelled,
}

/// What a run's end came to.
#[derive(Debug)]
pub(crate) enum RunEnd {
    /// The run was current: its result was applied to the task.
    Applied(Result<Vec<u8>, SwarmError>),
    /// The run was superseded or told to stop; its result was discarded.
    Discarded(SwarmError),
}

/// What ending a run did: the result for the caller, and who to wake.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) end: RunEnd,
    pub(crate) watchers: Option<Arc<Notify>>,
}

/// Which work [`SwarmState::reallocate`] moves off unhealthy agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reallocate {
    /// Every task the agent runs or is preferred for (a running one only if the agent is
    /// failed or quarantined).
    FromAgent(AgentId),
    /// This task, if its agent is failed or quarantined.
    Task(TaskId),
    /// Every task held by a failed or quarantined agent.
    Unhealthy,
}

/// What a restore did.
#[derive(Debug)]
pub(crate) struct Restored {
    pub(crate) watchers: Vec<Arc<Notify>>,
}

/// A task that left the table: its id and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinishedTask {
    /// The task.
    pub id: TaskId,
    /// Whether it completed (or failed).
    pub completed: bool,
}

/// Counters a drill or a dashboard reads; they agree with the tables after every transition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorStats {
    /// Tasks accepted.
    pub submitted: u64,
    /// Submissions refused (overload, size limits).
    pub refused: u64,
    /// Tasks completed (also those no longer in the table).
    pub completed: u64,
    /// Tasks failed for good (also those no longer in the table).
    pub failed: u64,
    /// Tasks neither completed nor failed.
    pub unfinished: u64,
    /// Agents registered.
    pub agents: u64,
    /// Runs in flight.
    pub running: u64,
    /// Callers waiting for an agent or a run slot.
    pub waiting: u64,
    /// Runs started.
    pub runs_started: u64,
    /// Results of superseded runs that were discarded (fencing).
    pub stale_results_discarded: u64,
    /// Tasks moved off failed agents.
    pub tasks_reallocated: u64,
    /// Restores from a checkpoint.
    pub restores: u64,
    /// Component restarts.
    pub component_restarts: u64,
    /// Finished tasks that left the table (their outcomes are in the counts above).
    pub evicted: u64,
    /// Agents declared failed because they sent no heartbeat in time.
    pub agents_timed_out: u64,
}

/// The coordinator's tables. See the module docs.
#[derive(Debug)]
pub(crate) struct SwarmState {
    pub(crate) config: SwarmConfig,
    pub(crate) agents: Map<AgentId, AgentInfo>,
    pub(crate) trust: Map<AgentId, f64>,
    pub(crate) tasks: Map<TaskId, TaskInfo>,
    /// The finished tasks still in the table, oldest first, with when they finished.
    finished: VecDeque<(TaskId, Instant)>,
    /// Tasks that left the table, newest last (at most `outcome_log`).
    outcomes: VecDeque<FinishedTask>,
    /// Callers in `execute_task` or `execute_task_with_recovery`, by task: a finished task
    /// with callers stays in the table until the last one has its outcome.
    callers: Map<TaskId, u32>,
    /// Finished tasks past the retention that stay for their callers.
    pinned: std::collections::BTreeSet<TaskId>,
    pub(crate) events: VecDeque<SwarmEvent>,
    pub(crate) metadata: BTreeMap<String, String>,
    heartbeats: Map<AgentId, Instant>,
    pub(crate) runs: Map<TaskId, Run>,
    idle: IdlePool,
    healthy: Healthy,
    /// Agents an open circuit breaker keeps out of the pick (see `eject_agent`). Kept through a
    /// restore: the checkpoint cannot know of it.
    pub(crate) ejected: std::collections::BTreeSet<AgentId>,
    waiters: Waiters,
    /// Woken when the level changes (for speculative work waiting for it to lift).
    level_changed: Arc<Notify>,
    watchers: Map<TaskId, Arc<Notify>>,
    level: DegradationLevel,
    epoch: u64,
    next_sequence: u64,
    stats: CoordinatorStats,
    origin: Instant,
    ids: IdSource,
}

impl SwarmState {
    /// An empty swarm with `config` (already checked), started at `now`.
    pub(crate) fn new(config: SwarmConfig, ids: IdSource, now: Instant) -> Self {
        Self {
            config,
            agents: Map::default(),
            trust: Map::default(),
            tasks: Map::default(),
            finished: VecDeque::new(),
            outcomes: VecDeque::new(),
            callers: Map::default(),
            pinned: std::collections::BTreeSet::new(),
            events: VecDeque::new(),
            metadata: BTreeMap::new(),
            heartbeats: Map::default(),
            runs: Map::default(),
            idle: IdlePool::default(),
            healthy: Healthy::default(),
            ejected: std::collections::BTreeSet::new(),
            waiters: Waiters::default(),
            level_changed: Arc::new(Notify::new()),
            watchers: Map::default(),
            level: DegradationLevel::Normal,
            epoch: 0,
            next_sequence: 0,
            stats: CoordinatorStats::default(),
            origin: now,
            ids,
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> CoordinatorStats {
        CoordinatorStats {
            agents: self.agents.len() as u64,
            running: self.runs.len() as u64,
            waiting: self.waiters.len() as u64,
            ..self.stats.clone()
        }
    }

    /// The degradation level the swarm runs at.
    pub(crate) fn level(&self) -> DegradationLevel {
        self.level
    }

    /// How many runs may be in flight at the current level.
    pub(crate) fn run_limit(&self) -> usize {
        self.level
            .scaled_limit(self.config.max_parallel_tasks)
            .max(1)
    }

    /// The outcomes of tasks that left the table, oldest first.
    pub(crate) fn outcomes(&self) -> impl Iterator<Item = &FinishedTask> {
        self.outcomes.iter()
    }

    /// Record an event. Events about single tasks are detail: they are not kept while the level
    /// pauses detailed telemetry.
    pub(crate) fn event(&mut self, kind: SwarmEventKind, now: Instant) {
        let detail = matches!(
            kind,
            SwarmEventKind::TaskSubmitted(_) | SwarmEventKind::TaskCompleted(_)
        );
        if detail && self.level.pauses(Feature::DetailedTelemetry) {
            return;
        }
        let at_ms = now.saturating_duration_since(self.origin).as_millis() as u64;
        while self.events.len() >= self.config.recent_events {
            self.events.pop_front();
        }
        self.events.push_back(SwarmEvent { at_ms, kind });
    }

    /// Change the level (its run limit, admission and paused features), and start what the new
    /// limit lets start.
    pub(crate) fn set_level(&mut self, level: DegradationLevel, now: Instant) {
        if level == self.level {
            return;
        }
        self.level = level;
        self.event(SwarmEventKind::LevelChanged(level.as_u8()), now);
        self.level_changed.notify_waiters();
        self.dispatch(now);
    }

    /// Apply a validated configuration patch, all or nothing, and start what a larger run
    /// limit lets start.
    pub(crate) fn apply_config_patch(
        &mut self,
        patch: &BTreeMap<String, String>,
        now: Instant,
    ) -> Result<(), SwarmError> {
        let next = self.config.patched(patch)?;
        self.config = next;
        self.event(SwarmEventKind::ConfigChanged(patch.clone()), now);
        self.dispatch(now);
        Ok(())
    }

    /// Whether an agent of `status` counts as healthy (it may run work).
    pub(crate) fn is_healthy(status: crate::model::AgentStatus) -> bool {
        matches!(
            status,
            crate::model::AgentStatus::Idle | crate::model::AgentStatus::Busy
        )
    }

    /// Set `agent`'s status, keeping the healthy counts and the idle pool in step.
    pub(crate) fn set_status(&mut self, agent: AgentId, status: crate::model::AgentStatus) {
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        let (was, now) = (Self::is_healthy(a.status), Self::is_healthy(status));
        a.status = status;
        if was != now {
            self.healthy.change(a.capabilities.iter(), now);
        }
        self.refresh_idle(agent);
    }

    /// Record a component restart.
    pub(crate) fn component_restarted(&mut self, name: &str, now: Instant) {
        self.stats.component_restarts += 1;
        self.event(SwarmEventKind::ComponentRestarted(name.to_owned()), now);
    }

    /// The maintenance pass (paused while the level pauses background maintenance): let go of
    /// finished tasks older than `finished_max_age_secs`. Returns how many left the table.
    pub(crate) fn maintain(&mut self, now: Instant) -> usize {
        if self.level.pauses(Feature::BackgroundMaintenance) {
            return 0;
        }
        let max_age = self.config.finished_max_age();
        let mut evicted = 0;
        while let Some(&(id, at)) = self.finished.front() {
            if now.saturating_duration_since(at) <= max_age {
                break;
            }
            self.finished.pop_front();
            self.evict(id);
            evicted += 1;
        }
        evicted
    }

    /// A task finished at `now`: keep it, and let go of the oldest finished ones past the
    /// retention.
    fn retain_finished(&mut self, id: TaskId, now: Instant) {
        self.finished.push_back((id, now));
        while self.finished.len() > self.config.finished_retention {
            if let Some((old, _)) = self.finished.pop_front() {
                self.evict(old);
            }
        }
    }

    /// A caller starts waiting for `task`'s outcome: the task stays in the table until it
    /// [`leaves`](Self::leave), even past the retention.
    pub(crate) fn enter(&mut self, task: TaskId) {
        *self.callers.entry(task).or_default() += 1;
    }

    /// A caller of `task` has its answer (or is gone): with no caller left, a finished task
    /// kept for its callers leaves the table.
    pub(crate) fn leave(&mut self, task: TaskId) {
        let Some(n) = self.callers.get_mut(&task) else {
            return;
        };
        *n -= 1;
        if *n == 0 {
            self.callers.remove(&task);
            if self.pinned.remove(&task) {
                self.evict(task);
            }
        }
    }

    /// Take a finished task out of the table, keeping its outcome; one with callers waits for
    /// the last of them.
    fn evict(&mut self, id: TaskId) {
        if self.callers.contains_key(&id) {
            self.pinned.insert(id);
            return;
        }
        if let Some(t) = self.tasks.remove(&id) {
            let completed = matches!(t.state, crate::model::TaskState::Completed { .. });
            self.outcomes.push_back(FinishedTask { id, completed });
            while self.outcomes.len() > self.config.outcome_log {
                self.outcomes.pop_front();
            }
            self.stats.evicted += 1;
        }
    }

    /// The notifier of the callers waiting for `task`'s run to end, made on first use.
    fn watcher(&mut self, task: TaskId) -> Arc<Notify> {
        Arc::clone(self.watchers.entry(task).or_default())
    }
}
