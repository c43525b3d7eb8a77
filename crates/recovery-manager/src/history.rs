//! The bounded history of recovery attempts and the statistics computed from it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use recovery_core::{AgentId, ErrorKind, RecoveryResult, SwarmError, TaskId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The strategy id recorded for an error that no strategy may handle.
pub const NO_STRATEGY: &str = "none";

/// One strategy run (or, for a non-recoverable error or when no strategy applied, one decision
/// not to run any), as the history keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecoveryAttempt {
    /// This attempt's id (the `recovery_attempt_id` of its tracing event).
    pub id: Uuid,
    /// The id shared by every attempt of one `recover` call.
    pub recovery_id: Uuid,
    /// When the attempt finished.
    pub timestamp: SystemTime,
    /// The strategy that ran, or [`NO_STRATEGY`].
    pub strategy_id: String,
    /// The error being recovered.
    pub error: SwarmError,
    /// The failed task, if any.
    pub failed_task_id: Option<TaskId>,
    /// The failed agent, if any.
    pub failed_agent_id: Option<AgentId>,
    /// The `retry_count` the strategy was given.
    pub retry_count: u32,
    /// What the strategy reported.
    pub result: RecoveryResult,
}

impl RecoveryAttempt {
    /// The kind of the error recovered.
    pub fn error_kind(&self) -> ErrorKind {
        self.error.kind()
    }
}

/// One attempt as the history keeps it: a [`RecoveryAttempt`] whose strategy id is shared with
/// the registered strategy, so recording an attempt does not copy it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: Uuid,
    pub(crate) recovery_id: Uuid,
    pub(crate) timestamp: SystemTime,
    pub(crate) strategy_id: Arc<str>,
    pub(crate) error: SwarmError,
    pub(crate) failed_task_id: Option<TaskId>,
    pub(crate) failed_agent_id: Option<AgentId>,
    pub(crate) retry_count: u32,
    pub(crate) result: RecoveryResult,
}

impl Entry {
    fn to_attempt(&self) -> RecoveryAttempt {
        RecoveryAttempt {
            id: self.id,
            recovery_id: self.recovery_id,
            timestamp: self.timestamp,
            strategy_id: self.strategy_id.to_string(),
            error: self.error.clone(),
            failed_task_id: self.failed_task_id,
            failed_agent_id: self.failed_agent_id,
            retry_count: self.retry_count,
            result: self.result.clone(),
        }
    }
}

/// The newest `capacity` attempts, oldest first: a ring under one lock, held only to push or
/// to copy out. Its memory grows with what it holds, up to `capacity`.
#[derive(Debug)]
pub(crate) struct History {
    capacity: usize,
    ring: Mutex<VecDeque<Entry>>,
}

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            ring: Mutex::new(VecDeque::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Entry>> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Add `attempt`, returning the one it displaced, if any (for the caller to drop outside
    /// the lock).
    pub(crate) fn push(&self, attempt: Entry) -> Option<Entry> {
        let mut ring = self.lock();
        let evicted = if ring.len() >= self.capacity {
            ring.pop_front()
        } else {
            None
        };
        ring.push_back(attempt);
        evicted
    }

    /// How many attempts are held.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// The attempts held, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<RecoveryAttempt> {
        self.lock().iter().map(Entry::to_attempt).collect()
    }

    pub(crate) fn statistics(&self) -> RecoveryStatistics {
        let ring = self.lock();
        RecoveryStatistics::from_outcomes(ring.iter().map(|a| Outcome {
            recovery_id: a.recovery_id,
            strategy_id: &a.strategy_id,
            kind: a.error.kind(),
            success: a.result.success,
            no_change: a.result.is_no_change(),
            recovered: a.result.success && a.result.confidence > 0.5,
            duration: a.result.recovery_duration,
        }))
    }
}

/// What the statistics need of one attempt.
struct Outcome<'a> {
    recovery_id: Uuid,
    strategy_id: &'a str,
    kind: ErrorKind,
    success: bool,
    /// It changed nothing ([`RecoveryResult::no_change`]).
    no_change: bool,
    /// A success the manager stops at (confidence above 0.5).
    recovered: bool,
    duration: Duration,
}

/// How recoveries of one error kind went: how many, how many recovered, how long it took, and
/// which strategy each tried first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryTimes {
    /// Recoveries (`recover` calls that ran a strategy).
    pub recoveries: u64,
    /// Of which one strategy succeeded with confidence above 0.5.
    pub recovered: u64,
    /// Over those recovered: the mean time of their attempts up to and including the one that
    /// succeeded (the time to recovery, waits for a slot not counted).
    pub mean_time_to_recovery: Duration,
    /// How many recoveries tried each strategy first.
    pub first_strategy: BTreeMap<String, u64>,
}

/// One recovery's attempts, while the statistics are gathered.
struct Recovery<'a> {
    kind: ErrorKind,
    first: &'a str,
    elapsed: Duration,
    recovered: bool,
}

fn times_by_kind<'a>(
    recoveries: impl Iterator<Item = Recovery<'a>>,
) -> BTreeMap<ErrorKind, RecoveryTimes> {
    let mut by_kind: BTreeMap<ErrorKind, (RecoveryTimes, Duration)> = BTreeMap::new();
    for r in recoveries {
        let (t, total) = by_kind.entry(r.kind).or_default();
        t.recoveries += 1;
        *t.first_strategy.entry(r.first.to_owned()).or_default() += 1;
        if r.recovered {
            t.recovered += 1;
            *total += r.elapsed;
        }
    }
    by_kind
        .into_iter()
        .map(|(kind, (mut t, total))| {
            if t.recovered > 0 {
                t.mean_time_to_recovery = total / u32::try_from(t.recovered).unwrap_or(u32::MAX);
            }
            (kind, t)
        })
        .collect()
}

/// Attempts, successes and durations of one group (a strategy, an error kind, or all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptStats {
    /// Attempts recorded.
    pub attempts: u64,
    /// Of which succeeded.
    pub successes: u64,
    /// Of which changed nothing ([`RecoveryResult::no_change`]): the strategy found nothing
    /// to do (a degradation level already in force, no rule matching). Not successes, and
    /// not failed actions either: `attempts - successes - no_change` tried and failed.
    #[serde(default)]
    pub no_change: u64,
    /// Median duration.
    pub p50: Duration,
    /// 99th-percentile duration.
    pub p99: Duration,
}

impl AttemptStats {
    /// `successes / attempts`, or 0.0 with no attempts.
    pub fn success_rate(&self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            self.successes as f64 / self.attempts as f64
        }
    }

    fn from_tally(tally: Tally) -> Self {
        let mut durations = tally.durations;
        durations.sort_unstable();
        Self {
            attempts: durations.len() as u64,
            successes: tally.successes,
            no_change: tally.no_change,
            p50: percentile(&durations, 50),
            p99: percentile(&durations, 99),
        }
    }
}

/// The attempts of one group, as they are counted.
#[derive(Debug, Default)]
struct Tally {
    successes: u64,
    no_change: u64,
    durations: Vec<Duration>,
}

/// The nearest-rank percentile of sorted values (zero for none).
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

/// Statistics over the attempts the history holds.
///
/// Computed from the history itself, so the success rate a user computes from
/// [`RecoveryManager::get_recovery_history`](crate::RecoveryManager::get_recovery_history)
/// always equals [`RecoveryStatistics::overall`]'s. For totals since start, use the metrics
/// (see the crate docs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryStatistics {
    /// Every attempt.
    pub overall: AttemptStats,
    /// By strategy id.
    pub by_strategy: BTreeMap<String, AttemptStats>,
    /// By error kind.
    pub by_error_kind: BTreeMap<ErrorKind, AttemptStats>,
    /// Recoveries by error kind, grouped by `recovery_id`: how many recovered, the mean time
    /// to recovery, which strategy went first. A recovery whose first attempts already left
    /// the history counts from the attempts it still holds.
    #[serde(default)]
    pub time_to_recovery: BTreeMap<ErrorKind, RecoveryTimes>,
    /// What the learned strategy order knows, by error kind and strategy (empty with the
    /// fixed order): see [`RecoveryManagerBuilder::learned_order`](crate::RecoveryManagerBuilder::learned_order).
    #[serde(default)]
    pub learned_order: Vec<crate::learned::LearnedEstimate>,
}

impl RecoveryStatistics {
    /// Statistics of `attempts`.
    pub fn from_attempts<'a>(attempts: impl IntoIterator<Item = &'a RecoveryAttempt>) -> Self {
        Self::from_outcomes(attempts.into_iter().map(|a| Outcome {
            recovery_id: a.recovery_id,
            strategy_id: &a.strategy_id,
            kind: a.error.kind(),
            success: a.result.success,
            no_change: a.result.is_no_change(),
            recovered: a.result.success && a.result.confidence > 0.5,
            duration: a.result.recovery_duration,
        }))
    }

    fn from_outcomes<'a>(outcomes: impl Iterator<Item = Outcome<'a>>) -> Self {
        let mut overall = Tally::default();
        let mut by_strategy: BTreeMap<&str, Tally> = BTreeMap::new();
        let mut by_kind: BTreeMap<ErrorKind, Tally> = BTreeMap::new();
        // In the order of their first attempt held.
        let mut recoveries: Vec<Recovery<'a>> = Vec::new();
        let mut index: std::collections::HashMap<Uuid, usize> = std::collections::HashMap::new();
        for a in outcomes {
            if a.strategy_id != NO_STRATEGY {
                let i = *index.entry(a.recovery_id).or_insert_with(|| {
                    recoveries.push(Recovery {
                        kind: a.kind,
                        first: a.strategy_id,
                        elapsed: Duration::ZERO,
                        recovered: false,
                    });
                    recoveries.len() - 1
                });
                let r = &mut recoveries[i];
                if !r.recovered {
                    r.elapsed += a.duration;
                    r.recovered = a.recovered;
                }
            }
            for tally in [
                &mut overall,
                by_strategy.entry(a.strategy_id).or_default(),
                by_kind.entry(a.kind).or_default(),
            ] {
                tally.successes += u64::from(a.success);
                tally.no_change += u64::from(a.no_change);
                tally.durations.push(a.duration);
            }
        }
        Self {
            overall: AttemptStats::from_tally(overall),
            by_strategy: by_strategy
                .into_iter()
                .map(|(k, t)| (k.to_owned(), AttemptStats::from_tally(t)))
                .collect(),
            by_error_kind: by_kind
                .into_iter()
                .map(|(k, t)| (k, AttemptStats::from_tally(t)))
                .collect(),
            time_to_recovery: times_by_kind(recoveries.into_iter()),
            learned_order: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recovery_core::RecoveryAction;

    fn attempt(strategy: &str, success: bool, ms: u64) -> Entry {
        let mut result = if success {
            RecoveryResult::success(RecoveryAction::None, "ok")
        } else {
            RecoveryResult::failure(RecoveryAction::None, "no")
        };
        result.recovery_duration = Duration::from_millis(ms);
        Entry {
            id: Uuid::new_v4(),
            recovery_id: Uuid::new_v4(),
            timestamp: SystemTime::now(),
            strategy_id: Arc::from(strategy),
            error: SwarmError::CommunicationError("x".into()),
            failed_task_id: None,
            failed_agent_id: None,
            retry_count: 0,
            result,
        }
    }

    #[test]
    fn ring_keeps_the_newest() {
        let h = History::new(2);
        assert!(h.push(attempt("a", true, 1)).is_none());
        assert!(h.push(attempt("a", true, 2)).is_none());
        let evicted = h
            .push(attempt("a", true, 3))
            .expect("the oldest is evicted");
        assert_eq!(evicted.result.recovery_duration, Duration::from_millis(1));
        let s = h.snapshot();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].result.recovery_duration, Duration::from_millis(2));
    }

    #[test]
    fn statistics_per_strategy_and_percentiles() {
        let h = History::new(1000);
        for ms in 1..=100 {
            h.push(attempt("a", ms % 4 != 0, ms));
        }
        h.push(attempt("b", false, 7));
        let st = h.statistics();
        assert_eq!(st, RecoveryStatistics::from_attempts(&h.snapshot()));
        assert_eq!(st.overall.attempts, 101);
        assert_eq!(st.by_strategy["a"].successes, 75);
        assert_eq!(st.by_strategy["a"].p50, Duration::from_millis(50));
        assert_eq!(st.by_strategy["a"].p99, Duration::from_millis(99));
        assert_eq!(st.by_strategy["b"].success_rate(), 0.0);
        assert_eq!(
            st.by_error_kind[&ErrorKind::CommunicationError].attempts,
            101
        );
    }

    #[test]
    fn attempts_that_changed_nothing_are_counted_apart() {
        let h = History::new(100);
        h.push(attempt("degrade", true, 1));
        for _ in 0..3 {
            let mut e = attempt("degrade", false, 1);
            e.result = RecoveryResult::no_change("already at Reduced");
            h.push(e);
        }
        h.push(attempt("degrade", false, 1));
        let st = h.statistics();
        assert_eq!(st, RecoveryStatistics::from_attempts(&h.snapshot()));
        let d = &st.by_strategy["degrade"];
        assert_eq!((d.attempts, d.successes, d.no_change), (5, 1, 3));
        assert_eq!(st.overall.no_change, 3);
        let old: AttemptStats =
            serde_json::from_str(r#"{"attempts": 2, "successes": 1, "p50": {"secs": 0, "nanos": 0}, "p99": {"secs": 0, "nanos": 0}}"#)
                .unwrap();
        assert_eq!(
            old.no_change, 0,
            "statistics saved before the field still load"
        );
    }

    /// Threads adding at once: the ring ends holding exactly `capacity` attempts, and
    /// everything displaced was handed back (nothing lost, nothing twice).
    #[test]
    fn concurrent_pushes_keep_exactly_the_capacity() {
        let h = History::new(100);
        let handed_back = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2_500 {
                        if h.push(attempt("a", true, 1)).is_some() {
                            handed_back.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(handed_back.into_inner(), 9_900);
        assert_eq!(h.len(), 100);
    }

    #[test]
    fn a_large_capacity_costs_nothing_until_used() {
        let h = History::new(crate::config::MAX_HISTORY_RETENTION);
        assert!(h.lock().capacity() < 64);
        h.push(attempt("a", true, 1));
        assert_eq!(h.snapshot().len(), 1);
    }

    #[test]
    fn percentile_of_one_and_none() {
        assert_eq!(percentile(&[], 99), Duration::ZERO);
        assert_eq!(
            percentile(&[Duration::from_secs(1)], 50),
            Duration::from_secs(1)
        );
    }
}
