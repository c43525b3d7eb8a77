//! The report of a simulated run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use recovery_degradation::DegradationLevel;
use recovery_manager::RecoveryStatistics;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::options::SimOptions;
use super::trace::Stop;
use super::world::WorldState;

/// Time spent at each degradation level, and why each was entered.
#[derive(Debug)]
pub(crate) struct Levels {
    level: DegradationLevel,
    since: Instant,
    time: BTreeMap<DegradationLevel, Duration>,
    reasons: BTreeMap<DegradationLevel, BTreeMap<&'static str, u64>>,
}

impl Levels {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            level: DegradationLevel::Normal,
            since: now,
            time: BTreeMap::new(),
            reasons: BTreeMap::new(),
        }
    }

    /// The level is `level` at `now` (`wave`: a pressure wave is on); whether it changed. A
    /// level is entered from below for a pressure wave or for load, from above as pressure
    /// eased.
    pub(crate) fn observe(&mut self, now: Instant, level: DegradationLevel, wave: bool) -> bool {
        if level == self.level {
            return false;
        }
        self.close(now);
        let why = if level < self.level {
            "pressure eased"
        } else if wave {
            "pressure wave"
        } else {
            "load"
        };
        *self
            .reasons
            .entry(level)
            .or_default()
            .entry(why)
            .or_default() += 1;
        self.level = level;
        true
    }

    pub(crate) fn close(&mut self, now: Instant) {
        *self.time.entry(self.level).or_default() += now.saturating_duration_since(self.since);
        self.since = now;
    }
}

/// Time to recover from one kind of fault, in simulated seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    /// Recoveries measured.
    pub count: u64,
    /// Median.
    pub p50_s: f64,
    /// 99th percentile.
    pub p99_s: f64,
}

/// One strategy's attempts, over the managers' history windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StrategyLine {
    /// Attempts.
    pub attempts: u64,
    /// Of which succeeded.
    pub successes: u64,
    /// Of which changed nothing (the strategy found nothing to do).
    #[serde(default)]
    pub no_change: u64,
}

/// Recoveries of one error kind, over the managers' history windows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindLine {
    /// Recoveries (`recover` calls that ran a strategy).
    pub recoveries: u64,
    /// Of which a strategy recovered.
    pub recovered: u64,
    /// Mean time to recovery over those recovered, simulated seconds.
    pub mean_time_to_recovery_s: f64,
    /// How many recoveries tried each strategy first.
    pub first_strategy: BTreeMap<String, u64>,
}

impl KindLine {
    /// The strategy most often tried first, and its share of the recoveries.
    pub fn usual_first(&self) -> Option<(&str, f64)> {
        self.first_strategy
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(id, n)| (id.as_str(), *n as f64 / self.recoveries.max(1) as f64))
    }
}

/// Everything a simulated run measured. Two runs of the same options give equal reports and
/// equal trace digests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimReport {
    /// The options it ran with (enough to run it again).
    pub options: SimOptions,
    /// Simulated time the run lasted.
    pub simulated_s: f64,
    /// Tasks submitted and accepted (also again after a coordinator restart).
    pub submitted: u64,
    /// Tasks completed.
    pub completed: u64,
    /// Tasks failed for good.
    pub failed: u64,
    /// Clients that gave up: refused for an hour (each tried again after `retry_after`), or
    /// refused for good.
    pub refused: u64,
    /// Submissions refused (each refused client tried again after the error's `retry_after`).
    pub refusals: u64,
    /// Tasks failed for good, by what gave up and the kind of the last error.
    pub failed_by_reason: BTreeMap<String, u64>,
    /// Tasks submitted again after a coordinator restart had lost them.
    pub resubmitted: u64,
    /// Calls that never returned: must be 0.
    pub lost: u64,
    /// Completed tasks per simulated hour.
    pub completed_per_hour: f64,
    /// The same workload and seed with the fault plan off, completed per hour (when run).
    pub fault_free_per_hour: Option<f64>,
    /// The run over time (simulated seconds), a sample every 5 simulated minutes.
    pub timeline: crate::timeline::Timeline,
    /// The fault-free run over time, when it ran.
    pub fault_free_timeline: Option<crate::timeline::Timeline>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Time to recover, by fault kind.
    pub time_to_recover: BTreeMap<String, Recovery>,
    /// Simulated seconds at each degradation level.
    pub level_seconds: BTreeMap<String, f64>,
    /// Why each level was entered, and how often.
    pub level_reasons: BTreeMap<String, BTreeMap<String, u64>>,
    /// Recovery attempts by strategy.
    pub strategies: BTreeMap<String, StrategyLine>,
    /// Recoveries by error kind: time to recovery and the strategy tried first.
    #[serde(default)]
    pub by_error_kind: BTreeMap<String, KindLine>,
    /// What the last coordinator's learned order knew at the end (empty with the fixed
    /// order): the posterior mean of each strategy's chance to recover each kind, and the
    /// outcomes it saw.
    #[serde(default)]
    pub learned_order: Vec<recovery_manager::LearnedEstimate>,
    /// The agents' circuit breakers, over every coordinator of the run (with `breakers` on).
    #[serde(default)]
    pub breakers: Option<recovery_breaker::BreakerStats>,
    /// Checkpoints written.
    pub checkpoints_written: u64,
    /// Invariant checks made (after every coordinator transition and every event).
    pub invariant_checks: u64,
    /// Events in the trace.
    pub events: u64,
    /// The trace's digest.
    pub trace_digest: String,
    /// Why the run stopped early, if it did.
    pub stopped: Option<String>,
    /// The last events, when the run stopped early.
    pub last_events: Vec<String>,
}

fn percentile(sorted: &[Duration], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1].as_secs_f64()
}

impl SimReport {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn build(
        options: &SimOptions,
        elapsed: Duration,
        counts: &BTreeMap<&'static str, u64>,
        lost: u64,
        world: &WorldState,
        levels: &Levels,
        statistics: &[RecoveryStatistics],
        invariant_checks: u64,
        checkpoints_written: u64,
        stop: Option<Stop>,
    ) -> Self {
        let count = |k: &str| counts.get(k).copied().unwrap_or(0);
        let completed = count("completed");
        let hours = options.duration().as_secs_f64() / 3600.0;
        let mut strategies: BTreeMap<String, StrategyLine> = BTreeMap::new();
        for s in statistics {
            for (id, st) in &s.by_strategy {
                let line = strategies.entry(id.clone()).or_default();
                line.attempts += st.attempts;
                line.successes += st.successes;
                line.no_change += st.no_change;
            }
        }
        let mut by_error_kind: BTreeMap<String, KindLine> = BTreeMap::new();
        for s in statistics {
            for (kind, t) in &s.time_to_recovery {
                let line = by_error_kind.entry(kind.to_string()).or_default();
                let total = line.mean_time_to_recovery_s * line.recovered as f64
                    + t.mean_time_to_recovery.as_secs_f64() * t.recovered as f64;
                line.recoveries += t.recoveries;
                line.recovered += t.recovered;
                if line.recovered > 0 {
                    line.mean_time_to_recovery_s = total / line.recovered as f64;
                }
                for (id, n) in &t.first_strategy {
                    *line.first_strategy.entry(id.clone()).or_default() += n;
                }
            }
        }
        let time_to_recover = world
            .recovered
            .iter()
            .map(|(kind, samples)| {
                let mut sorted = samples.clone();
                sorted.sort_unstable();
                (
                    (*kind).to_owned(),
                    Recovery {
                        count: sorted.len() as u64,
                        p50_s: percentile(&sorted, 50),
                        p99_s: percentile(&sorted, 99),
                    },
                )
            })
            .collect();
        let stopped = stop.as_ref().map(super::run::describe);
        Self {
            options: options.clone(),
            simulated_s: elapsed.as_secs_f64(),
            submitted: count("completed") + count("failed") + lost,
            completed,
            failed: count("failed"),
            refused: count("refused") + count("refused_after_restart"),
            refusals: count("refusals"),
            resubmitted: count("resubmitted"),
            failed_by_reason: BTreeMap::new(),
            lost,
            completed_per_hour: completed as f64 / hours,
            fault_free_per_hour: None,
            timeline: crate::timeline::Timeline::default(),
            fault_free_timeline: None,
            faults: world
                .injected
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect(),
            time_to_recover,
            level_seconds: levels
                .time
                .iter()
                .map(|(l, d)| (l.to_string(), d.as_secs_f64()))
                .collect(),
            level_reasons: levels
                .reasons
                .iter()
                .map(|(l, r)| {
                    (
                        l.to_string(),
                        r.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
                    )
                })
                .collect(),
            strategies,
            by_error_kind,
            learned_order: statistics
                .last()
                .map(|s| s.learned_order.clone())
                .unwrap_or_default(),
            breakers: None,
            checkpoints_written,
            invariant_checks,
            events: world.trace.events(),
            trace_digest: world.trace.digest(),
            last_events: if stop.is_some() {
                world.trace.recent()
            } else {
                Vec::new()
            },
            stopped,
        }
    }

    /// Whether the run passed: it ran to its end, no call was lost, no invariant broke.
    pub fn passed(&self) -> bool {
        self.lost == 0 && self.stopped.is_none()
    }

    /// Throughput with faults against the fault-free run, if that ran.
    pub fn throughput_ratio(&self) -> Option<f64> {
        self.fault_free_per_hour
            .filter(|f| *f > 0.0)
            .map(|f| self.completed_per_hour / f)
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let o = &self.options;
        let _ = writeln!(
            out,
            "simulated swarm (seed {}, {} days, {} agents, utilisation {}, median task {:?}{}{}{}{})\n",
            o.seed,
            o.days,
            o.agents,
            o.utilisation,
            o.median_task,
            if o.learned_order {
                ", learned order"
            } else {
                ""
            },
            if o.predictive { ", predictive" } else { "" },
            if o.breakers { ", breakers" } else { "" },
            if o.workflows { ", workflows" } else { "" },
        );
        let _ = writeln!(out, "tasks");
        for (k, v) in [
            ("submitted", self.submitted),
            ("completed", self.completed),
            ("failed", self.failed),
            ("refused (gave up after an hour)", self.refused),
            ("submissions refused, tried again", self.refusals),
            ("submitted again after a restart", self.resubmitted),
            ("lost", self.lost),
        ] {
            let _ = writeln!(out, "  {k:<34}{v:>10}");
        }
        if !self.failed_by_reason.is_empty() {
            let _ = writeln!(out, "\nwhy tasks failed (what gave up / the last error)");
            for (why, n) in &self.failed_by_reason {
                let _ = writeln!(out, "  {why:<58}{n:>8}");
            }
        }
        let _ = writeln!(out, "\nthroughput");
        let _ = writeln!(
            out,
            "  completed per simulated hour      {:>10.1}",
            self.completed_per_hour
        );
        if let (Some(free), Some(ratio)) = (self.fault_free_per_hour, self.throughput_ratio()) {
            let _ = writeln!(out, "  fault-free, same workload         {free:>10.1}");
            let _ = writeln!(out, "  with faults / fault-free          {ratio:>10.3}");
        }
        let _ = writeln!(out, "\nfaults injected");
        for (k, v) in &self.faults {
            let _ = writeln!(out, "  {k:<34}{v:>10}");
        }
        let _ = writeln!(
            out,
            "\ntime to recover (simulated)        count    p50 s    p99 s"
        );
        for (k, r) in &self.time_to_recover {
            let _ = writeln!(
                out,
                "  {k:<30}{:>9}{:>9.1}{:>9.1}",
                r.count, r.p50_s, r.p99_s
            );
        }
        let _ = writeln!(out, "\ntime at each degradation level");
        for (l, s) in &self.level_seconds {
            let why = self
                .level_reasons
                .get(l)
                .map(|r| {
                    r.iter()
                        .map(|(k, v)| format!("{k} x{v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let _ = writeln!(out, "  {l:<10}{s:>12.0} s  {why}");
        }
        let _ = writeln!(out, "\nrecoveries (the managers' history windows)");
        for (id, line) in &self.strategies {
            let share = |n: u64| {
                if line.attempts == 0 {
                    0.0
                } else {
                    100.0 * n as f64 / line.attempts as f64
                }
            };
            let _ = writeln!(
                out,
                "  {id:<24}{:>9} attempts {:>7.1}% succeeded {:>7.1}% nothing to do",
                line.attempts,
                share(line.successes),
                share(line.no_change)
            );
        }
        let _ = writeln!(
            out,
            "\nrecoveries by error kind      count recovered   mean s  tried first"
        );
        for (kind, line) in &self.by_error_kind {
            let first = line.usual_first().map_or(String::new(), |(id, share)| {
                format!("{id} {:.1}%", 100.0 * share)
            });
            let _ = writeln!(
                out,
                "  {kind:<24}{:>9}{:>10}{:>9.3}  {first}",
                line.recoveries, line.recovered, line.mean_time_to_recovery_s
            );
        }
        if let Some(b) = &self.breakers {
            let _ = writeln!(out, "\ncircuit breakers (every coordinator of the run)");
            for (k, v) in [
                ("opened", b.opened),
                ("probes that closed them", b.closed),
                ("probes that opened them again", b.reopened),
                ("opens held back by the cap", b.cap_reached),
                ("runs refused", b.rejected),
            ] {
                let _ = writeln!(out, "  {k:<34}{v:>10}");
            }
        }
        if !self.learned_order.is_empty() {
            let _ = writeln!(
                out,
                "\nlearned order (the last coordinator's)   strategy              p(recover)  outcomes"
            );
            for e in &self.learned_order {
                let _ = writeln!(
                    out,
                    "  {:<38}{:<22}{:>10.2}{:>10}",
                    e.error_kind.to_string(),
                    e.strategy_id,
                    e.mean,
                    e.observations
                );
            }
        }
        let _ = writeln!(out, "\nchecks");
        let _ = writeln!(
            out,
            "  checkpoints written               {:>10}",
            self.checkpoints_written
        );
        let _ = writeln!(
            out,
            "  invariant checks                  {:>10}",
            self.invariant_checks
        );
        let _ = writeln!(
            out,
            "  events                            {:>10}",
            self.events
        );
        let _ = writeln!(out, "  trace digest              {}", self.trace_digest);
        if let Some(why) = &self.stopped {
            let _ = writeln!(out, "\n{why}\nlast events:");
            for e in &self.last_events {
                let _ = writeln!(out, "  {e}");
            }
        }
        out
    }

    /// One line: what happened, and the digest that replays it.
    pub fn last_line(&self) -> String {
        let ratio = self.throughput_ratio().map_or(String::new(), |r| {
            format!(", throughput {r:.3} of fault-free")
        });
        format!(
            "simulate: seed {}, {} days, {} completed, {} failed, {} refused, {} lost{ratio}, {} invariant checks, digest {}{}",
            self.options.seed,
            self.options.days,
            self.completed,
            self.failed,
            self.refused,
            self.lost,
            self.invariant_checks,
            self.trace_digest,
            if self.passed() { "" } else { " FAILED" }
        )
    }
}
