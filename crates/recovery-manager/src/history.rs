//! The bounded history of recovery attempts and the statistics computed from it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use crossbeam_utils::CachePadded;

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

/// One attempt as the ring keeps it: a [`RecoveryAttempt`] whose strategy id is the interned
/// one, so recording an attempt does not copy it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) id: Uuid,
    pub(crate) recovery_id: Uuid,
    pub(crate) timestamp: SystemTime,
    pub(crate) strategy_id: &'static str,
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

/// A ring of the newest `capacity` attempts that many threads add to at once.
///
/// Each attempt takes the next sequence number (one atomic add) and the ring position it
/// names, which has a lock of its own: recoveries finishing on different threads contend for
/// no lock, only for that counter. (One lock for the whole ring was, with the strategy list's,
/// what kept throughput from growing with callers.) Readers lock one position at a time and
/// order what they find by sequence number. Positions are allocated a chunk at a time as the
/// ring fills, so a large `capacity` costs memory only once it is used.
#[derive(Debug)]
pub(crate) struct History {
    capacity: usize,
    /// Off the cache lines the positions' locks are on.
    next: CachePadded<AtomicU64>,
    chunks: Box<[OnceLock<Box<[Position]>>]>,
}

/// One ring position: the attempt last written there and its sequence number.
type Position = Mutex<Option<(u64, Entry)>>;

/// Positions per chunk.
const CHUNK: usize = 256;

impl History {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            next: CachePadded::new(AtomicU64::new(0)),
            chunks: (0..capacity.div_ceil(CHUNK))
                .map(|_| OnceLock::new())
                .collect(),
        }
    }

    fn position(&self, i: usize) -> &Position {
        let chunk = self.chunks[i / CHUNK].get_or_init(|| {
            let len = CHUNK.min(self.capacity - i / CHUNK * CHUNK);
            (0..len).map(|_| Mutex::new(None)).collect()
        });
        &chunk[i % CHUNK]
    }

    /// Add `attempt`, returning the one it displaced, if any (for the caller to drop outside
    /// any lock). An attempt whose position a newer one (a full ring later) already holds is
    /// itself the one returned: it is older than every attempt the ring keeps.
    pub(crate) fn push(&self, attempt: Entry) -> Option<Entry> {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        // `capacity` is a `usize`, so the remainder is one.
        let i = (seq % self.capacity as u64) as usize;
        let mut position = self
            .position(i)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*position {
            Some((newer, _)) if *newer > seq => Some(attempt),
            _ => position.replace((seq, attempt)).map(|(_, old)| old),
        }
    }

    /// Every attempt held, with its sequence number, as `f` makes it; in no particular order.
    fn collect<R>(&self, f: impl Fn(&Entry) -> R) -> Vec<(u64, R)> {
        let mut out = Vec::new();
        for chunk in self.chunks.iter().filter_map(OnceLock::get) {
            for position in chunk.iter() {
                let position = position.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some((seq, entry)) = &*position {
                    out.push((*seq, f(entry)));
                }
            }
        }
        out
    }

    /// The attempts held, oldest first.
    pub(crate) fn snapshot(&self) -> Vec<RecoveryAttempt> {
        let mut attempts = self.collect(Entry::to_attempt);
        attempts.sort_unstable_by_key(|(seq, _)| *seq);
        attempts.into_iter().map(|(_, a)| a).collect()
    }

    pub(crate) fn statistics(&self) -> RecoveryStatistics {
        let outcomes = self.collect(|a| Outcome {
            strategy_id: a.strategy_id,
            kind: a.error.kind(),
            success: a.result.success,
            duration: a.result.recovery_duration,
        });
        RecoveryStatistics::from_outcomes(outcomes.into_iter().map(|(_, o)| o))
    }
}

/// What the statistics need of one attempt.
struct Outcome<'a> {
    strategy_id: &'a str,
    kind: ErrorKind,
    success: bool,
    duration: Duration,
}

/// Attempts, successes and durations of one group (a strategy, an error kind, or all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AttemptStats {
    /// Attempts recorded.
    pub attempts: u64,
    /// Of which succeeded.
    pub successes: u64,
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

    fn from_durations(successes: u64, mut durations: Vec<Duration>) -> Self {
        durations.sort_unstable();
        Self {
            attempts: durations.len() as u64,
            successes,
            p50: percentile(&durations, 50),
            p99: percentile(&durations, 99),
        }
    }
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
}

impl RecoveryStatistics {
    /// Statistics of `attempts`.
    pub fn from_attempts<'a>(attempts: impl IntoIterator<Item = &'a RecoveryAttempt>) -> Self {
        Self::from_outcomes(attempts.into_iter().map(|a| Outcome {
            strategy_id: &a.strategy_id,
            kind: a.error.kind(),
            success: a.result.success,
            duration: a.result.recovery_duration,
        }))
    }

    fn from_outcomes<'a>(outcomes: impl Iterator<Item = Outcome<'a>>) -> Self {
        type Acc = (u64, Vec<Duration>);
        let mut overall: Acc = (0, Vec::new());
        let mut by_strategy: BTreeMap<&str, Acc> = BTreeMap::new();
        let mut by_kind: BTreeMap<ErrorKind, Acc> = BTreeMap::new();
        for a in outcomes {
            let ok = u64::from(a.success);
            let d = a.duration;
            for acc in [
                &mut overall,
                by_strategy.entry(a.strategy_id).or_default(),
                by_kind.entry(a.kind).or_default(),
            ] {
                acc.0 += ok;
                acc.1.push(d);
            }
        }
        Self {
            overall: AttemptStats::from_durations(overall.0, overall.1),
            by_strategy: by_strategy
                .into_iter()
                .map(|(k, (s, d))| (k.to_owned(), AttemptStats::from_durations(s, d)))
                .collect(),
            by_error_kind: by_kind
                .into_iter()
                .map(|(k, (s, d))| (k, AttemptStats::from_durations(s, d)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use recovery_core::RecoveryAction;

    fn attempt(strategy: &'static str, success: bool, ms: u64) -> Entry {
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
            strategy_id: strategy,
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
    fn a_ring_larger_than_a_chunk_wraps_around() {
        let h = History::new(CHUNK + 3);
        for ms in 0..(3 * CHUNK as u64) {
            h.push(attempt("a", true, ms));
        }
        let kept: Vec<u64> = h
            .snapshot()
            .iter()
            .map(|a| a.result.recovery_duration.as_millis() as u64)
            .collect();
        let newest: Vec<u64> = (2 * CHUNK as u64 - 3..3 * CHUNK as u64).collect();
        assert_eq!(kept, newest);
    }

    /// Threads adding at once: the ring ends holding exactly the newest `capacity` attempts,
    /// oldest first, and everything displaced was handed back (nothing lost, nothing twice).
    #[test]
    fn concurrent_pushes_keep_exactly_the_newest() {
        let h = History::new(100);
        let handed_back = AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2_500 {
                        if h.push(attempt("a", true, 1)).is_some() {
                            handed_back.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        let held = h.collect(|_| ());
        let mut seqs: Vec<u64> = held.iter().map(|(seq, ())| *seq).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (9_900..10_000).collect::<Vec<_>>());
        assert_eq!(handed_back.load(Ordering::Relaxed), 9_900);
        assert_eq!(h.snapshot().len(), 100);
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
