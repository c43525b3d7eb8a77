//! The coordinator: agents, tasks, runs with fencing, admission, and recovery.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use recovery_core::{AgentId, RecoveryResult, SwarmError, SwarmResult, TaskId};
use recovery_degradation::ResourceMonitor;
use recovery_manager::{RecoveryManager, RecoveryRequest};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::SwarmConfig;
use crate::executor::AgentExecutor;
use crate::model::{
    AgentInfo, AgentSpec, AgentStatus, SwarmCheckpoint, SwarmEvent, SwarmEventKind, TaskInfo,
    TaskSpec, TaskState,
};

/// How much a completed run raises an agent's trust, and a failed one lowers it.
const TRUST_REWARD: f64 = 0.01;
const TRUST_PENALTY: f64 = 0.05;
const TRUST_CRASH_PENALTY: f64 = 0.2;
const INITIAL_TRUST: f64 = 0.5;

/// A run in flight: its fencing token, and how to cancel it.
#[derive(Debug)]
struct Run {
    attempt: u32,
    /// The agent the run is on: it takes no other task until this run has ended, even if it
    /// was cancelled (the executor's future may still be running until it is dropped).
    agent: AgentId,
    cancel: CancellationToken,
}

pub(crate) struct Inner {
    pub(crate) config: SwarmConfig,
    pub(crate) agents: BTreeMap<AgentId, AgentInfo>,
    pub(crate) trust: BTreeMap<AgentId, f64>,
    pub(crate) tasks: HashMap<TaskId, TaskInfo>,
    pub(crate) events: VecDeque<SwarmEvent>,
    pub(crate) metadata: BTreeMap<String, String>,
    heartbeats: HashMap<AgentId, Instant>,
    runs: HashMap<TaskId, Run>,
    /// Bumped by every restore: a run started in an older epoch is stale.
    epoch: u64,
    next_sequence: u64,
    /// Tasks accepted and not yet completed or failed.
    unfinished: usize,
}

/// The limit on runs at once, which the degradation level lowers.
struct RunGate {
    state: Mutex<(usize, usize)>,
    freed: Notify,
}

struct GatePermit<'a>(&'a RunGate);

impl RunGate {
    fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new((0, limit)),
            freed: Notify::new(),
        }
    }

    async fn acquire(&self) -> GatePermit<'_> {
        loop {
            let notified = self.freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut s = lock(&self.state);
                if s.0 < s.1 {
                    s.0 += 1;
                    return GatePermit(self);
                }
            }
            notified.await;
        }
    }

    fn set_limit(&self, limit: usize) {
        lock(&self.state).1 = limit.max(1);
        self.freed.notify_waiters();
    }

    fn snapshot(&self) -> (usize, usize) {
        *lock(&self.state)
    }
}

impl Drop for GatePermit<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).0 -= 1;
        self.0.freed.notify_one();
    }
}

fn lock<G>(m: &Mutex<G>) -> MutexGuard<'_, G> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters a drill or a dashboard reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CoordinatorStats {
    /// Tasks accepted.
    pub submitted: u64,
    /// Submissions refused (overload, size limits).
    pub refused: u64,
    /// Tasks completed.
    pub completed: u64,
    /// Tasks failed for good.
    pub failed: u64,
    /// Tasks neither completed nor failed.
    pub unfinished: u64,
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
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    refused: AtomicU64,
    runs_started: AtomicU64,
    stale: AtomicU64,
    reallocated: AtomicU64,
    restores: AtomicU64,
    restarts: AtomicU64,
}

/// A swarm coordinator: it registers agents, accepts tasks, runs them on capable agents through
/// the user's [`AgentExecutor`], and recovers from failures through its [`RecoveryManager`].
///
/// See the [crate docs](crate) for an example and the guarantees.
pub struct SwarmCoordinator {
    me: Weak<SwarmCoordinator>,
    inner: Mutex<Inner>,
    executor: Arc<dyn AgentExecutor>,
    recovery_manager: Arc<RecoveryManager<SwarmCoordinator>>,
    gate: RunGate,
    agent_freed: Notify,
    level: AtomicU8,
    origin: Instant,
    counters: Counters,
    /// The manager's resource monitor: the coordinator reports its registered agents as
    /// connections and its runs in flight as active tasks.
    monitor: Arc<ResourceMonitor>,
    /// What a refused submitter is told to wait (the degradation policy's `retry_after`).
    retry_after: Duration,
}

impl SwarmCoordinator {
    /// A coordinator with `config`, running tasks through `executor`, recovering through
    /// `recovery_manager`.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration`, naming the field, if `config` does not validate.
    pub fn with_manager(
        config: SwarmConfig,
        executor: Arc<dyn AgentExecutor>,
        recovery_manager: Arc<RecoveryManager<SwarmCoordinator>>,
    ) -> SwarmResult<Arc<Self>> {
        config.validate()?;
        let coordinator = Self::build(config, executor, recovery_manager);
        coordinator.recovery_manager.attach(&coordinator);
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

    fn build(
        config: SwarmConfig,
        executor: Arc<dyn AgentExecutor>,
        recovery_manager: Arc<RecoveryManager<SwarmCoordinator>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            gate: RunGate::new(config.max_parallel_tasks),
            inner: Mutex::new(Inner {
                config,
                agents: BTreeMap::new(),
                trust: BTreeMap::new(),
                tasks: HashMap::new(),
                events: VecDeque::new(),
                metadata: BTreeMap::new(),
                heartbeats: HashMap::new(),
                runs: HashMap::new(),
                epoch: 0,
                next_sequence: 0,
                unfinished: 0,
            }),
            executor,
            agent_freed: Notify::new(),
            level: AtomicU8::new(0),
            origin: Instant::now(),
            counters: Counters::default(),
            monitor: recovery_manager.resource_monitor(),
            retry_after: recovery_manager
                .degradation_strategy()
                .map_or(crate::capabilities::RETRY_AFTER, |s| s.policy().retry_after),
            recovery_manager,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    fn arc(&self) -> Arc<Self> {
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

    /// The current configuration.
    pub fn config(&self) -> SwarmConfig {
        self.lock().config.clone()
    }

    pub(crate) fn push_event(&self, inner: &mut Inner, kind: SwarmEventKind) {
        let at_ms = self.origin.elapsed().as_millis() as u64;
        if inner.events.len() >= inner.config.recent_events {
            inner.events.pop_front();
        }
        inner.events.push_back(SwarmEvent { at_ms, kind });
    }

    // ----- agents -------------------------------------------------------------------------

    /// Register an agent; it starts idle with trust 0.5.
    ///
    /// # Errors
    ///
    /// `SwarmSizeLimitExceeded` when `max_agents` are registered.
    pub fn register_agent(&self, spec: AgentSpec) -> SwarmResult<AgentId> {
        let mut inner = self.lock();
        if inner.agents.len() >= inner.config.max_agents {
            return Err(SwarmError::SwarmSizeLimitExceeded(format!(
                "{} agents registered, max_agents is {}",
                inner.agents.len(),
                inner.config.max_agents
            )));
        }
        let id = AgentId::new();
        inner.agents.insert(
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
        inner.trust.insert(id, INITIAL_TRUST);
        inner.heartbeats.insert(id, Instant::now());
        self.push_event(&mut inner, SwarmEventKind::AgentRegistered(id));
        self.monitor
            .set_active_connections(inner.agents.len() as u64);
        drop(inner);
        self.agent_freed.notify_waiters();
        Ok(id)
    }

    /// Remove an agent. A task it held goes back to pending (its run, if any, is cancelled and
    /// its result will be discarded).
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn deregister_agent(&self, agent: AgentId) -> SwarmResult<()> {
        let mut inner = self.lock();
        let info = inner
            .agents
            .remove(&agent)
            .ok_or(SwarmError::AgentNotFound(agent))?;
        inner.trust.remove(&agent);
        inner.heartbeats.remove(&agent);
        if let Some(task) = info.current_task {
            release_task(&mut inner, task, agent);
        }
        self.push_event(&mut inner, SwarmEventKind::AgentDeregistered(agent));
        self.monitor
            .set_active_connections(inner.agents.len() as u64);
        Ok(())
    }

    /// What the coordinator knows about an agent.
    pub fn agent(&self, agent: AgentId) -> Option<AgentInfo> {
        self.lock().agents.get(&agent).cloned()
    }

    /// Every agent.
    pub fn agents(&self) -> Vec<AgentInfo> {
        self.lock().agents.values().cloned().collect()
    }

    /// An agent's trust score.
    pub fn trust_score(&self, agent: AgentId) -> Option<f64> {
        self.lock().trust.get(&agent).copied()
    }

    /// Record a heartbeat. A failed agent that sends one is idle again.
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn heartbeat(&self, agent: AgentId) -> SwarmResult<()> {
        let mut inner = self.lock();
        let info = inner
            .agents
            .get_mut(&agent)
            .ok_or(SwarmError::AgentNotFound(agent))?;
        let revived = info.status == AgentStatus::Failed;
        if revived {
            info.status = AgentStatus::Idle;
        }
        inner.heartbeats.insert(agent, Instant::now());
        if revived {
            self.push_event(&mut inner, SwarmEventKind::AgentRecovered(agent));
            drop(inner);
            self.agent_freed.notify_waiters();
        }
        Ok(())
    }

    /// Declare every agent failed whose last heartbeat is older than `heartbeat_timeout_secs`;
    /// returns them.
    pub fn check_heartbeats(&self) -> Vec<AgentId> {
        let silent: Vec<AgentId> = {
            let inner = self.lock();
            let limit = inner.config.heartbeat_timeout();
            inner
                .heartbeats
                .iter()
                .filter(|(id, at)| {
                    at.elapsed() > limit
                        && inner
                            .agents
                            .get(id)
                            .is_some_and(|a| a.status != AgentStatus::Failed)
                })
                .map(|(id, _)| *id)
                .collect()
        };
        for &agent in &silent {
            // The agent exists: it was just listed.
            let _ = self.declare_agent_failed(agent);
        }
        silent
    }

    /// Declare an agent failed (crashed, unreachable). Its running task's run is cancelled and
    /// will be discarded if it still returns; the task stays assigned to the failed agent until
    /// it is re-run elsewhere or reallocated.
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn declare_agent_failed(&self, agent: AgentId) -> SwarmResult<()> {
        let mut inner = self.lock();
        let info = inner
            .agents
            .get_mut(&agent)
            .ok_or(SwarmError::AgentNotFound(agent))?;
        if info.status == AgentStatus::Failed {
            return Ok(());
        }
        info.status = AgentStatus::Failed;
        info.failures += 1;
        let held = info.current_task;
        if let Some(t) = inner.trust.get_mut(&agent) {
            *t = (*t - TRUST_CRASH_PENALTY).max(0.0);
        }
        if let Some(task) = held {
            if let Some(info) = inner.tasks.get_mut(&task) {
                if matches!(info.state, TaskState::Running { agent: a, .. } if a == agent) {
                    info.state = TaskState::Assigned { agent };
                    if let Some(run) = inner.runs.get(&task) {
                        run.cancel.cancel();
                    }
                }
            }
        }
        self.push_event(&mut inner, SwarmEventKind::AgentFailed(agent));
        tracing::warn!(%agent, "agent declared failed");
        Ok(())
    }

    /// Take an agent out of rotation; it keeps no task (a task it held goes back to pending).
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn quarantine_agent(&self, agent: AgentId) -> SwarmResult<()> {
        let mut inner = self.lock();
        let info = inner
            .agents
            .get_mut(&agent)
            .ok_or(SwarmError::AgentNotFound(agent))?;
        info.status = AgentStatus::Quarantined;
        if let Some(task) = info.current_task {
            release_task(&mut inner, task, agent);
        }
        Ok(())
    }

    /// Put a quarantined or failed agent back into rotation.
    ///
    /// # Errors
    ///
    /// `AgentNotFound` for an unknown agent.
    pub fn release_agent(&self, agent: AgentId) -> SwarmResult<()> {
        let mut inner = self.lock();
        let info = inner
            .agents
            .get_mut(&agent)
            .ok_or(SwarmError::AgentNotFound(agent))?;
        if matches!(info.status, AgentStatus::Quarantined | AgentStatus::Failed) {
            info.status = AgentStatus::Idle;
            inner.heartbeats.insert(agent, Instant::now());
            self.push_event(&mut inner, SwarmEventKind::AgentRecovered(agent));
            drop(inner);
            self.agent_freed.notify_waiters();
        }
        Ok(())
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
        let level = self.level.load(Ordering::Acquire);
        if let Err(e) = crate::capabilities::admit(level, spec.priority, self.retry_after) {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(e);
        }
        let mut inner = self.lock();
        let unfinished = inner.unfinished;
        if unfinished >= inner.config.max_pending_tasks {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(SwarmError::SwarmSizeLimitExceeded(format!(
                "{unfinished} tasks unfinished, max_pending_tasks is {}",
                inner.config.max_pending_tasks
            )));
        }
        let id = TaskId::new();
        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        inner.unfinished += 1;
        inner.tasks.insert(
            id,
            TaskInfo {
                id,
                spec,
                state: TaskState::Pending,
                attempts: 0,
                last_error: None,
                last_agent: None,
                sequence,
            },
        );
        self.push_event(&mut inner, SwarmEventKind::TaskSubmitted(id));
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// What the coordinator knows about a task.
    pub fn task(&self, task: TaskId) -> Option<TaskInfo> {
        self.lock().tasks.get(&task).cloned()
    }

    /// Every task, in submission order.
    pub fn tasks(&self) -> Vec<TaskInfo> {
        let mut tasks: Vec<_> = self.lock().tasks.values().cloned().collect();
        tasks.sort_by_key(|t| t.sequence);
        tasks
    }

    /// The outcome a settled task has: its output, or why it failed.
    fn settled(task: &TaskInfo) -> Option<SwarmResult<Vec<u8>>> {
        match &task.state {
            TaskState::Completed { output, .. } => Some(Ok(output.clone())),
            TaskState::Failed { reason } => Some(Err(SwarmError::TaskFailed {
                task: task.id,
                reason: reason.clone(),
            })),
            _ => None,
        }
    }

    /// Run a task once on a capable idle agent (waiting for one, and for a free run slot),
    /// enforcing the task timeout. A completed task returns its output again without running.
    ///
    /// # Errors
    ///
    /// The executor's error (the task goes back to pending, or fails for good if the error is
    /// not recoverable); `CoordinationTimeout` past `task_timeout_secs`; `ConcurrencyError` if
    /// the task is already running or this run's result was discarded because the task was
    /// moved or restored meanwhile; `TaskFailed` once the task has failed for good;
    /// `TaskNotFound`.
    pub async fn execute_task(&self, task_id: TaskId) -> SwarmResult<Vec<u8>> {
        if let Some(output) = self.check_runnable(task_id)? {
            return Ok(output);
        }
        let _permit = self.gate.acquire().await;
        let _active = self.monitor.track_task();
        let (agent, task, run) = self.start_run(task_id).await?;
        let mut guard = RunGuard {
            coordinator: self,
            task: task_id,
            agent: agent.id,
            attempt: run.0,
            epoch: run.1,
            finished: false,
        };
        let timeout = self.lock().config.task_timeout();
        let outcome = tokio::select! {
            biased;
            () = run.2.cancelled() => None,
            r = tokio::time::timeout(timeout, self.executor.execute(&agent, &task)) => Some(r),
        };
        guard.finished = true;
        self.finish_run(&guard, outcome, timeout)
    }

    /// `Ok(Some(output))` for a completed task, `Ok(None)` for one that may run now.
    fn check_runnable(&self, task_id: TaskId) -> SwarmResult<Option<Vec<u8>>> {
        let inner = self.lock();
        let task = inner
            .tasks
            .get(&task_id)
            .ok_or(SwarmError::TaskNotFound(task_id))?;
        if let Some(settled) = Self::settled(task) {
            return settled.map(Some);
        }
        if let TaskState::Running { attempt, .. } = task.state {
            return Err(SwarmError::ConcurrencyError(format!(
                "task {task_id} is already running (run {attempt})"
            )));
        }
        if inner.runs.contains_key(&task_id) {
            return Err(SwarmError::ConcurrencyError(format!(
                "task {task_id}'s previous run is still shutting down"
            )));
        }
        Ok(None)
    }

    async fn start_run(
        &self,
        task_id: TaskId,
    ) -> SwarmResult<(AgentInfo, TaskInfo, (u32, u64, CancellationToken))> {
        let wait_limit = self.lock().config.task_timeout();
        let deadline = Instant::now() + wait_limit;
        loop {
            let notified = self.agent_freed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut inner = self.lock();
                let inner = &mut *inner;
                let task = inner
                    .tasks
                    .get(&task_id)
                    .ok_or(SwarmError::TaskNotFound(task_id))?;
                if let Some(settled) = Self::settled(task) {
                    // Finished while this call waited (another caller ran it).
                    settled.map(drop)?;
                    return Err(SwarmError::ConcurrencyError(format!(
                        "task {task_id} completed while waiting to run"
                    )));
                }
                if matches!(task.state, TaskState::Running { .. })
                    || inner.runs.contains_key(&task_id)
                {
                    return Err(SwarmError::ConcurrencyError(format!(
                        "task {task_id} started running elsewhere"
                    )));
                }
                if task.attempts >= inner.config.max_attempts_per_task {
                    let reason = format!(
                        "gave up after {} runs; last error: {}",
                        task.attempts,
                        task.last_error.as_deref().unwrap_or("none")
                    );
                    self.fail_locked(inner, task_id, reason.clone());
                    return Err(SwarmError::TaskFailed {
                        task: task_id,
                        reason,
                    });
                }
                match pick_agent(inner, task) {
                    Ok(agent_id) => {
                        let attempt = task.attempts + 1;
                        let epoch = inner.epoch;
                        if let TaskState::Assigned { agent: previous } = task.state {
                            if previous != agent_id {
                                if let Some(p) = inner.agents.get_mut(&previous) {
                                    if p.current_task == Some(task_id) {
                                        p.current_task = None;
                                    }
                                }
                            }
                        }
                        // Take the agent over from a task merely assigned to it.
                        let held = inner.agents.get(&agent_id).and_then(|a| a.current_task);
                        if let Some(other) = held.filter(|t| *t != task_id) {
                            release_task(inner, other, agent_id);
                        }
                        let agent = inner
                            .agents
                            .get_mut(&agent_id)
                            .expect("picked agent exists");
                        agent.status = AgentStatus::Busy;
                        agent.current_task = Some(task_id);
                        let agent = agent.clone();
                        let task = inner.tasks.get_mut(&task_id).expect("checked above");
                        task.attempts = attempt;
                        task.last_agent = Some(agent_id);
                        task.state = TaskState::Running {
                            agent: agent_id,
                            attempt,
                        };
                        let task = task.clone();
                        let cancel = CancellationToken::new();
                        inner.runs.insert(
                            task_id,
                            Run {
                                attempt,
                                agent: agent_id,
                                cancel: cancel.clone(),
                            },
                        );
                        self.counters.runs_started.fetch_add(1, Ordering::Relaxed);
                        return Ok((agent, task, (attempt, epoch, cancel)));
                    }
                    Err(Some(e)) => return Err(e),
                    Err(None) => {}
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(SwarmError::CoordinationTimeout(format!(
                    "no capable agent became free for task {task_id} within {wait_limit:?}"
                )));
            }
        }
    }

    fn finish_run(
        &self,
        run: &RunGuard<'_>,
        outcome: Option<Result<SwarmResult<Vec<u8>>, tokio::time::error::Elapsed>>,
        timeout: Duration,
    ) -> SwarmResult<Vec<u8>> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        if inner
            .runs
            .get(&run.task)
            .is_some_and(|r| r.attempt == run.attempt)
        {
            inner.runs.remove(&run.task);
        }
        let fresh = run.epoch == inner.epoch
            && inner.tasks.get(&run.task).is_some_and(|t| {
                t.state
                    == TaskState::Running {
                        agent: run.agent,
                        attempt: run.attempt,
                    }
            });
        let outcome = match outcome {
            Some(o) if fresh => o,
            _ => {
                self.counters.stale.fetch_add(1, Ordering::Relaxed);
                self.push_event(
                    inner,
                    SwarmEventKind::StaleResultDiscarded {
                        task: run.task,
                        attempt: run.attempt,
                    },
                );
                tracing::warn!(task = %run.task, attempt = run.attempt, "discarded the result of a superseded run");
                if let Some(a) = inner.agents.get_mut(&run.agent) {
                    if a.status == AgentStatus::Busy && a.current_task == Some(run.task) {
                        a.status = AgentStatus::Idle;
                        a.current_task = None;
                    }
                }
                drop(guard);
                self.agent_freed.notify_waiters();
                return Err(SwarmError::ConcurrencyError(format!(
                    "the result of run {} of task {} was discarded: the task was moved or restored while it ran",
                    run.attempt, run.task
                )));
            }
        };
        let result = outcome.unwrap_or_else(|_| {
            Err(SwarmError::CoordinationTimeout(format!(
                "task {} ran longer than {timeout:?} on agent {}",
                run.task, run.agent
            )))
        });
        match &result {
            Ok(output) => {
                free_agent_after_run(inner, run.agent, true);
                let task = inner
                    .tasks
                    .get_mut(&run.task)
                    .expect("fresh run's task exists");
                task.state = TaskState::Completed {
                    agent: run.agent,
                    output: output.clone(),
                };
                inner.unfinished -= 1;
                self.push_event(inner, SwarmEventKind::TaskCompleted(run.task));
            }
            Err(e) => {
                free_agent_after_run(inner, run.agent, false);
                let task = inner
                    .tasks
                    .get_mut(&run.task)
                    .expect("fresh run's task exists");
                task.last_error = Some(e.to_string());
                if e.is_recoverable() {
                    task.state = TaskState::Pending;
                } else {
                    self.fail_locked(inner, run.task, format!("not recoverable: {e}"));
                }
            }
        }
        drop(guard);
        self.agent_freed.notify_waiters();
        result
    }

    /// Mark a task failed for good (with the lock held).
    fn fail_locked(&self, inner: &mut Inner, task: TaskId, reason: String) {
        if let Some(t) = inner.tasks.get_mut(&task) {
            if t.state.is_terminal() {
                return;
            }
            if let TaskState::Assigned { agent } | TaskState::Running { agent, .. } = t.state {
                if let Some(a) = inner.agents.get_mut(&agent) {
                    if a.current_task == Some(task) {
                        a.current_task = None;
                    }
                }
            }
            t.state = TaskState::Failed { reason };
            inner.unfinished -= 1;
            self.push_event(inner, SwarmEventKind::TaskFailed(task));
        }
    }

    /// Give up on a task with `reason` (no effect on a finished task).
    pub fn fail_task(&self, task: TaskId, reason: impl Into<String>) {
        let mut inner = self.lock();
        self.fail_locked(&mut inner, task, reason.into());
    }

    /// Run a task, recovering through the manager until it completes, the error is not
    /// recoverable, the strategies give up, or the task has had its re-runs; then the task is
    /// failed with a reason that says what was tried.
    ///
    /// A re-run is a retry, whoever makes it: the backoff strategy (through `Retry`), or this
    /// loop after a recovery that fixed the task's surroundings (a restart, a restore). They are
    /// counted together against one limit, the registered backoff strategy's `max_retries`
    /// (without one, `max_attempts_per_task - 1`), so with `max_retries = 5` a task that always
    /// fails runs at most six times.
    ///
    /// # Errors
    ///
    /// `TaskFailed` with the reason once the task has failed for good; `TaskNotFound`.
    pub async fn execute_task_with_recovery(&self, task_id: TaskId) -> SwarmResult<Vec<u8>> {
        let limit = self.retry_limit();
        // Re-runs are counted from the task's runs: whoever started them, each is one.
        let runs_before = self.runs_of(task_id)?;
        let mut tried: Vec<String> = Vec::new();
        loop {
            let error = match self.execute_task(task_id).await {
                Ok(output) => return Ok(output),
                Err(e @ (SwarmError::TaskFailed { .. } | SwarmError::TaskNotFound(_))) => {
                    return Err(e);
                }
                Err(e) => e,
            };
            let agent = self.last_agent_of(task_id);
            let retries = self.retries_since(task_id, runs_before);
            let request = RecoveryRequest::new(self.arc(), error.clone())
                .with_task(task_id)
                .with_agent(agent)
                .with_retry_count(retries);
            let result = self.recovery_manager.recover_with(request).await?;
            if !error.is_recoverable() {
                // The manager recorded it and says manual intervention is required.
                let reason = format!("not recoverable: {error} ({})", result.action_taken);
                self.fail_task(task_id, reason.clone());
                return Err(self.failure_of(task_id, reason));
            }
            let retries = self.retries_since(task_id, runs_before);
            tried.push(format!("{} -> {}", error.kind(), result.action));
            if let Some(settled) = self.task(task_id).as_ref().and_then(Self::settled) {
                return settled;
            }
            let gave_up = if !result.success {
                Some("recovery gave up")
            } else if retries >= limit {
                Some("no re-run left")
            } else {
                None
            };
            if let Some(why) = gave_up {
                let reason = format!(
                    "{why} after {} round(s) and {retries} of {limit} re-runs ({}); last error: {error}",
                    tried.len(),
                    tried.join("; ")
                );
                self.fail_task(task_id, reason.clone());
                return Err(self.failure_of(task_id, reason));
            }
            // The recovery fixed what was around the task; running it again is a retry.
        }
    }

    /// The runs `task` has had.
    fn runs_of(&self, task: TaskId) -> SwarmResult<u32> {
        self.lock()
            .tasks
            .get(&task)
            .map(|t| t.attempts)
            .ok_or(SwarmError::TaskNotFound(task))
    }

    /// The re-runs of `task` since it had `runs_before` runs (its first run after that is not
    /// a re-run).
    fn retries_since(&self, task: TaskId, runs_before: u32) -> u32 {
        self.runs_of(task)
            .unwrap_or(runs_before)
            .saturating_sub(runs_before)
            .saturating_sub(1)
    }

    /// How many re-runs a failure of a task gets: the backoff strategy's `max_retries`, or
    /// without one `max_attempts_per_task - 1`.
    fn retry_limit(&self) -> u32 {
        self.recovery_manager.backoff_strategy().map_or_else(
            || self.lock().config.max_attempts_per_task.saturating_sub(1),
            |b| b.config().max_retries,
        )
    }

    fn failure_of(&self, task: TaskId, fallback: String) -> SwarmError {
        match self.task(task).map(|t| t.state) {
            Some(TaskState::Failed { reason }) => SwarmError::TaskFailed { task, reason },
            _ => SwarmError::TaskFailed {
                task,
                reason: fallback,
            },
        }
    }

    fn last_agent_of(&self, task: TaskId) -> Option<AgentId> {
        let inner = self.lock();
        let info = inner.tasks.get(&task)?;
        match info.state {
            TaskState::Assigned { agent } | TaskState::Running { agent, .. } => Some(agent),
            _ => info.last_agent,
        }
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

    // ----- state --------------------------------------------------------------------------

    /// The counters.
    pub fn stats(&self) -> CoordinatorStats {
        let inner = self.lock();
        let mut s = CoordinatorStats {
            submitted: self.counters.submitted.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            runs_started: self.counters.runs_started.load(Ordering::Relaxed),
            stale_results_discarded: self.counters.stale.load(Ordering::Relaxed),
            tasks_reallocated: self.counters.reallocated.load(Ordering::Relaxed),
            restores: self.counters.restores.load(Ordering::Relaxed),
            component_restarts: self.counters.restarts.load(Ordering::Relaxed),
            ..CoordinatorStats::default()
        };
        for t in inner.tasks.values() {
            match t.state {
                TaskState::Completed { .. } => s.completed += 1,
                TaskState::Failed { .. } => s.failed += 1,
                _ => s.unfinished += 1,
            }
        }
        s
    }

    /// The recent events, oldest first.
    pub fn recent_events(&self) -> Vec<SwarmEvent> {
        self.lock().events.iter().cloned().collect()
    }

    /// Set a metadata entry (checkpointed with the rest).
    pub fn set_metadata(&self, key: impl Into<String>, value: impl Into<String>) {
        self.lock().metadata.insert(key.into(), value.into());
    }

    /// Runs in flight and the current limit on them.
    pub fn parallelism(&self) -> (usize, usize) {
        self.gate.snapshot()
    }

    /// Check the invariants: each task is in exactly one state, a running or assigned task's
    /// agent holds it, no agent holds two tasks, and no task runs on two agents. Returns the
    /// broken ones, described.
    pub fn audit(&self) -> Vec<String> {
        let inner = self.lock();
        let mut problems = Vec::new();
        let mut holders: HashMap<TaskId, Vec<AgentId>> = HashMap::new();
        for a in inner.agents.values() {
            if let Some(t) = a.current_task {
                holders.entry(t).or_default().push(a.id);
            }
            if a.status == AgentStatus::Busy && a.current_task.is_none() {
                problems.push(format!("agent {} is busy with no task", a.id));
            }
        }
        for (task, agents) in &holders {
            if agents.len() > 1 {
                problems.push(format!("task {task} is held by {} agents", agents.len()));
            }
        }
        for t in inner.tasks.values() {
            if let TaskState::Running { agent, .. } = t.state {
                if holders.get(&t.id).is_none_or(|h| !h.contains(&agent)) {
                    problems.push(format!(
                        "task {} runs on {agent}, which does not hold it",
                        t.id
                    ));
                }
                if !inner.runs.contains_key(&t.id) {
                    problems.push(format!("task {} is running with no run in flight", t.id));
                }
            }
        }
        problems
    }

    pub(crate) fn snapshot_locked(&self, inner: &Inner) -> SwarmCheckpoint {
        let tasks: BTreeMap<TaskId, TaskInfo> = inner
            .tasks
            .values()
            .map(|t| {
                let mut t = t.clone();
                if let TaskState::Running { agent, .. } = t.state {
                    t.state = TaskState::Assigned { agent };
                }
                (t.id, t)
            })
            .collect();
        let agents = inner
            .agents
            .values()
            .map(|a| {
                let mut a = a.clone();
                if a.status == AgentStatus::Busy {
                    a.status = AgentStatus::Idle;
                }
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
            config: inner.config.clone(),
            trust_scores: inner.trust.clone(),
            recent_events: inner.events.iter().cloned().collect(),
            metadata: inner.metadata.clone(),
        }
    }

    /// The coordinator's state as a checkpoint would hold it.
    pub fn snapshot(&self) -> SwarmCheckpoint {
        let inner = self.lock();
        self.snapshot_locked(&inner)
    }

    /// Put `checkpoint` back: agents, tasks and assignments, configuration, trust scores,
    /// events and metadata. Runs in flight are cancelled and their results will be discarded.
    ///
    /// Two things a restore never undoes, so that no task is lost: a task submitted after the
    /// checkpoint stays (as pending), and a task that finished after the checkpoint stays
    /// finished. With neither, the coordinator's snapshot afterwards equals `checkpoint`.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration` if the checkpoint's configuration does not validate (nothing is
    /// changed then).
    pub fn restore(&self, checkpoint: SwarmCheckpoint) -> SwarmResult<()> {
        checkpoint.config.validate()?;
        let mut guard = self.lock();
        let inner = &mut *guard;
        for run in inner.runs.values() {
            run.cancel.cancel();
        }
        inner.epoch += 1;
        let mut tasks: HashMap<TaskId, TaskInfo> = checkpoint.tasks.into_iter().collect();
        for (id, current) in inner.tasks.drain() {
            match tasks.get_mut(&id) {
                Some(restored) if current.state.is_terminal() => {
                    restored.state = current.state;
                    restored.attempts = restored.attempts.max(current.attempts);
                }
                // Fencing tokens only grow, so a result from before the restore is never taken
                // for a newer run's.
                Some(restored) => restored.attempts = restored.attempts.max(current.attempts),
                None => {
                    let mut kept = current;
                    if !kept.state.is_terminal() {
                        kept.state = TaskState::Pending;
                    }
                    tasks.insert(id, kept);
                }
            }
        }
        let mut agents = checkpoint.agents;
        for agent in agents.values_mut() {
            if let Some(t) = agent.current_task {
                let holds = tasks.get(&t).is_some_and(
                    |t| matches!(t.state, TaskState::Assigned { agent: a } if a == agent.id),
                );
                if !holds {
                    agent.current_task = None;
                }
            }
        }
        let now = Instant::now();
        inner.heartbeats = agents.keys().map(|id| (*id, now)).collect();
        inner.agents = agents;
        inner.unfinished = tasks.values().filter(|t| !t.state.is_terminal()).count();
        inner.tasks = tasks;
        inner.trust = checkpoint.trust_scores;
        inner.events = checkpoint.recent_events.into();
        inner.metadata = checkpoint.metadata;
        let parallel = inner.config.max_parallel_tasks != checkpoint.config.max_parallel_tasks;
        inner.config = checkpoint.config;
        self.counters.restores.fetch_add(1, Ordering::Relaxed);
        drop(guard);
        if parallel {
            self.apply_parallelism();
        }
        self.agent_freed.notify_waiters();
        tracing::info!("coordinator state restored from a checkpoint");
        Ok(())
    }

    pub(crate) fn level(&self) -> u8 {
        self.level.load(Ordering::Acquire)
    }

    pub(crate) fn set_level(&self, level: u8) {
        self.level.store(level, Ordering::Release);
        {
            let mut inner = self.lock();
            self.push_event(&mut inner, SwarmEventKind::LevelChanged(level));
        }
        self.apply_parallelism();
    }

    pub(crate) fn apply_parallelism(&self) {
        let max = self.lock().config.max_parallel_tasks;
        self.gate
            .set_limit(crate::capabilities::scaled_limit(self.level(), max));
    }

    /// Move work off agents that cannot run it: with `agent`, every task it holds (a running
    /// one only if the agent is failed or quarantined, its run then cancelled and fenced off);
    /// with only `task`, that task if its agent is unhealthy; with neither, every task held by
    /// an unhealthy agent. Moved tasks go back to pending and run on the next free capable
    /// agent. Returns how many moved.
    pub fn reallocate(&self, agent: Option<AgentId>, task: Option<TaskId>) -> usize {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let unhealthy = |inner: &Inner, a: AgentId| {
            inner
                .agents
                .get(&a)
                .is_none_or(|a| matches!(a.status, AgentStatus::Failed | AgentStatus::Quarantined))
        };
        let mut moving: Vec<(TaskId, AgentId)> = Vec::new();
        for t in inner.tasks.values() {
            let (holder, running) = match t.state {
                TaskState::Assigned { agent } => (agent, false),
                TaskState::Running { agent, .. } => (agent, true),
                _ => continue,
            };
            let chosen = match (agent, task) {
                (Some(a), _) => holder == a && (!running || unhealthy(inner, a)),
                (None, Some(tk)) => t.id == tk && unhealthy(inner, holder),
                (None, None) => unhealthy(inner, holder),
            };
            if chosen {
                moving.push((t.id, holder));
            }
        }
        for &(task, from) in &moving {
            release_task(inner, task, from);
            self.push_event(inner, SwarmEventKind::TaskReassigned { task, from });
        }
        let n = moving.len();
        drop(guard);
        if n > 0 {
            self.counters_reallocated(n as u64);
            self.agent_freed.notify_waiters();
        }
        n
    }

    pub(crate) fn record_event(&self, kind: SwarmEventKind) {
        let mut inner = self.lock();
        self.push_event(&mut inner, kind);
    }

    pub(crate) fn counters_restart(&self) {
        self.counters.restarts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn counters_reallocated(&self, n: u64) {
        self.counters.reallocated.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn notify_agents(&self) {
        self.agent_freed.notify_waiters();
    }

    /// Apply a validated configuration patch; all or nothing.
    ///
    /// # Errors
    ///
    /// `InvalidConfiguration` naming the key and why; the configuration is then unchanged.
    pub fn apply_config_patch(&self, patch: &BTreeMap<String, String>) -> SwarmResult<()> {
        {
            let mut inner = self.lock();
            let next = inner.config.patched(patch)?;
            inner.config = next;
            self.push_event(&mut inner, SwarmEventKind::ConfigChanged(patch.clone()));
        }
        self.apply_parallelism();
        Ok(())
    }
}

/// The agent of a fresh run that ended: count the outcome, free it (unless it was declared
/// failed or quarantined meanwhile) and move its trust score.
fn free_agent_after_run(inner: &mut Inner, agent: AgentId, succeeded: bool) {
    if let Some(a) = inner.agents.get_mut(&agent) {
        if succeeded {
            a.completed += 1;
        } else {
            a.failures += 1;
        }
        if a.status == AgentStatus::Busy {
            a.status = AgentStatus::Idle;
        }
        a.current_task = None;
    }
    if let Some(t) = inner.trust.get_mut(&agent) {
        *t = if succeeded {
            (*t + TRUST_REWARD).min(1.0)
        } else {
            (*t - TRUST_PENALTY).max(0.0)
        };
    }
}

/// Put a task an agent held back to pending (the agent left or was quarantined).
fn release_task(inner: &mut Inner, task: TaskId, agent: AgentId) {
    if let Some(agent_info) = inner.agents.get_mut(&agent) {
        agent_info.current_task = None;
    }
    if let Some(t) = inner.tasks.get_mut(&task) {
        if matches!(t.state, TaskState::Assigned { agent: a } | TaskState::Running { agent: a, .. } if a == agent)
        {
            t.state = TaskState::Pending;
            if let Some(run) = inner.runs.get(&task) {
                run.cancel.cancel();
            }
        }
    }
}

/// The agent a task should run on now: its assigned agent if that one is idle, else the idle
/// capable agent with the highest trust. `Err(None)`: wait for one; `Err(Some(e))`: none can
/// ever come from the current agents.
fn pick_agent(inner: &Inner, task: &TaskInfo) -> Result<AgentId, Option<SwarmError>> {
    // An idle agent is free for this task unless it holds another task that is running. A task
    // merely assigned to it (after a crash, a restore) does not reserve it: waiting for such a
    // task's owner while that owner waits for an agent could deadlock, so the agent may be
    // taken and the assigned task goes back to pending.
    let free = |a: &AgentInfo| {
        a.status == AgentStatus::Idle
            && !inner.runs.values().any(|r| r.agent == a.id)
            && a.current_task.is_none_or(|t| {
                t == task.id
                    || !inner
                        .tasks
                        .get(&t)
                        .is_some_and(|held| matches!(held.state, TaskState::Running { .. }))
            })
    };
    let capable = |a: &AgentInfo| {
        task.spec
            .required_capability
            .as_ref()
            .is_none_or(|c| a.capabilities.contains(c))
    };
    if let TaskState::Assigned { agent } = task.state {
        if inner
            .agents
            .get(&agent)
            .is_some_and(|a| free(a) && capable(a))
        {
            return Ok(agent);
        }
    }
    let best = inner
        .agents
        .values()
        .filter(|a| free(a) && capable(a))
        .max_by(|a, b| {
            // Prefer an agent that holds nothing, then the most trusted.
            let ea = a.current_task.is_none();
            let eb = b.current_task.is_none();
            let ta = inner.trust.get(&a.id).copied().unwrap_or(0.0);
            let tb = inner.trust.get(&b.id).copied().unwrap_or(0.0);
            ea.cmp(&eb).then(ta.total_cmp(&tb)).then(b.id.cmp(&a.id))
        });
    if let Some(a) = best {
        return Ok(a.id);
    }
    let any_alive = inner
        .agents
        .values()
        .any(|a| capable(a) && matches!(a.status, AgentStatus::Idle | AgentStatus::Busy));
    if any_alive {
        Err(None)
    } else {
        let what = task
            .spec
            .required_capability
            .as_ref()
            .map_or("no healthy agent is registered".to_owned(), |c| {
                format!("no healthy agent has capability `{c}`")
            });
        Err(Some(SwarmError::ResourceConflict(format!(
            "cannot run task {}: {what}",
            task.id
        ))))
    }
}

/// Releases a run whose `execute_task` future was dropped before it finished, so the task is
/// not left running forever.
struct RunGuard<'a> {
    coordinator: &'a SwarmCoordinator,
    task: TaskId,
    agent: AgentId,
    attempt: u32,
    epoch: u64,
    finished: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut inner = self.coordinator.lock();
        if inner
            .runs
            .get(&self.task)
            .is_some_and(|r| r.attempt == self.attempt)
        {
            inner.runs.remove(&self.task);
        }
        if let Some(t) = inner.tasks.get_mut(&self.task) {
            if t.state
                == (TaskState::Running {
                    agent: self.agent,
                    attempt: self.attempt,
                })
            {
                t.state = TaskState::Pending;
                t.last_error = Some("the caller stopped waiting for the run".into());
            }
        }
        if let Some(a) = inner.agents.get_mut(&self.agent) {
            if a.current_task == Some(self.task) {
                a.current_task = None;
                if a.status == AgentStatus::Busy {
                    a.status = AgentStatus::Idle;
                }
            }
        }
        drop(inner);
        self.coordinator.agent_freed.notify_waiters();
    }
}
