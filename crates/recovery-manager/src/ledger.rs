//! How many recoveries already ran for the same error kind and task, within a window.

use std::collections::HashMap;
use std::time::Duration;

use recovery_core::{ErrorKind, TaskId};
use tokio::time::Instant;

/// Counts recoveries per (error kind, task) so a repeated failure starts further along a
/// strategy's schedule. An entry whose last recovery is older than the window starts again at 0.
/// A recovery that names no task counts as a first one: unrelated failures of one kind must not
/// use up each other's retries.
#[derive(Debug)]
pub(crate) struct RetryLedger {
    window: Duration,
    entries: HashMap<(ErrorKind, TaskId), (u32, Instant)>,
    prune_at: usize,
}

impl RetryLedger {
    pub(crate) fn new(window: Duration) -> Self {
        Self {
            window,
            entries: HashMap::new(),
            prune_at: 1024,
        }
    }

    /// The `retry_count` for a new recovery of `kind` on `task` at `now`, recording it.
    pub(crate) fn next(&mut self, kind: ErrorKind, task: Option<TaskId>, now: Instant) -> u32 {
        let Some(task) = task else {
            return 0;
        };
        if self.entries.len() >= self.prune_at {
            let window = self.window;
            self.entries
                .retain(|_, (_, last)| now.saturating_duration_since(*last) <= window);
            self.prune_at = (self.entries.len() * 2).max(1024);
        }
        let entry = self.entries.entry((kind, task)).or_insert((0, now));
        if now.saturating_duration_since(entry.1) > self.window {
            entry.0 = 0;
        }
        let count = entry.0;
        *entry = (count.saturating_add(1), now);
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn counts_per_kind_and_task_within_the_window() {
        let mut l = RetryLedger::new(Duration::from_secs(60));
        let t = Some(TaskId::from_u128(1));
        let now = Instant::now();
        assert_eq!(l.next(ErrorKind::CommunicationError, t, now), 0);
        assert_eq!(l.next(ErrorKind::CommunicationError, t, now), 1);
        assert_eq!(l.next(ErrorKind::CoordinationTimeout, t, now), 0);
        assert_eq!(l.next(ErrorKind::CommunicationError, None, now), 0);
        assert_eq!(
            l.next(ErrorKind::CommunicationError, None, now),
            0,
            "no task, no count"
        );
        let later = now + Duration::from_secs(61);
        assert_eq!(l.next(ErrorKind::CommunicationError, t, later), 0);
    }
}
