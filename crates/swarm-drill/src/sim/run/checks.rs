//! The checks after every event, and the end of a run.

use super::*;

/// The coordinator's work per task: transitions over windows of submissions. A transition is
/// a short critical section, but one per waiting caller per completion (waking every waiter
/// whenever an agent frees up) is what made throughput collapse with the size of the swarm.
#[derive(Debug, Default)]
pub(super) struct Work {
    /// Submissions and transitions at the start of the window.
    mark: Option<(u64, u64)>,
}

/// Submissions (accepted or refused) per window.
const WORK_WINDOW: u64 = 1000;
/// Transitions per submission allowed over a window: a task takes about eight (submit, the
/// caller's interest, begin, finish, a retry's), and heartbeats and maintenance add about one.
const WORK_PER_TASK: u64 = 40;

impl Work {
    /// Check the window that ends at `submitted` submissions, accepted or refused (with
    /// `transitions` so far), if one does.
    pub(super) fn check(&mut self, submitted: u64, transitions: u64) -> Option<String> {
        let (s0, t0) = *self.mark.get_or_insert((submitted, transitions));
        if submitted < s0 + WORK_WINDOW {
            return None;
        }
        self.mark = Some((submitted, transitions));
        let per_task = transitions.saturating_sub(t0) / (submitted - s0);
        (per_task > WORK_PER_TASK).then(|| {
            format!(
                "the coordinator made {per_task} transitions per task over the last {} tasks (at most {WORK_PER_TASK})",
                submitted - s0
            )
        })
    }

    /// A new coordinator: its counters start over.
    pub(super) fn restart(&mut self) {
        self.mark = None;
    }
}

impl Sim {
    /// After every event: the coordinator's per-transition checks, and memory within limits.
    pub(super) fn check(&mut self) -> bool {
        let at = self.now();
        let mut problems = Vec::new();
        if let Some(v) = self.coordinator.first_violation() {
            problems.push(format!(
                "after transition {}: {}",
                v.transition,
                v.problems.join("; ")
            ));
        }
        let m = self.coordinator.recovery_manager();
        if m.history_len() > m.config().history_retention {
            problems.push(format!("the history holds {} attempts", m.history_len()));
        }
        if m.ledger_len() > 100_000 {
            problems.push(format!("the retry ledger holds {} tasks", m.ledger_len()));
        }
        let stats = self.coordinator.stats();
        if stats.unfinished > config(&self.options).max_pending_tasks as u64 {
            problems.push(format!("{} tasks unfinished", stats.unfinished));
        }
        // The resource monitor sees what the tables hold: degradation decides on it.
        let usage = m.resource_monitor().usage();
        let agents = stats.agents;
        if usage.active_connections != agents || usage.active_tasks != stats.running {
            problems.push(format!(
                "the monitor counts {} connections and {} active tasks; the coordinator has {agents} agents and {} runs",
                usage.active_connections, usage.active_tasks, stats.running
            ));
        }
        if let Some(p) = self.work.check(
            stats.submitted + stats.refused,
            self.coordinator.invariant_checks(),
        ) {
            problems.push(p);
        }
        self.invariant_checks += 1;
        let mut w = self.world.lock();
        if !problems.is_empty() {
            w.trace.violation(at, problems);
        }
        w.trace.stopped.is_none()
    }

    pub(super) async fn finish(mut self) -> SimReport {
        let stop = self.world.lock().trace.stopped.clone();
        let lost: Vec<u64> = self
            .clients
            .iter()
            .filter(|(_, c)| c.done.is_none())
            .map(|(id, _)| *id)
            .collect();
        for _ in 0..self.resubmits.len() {
            self.count("refused");
        }
        if stop.is_none() && !lost.is_empty() {
            let at = self.now();
            let mut problems = vec![format!("{} calls never returned", lost.len())];
            for client in lost.iter().take(3) {
                let c = &self.clients[client];
                let task = self.coordinator.task(c.task);
                problems.push(format!(
                    "client {client} ({} callers): task {} is {}",
                    c.live,
                    c.task,
                    task.map_or("gone".to_owned(), |t| format!(
                        "{:?} after {} runs, last error {:?}",
                        t.state, t.attempts, t.last_error
                    ))
                ));
            }
            self.world.lock().trace.violation(at, problems);
        }
        for c in self.clients.values_mut() {
            for h in c.callers.drain(..) {
                h.abort();
            }
        }
        self.statistics
            .push(self.coordinator.recovery_manager().statistics().await);
        self.count_breakers();
        self.invariant_checks += self.coordinator.invariant_checks();
        self.coordinator.recovery_manager().stop_monitoring();
        let now = Instant::now();
        self.levels.close(now);
        let w = self.world.lock();
        let mut report = SimReport::build(
            &self.options,
            self.now(),
            &self.counts,
            lost.len() as u64,
            &w,
            &self.levels,
            &self.statistics,
            self.invariant_checks,
            self.store
                .written
                .load(std::sync::atomic::Ordering::Relaxed),
            w.trace.stopped.clone().or(stop),
        );
        report.failed_by_reason = self.failed_by.clone();
        report.breakers = self.options.breakers.then_some(self.breakers);
        drop(w);
        self.sample();
        report.timeline = std::mem::take(&mut self.timeline);
        report
    }
}

/// Stops a run early, for `Stop` to be printed.
pub(crate) fn describe(stop: &Stop) -> String {
    match stop {
        Stop::Until(n) => format!("stopped before event {n}"),
        Stop::Violation {
            event,
            at,
            problems,
        } => format!(
            "invariant broken at event {event}, simulated time {:.3}s: {}",
            at.as_secs_f64(),
            problems.join("; ")
        ),
    }
}
