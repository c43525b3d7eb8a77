//! The drill's report: a table for people, JSON for programs, and the last line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use recovery_manager::RecoverySettings;
use serde::{Deserialize, Serialize};

use crate::FaultRates;
use crate::timeline::Timeline;

/// Recoveries of one strategy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrategyReport {
    /// Attempts.
    pub attempts: u64,
    /// Of which succeeded.
    pub successes: u64,
    /// Of which changed nothing (the strategy found nothing to do).
    #[serde(default)]
    pub no_change: u64,
    /// Median duration, milliseconds.
    pub p50_ms: f64,
    /// 99th-percentile duration, milliseconds.
    pub p99_ms: f64,
}

/// The options a drill ran with, as its report records them: enough to run it again
/// (`swarm-drill --agents A --tasks T --seed S --comm-error-rate ...`, and the settings as a
/// `--config` file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Agents registered.
    pub agents: usize,
    /// Tasks submitted.
    pub tasks: u64,
    /// The seed.
    pub seed: u64,
    /// The fault rates per run.
    pub rates: FaultRates,
    /// The duration limit, seconds.
    pub duration_limit_secs: f64,
    /// Tasks in flight at once.
    pub in_flight: usize,
    /// The coordinator's task timeout, seconds.
    pub task_timeout_secs: u64,
    /// The recovery settings (the manager's TOML file, as a table).
    pub settings: RecoverySettings,
}

/// Everything the drill measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The options it ran with.
    pub options: RunOptions,
    /// The seed of the fault plan.
    pub seed: u64,
    /// A digest of the fault plan (equal for equal seeds, task counts and rates).
    pub fault_plan_digest: String,
    /// Agents.
    pub agents: usize,
    /// Tasks the drill tried to submit.
    pub tasks: u64,
    /// Tasks accepted.
    pub submitted: u64,
    /// Tasks completed.
    pub completed: u64,
    /// Tasks failed for good.
    pub failed: u64,
    /// Failed tasks by reason (the first words of it).
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Submissions refused.
    pub refused: u64,
    /// Tasks never submitted because the duration limit passed first: must be 0.
    pub not_submitted: u64,
    /// Accepted tasks neither completed nor failed at the end: must be 0.
    pub lost: u64,
    /// Invariant violations the coordinator's audit found: must be empty.
    pub invariant_violations: Vec<String>,
    /// Faults injected, by kind.
    pub faults_injected: BTreeMap<String, u64>,
    /// Recovery attempts by strategy (over the manager's history window).
    pub recoveries: BTreeMap<String, StrategyReport>,
    /// Recovery attempts in all.
    pub recovery_attempts: u64,
    /// Of which succeeded.
    pub recovery_successes: u64,
    /// Checkpoints written.
    pub checkpoints_written: u64,
    /// Checkpoints the coordinator restored, counting a restore whose check then failed (a
    /// run changed the state meanwhile); `swarm_recovery_checkpoints_restored_total` counts only
    /// the restores that checked.
    pub checkpoints_restored: u64,
    /// Seconds spent at each degradation level.
    pub seconds_at_level: BTreeMap<String, f64>,
    /// Healing actions applied, by action.
    pub healing_actions: BTreeMap<String, u64>,
    /// Results of superseded runs discarded by fencing.
    pub stale_results_discarded: u64,
    /// Wall-clock time of the run.
    pub elapsed_secs: f64,
    /// Completed tasks per second.
    pub throughput: f64,
    /// Completed tasks per second of the fault-free baseline, when asked for.
    pub baseline_throughput: Option<f64>,
    /// The run over time, a sample every 100 ms (fewer for long runs).
    pub timeline: Timeline,
    /// What the agents' circuit breakers did, when the settings turn them on (`[breaker]`).
    pub breakers: Option<recovery_breaker::BreakerStats>,
}

impl Report {
    /// The share of recovery attempts that succeeded, in percent; `None` when there was none.
    pub fn recovery_success_percent(&self) -> Option<f64> {
        (self.recovery_attempts > 0)
            .then(|| self.recovery_successes as f64 * 100.0 / self.recovery_attempts as f64)
    }

    /// Whether the drill passed: every task submitted, nothing lost, no invariant broken.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.not_submitted == 0 && self.invariant_violations.is_empty()
    }

    /// The last line.
    pub fn last_line(&self) -> String {
        let recoveries = match self.recovery_success_percent() {
            Some(p) => format!("recoveries {} ({p:.1}% succeeded)", self.recovery_attempts),
            None => "no recoveries".to_owned(),
        };
        format!(
            "drill: {} tasks, {} completed, {} failed, {} refused, {} lost, {recoveries}",
            self.tasks, self.completed, self.failed, self.refused, self.lost,
        )
    }

    /// The table for people (without the last line).
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nswarm drill report (seed {}, fault plan {})",
            self.seed, self.fault_plan_digest
        );
        let _ = writeln!(s, "\ntasks");
        for (k, v) in [
            ("submitted", self.submitted),
            ("completed", self.completed),
            ("failed", self.failed),
            ("refused at submission", self.refused),
            ("not submitted (time limit)", self.not_submitted),
            ("lost", self.lost),
            ("stale results discarded", self.stale_results_discarded),
        ] {
            let _ = writeln!(s, "  {k:<28}{v:>10}");
        }
        for (reason, n) in &self.failed_by_reason {
            let _ = writeln!(s, "    failed: {reason:<38}{n:>6}");
        }
        let _ = writeln!(s, "\nfaults injected");
        for (k, v) in &self.faults_injected {
            let _ = writeln!(s, "  {k:<28}{v:>10}");
        }
        let _ = writeln!(
            s,
            "\nrecoveries (last {} attempts kept)\n  {:<22}{:>9}{:>10}{:>11}{:>11}{:>11}",
            self.recovery_attempts, "strategy", "attempts", "success", "no change", "p50", "p99"
        );
        for (name, r) in &self.recoveries {
            let share = |n: u64| {
                if r.attempts == 0 {
                    0.0
                } else {
                    n as f64 * 100.0 / r.attempts as f64
                }
            };
            let _ = writeln!(
                s,
                "  {name:<22}{:>9}{:>9.1}%{:>10.1}%{:>9.2}ms{:>9.2}ms",
                r.attempts,
                share(r.successes),
                share(r.no_change),
                r.p50_ms,
                r.p99_ms
            );
        }
        let _ = writeln!(
            s,
            "\ncheckpoints\n  {:<28}{:>10}\n  {:<28}{:>10}",
            "written", self.checkpoints_written, "restored", self.checkpoints_restored
        );
        let _ = writeln!(s, "\ntime at each degradation level");
        for (level, secs) in &self.seconds_at_level {
            let _ = writeln!(s, "  {level:<28}{secs:>9.2}s");
        }
        let _ = writeln!(s, "\nhealing actions applied");
        if self.healing_actions.is_empty() {
            let _ = writeln!(s, "  (none)");
        }
        for (action, n) in &self.healing_actions {
            let _ = writeln!(s, "  {action:<28}{n:>10}");
        }
        if let Some(b) = &self.breakers {
            let _ = writeln!(s, "\ncircuit breakers");
            for (what, n) in [
                ("opened", b.opened),
                ("probe failed, open again", b.reopened),
                ("probe succeeded, closed", b.closed),
                ("held closed by the cap", b.cap_reached),
                ("calls refused", b.rejected),
                ("open at the end", b.open_now),
            ] {
                let _ = writeln!(s, "  {what:<28}{n:>10}");
            }
        }
        let _ = writeln!(
            s,
            "\nthroughput\n  {:<28}{:>9.0}/s  ({:.2}s)",
            "completed tasks", self.throughput, self.elapsed_secs
        );
        if let Some(b) = self.baseline_throughput {
            let _ = writeln!(
                s,
                "  {:<28}{:>9.0}/s  (with faults: {:.1}% of it)",
                "fault-free baseline",
                b,
                self.throughput * 100.0 / b
            );
        }
        if !self.invariant_violations.is_empty() {
            let _ = writeln!(s, "\nINVARIANTS BROKEN");
            for v in &self.invariant_violations {
                let _ = writeln!(s, "  {v}");
            }
        }
        s
    }
}

/// Milliseconds of a duration as a float.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
