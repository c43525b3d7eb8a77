//! How many retries were already made for the current failure of each task.

use std::collections::HashMap;
use std::time::Duration;

use recovery_core::TaskId;
use tokio::time::Instant;

/// The most tasks the ledger remembers; past it, the longest-quiet ones are forgotten first.
pub(crate) const MAX_ENTRIES: usize = 100_000;

/// Retries made per task, so that a failure recovered in several rounds moves along one retry
/// schedule and stops at its `max_retries`, whoever made the retries.
///
/// An entry counts the re-runs of a task's failed operation that recoveries reported
/// ([`RecoveryResult::retries_made`](recovery_core::RecoveryResult::retries_made)). It ends
/// when a retry succeeds (the failure is over), or when the task has had no recovery for
/// `window`. A recovery that names no task counts from 0: unrelated failures must not use up
/// each other's retries. Memory is bounded by [`MAX_ENTRIES`].
#[derive(Debug)]
pub(crate) struct RetryLedger {
    window: Duration,
    entries: HashMap<TaskId, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    retries: u32,
    last: Instant,
}

impl RetryLedger {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            entries: HashMap::new(),
        }
    }

    /// The retries already made for `task`'s current failure, at `now`.
    pub(crate) fn retries_made(&self, task: TaskId, now: Instant) -> u32 {
        self.entries
            .get(&task)
            .filter(|e| now.saturating_duration_since(e.last) <= self.window)
            .map_or(0, |e| e.retries)
    }

    /// Record that a recovery of `task` ended at `now` having made `retries` more retries, and
    /// whether a retry succeeded (which ends the failure).
    pub(crate) fn record(
        &mut self,
        task: TaskId,
        retries: u32,
        retry_succeeded: bool,
        now: Instant,
    ) {
        if retry_succeeded {
            self.entries.remove(&task);
            return;
        }
        if retries == 0 && !self.entries.contains_key(&task) {
            // Nothing to count: a task whose recoveries make no retries takes no memory.
            return;
        }
        let window = self.window;
        let entry = self.entries.entry(task).or_insert(Entry {
            retries: 0,
            last: now,
        });
        if now.saturating_duration_since(entry.last) > window {
            entry.retries = 0;
        }
        entry.retries = entry.retries.saturating_add(retries);
        entry.last = now;
        if self.entries.len() > MAX_ENTRIES {
            self.prune(now);
        }
    }

    /// Drop the entries past their window, and if that is not enough, the quietest half.
    fn prune(&mut self, now: Instant) {
        let window = self.window;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.last) <= window);
        if self.entries.len() > MAX_ENTRIES / 2 {
            let mut lasts: Vec<Instant> = self.entries.values().map(|e| e.last).collect();
            let keep_from = lasts.len() - MAX_ENTRIES / 2;
            let (_, cut, _) = lasts.select_nth_unstable(keep_from);
            let cut = *cut;
            self.entries.retain(|_, e| e.last >= cut);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_retries_per_task_within_the_window() {
        let mut l = RetryLedger::new(Duration::from_secs(60));
        let (t, u) = (TaskId::from_u128(1), TaskId::from_u128(2));
        let now = Instant::now();
        assert_eq!(l.retries_made(t, now), 0);
        l.record(u, 0, false, now);
        assert_eq!(l.len(), 0, "no retries, no entry");
        l.record(t, 3, false, now);
        l.record(t, 0, false, now);
        assert_eq!(l.retries_made(t, now), 3);
        assert_eq!(l.retries_made(u, now), 0, "per task");
        l.record(t, 2, false, now + Duration::from_secs(30));
        assert_eq!(l.retries_made(t, now + Duration::from_secs(30)), 5);
        // Quiet for longer than the window: a new failure.
        let later = now + Duration::from_secs(91);
        assert_eq!(l.retries_made(t, later), 0);
        l.record(t, 1, false, later);
        assert_eq!(l.retries_made(t, later), 1);
        // A retry that worked ends the failure.
        l.record(t, 1, true, later);
        assert_eq!(l.retries_made(t, later), 0);
        assert_eq!(l.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded() {
        let mut l = RetryLedger::new(Duration::from_secs(3600));
        let now = Instant::now();
        for i in 0..(MAX_ENTRIES as u128 + 10) {
            l.record(
                TaskId::from_u128(i),
                1,
                false,
                now + Duration::from_millis(i as u64),
            );
        }
        assert!(l.len() <= MAX_ENTRIES, "{}", l.len());
        // The newest survive.
        let newest = TaskId::from_u128(MAX_ENTRIES as u128 + 9);
        assert_eq!(l.retries_made(newest, now + Duration::from_secs(200)), 1);
    }
}
