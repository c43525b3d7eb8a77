//! Running a task once: wait for an agent and a run slot (or join a run already in flight),
//! carry the run out under the task timeout, and hand its end back to the state.

use std::pin::pin;

use recovery_core::{AgentId, SwarmError, SwarmResult, TaskId};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::coordinator::SwarmCoordinator;
use crate::executor::{Heartbeats, Probe, RunContext};

/// How long the probe of an agent whose run lost its connection may take; no answer in that
/// time decides nothing.
const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);
use crate::state::{Begin, RunEnd, RunId, RunOutcome, RunTicket, WaiterId, Wake};

/// Gives a queued caller's place back if its future is dropped while it waits, and a run it
/// was handed meanwhile.
struct WaitGuard<'a> {
    coordinator: &'a SwarmCoordinator,
    id: WaiterId,
    rx: oneshot::Receiver<Wake>,
    armed: bool,
}

impl WaitGuard<'_> {
    /// Stop waiting; the run handed over meanwhile, if any.
    fn cancel(&mut self) -> Option<RunTicket> {
        self.armed = false;
        let (id, rx) = (self.id, &mut self.rx);
        self.coordinator.transition(|s, _| s.cancel_wait(id, rx))
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some(ticket) = self.cancel() {
                self.coordinator.give_back(ticket.id());
            }
        }
    }
}

/// Ends a run whose caller's future was dropped before it finished, so the task is not left
/// running.
struct RunGuard<'a> {
    coordinator: &'a SwarmCoordinator,
    run: RunId,
    armed: bool,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.coordinator.give_back(self.run);
        }
    }
}

/// A caller waiting for a task's outcome: while it lives, the task stays in the table (even
/// finished, past the retention), so the caller finds its outcome.
pub(crate) struct Interest<'a> {
    coordinator: &'a SwarmCoordinator,
    task: TaskId,
}

impl Drop for Interest<'_> {
    fn drop(&mut self) {
        let task = self.task;
        self.coordinator.transition(|s, _| s.leave(task));
    }
}

/// Heartbeats reported by a run, recorded in the coordinator.
struct Beats<'a>(&'a SwarmCoordinator);

impl Heartbeats for Beats<'_> {
    fn beat(&self, agent: AgentId) {
        let _ = self.0.heartbeat(agent);
    }
}

impl SwarmCoordinator {
    /// Run a task once on a capable idle agent (waiting up to `task_timeout_secs` for one, and
    /// for a free run slot), under the task timeout. A finished task returns its outcome again
    /// without running. If another caller's run of the task is in flight, this call waits for
    /// it and then looks again: it returns that run's output if it completed the task, and runs
    /// the task itself if it did not.
    ///
    /// # Errors
    ///
    /// The executor's error (the task then waits for another run, or fails for good if the
    /// error is not recoverable); `CoordinationTimeout` past `task_timeout_secs`, or when no
    /// capable agent became free in that time; `ResourceConflict` when no healthy agent has the
    /// capability the task needs; `CommunicationError` when the run was interrupted (its agent
    /// failed or left, the task was moved, the coordinator was restored) and its result
    /// discarded; `Overloaded` when the task is speculative and the level pauses speculative
    /// work (the task stays accepted); `TaskFailed` once the task has failed for good;
    /// `TaskNotFound`.
    pub async fn execute_task(&self, task_id: TaskId) -> SwarmResult<Vec<u8>> {
        let _interest = self.interest(task_id);
        let wait_limit = self.read(|s| s.config.task_timeout());
        let deadline = Instant::now() + wait_limit;
        loop {
            match self.transition(|s, now| s.begin(task_id, now)) {
                Begin::Run(ticket) => return self.carry_out(*ticket).await,
                Begin::Settled(outcome) => return outcome,
                Begin::Refused(error) => return Err(error),
                Begin::Join(notify) => {
                    let notified = pin!(notify.notified());
                    let mut notified = notified;
                    notified.as_mut().enable();
                    // Enabled before looking again: an end after the look wakes this caller.
                    if self.read(|s| s.runs.contains_key(&task_id)) {
                        let _ = tokio::time::timeout(wait_limit, notified).await;
                    }
                }
                Begin::Deferred(notify) => {
                    let notified = pin!(notify.notified());
                    let mut notified = notified;
                    notified.as_mut().enable();
                    let paused = self.read(|s| {
                        s.tasks.get(&task_id).is_some_and(|t| t.spec.speculative)
                            && s.level()
                                .pauses(recovery_degradation::Feature::SpeculativeWork)
                    });
                    if paused && tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Err(SwarmError::Overloaded {
                            reason: format!(
                                "degradation level {} pauses speculative work; task {task_id} stays accepted and waits",
                                self.level()
                            ),
                            retry_after: wait_limit,
                        });
                    }
                }
                Begin::Wait { id, rx } => {
                    let mut guard = WaitGuard {
                        coordinator: self,
                        id,
                        rx,
                        armed: true,
                    };
                    match tokio::time::timeout_at(deadline, &mut guard.rx).await {
                        Ok(Ok(Wake::Run(ticket))) => {
                            guard.armed = false;
                            return self.carry_out(*ticket).await;
                        }
                        Ok(Ok(Wake::Again) | Err(_)) => guard.armed = false,
                        Err(_) => {
                            if let Some(ticket) = guard.cancel() {
                                return self.carry_out(ticket).await;
                            }
                            return Err(SwarmError::CoordinationTimeout(format!(
                                "no capable agent became free for task {task_id} within {wait_limit:?}"
                            )));
                        }
                    }
                }
            }
        }
    }

    /// Keep `task` in the table for this caller until the returned guard drops.
    pub(crate) fn interest(&self, task: TaskId) -> Interest<'_> {
        self.transition(|s, _| s.enter(task));
        Interest {
            coordinator: self,
            task,
        }
    }

    /// Carry out a run the state started: the executor's call under the task timeout, stopped
    /// early if the run is told to stop, then its end handed back. A run that ends with a
    /// `CommunicationError` has its agent probed ([`AgentExecutor::probe`](crate::AgentExecutor::probe),
    /// at most 5 s) before the agent is free again: one that is dead is declared failed (its
    /// next heartbeat revives it), so that a crashed agent does not take and fail every task
    /// dispatched to it until its heartbeats time out.
    async fn carry_out(&self, ticket: RunTicket) -> SwarmResult<Vec<u8>> {
        let mut guard = RunGuard {
            coordinator: self,
            run: ticket.id(),
            armed: true,
        };
        let timeout = self.read(|s| s.config.task_timeout());
        let beats = Beats(self);
        let context = RunContext {
            agent: &ticket.agent,
            task: &ticket.task,
            heartbeats: &beats,
        };
        let permit = self.breaker_permit(ticket.agent.id);
        let started = self.breaker_clock();
        let outcome = tokio::select! {
            biased;
            () = ticket.cancel.cancelled() => RunOutcome::Cancelled,
            r = tokio::time::timeout(timeout, self.executor.execute_run(&context)) => match r {
                Ok(Ok(output)) => RunOutcome::Output(output),
                Ok(Err(e)) => RunOutcome::Error(e),
                Err(_) => RunOutcome::TimedOut(timeout),
            },
        };
        // A lost connection may be a dead agent, which would refuse every run dispatched to it
        // until its heartbeats time out: ask it before it takes another.
        let dead = matches!(
            outcome,
            RunOutcome::Error(SwarmError::CommunicationError(_))
        ) && matches!(
            tokio::time::timeout(PROBE_LIMIT, self.executor.probe(&ticket.agent)).await,
            Ok(Probe::Dead(_))
        );
        guard.armed = false;
        let agent = ticket.agent.id;
        let verdict = self.breaker_outcome(&outcome, started);
        let finished = self.transition(|s, now| {
            if dead {
                let _ = s.declare_agent_failed(agent, now);
            }
            s.finish_run(ticket.id(), outcome, now)
        });
        if let Some(w) = finished.watchers {
            w.notify_waiters();
        }
        self.breaker_record(agent, permit, verdict);
        match finished.end {
            RunEnd::Applied(result) => result,
            RunEnd::Discarded(error) => Err(error),
        }
    }

    /// A run's caller is gone: end the run as told to stop.
    fn give_back(&self, run: RunId) {
        let finished = self.transition(|s, now| s.abandon(run, now));
        if let Some(w) = finished.watchers {
            w.notify_waiters();
        }
    }
}
