//! Running a task with recovery: run it, hand each failure to the recovery manager, and stop
//! when it completed, failed for good, or had what it may have.

use recovery_core::{AgentId, SwarmError, SwarmResult, TaskId};
use recovery_manager::RecoveryRequest;
use tokio::time::Instant;

use crate::coordinator::SwarmCoordinator;
use crate::journal::{NoJournal, PriorRecovery, RecoveryJournal};
use crate::model::TaskState;
use crate::state::settled;

impl SwarmCoordinator {
    /// Run a task, recovering through the manager until it completes, the error is not
    /// recoverable, the strategies give up, or the task has had its re-runs, its rounds or its
    /// time; then the task is failed with a reason that says what was tried.
    ///
    /// - A re-run is a retry, whoever makes it: the backoff strategy (through `Retry`), or this
    ///   loop after a recovery that fixed the task's surroundings (a restart, a restore). They
    ///   are counted together against one limit, the registered backoff strategy's
    ///   `max_retries` (without one, `max_attempts_per_task - 1`), so with `max_retries = 5` a
    ///   task that always fails runs at most six times.
    /// - Only an effect is progress: a recovery that changed nothing
    ///   ([`RecoveryResult::no_change`](recovery_core::RecoveryResult::no_change)) or failed
    ///   ends the loop.
    /// - At most `max_recovery_rounds` rounds and `recovery_time_limit_secs` in all: a run or a
    ///   wait for one still going at the deadline is stopped, and the manager is given the same
    ///   deadline (it stops a strategy still at work then), so every call returns within the
    ///   limit.
    /// - A second caller of a task that is running waits for that run's end instead of
    ///   failing or recovering; "already running" is never an error a strategy sees.
    /// - A speculative task while the level pauses speculative work returns `Overloaded` and
    ///   stays accepted (it is not failed).
    ///
    /// # Errors
    ///
    /// `TaskFailed` with the reason once the task has failed for good; `TaskNotFound`;
    /// `Overloaded` for deferred speculative work.
    pub async fn execute_task_with_recovery(&self, task_id: TaskId) -> SwarmResult<Vec<u8>> {
        self.execute_task_with_journal(task_id, &PriorRecovery::default(), &NoJournal)
            .await
    }

    /// [`execute_task_with_recovery`](Self::execute_task_with_recovery), carrying on from what
    /// earlier holders of the task did (`prior`: their re-runs count against the same limit,
    /// their rounds are in the reason when it gives up), and telling `journal` about every
    /// round. An error from the journal stops the loop and is returned as is.
    ///
    /// # Errors
    ///
    /// As `execute_task_with_recovery`, and the journal's.
    pub async fn execute_task_with_journal(
        &self,
        task_id: TaskId,
        prior: &PriorRecovery,
        journal: &dyn RecoveryJournal,
    ) -> SwarmResult<Vec<u8>> {
        let _interest = self.interest(task_id);
        let config = self.config();
        let limit = self.retry_limit();
        let deadline = Instant::now() + config.recovery_time_limit();
        // Re-runs are counted from the task's runs: whoever started them, each is one.
        let runs_before = self.runs_of(task_id)?;
        let mut tried: Vec<String> = prior.tried.clone();
        let mut last_error = None;
        for round in 0..config.max_recovery_rounds {
            let Ok(run) = tokio::time::timeout_at(deadline, self.execute_task(task_id)).await
            else {
                let reason = format!(
                    "out of time (recovery_time_limit_secs {}) while waiting for a run, after {} round(s) ({})",
                    config.recovery_time_limit_secs,
                    tried.len(),
                    tried.join("; ")
                );
                return self.give_up(task_id, reason);
            };
            let error = match run {
                Ok(output) => return Ok(output),
                Err(e @ (SwarmError::TaskFailed { .. } | SwarmError::TaskNotFound(_))) => {
                    return Err(e);
                }
                Err(e) => e,
            };
            if !error.is_recoverable() {
                // The manager records it and says manual intervention is required; the task
                // failed for good when its run ended.
                let result = self
                    .recover_from_error(error.clone(), Some(task_id), self.last_agent_of(task_id))
                    .await;
                let action = result.map_or_else(|e| e.to_string(), |r| r.action_taken);
                return self.give_up(task_id, format!("not recoverable: {error} ({action})"));
            }
            if let Some(outcome) = self.task(task_id).as_ref().and_then(settled) {
                return outcome;
            }
            if matches!(error, SwarmError::Overloaded { .. }) && self.is_deferred(task_id) {
                return Err(error);
            }
            let retries = prior.retries + self.retries_since(task_id, runs_before);
            journal
                .before_round(task_id, round, &error, retries)
                .await?;
            let request = RecoveryRequest::new(self.arc(), error.clone())
                .with_task(task_id)
                .with_agent(self.last_agent_of(task_id))
                .with_retry_count(retries)
                .with_deadline(deadline);
            let result = match self.recovery_manager.recover_with(request).await {
                Ok(result) => result,
                Err(e) => {
                    tried.push(format!("{} -> {e}", error.kind()));
                    last_error = Some(error);
                    break;
                }
            };
            let retries = prior.retries + self.retries_since(task_id, runs_before);
            journal
                .after_round(task_id, round, &result, retries)
                .await?;
            tried.push(format!("{} -> {}", error.kind(), result.action));
            if let Some(outcome) = self.task(task_id).as_ref().and_then(settled) {
                return outcome;
            }
            let why = if !result.success {
                Some("recovery gave up")
            } else if retries >= limit {
                Some("no re-run left")
            } else if Instant::now() >= deadline {
                Some("out of time")
            } else {
                None
            };
            if let Some(why) = why {
                let reason = format!(
                    "{why} after {} round(s) and {retries} of {limit} re-runs ({}); last error: {error}",
                    tried.len(),
                    tried.join("; ")
                );
                return self.give_up(task_id, reason);
            }
            last_error = Some(error);
            // The recovery fixed what was around the task; running it again is a retry.
        }
        let reason = format!(
            "gave up after {} round(s) (max_recovery_rounds {}, recovery_time_limit_secs {}): {}; last error: {}",
            tried.len(),
            config.max_recovery_rounds,
            config.recovery_time_limit_secs,
            tried.join("; "),
            last_error.map_or("none".to_owned(), |e| e.to_string())
        );
        self.give_up(task_id, reason)
    }

    /// Fail `task` with `reason` and return what its callers get: if another caller's run
    /// settled the task first, that outcome (every caller of a task gets the same answer).
    fn give_up(&self, task: TaskId, reason: String) -> SwarmResult<Vec<u8>> {
        self.fail_task(task, reason.clone());
        match self.task(task).as_ref().and_then(settled) {
            Some(outcome) => outcome,
            None => Err(SwarmError::TaskFailed { task, reason }),
        }
    }

    /// Whether `task` is speculative work the level holds back.
    fn is_deferred(&self, task: TaskId) -> bool {
        self.read(|s| {
            s.tasks
                .get(&task)
                .is_some_and(|t| t.spec.speculative && !t.state.is_terminal())
                && s.level()
                    .pauses(recovery_degradation::Feature::SpeculativeWork)
        })
    }

    /// How many re-runs a failure of a task gets: the backoff strategy's `max_retries`, or
    /// without one `max_attempts_per_task - 1`.
    fn retry_limit(&self) -> u32 {
        self.recovery_manager.backoff_strategy().map_or_else(
            || self.read(|s| s.config.max_attempts_per_task.saturating_sub(1)),
            |b| b.config().max_retries,
        )
    }

    /// The runs `task` has had.
    fn runs_of(&self, task: TaskId) -> SwarmResult<u32> {
        self.read(|s| s.tasks.get(&task).map(|t| t.attempts))
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

    /// The agent `task` runs on, prefers, or last ran on.
    pub(crate) fn last_agent_of(&self, task: TaskId) -> Option<AgentId> {
        self.read(|s| {
            let info = s.tasks.get(&task)?;
            match info.state {
                TaskState::Assigned { agent } | TaskState::Running { agent, .. } => Some(agent),
                _ => info.last_agent,
            }
        })
    }
}
