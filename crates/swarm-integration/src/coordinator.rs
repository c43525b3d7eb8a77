//! The coordinator: a thin async shell around [`SwarmState`](crate::state): it takes the lock
//! for one transition at a time (never across an await), and acts on what the transition
//! returns (carry out a run, wake callers).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use recovery_core::{AgentId, RecoveryResult, SwarmError, SwarmResult, TaskId};
use recovery_degradation::{DegradationLevel, ResourceMonitor};
use recovery_healing::Supervisor;
use recovery_manager::RecoveryManager;
use tokio::time::Instant;

use crate::components;
use crate::config::SwarmConfig;
use crate::executor::AgentExecutor;
use crate::ids::IdSource;
use crate::model::{AgentInfo, AgentSpec, SwarmCheckpoint, SwarmEvent, TaskInfo, TaskSpec};
use crate::state::{CoordinatorStats, FinishedTask, Reallocate, SwarmState};

/// How long a refused submitter is told to wait before trying again, without a degradation
/// strategy to say otherwise.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(30);

/// A swarm coordinator: it registers agents, accepts tasks, runs them on capable agents through
/// the user's [`AgentExecutor`], and recovers from failures through its [`RecoveryManager`].
///
/// See the [crate docs](crate) for an example and the guarantees.
pub struct SwarmCoordinator {
    pub(crate) me: Weak<SwarmCoordinator>,
    state: Mutex<SwarmState>,
    pub(crate) executor: Arc<dyn AgentExecutor>,
    pub(crate) recovery_manager: Arc<RecoveryManager<SwarmCoordinator>>,
    /// The manager's resource monitor: the coordinator reports its registered agents as
    /// connections and its runs in flight as active tasks, after every transition.
    monitor: Arc<ResourceMonitor>,
    /// What a refused submitter is told to wait (the degradation policy's `retry_after`).
    retry_after: Duration,
    /// The coordinator's restartable components (`agent_protocol`, `task_scheduler`).
    pub(crate) supervisor: Supervisor,
    checks: Checks,
    started: Instant,
    /// The agents' circuit breakers, when [`CoordinatorOptions::breaker`] is set.
    pub(crate) breakers: Option<Arc<recovery_breaker::BreakerSet<AgentId>>>,
}

/// How to build a [`SwarmCoordinator`] beyond its config and executor.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct CoordinatorOptions {
    /// Draw task and agent ids from a generator seeded with this, so that a run replays
    /// exactly (simulations); random v4 uuids without.
    pub id_seed: Option<u64>,
    /// Check every invariant ([`SwarmCoordinator::audit`]) after every transition, and keep
    /// the first violation ([`SwarmCoordinator::first_violation`]). For simulations and tests:
    /// it costs a pass over the agents and the runs per transition, and one over the task
    /// table and the waiting callers after every transition while the table holds at most 128
    /// tasks, after one in every ⌈tasks / 128⌉ past that.
    pub check_invariants: bool,
    /// A circuit breaker per agent ([`recovery_breaker`]): an agent whose runs fail (or are
    /// slow) too often is taken out of the pick, its trust lowered and its tasks moved, then let
    /// back for one probe after the open time. Off without it.
    pub breaker: Option<recovery_breaker::BreakerConfig>,
}

/// An invariant found broken after a transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The transition after which it was found (counting from 1).
    pub transition: u64,
    /// When, on tokio's clock, since the coordinator started.
    pub at: Duration,
    /// What is broken.
    pub problems: Vec<String>,
}

/// The invariant checks of [`CoordinatorOptions::check_invariants`].
#[derive(Debug, Default)]
struct Checks {
    enabled: bool,
    transitions: std::sync::atomic::AtomicU64,
    first: Mutex<Option<Violation>>,
}

impl SwarmCoordinator {
    /// A coordinator with `config`, running tasks through `executor`, recovering through
    /// `recovery_manager`, which it attaches itself to (for monitoring) and whose healing
    /// strategy it tells which components it has.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration`, naming the field, if `config` does not validate, or naming the
    /// rule, if a healing rule restarts a component the coordinator does not have.
    pub fn with_manager(
        config: SwarmConfig,
        executor: Arc<dyn AgentExecutor>,
        recovery_manager: Arc<RecoveryManager<SwarmCoordinator>>,
    ) -> SwarmResult<Arc<Self>> {
        Self::with_options(
            config,
            executor,
            recovery_manager,
            CoordinatorOptions::default(),
        )
    }

    /// [`with_manager`](Self::with_manager), with `options`.
    ///
    /// # Errors
    ///
    /// As [`with_manager`](Self::with_manager).
    pub fn with_options(
        config: SwarmConfig,
        executor: Arc<dyn AgentExecutor>,
        recovery_manager: Arc<RecoveryManager<SwarmCoordinator>>,
        options: CoordinatorOptions,
    ) -> SwarmResult<Arc<Self>> {
        config.validate()?;
        let ids = options.id_seed.map_or(IdSource::Random, IdSource::seeded);
        let state = SwarmState::new(config, ids, Instant::now());
        Self::build(state, executor, recovery_manager, &options)
    }

    /// A coordinator for a new process, rebuilt from `checkpoint` (taken by the one before,
    /// which crashed): its agents, unfinished tasks, configuration, trust, events and metadata.
    /// Its agents must keep sending heartbeats to stay healthy; its counters start over.
    ///
    /// # Errors
    ///
    /// As [`with_manager`](Self::with_manager), for the checkpoint's configuration.
    pub fn from_checkpoint(
        checkpoint: SwarmCheckpoint,
        executor: Arc<dyn AgentExecutor>,
        recovery_manager: Arc<RecoveryManager<SwarmCoordinator>>,
        options: CoordinatorOptions,
    ) -> SwarmResult<Arc<Self>> {
        let ids = options.id_seed.map_or(IdSource::Random, IdSource::seeded);
        let state = SwarmState::adopt(checkpoint, ids, Instant::now())?;
        Self::build(state, executor, recovery_manager, &options)
    }

    fn build(
        state: SwarmState,
        executor: Arc<dyn AgentExecutor>,
        recovery_manager: Arc<RecoveryManager<SwarmCoordinator>>,
        options: &CoordinatorOptions,
    ) -> SwarmResult<Arc<Self>> {
        if let Some(healing) = recovery_manager.healing_strategy() {
            healing
                .restrict_components(components::NAMES)
                .map_err(|e| SwarmError::InvalidConfiguration(e.to_string()))?;
        }
        let breakers = match &options.breaker {
            Some(config) => {
                let set = recovery_breaker::BreakerSet::new(config.clone())
                    .map_err(|e| SwarmError::InvalidConfiguration(e.to_string()))?;
                for agent in state.agents.keys() {
                    set.insert(*agent);
                }
                Some(set)
            }
            None => None,
        };
        let coordinator = Arc::new_cyclic(|me: &Weak<Self>| Self {
            breakers,
            me: me.clone(),
            state: Mutex::new(state),
            executor,
            monitor: recovery_manager.resource_monitor(),
            retry_after: recovery_manager
                .degradation_strategy()
                .map_or(RETRY_AFTER, |s| s.policy().retry_after),
            supervisor: components::supervisor(me.clone()),
            recovery_manager,
            checks: Checks {
                enabled: options.check_invariants,
                ..Checks::default()
            },
            started: Instant::now(),
        });
        coordinator.recovery_manager.attach(&coordinator);
        coordinator.transition(|_, _| ());
        Ok(coordinator)
    }

    /// A coordinator with `config`, running tasks through `executor`, recovering through a
    /// [`RecoveryManager::new`] with every strategy at its defaults (checkpoints in memory).
    /// The manager's background monitoring, once started, steps and checkpoints this
    /// coordinator.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration`, naming the field, if `config` does not validate.
    pub fn new(config: SwarmConfig, executor: Arc<dyn AgentExecutor>) -> SwarmResult<Arc<Self>> {
        Self::with_manager(config, executor, Arc::new(RecoveryManager::new()))
    }

    fn lock(&self) -> MutexGuard<'_, SwarmState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run one transition under the lock, at tokio's `now`, and report the load it leaves to
    /// the resource monitor.
    pub(crate) fn transition<R>(&self, f: impl FnOnce(&mut SwarmState, Instant) -> R) -> R {
        let mut state = self.lock();
        let now = Instant::now();
        let out = f(&mut state, now);
        self.monitor
            .set_active_connections(state.agents.len() as u64);
        self.monitor.set_active_tasks(state.runs.len() as u64);
        if self.checks.enabled {
            let n = self
                .checks
                .transitions
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                + 1;
            // The scans of the task table and the waiting callers are the part that grows with
            // a backlog: past 128 tasks they run after one transition in every ⌈tasks / 128⌉,
            // so a check costs about the same whatever the backlog; the rest is checked after
            // every transition.
            let every = state.tasks.len() / 128 + 1;
            let problems = state.audit_scanning(n % every as u64 == 0);
            if !problems.is_empty() {
                let mut first = self
                    .checks
                    .first
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert(Violation {
                    transition: n,
                    at: now.saturating_duration_since(self.started),
                    problems,
                });
            }
        }
        out
    }

    /// How many transitions had their invariants checked (with
    /// [`CoordinatorOptions::check_invariants`]).
    pub fn invariant_checks(&self) -> u64 {
        self.checks
            .transitions
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The first invariant found broken after a transition, if any (with
    /// [`CoordinatorOptions::check_invariants`]).
    pub fn first_violation(&self) -> Option<Violation> {
        self.checks
            .first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Read the state under the lock.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&SwarmState) -> R) -> R {
        f(&self.lock())
    }

    pub(crate) fn arc(&self) -> Arc<Self> {
        self.me
            .upgrade()
            .expect("a coordinator is only reachable through its Arc")
    }

    /// Take a checkpoint of the whole coordinator through the manager's checkpoint strategy
    /// and return its id (the spec's `create_checkpoint`).
    ///
    /// # Errors
    ///
    /// As [`RecoveryManager::create_checkpoint`]: no checkpoint strategy, or the store failed
    /// (then no checkpoint was added).
    pub async fn create_checkpoint(&self) -> SwarmResult<uuid::Uuid> {
        self.recovery_manager.create_checkpoint(self).await
    }

    /// The recovery manager.
    pub fn recovery_manager(&self) -> &Arc<RecoveryManager<SwarmCoordinator>> {
        &self.recovery_manager
    }

    /// Hand `error` to the recovery manager with this coordinator as the target.
    ///
    /// # Errors
    ///
    /// Whatever [`RecoveryManager::recover`] returns.
    pub async fn recover_from_error(
        &self,
        error: SwarmError,
        failed_task_id: Option<TaskId>,
        failed_agent_id: Option<AgentId>,
    ) -> SwarmResult<RecoveryResult> {
        self.recovery_manager
            .recover(self.arc(), error, failed_task_id, failed_agent_id)
            .await
    }

    /// The current configuration.
    pub fn config(&self) -> SwarmConfig {
        self.read(|s| s.config.clone())
    }

    // ----- agents -------------------------------------------------------------------------

    /// Register an agent; it starts idle with trust 0.5.
    ///
    /// # Errors
    ///
    /// `Overloaded` while the degradation level pauses new connections (Critical);
    /// `SwarmSizeLimitExceeded` when `max_agents` are registered.
    pub fn register_agent(&self, spec: AgentSpec) -> SwarmResult<AgentId> {
        let id = self.transition(|s, now| s.register_agent(spec, now))?;
        if let Some(b) = &self.breakers {
            b.insert(id);
        }
        Ok(id)
    }

    /// Remove an agent. Its run, if any, is told to stop (its result will be discarded) and its
    /// task waits for another agent.
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn deregister_agent(&self, agent: AgentId) -> SwarmResult<()> {
        self.transition(|s, now| s.deregister_agent(agent, now))?;
        if let Some(b) = &self.breakers {
            b.remove(&agent);
        }
        Ok(())
    }

    /// What the coordinator knows about an agent.
    pub fn agent(&self, agent: AgentId) -> Option<AgentInfo> {
        self.read(|s| s.agents.get(&agent).cloned())
    }

    /// Every agent, by id.
    pub fn agents(&self) -> Vec<AgentInfo> {
        let mut agents: Vec<_> = self.read(|s| s.agents.values().cloned().collect());
        agents.sort_by_key(|a| a.id);
        agents
    }

    /// An agent's trust score.
    pub fn trust_score(&self, agent: AgentId) -> Option<f64> {
        self.read(|s| s.trust.get(&agent).copied())
    }

    /// Record a heartbeat. A failed agent that sends one is idle again. (A run's start and end
    /// count as heartbeats too, and an executor can report more during a run.)
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn heartbeat(&self, agent: AgentId) -> SwarmResult<()> {
        self.transition(|s, now| s.heartbeat(agent, now)).map(drop)
    }

    /// When `agent` last showed it was alive: a heartbeat, or a run's start or end.
    pub fn last_heartbeat(&self, agent: AgentId) -> Option<Instant> {
        self.read(|s| s.last_heartbeat(agent))
    }

    /// Declare failed every idle agent whose last heartbeat is older than
    /// `heartbeat_timeout_secs`; returns them. An agent with a run in flight is left to its
    /// run's timeout.
    pub fn check_heartbeats(&self) -> Vec<AgentId> {
        self.transition(|s, now| s.sweep_heartbeats(now))
    }

    /// Declare an agent failed (crashed, unreachable). Its run is told to stop and its result
    /// will be discarded; the task waits for another agent.
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn declare_agent_failed(&self, agent: AgentId) -> SwarmResult<()> {
        self.transition(|s, now| s.declare_agent_failed(agent, now))
    }

    /// Take an agent out of rotation; its run is told to stop and its task waits for another.
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn quarantine_agent(&self, agent: AgentId) -> SwarmResult<()> {
        self.transition(|s, now| s.quarantine_agent(agent, now))
    }

    /// Put a quarantined or failed agent back into rotation.
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn release_agent(&self, agent: AgentId) -> SwarmResult<()> {
        self.transition(|s, now| s.release_agent(agent, now))
            .map(drop)
    }

    // ----- tasks --------------------------------------------------------------------------

    /// Accept a task, or refuse it with an error. An accepted task is never dropped: it ends
    /// completed or failed with a reason.
    ///
    /// # Errors
    ///
    /// `Overloaded` when the degradation level refuses the task's priority (the error says
    /// which level and when to try again); `SwarmSizeLimitExceeded` past `max_pending_tasks`.
    pub fn submit_task(&self, spec: TaskSpec) -> SwarmResult<TaskId> {
        let retry_after = self.retry_after;
        self.transition(|s, now| s.submit(spec, retry_after, now))
    }

    /// What the coordinator knows about a task, while it is in the table (unfinished, or
    /// finished within the retention).
    pub fn task(&self, task: TaskId) -> Option<TaskInfo> {
        self.read(|s| s.tasks.get(&task).cloned())
    }

    /// Every task in the table, in submission order.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        let mut tasks: Vec<_> = self.read(|s| s.tasks.values().cloned().collect());
        tasks.sort_by_key(|t| t.sequence);
        tasks
    }

    /// The outcomes of finished tasks that left the table, oldest first (at most
    /// `outcome_log`).
    pub fn finished_outcomes(&self) -> Vec<FinishedTask> {
        self.read(|s| s.outcomes().cloned().collect())
    }

    /// Give up on a task with `reason` (no effect on a finished task). Its run, if any, is told
    /// to stop and frees its agent.
    pub fn fail_task(&self, task: TaskId, reason: impl Into<String>) {
        let reason = reason.into();
        let watchers = self.transition(|s, now| {
            s.fail_task(task, reason, now);
            s.take_watchers(task)
        });
        if let Some(w) = watchers {
            w.notify_waiters();
        }
    }

    /// Move work off agents that cannot run it (see [`Reallocate`]); moved tasks wait for the
    /// next free capable agent. Returns how many moved.
    pub fn reallocate(&self, which: Reallocate) -> usize {
        self.transition(|s, now| s.reallocate(which, now))
    }

    // ----- state --------------------------------------------------------------------------

    /// The counters.
    pub fn stats(&self) -> CoordinatorStats {
        self.read(SwarmState::stats)
    }

    /// The recent events, oldest first.
    pub fn recent_events(&self) -> Vec<SwarmEvent> {
        self.read(|s| s.events.iter().cloned().collect())
    }

    /// Set a metadata entry (checkpointed with the rest).
    pub fn set_metadata(&self, key: impl Into<String>, value: impl Into<String>) {
        let (key, value) = (key.into(), value.into());
        self.transition(|s, _| s.metadata.insert(key, value));
    }

    /// Runs in flight and the current limit on them (the degradation level scales it).
    pub fn parallelism(&self) -> (usize, usize) {
        self.read(|s| (s.runs.len(), s.run_limit()))
    }

    /// The degradation level the coordinator runs at.
    pub fn level(&self) -> DegradationLevel {
        self.read(SwarmState::level)
    }

    /// Check the invariants; returns the broken ones, described (none when all hold). No task
    /// lost (`submitted = completed + failed + unfinished`, and the unfinished ones are in the
    /// table), none running twice at once, no agent busy without a run, the counters and
    /// indexes agree with the tables, memory within the configured retention.
    pub fn audit(&self) -> Vec<String> {
        self.read(SwarmState::audit)
    }

    /// The maintenance pass: let go of finished tasks older than `finished_max_age_secs`
    /// (paused while the degradation level pauses background maintenance). Returns how many
    /// left the table.
    pub fn maintain(&self) -> usize {
        self.transition(|s, now| s.maintain(now))
    }

    /// The coordinator's state as a checkpoint would hold it.
    pub fn snapshot(&self) -> SwarmCheckpoint {
        self.read(SwarmState::snapshot)
    }

    /// Put `checkpoint` back: agents (status, trust), unfinished tasks, configuration, events
    /// and metadata. Runs in flight are told to stop and their results will be discarded.
    /// What the checkpoint cannot know is kept: tasks submitted or finished after it, agents
    /// registered after it.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration` if the checkpoint's configuration does not validate (nothing is
    /// changed then).
    pub fn restore(&self, checkpoint: SwarmCheckpoint) -> SwarmResult<()> {
        let restored = self.transition(|s, now| s.restore(checkpoint, now))?;
        for w in restored.watchers {
            w.notify_waiters();
        }
        Ok(())
    }

    /// Apply a validated configuration patch (keys of
    /// [`ADJUSTABLE_KEYS`](crate::ADJUSTABLE_KEYS)), all or nothing.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration` naming the bad key and why; the configuration is then unchanged.
    pub fn apply_config_patch(&self, patch: &BTreeMap<String, String>) -> SwarmResult<()> {
        self.transition(|s, now| s.apply_config_patch(patch, now))
    }

    pub(crate) fn set_level(&self, level: DegradationLevel) {
        self.transition(|s, now| s.set_level(level, now));
    }
}
