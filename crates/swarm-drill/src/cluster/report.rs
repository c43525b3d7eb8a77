//! What the multi-instance drill found, checked in the database at the end.

use std::fmt::Write;
use std::time::Duration;

/// The multi-instance drill's findings.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ClusterReport {
    /// Instance processes.
    pub instances: usize,
    /// Tasks submitted.
    pub tasks: u64,
    /// Completed (one applied completion each).
    pub completed: u64,
    /// Failed for good.
    pub failed: u64,
    /// Neither completed nor failed at the end.
    pub lost: u64,
    /// Tasks with more than one applied completion (must be 0).
    pub completed_twice: u64,
    /// Wall time from the first submission to the last task's end.
    pub elapsed: Duration,
    /// SIGKILLs.
    pub kills: u64,
    /// The longest a killed instance's tasks took to be taken over.
    pub worst_kill_handover: Duration,
    /// The limit for that.
    pub kill_handover_limit: Duration,
    /// How long the instance was paused, if it was.
    pub paused_for: Option<Duration>,
    /// How long its tasks took to be taken over.
    pub pause_handover: Option<Duration>,
    /// The limit for that: lease TTL + renew interval.
    pub pause_handover_limit: Duration,
    /// Tasks the paused instance held when it was stopped.
    pub paused_held: u64,
    /// The paused instance's writes the fence refused.
    pub paused_refused: u64,
    /// Completions the paused instance applied, after it woke, for tasks it held when it was
    /// stopped (must be 0: they were taken over).
    pub paused_applied_late: u64,
    /// Writes the fence refused, over every instance.
    pub refused: u64,
    /// Recovery rounds written.
    pub recovery_rounds: u64,
    /// Rounds written by an older epoch after a newer one (must be 0).
    pub rounds_out_of_order: u64,
    /// Restarted instances that restored their agents from the shared store.
    pub restored: u64,
}

impl ClusterReport {
    /// Whether every promise held.
    pub fn passed(&self) -> bool {
        self.lost == 0
            && self.completed_twice == 0
            && self.completed + self.failed == self.tasks
            && self.worst_kill_handover <= self.kill_handover_limit
            && self.paused_applied_late == 0
            && self.rounds_out_of_order == 0
            && self
                .pause_handover
                .is_none_or(|d| d <= self.pause_handover_limit)
            && self
                .paused_for
                .is_none_or(|_| self.pause_handover.is_some())
    }

    /// The report, one finding per line.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
        let _ = writeln!(
            s,
            "multi-instance drill: {} instance processes on PostgreSQL",
            self.instances
        );
        let _ = writeln!(
            s,
            "  tasks        {} submitted, {} completed, {} failed, {} lost; completed twice: {}",
            self.tasks, self.completed, self.failed, self.lost, self.completed_twice
        );
        let _ = writeln!(
            s,
            "  throughput   {:.0} tasks/s over {}",
            self.tasks as f64 / self.elapsed.as_secs_f64().max(1e-9),
            secs(self.elapsed)
        );
        let _ = writeln!(
            s,
            "  SIGKILL      {} kills, worst hand-over {} (limit {}); {} restarts restored their agents",
            self.kills,
            secs(self.worst_kill_handover),
            secs(self.kill_handover_limit),
            self.restored
        );
        match (self.paused_for, self.pause_handover) {
            (Some(p), Some(h)) => {
                let _ = writeln!(
                    s,
                    "  SIGSTOP      paused {} holding {} tasks: hand-over {} (limit {} = TTL + renew); \
                     after it woke the fence refused {} of its writes, {} applied late",
                    secs(p),
                    self.paused_held,
                    secs(h),
                    secs(self.pause_handover_limit),
                    self.paused_refused,
                    self.paused_applied_late
                );
            }
            (Some(p), None) => {
                let _ = writeln!(
                    s,
                    "  SIGSTOP      paused {}: its tasks were not taken over",
                    secs(p)
                );
            }
            _ => {
                let _ = writeln!(s, "  SIGSTOP      none");
            }
        }
        let _ = writeln!(
            s,
            "  fence        {} stale writes refused in all; {} recovery rounds, {} written out of epoch order",
            self.refused, self.recovery_rounds, self.rounds_out_of_order
        );
        s
    }

    /// The closing line.
    pub fn last_line(&self) -> String {
        if self.passed() {
            format!(
                "drill: passed: {} tasks over {} instances, each completed once, none lost",
                self.tasks, self.instances
            )
        } else {
            "drill: FAILED: a promise of the shared swarm did not hold (see above)".to_owned()
        }
    }
}
