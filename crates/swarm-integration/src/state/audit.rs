//! The invariants, checked against the tables.

use super::SwarmState;
use crate::model::{AgentStatus, TaskState};

impl SwarmState {
    /// Check every invariant; returns the broken ones, described (empty when all hold).
    ///
    /// - Each running task has exactly one run in flight, with its attempt and agent, and that
    ///   agent holds it; no task runs twice at once and no agent runs two tasks.
    /// - No agent is busy without a run, and every agent that runs something is busy, failed or
    ///   quarantined.
    /// - The idle pool holds exactly the idle agents that run nothing; the healthy counts agree.
    /// - No task lost: `submitted = completed + failed + unfinished`, and `unfinished` is the
    ///   number of unfinished tasks in the table.
    /// - No caller waits in the queue for a task that is running or finished (it would wait
    ///   for nothing, and find the outcome gone).
    /// - Memory within limits: finished tasks in the table at most `finished_retention` (plus
    ///   those kept for callers still waiting for their outcome), events
    ///   at most `recent_events`, outcomes at most `outcome_log`, waiters at most the unfinished
    ///   tasks times the callers of each (here: checked against the unfinished tasks, as each
    ///   caller waits for one task).
    pub(crate) fn audit(&self) -> Vec<String> {
        self.audit_scanning(true)
    }

    /// [`audit`](Self::audit), with the scans of every task in the table and every waiting
    /// caller only if `scan_tasks` (without it, the finished tasks are counted from the table's
    /// size and the counter).
    pub(crate) fn audit_scanning(&self, scan_tasks: bool) -> Vec<String> {
        let mut problems = Vec::new();
        // An agent holding a task must be the one its run is on, so no task is held twice.
        for a in self.agents.values() {
            if let Some(t) = a.current_task {
                match self.runs.get(&t) {
                    Some(run) if run.agent == a.id => {}
                    _ => problems.push(format!(
                        "agent {} holds task {t}, which has no run on it",
                        a.id
                    )),
                }
                if a.status == AgentStatus::Idle {
                    problems.push(format!("agent {} is idle but runs task {t}", a.id));
                }
            } else if a.status == AgentStatus::Busy {
                problems.push(format!("agent {} is busy with no run", a.id));
            }
            let should_idle = a.status == AgentStatus::Idle
                && a.current_task.is_none()
                && !self.ejected.contains(&a.id);
            if should_idle != self.idle.contains(a.id) {
                problems.push(format!(
                    "agent {} is {}in the idle pool but {:?} with {:?}",
                    a.id,
                    if should_idle { "not " } else { "" },
                    a.status,
                    a.current_task
                ));
            }
        }
        if self.idle.len() > self.agents.len() {
            problems.push(format!(
                "the idle pool holds {} agents, {} are registered",
                self.idle.len(),
                self.agents.len()
            ));
        }
        let healthy_now = self
            .agents
            .values()
            .filter(|a| Self::is_healthy(a.status))
            .count();
        if self.healthy.count(&None) != healthy_now {
            problems.push(format!(
                "healthy count {} but {healthy_now} agents are healthy",
                self.healthy.count(&None)
            ));
        }
        for (task, run) in &self.runs {
            match self.tasks.get(task) {
                None => problems.push(format!("run of task {task}, which is not in the table")),
                Some(t) => {
                    if let TaskState::Running { agent, attempt } = t.state {
                        if agent != run.agent || attempt != run.attempt {
                            problems.push(format!(
                                "task {task} runs attempt {attempt} on {agent}, its run is attempt {} on {}",
                                run.attempt, run.agent
                            ));
                        }
                    } else if run.interrupted.is_none() {
                        problems.push(format!(
                            "task {task} has a run in flight but is {:?}",
                            t.state
                        ));
                    }
                }
            }
        }
        let s = &self.stats;
        let (mut unfinished, mut finished) = (
            s.unfinished,
            self.tasks.len().saturating_sub(s.unfinished as usize),
        );
        if scan_tasks {
            (unfinished, finished) = (0, 0);
            for t in self.tasks.values() {
                if t.state.is_terminal() {
                    finished += 1;
                } else {
                    unfinished += 1;
                }
                if let TaskState::Running { .. } = t.state {
                    if !self.runs.contains_key(&t.id) {
                        problems.push(format!("task {} is running with no run in flight", t.id));
                    }
                }
            }
        }
        if unfinished != s.unfinished {
            problems.push(format!(
                "{unfinished} unfinished tasks in the table, the counter says {}",
                s.unfinished
            ));
        }
        if s.submitted != s.completed + s.failed + s.unfinished {
            problems.push(format!(
                "task lost: {} submitted, {} completed + {} failed + {} unfinished",
                s.submitted, s.completed, s.failed, s.unfinished
            ));
        }
        if finished > self.config.finished_retention + self.pinned.len() {
            problems.push(format!(
                "{finished} finished tasks kept, finished_retention is {} and {} stay for their callers",
                self.config.finished_retention,
                self.pinned.len()
            ));
        }
        if finished != self.finished.len() + self.pinned.len() {
            problems.push(format!(
                "{finished} finished tasks in the table, {} in the retention queue and {} kept for their callers",
                self.finished.len(),
                self.pinned.len()
            ));
        }
        for task in &self.pinned {
            if !self.callers.contains_key(task) {
                problems.push(format!("task {task} is kept for callers it does not have"));
            }
        }
        for task in self.waiters.tasks().filter(|_| scan_tasks) {
            match self.tasks.get(&task) {
                Some(t) if t.state.is_terminal() => problems.push(format!(
                    "a caller waits for an agent for task {task}, which is finished"
                )),
                Some(_) if self.runs.contains_key(&task) => problems.push(format!(
                    "a caller waits for an agent for task {task}, which is running"
                )),
                _ => {}
            }
        }
        if self.events.len() > self.config.recent_events {
            problems.push(format!(
                "{} events kept, recent_events is {}",
                self.events.len(),
                self.config.recent_events
            ));
        }
        if self.outcomes.len() > self.config.outcome_log {
            problems.push(format!(
                "{} outcomes kept, outcome_log is {}",
                self.outcomes.len(),
                self.config.outcome_log
            ));
        }
        for (task, run) in &self.runs {
            if let Some(a) = self.agents.get(&run.agent) {
                if a.current_task != Some(*task) {
                    problems.push(format!(
                        "task {task} runs on agent {}, which holds {:?}",
                        run.agent, a.current_task
                    ));
                }
            }
        }
        problems
    }
}
