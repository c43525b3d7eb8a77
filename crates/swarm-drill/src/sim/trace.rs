//! The trace of a simulated run: every event numbered, digested (so two runs compare with one
//! number), the last ones kept for debugging.

use std::collections::VecDeque;
use std::time::Duration;

/// How many of the last events are kept.
const RECENT: usize = 64;

/// Why a run stopped before its end.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// `--until` asked to stop before this event.
    Until(u64),
    /// An invariant broke.
    Violation {
        /// The event during or after which it was found.
        event: u64,
        /// Simulated time.
        at: Duration,
        /// What is broken.
        problems: Vec<String>,
    },
}

/// The events of a run.
#[derive(Debug)]
pub(crate) struct Trace {
    events: u64,
    digest: u64,
    recent: VecDeque<String>,
    until: Option<u64>,
    pub(crate) stopped: Option<Stop>,
}

impl Trace {
    pub(crate) fn new(until: Option<u64>) -> Self {
        Self {
            events: 0,
            digest: 0xcbf2_9ce4_8422_2325,
            recent: VecDeque::new(),
            until,
            stopped: None,
        }
    }

    /// Record an event at simulated time `at`; `false` if the run must stop instead (before
    /// the `--until` event, or after a violation).
    pub(crate) fn record(&mut self, at: Duration, what: &str) -> bool {
        if self.stopped.is_some() {
            return false;
        }
        let n = self.events + 1;
        if self.until == Some(n) {
            self.stopped = Some(Stop::Until(n));
            return false;
        }
        self.events = n;
        let line = format!("{n} {:.3} {what}", at.as_secs_f64());
        for b in line.bytes().chain(std::iter::once(b'\n')) {
            self.digest ^= u64::from(b);
            self.digest = self.digest.wrapping_mul(0x0100_0000_01b3);
        }
        tracing::debug!(target: "swarm_drill::sim", event = n, at_s = at.as_secs_f64(), "{what}");
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
        true
    }

    /// Stop the run: an invariant broke.
    pub(crate) fn violation(&mut self, at: Duration, problems: Vec<String>) {
        if self.stopped.is_none() {
            self.stopped = Some(Stop::Violation {
                event: self.events,
                at,
                problems,
            });
        }
    }

    pub(crate) fn events(&self) -> u64 {
        self.events
    }

    pub(crate) fn digest(&self) -> String {
        format!("{:016x}", self.digest)
    }

    pub(crate) fn recent(&self) -> Vec<String> {
        self.recent.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_events_give_the_same_digest_and_until_stops_before_its_event() {
        let mut a = Trace::new(None);
        let mut b = Trace::new(Some(3));
        for t in [
            a.record(Duration::ZERO, "x"),
            a.record(Duration::from_millis(5), "y"),
        ] {
            assert!(t);
        }
        assert!(b.record(Duration::ZERO, "x"));
        assert!(b.record(Duration::from_millis(5), "y"));
        assert_eq!(a.digest(), b.digest());
        assert!(
            !b.record(Duration::from_millis(6), "z"),
            "event 3 is not run"
        );
        assert_eq!(b.stopped, Some(Stop::Until(3)));
        assert_eq!(b.events(), 2);
        assert!(a.record(Duration::from_millis(6), "w"));
        assert_ne!(a.digest(), b.digest());
    }
}
