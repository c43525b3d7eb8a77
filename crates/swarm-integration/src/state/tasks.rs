//! Transitions of tasks and runs: submission, starting a run (now, or when an agent frees up),
//! ending one, failing a task, moving work off unhealthy agents.

use recovery_core::{AgentId, SwarmError, TaskId};
use recovery_degradation::Feature;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::index::{Key, WaiterId, Wake};
use super::{
    Begin, Finished, Interruption, Reallocate, Run, RunEnd, RunId, RunOutcome, RunTicket,
    SwarmState, TRUST_PENALTY, TRUST_REWARD,
};
use crate::model::{AgentStatus, SwarmEventKind, TaskInfo, TaskSpec, TaskState};

/// The outcome a finished task has: its output, or why it failed.
pub(crate) fn settled(task: &TaskInfo) -> Option<Result<Vec<u8>, SwarmError>> {
    match &task.state {
        TaskState::Completed { output, .. } => Some(Ok(output.clone())),
        TaskState::Failed { reason } => Some(Err(SwarmError::TaskFailed {
            task: task.id,
            reason: reason.clone(),
        })),
        _ => None,
    }
}

impl SwarmState {
    /// Accept a task, or refuse it with an error. An accepted task is never dropped: it ends
    /// completed or failed with a reason.
    ///
    /// # Errors
    ///
    /// `Overloaded` when the level refuses the task's priority (`retry_after` says when to try
    /// again); `SwarmSizeLimitExceeded` past `max_pending_tasks`.
    pub(crate) fn submit(
        &mut self,
        spec: TaskSpec,
        retry_after: std::time::Duration,
        now: Instant,
    ) -> Result<TaskId, SwarmError> {
        if let Err(e) = self.level.admit(spec.priority, None, retry_after) {
            self.stats.refused += 1;
            return Err(e);
        }
        let unfinished = self.stats.unfinished;
        if unfinished >= self.config.max_pending_tasks as u64 {
            self.stats.refused += 1;
            return Err(SwarmError::SwarmSizeLimitExceeded(format!(
                "{unfinished} tasks unfinished, max_pending_tasks is {}",
                self.config.max_pending_tasks
            )));
        }
        let id = self.ids.task();
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        self.stats.unfinished += 1;
        self.stats.submitted += 1;
        self.tasks.insert(
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
        self.event(SwarmEventKind::TaskSubmitted(id), now);
        Ok(id)
    }

    /// A caller wants `task` run now: start a run on a free capable agent if the run limit
    /// allows, or queue the caller, or say why neither can help.
    pub(crate) fn begin(&mut self, task_id: TaskId, now: Instant) -> Begin {
        let Some(task) = self.tasks.get(&task_id) else {
            return Begin::Refused(SwarmError::TaskNotFound(task_id));
        };
        if let Some(outcome) = settled(task) {
            return Begin::Settled(outcome);
        }
        if self.runs.contains_key(&task_id) {
            return Begin::Join(self.watcher(task_id));
        }
        if let Some(refusal) = self.runnable(task_id, now) {
            return refusal;
        }
        let task = &self.tasks[&task_id];
        let key: Key = task.spec.required_capability.clone();
        let priority = task.spec.priority;
        let preferred = match task.state {
            TaskState::Assigned { agent }
                if self.idle.contains(agent) && self.serves(agent, &key) =>
            {
                Some(agent)
            }
            _ => None,
        };
        if self.runs.len() < self.run_limit() {
            if let Some(agent) = preferred.or_else(|| self.idle.best(&key)) {
                return Begin::Run(Box::new(self.start_run(task_id, agent, now)));
            }
        }
        if !self.healthy.any(&key) {
            let what = match &key {
                Some(c) => format!("no healthy agent has capability `{c}`"),
                None => "no healthy agent is registered".to_owned(),
            };
            return Begin::Refused(SwarmError::ResourceConflict(format!(
                "cannot run task {task_id}: {what} ({} agents registered)",
                self.agents.len()
            )));
        }
        let (id, rx) = self.waiters.push(task_id, key, priority);
        Begin::Wait { id, rx }
    }

    /// Why `task` (unfinished, with no run) may not start now, if it may not: it had all its
    /// runs (it is failed), or it is speculative while speculative work is paused.
    fn runnable(&mut self, task_id: TaskId, now: Instant) -> Option<Begin> {
        let task = &self.tasks[&task_id];
        if task.attempts >= self.config.max_attempts_per_task {
            let reason = format!(
                "gave up after {} runs; last error: {}",
                task.attempts,
                task.last_error.as_deref().unwrap_or("none")
            );
            self.fail_task(task_id, reason.clone(), now);
            return Some(Begin::Settled(Err(SwarmError::TaskFailed {
                task: task_id,
                reason,
            })));
        }
        if task.spec.speculative && self.level.pauses(Feature::SpeculativeWork) {
            // Deferred, not dropped: the caller waits for the level to change.
            return Some(Begin::Deferred(std::sync::Arc::clone(&self.level_changed)));
        }
        None
    }

    /// Whether `agent` has what `key` asks for.
    fn serves(&self, agent: AgentId, key: &Key) -> bool {
        key.as_ref().is_none_or(|c| {
            self.agents
                .get(&agent)
                .is_some_and(|a| a.capabilities.contains(c))
        })
    }

    /// Start a run of `task` on idle `agent`.
    fn start_run(&mut self, task_id: TaskId, agent_id: AgentId, now: Instant) -> RunTicket {
        let agent = self
            .agents
            .get_mut(&agent_id)
            .expect("an idle agent exists");
        agent.current_task = Some(task_id);
        self.set_status(agent_id, AgentStatus::Busy);
        let agent = self.agents[&agent_id].clone();
        self.heartbeats.insert(agent_id, now);
        let task = self.tasks.get_mut(&task_id).expect("the task exists");
        task.attempts += 1;
        task.last_agent = Some(agent_id);
        task.state = TaskState::Running {
            agent: agent_id,
            attempt: task.attempts,
        };
        let ticket = RunTicket {
            task: task.clone(),
            agent,
            attempt: task.attempts,
            epoch: self.epoch,
            cancel: CancellationToken::new(),
        };
        self.runs.insert(
            task_id,
            Run {
                attempt: ticket.attempt,
                epoch: ticket.epoch,
                agent: agent_id,
                cancel: ticket.cancel.clone(),
                interrupted: None,
            },
        );
        self.stats.runs_started += 1;
        // Other callers of the task stop waiting for an agent: they join this run.
        self.wake_waiters_of(task_id);
        ticket
    }

    /// Tell every caller waiting for an agent for `task` to ask again (the task started, or
    /// finished).
    fn wake_waiters_of(&mut self, task: TaskId) {
        for id in self.waiters.of_task(task) {
            if let Some(w) = self.waiters.remove(id) {
                let _ = w.tx.send(Wake::Again);
            }
        }
    }

    /// Undo a run that was started for a caller who is gone before it began: as if it never
    /// started.
    fn unstart(&mut self, ticket: &RunTicket) {
        let id = ticket.task.id;
        self.runs.remove(&id);
        self.stats.runs_started -= 1;
        if let Some(t) = self.tasks.get_mut(&id) {
            t.attempts = ticket.task.attempts - 1;
            t.state = TaskState::Pending;
        }
        self.free_agent(ticket.agent.id, id, None);
    }

    /// Start runs for waiting callers while the run limit allows and an agent can serve one:
    /// the best waiter first (priority, then age), each on the most trusted idle agent it can
    /// use. Each step looks at the capability classes, not at every agent or waiter.
    pub(crate) fn dispatch(&mut self, now: Instant) {
        while self.runs.len() < self.run_limit() {
            let idle = &self.idle;
            let Some(id) = self.waiters.first_served(|key| idle.best(key).is_some()) else {
                return;
            };
            let waiter = self.waiters.remove(id).expect("just found");
            if waiter.tx.is_closed() {
                continue;
            }
            let task = waiter.task;
            let ready = self
                .tasks
                .get(&task)
                .is_some_and(|t| !t.state.is_terminal() && !self.runs.contains_key(&task))
                && self.runnable_quietly(task);
            if !ready {
                let _ = waiter.tx.send(Wake::Again);
                continue;
            }
            let agent = self
                .idle
                .best(&waiter.key)
                .expect("the key has an idle agent");
            let ticket = self.start_run(task, agent, now);
            if let Err(Wake::Run(ticket)) = waiter.tx.send(Wake::Run(Box::new(ticket))) {
                // The caller left between the check and the send.
                self.unstart(&ticket);
            }
        }
    }

    /// [`runnable`](Self::runnable) without failing the task: whether a waiter's task may start.
    fn runnable_quietly(&self, task: TaskId) -> bool {
        self.tasks.get(&task).is_some_and(|t| {
            t.attempts < self.config.max_attempts_per_task
                && !(t.spec.speculative && self.level.pauses(Feature::SpeculativeWork))
        })
    }

    /// A waiting caller stops waiting (its deadline passed, or it left). Returns the run it was
    /// handed meanwhile, if one was: the caller either carries it out or gives it back with
    /// [`abandon`](Self::abandon).
    pub(crate) fn cancel_wait(
        &mut self,
        id: WaiterId,
        rx: &mut tokio::sync::oneshot::Receiver<Wake>,
    ) -> Option<RunTicket> {
        self.waiters.remove(id);
        match rx.try_recv() {
            Ok(Wake::Run(ticket)) => Some(*ticket),
            _ => None,
        }
    }

    /// The caller of a run left before it ended: the run ends as if told to stop.
    pub(crate) fn abandon(&mut self, run: RunId, now: Instant) -> Finished {
        if let Some(r) = self.runs.get_mut(&run.task) {
            if r.attempt == run.attempt && r.interrupted.is_none() {
                r.interrupted = Some(Interruption::CallerLeft);
            }
        }
        self.finish_run(run, RunOutcome::Cancelled, now)
    }

    /// Tell the run of `task` to stop; its task goes back to waiting (unless it is finished).
    pub(crate) fn interrupt_run(&mut self, task: TaskId, why: Interruption) {
        let Some(run) = self.runs.get_mut(&task) else {
            return;
        };
        if run.interrupted.is_none() {
            run.interrupted = Some(why);
        }
        run.cancel.cancel();
        if let Some(t) = self.tasks.get_mut(&task) {
            if matches!(t.state, TaskState::Running { .. }) {
                t.state = TaskState::Pending;
            }
        }
    }

    /// A run ended with `outcome` at `now`: apply it if the run is current (its fencing token
    /// matches and nothing told it to stop), else discard it; free its agent (the end counts as
    /// a heartbeat); start what the freed agent and slot let start.
    pub(crate) fn finish_run(&mut self, run: RunId, outcome: RunOutcome, now: Instant) -> Finished {
        let watchers = self.watchers.remove(&run.task);
        let current = match self.runs.get(&run.task) {
            Some(r) if r.attempt == run.attempt && r.epoch == run.epoch => {
                self.runs.remove(&run.task)
            }
            _ => None,
        };
        let Some(r) = current else {
            // Already ended (given back, or ended twice): nothing of it is left.
            return Finished {
                end: RunEnd::Discarded(SwarmError::CommunicationError(format!(
                    "run {} of task {} had already ended",
                    run.attempt, run.task
                ))),
                watchers,
            };
        };
        let agent = r.agent;
        let fresh = r.interrupted.is_none()
            && r.epoch == self.epoch
            && self.tasks.get(&run.task).is_some_and(|t| {
                t.state
                    == TaskState::Running {
                        agent,
                        attempt: run.attempt,
                    }
            });
        let end = if fresh {
            RunEnd::Applied(self.apply(run, agent, outcome, now))
        } else {
            if let Some(t) = self.tasks.get_mut(&run.task) {
                if t.state
                    == (TaskState::Running {
                        agent,
                        attempt: run.attempt,
                    })
                {
                    t.state = TaskState::Pending;
                }
            }
            let why = r.interrupted.map_or(
                "the coordinator was restored while it ran".to_owned(),
                |i| i.to_string(),
            );
            RunEnd::Discarded(self.discarded(run, &why, now))
        };
        self.free_agent(agent, run.task, Some(now));
        self.dispatch(now);
        Finished { end, watchers }
    }

    /// The run of `task` on `agent` is over: the agent runs nothing (and, if it was busy, is
    /// idle, with the end as a heartbeat at `now`).
    fn free_agent(&mut self, agent: AgentId, task: TaskId, now: Option<Instant>) {
        let Some(a) = self.agents.get_mut(&agent) else {
            return;
        };
        if a.current_task != Some(task) {
            return;
        }
        a.current_task = None;
        if a.status == AgentStatus::Busy {
            if let Some(now) = now {
                self.heartbeats.insert(agent, now);
            }
            self.set_status(agent, AgentStatus::Idle);
        } else {
            self.refresh_idle(agent);
        }
    }

    /// Count and describe a discarded result.
    fn discarded(&mut self, run: RunId, why: &str, now: Instant) -> SwarmError {
        self.stats.stale_results_discarded += 1;
        self.event(
            SwarmEventKind::StaleResultDiscarded {
                task: run.task,
                attempt: run.attempt,
            },
            now,
        );
        tracing::warn!(
            target: "swarm_integration::coordinator",
            task = %run.task, attempt = run.attempt, why,
            "discarded the result of a superseded run"
        );
        SwarmError::CommunicationError(format!(
            "run {} of task {} was interrupted and its result discarded: {why}",
            run.attempt, run.task
        ))
    }

    /// Apply a current run's outcome to its task and agent.
    fn apply(
        &mut self,
        run: RunId,
        agent: AgentId,
        outcome: RunOutcome,
        now: Instant,
    ) -> Result<Vec<u8>, SwarmError> {
        let result = match outcome {
            RunOutcome::Output(output) => Ok(output),
            RunOutcome::Error(e) => Err(e),
            RunOutcome::TimedOut(limit) => Err(SwarmError::CoordinationTimeout(format!(
                "task {} ran longer than {limit:?} on agent {agent}",
                run.task
            ))),
            RunOutcome::Cancelled => Err(SwarmError::CommunicationError(format!(
                "run {} of task {} was cancelled",
                run.attempt, run.task
            ))),
        };
        let succeeded = result.is_ok();
        if let Some(a) = self.agents.get_mut(&agent) {
            if succeeded {
                a.completed += 1;
            } else {
                a.failures += 1;
            }
        }
        if let Some(t) = self.trust.get_mut(&agent) {
            *t = if succeeded {
                (*t + TRUST_REWARD).min(1.0)
            } else {
                (*t - TRUST_PENALTY).max(0.0)
            };
        }
        let task = self
            .tasks
            .get_mut(&run.task)
            .expect("a current run's task exists");
        match &result {
            Ok(output) => {
                task.state = TaskState::Completed {
                    agent,
                    output: output.clone(),
                };
                self.stats.unfinished -= 1;
                self.stats.completed += 1;
                self.event(SwarmEventKind::TaskCompleted(run.task), now);
                self.wake_waiters_of(run.task);
                self.retain_finished(run.task, now);
            }
            Err(e) => {
                task.last_error = Some(e.to_string());
                task.state = TaskState::Pending;
                if !e.is_recoverable() {
                    self.fail_task(run.task, format!("not recoverable: {e}"), now);
                }
            }
        }
        result
    }

    /// Give up on `task` for good with `reason`: its run (if any) is told to stop and frees its
    /// agent when it ends, its waiting callers are told to look again. Returns whether it was
    /// unfinished.
    pub(crate) fn fail_task(&mut self, task: TaskId, reason: String, now: Instant) -> bool {
        let Some(t) = self.tasks.get_mut(&task) else {
            return false;
        };
        if t.state.is_terminal() {
            return false;
        }
        t.state = TaskState::Failed { reason };
        self.stats.unfinished -= 1;
        self.stats.failed += 1;
        if let Some(run) = self.runs.get_mut(&task) {
            if run.interrupted.is_none() {
                run.interrupted = Some(Interruption::TaskFailed);
            }
            run.cancel.cancel();
        }
        self.wake_waiters_of(task);
        self.event(SwarmEventKind::TaskFailed(task), now);
        self.retain_finished(task, now);
        true
    }

    /// The notifier of callers waiting for `task`'s run, taken (for the shell to wake them).
    pub(crate) fn take_watchers(
        &mut self,
        task: TaskId,
    ) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        self.watchers.remove(&task)
    }

    /// Move work off agents that cannot run it (see [`Reallocate`]): moved tasks go back to
    /// waiting, a running one's run told to stop. Returns how many moved.
    pub(crate) fn reallocate(&mut self, which: Reallocate, now: Instant) -> usize {
        let unhealthy = |state: &SwarmState, a: AgentId| {
            state
                .agents
                .get(&a)
                .is_none_or(|a| matches!(a.status, AgentStatus::Failed | AgentStatus::Quarantined))
        };
        let mut moving: Vec<(TaskId, AgentId, bool)> = Vec::new();
        let consider = |state: &SwarmState, t: &TaskInfo| {
            let (holder, running) = match t.state {
                TaskState::Assigned { agent } => (agent, false),
                TaskState::Running { agent, .. } => (agent, true),
                _ => return None,
            };
            let chosen = match which {
                Reallocate::FromAgent(a) => holder == a && (!running || unhealthy(state, a)),
                Reallocate::Task(_) | Reallocate::Unhealthy => unhealthy(state, holder),
            };
            chosen.then_some((t.id, holder, running))
        };
        match which {
            Reallocate::Task(id) => {
                if let Some(m) = self.tasks.get(&id).and_then(|t| consider(self, t)) {
                    moving.push(m);
                }
            }
            _ => {
                for t in self.tasks.values() {
                    if let Some(m) = consider(self, t) {
                        moving.push(m);
                    }
                }
            }
        }
        for &(task, from, running) in &moving {
            if running {
                self.interrupt_run(task, super::Interruption::Reallocated);
            } else if let Some(t) = self.tasks.get_mut(&task) {
                t.state = TaskState::Pending;
            }
            self.event(SwarmEventKind::TaskReassigned { task, from }, now);
        }
        self.stats.tasks_reallocated += moving.len() as u64;
        moving.len()
    }
}
