//! Wall-clock time for the history, read from the monotonic clock the manager reads anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// How long a reading of the wall clock is used before it is read again.
const REREAD_AFTER: Duration = Duration::from_secs(1);

/// Turns a monotonic instant into wall-clock time, reading the wall clock itself at most once a
/// [`REREAD_AFTER`] of monotonic time.
///
/// A recovery reads the monotonic clock as it starts (for its duration and the retry window); a
/// second clock read for its timestamp cost about 20 ns on the bench machine, a twentieth of a
/// recovery whose strategy succeeds at once. The
/// time given is the last wall-clock reading plus the monotonic time since, so it is off by at
/// most the wall clock's slew within a second (NTP slews at most 500 ppm: 0.5 ms), and a step of
/// the wall clock shows within a second. Under `tokio::time::pause()` it moves with tokio's clock
/// until the next reading.
#[derive(Debug)]
pub(crate) struct WallClock {
    origin: Instant,
    /// Nanoseconds since the Unix epoch minus nanoseconds since `origin`, at the last reading.
    offset: AtomicU64,
    /// Nanoseconds since `origin` at which the wall clock is read again.
    reread_at: AtomicU64,
}

impl WallClock {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
            offset: AtomicU64::new(0),
            // Read on first use.
            reread_at: AtomicU64::new(0),
        }
    }

    /// The wall-clock time at monotonic instant `now` (an instant just read).
    pub(crate) fn at(&self, now: Instant) -> SystemTime {
        let since = nanos(now.saturating_duration_since(self.origin));
        if since < self.reread_at.load(Ordering::Relaxed) {
            // Two threads may see a new `reread_at` and an old `offset`: both are within a
            // second's slew of each other.
            let offset = self.offset.load(Ordering::Relaxed);
            return UNIX_EPOCH + Duration::from_nanos(since.wrapping_add(offset));
        }
        let wall = SystemTime::now();
        // A wall clock before 1970 (or past 2554) is given as read, and read again next time.
        if let Ok(epoch) = wall.duration_since(UNIX_EPOCH) {
            self.offset
                .store(nanos(epoch).wrapping_sub(since), Ordering::Relaxed);
            self.reread_at
                .store(since.saturating_add(nanos(REREAD_AFTER)), Ordering::Relaxed);
        }
        wall
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: SystemTime, b: SystemTime, within: Duration) -> bool {
        let d = a.duration_since(b).unwrap_or_else(|e| e.duration());
        d <= within
    }

    #[test]
    fn agrees_with_the_wall_clock() {
        let clock = WallClock::new();
        for _ in 0..1000 {
            let before = SystemTime::now();
            let at = clock.at(Instant::now());
            let after = SystemTime::now();
            assert!(
                close(at, before, Duration::from_millis(5))
                    && close(at, after, Duration::from_millis(5)),
                "{at:?} is not between {before:?} and {after:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn moves_with_the_monotonic_clock_and_reads_the_wall_clock_each_second() {
        let clock = WallClock::new();
        let t0 = Instant::now();
        let w0 = clock.at(t0);
        // Within the second, the paused clock's advance is what the wall-clock time shows.
        tokio::time::advance(Duration::from_millis(400)).await;
        let t1 = Instant::now();
        assert_eq!(
            clock.at(t1).duration_since(w0).unwrap(),
            Duration::from_millis(400)
        );
        // An instant read earlier gives an earlier time, not a new reading.
        assert_eq!(clock.at(t0), w0);
        // Past the second, the wall clock (which has hardly moved) is read again.
        tokio::time::advance(Duration::from_secs(10)).await;
        let reread = clock.at(Instant::now());
        assert!(
            close(reread, SystemTime::now(), Duration::from_millis(100)),
            "{reread:?} was not read from the wall clock"
        );
    }
}
