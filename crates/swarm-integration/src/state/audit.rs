//! The invariants, checked against the tables.

use std::collections::HashMap;

use recovery_core::{AgentId, TaskId};

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
    /// - Memory within limits: finished tasks in the table at most `finished_retention`, events
    ///   at most `recent_events`, outcomes at most `outcome_log`, waiters at most the unfinished
    ///   tasks times the callers of each (here: checked against the unfinished tasks, as each
    ///   caller waits for one task).
    pub(crate) fn audit(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut holders: HashMap<TaskId, Vec<AgentId>> = HashMap::new();
        for a in self.agents.values() {
            if let Some(t) = a.current_task {
                holders.entry(t).or_default().push(a.id);
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
            let should_idle = a.status == AgentStatus::Idle && a.current_task.is_none();
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
        for (task, agents) in &holders {
            if agents.len() > 1 {
                problems.push(format!("task {task} runs on {} agents", agents.len()));
            }
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
        let mut unfinished = 0u64;
        let mut finished = 0usize;
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
        let s = &self.stats;
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
        if finished > self.config.finished_retention {
            problems.push(format!(
                "{finished} finished tasks kept, finished_retention is {}",
                self.config.finished_retention
            ));
        }
        if finished != self.finished.len() {
            problems.push(format!(
                "{finished} finished tasks in the table, {} in the retention queue",
                self.finished.len()
            ));
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
