//! The resource monitor: lock-free counters the coordinator updates and samplers feed.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::InvalidUsage;

/// One reading of the resources the degradation strategy watches.
///
/// `cpu_percent` and `memory_percent` are **fractions** in `0.0..=1.0` (the spec's names are
/// kept: `0.85` means 85 %), the counters are absolute numbers.
///
/// ```
/// use recovery_degradation::ResourceUsage;
/// let usage = ResourceUsage { cpu_percent: 0.5, memory_percent: 0.25, active_connections: 3, active_tasks: 7 };
/// assert_eq!(format!("{usage}"), "cpu 50.0%, memory 25.0%, 3 connections, 7 tasks");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ResourceUsage {
    /// CPU in use, as a fraction of what is available (`0.0..=1.0`).
    pub cpu_percent: f64,
    /// Memory in use, as a fraction of the limit (`0.0..=1.0`).
    pub memory_percent: f64,
    /// Connections currently open.
    pub active_connections: u64,
    /// Tasks currently running.
    pub active_tasks: u64,
}

impl fmt::Display for ResourceUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cpu {:.1}%, memory {:.1}%, {} connections, {} tasks",
            self.cpu_percent * 100.0,
            self.memory_percent * 100.0,
            self.active_connections,
            self.active_tasks
        )
    }
}

/// The resources the monitor keeps, lock-free.
///
/// Every update and read is a single relaxed atomic operation: the coordinator may update the
/// counters on its hot path, from any number of threads, without a lock. The fields of one
/// [`ResourceUsage`] are read one after another, so under concurrent updates a reading may mix
/// values from slightly different instants; each value on its own is always one that was stored.
///
/// # Fractions: one rule for bad input
///
/// CPU and memory are fractions in `0.0..=1.0`. Two ways to store one:
///
/// - [`try_update_cpu_usage`](Self::try_update_cpu_usage) (and the memory twin) **rejects**
///   anything that is not a finite number in `0.0..=1.0` with [`InvalidUsage`] and stores
///   nothing.
/// - [`update_cpu_usage`](Self::update_cpu_usage) (the spec's method, which cannot fail)
///   **ignores NaN** (the previous value stays, and [`rejected_updates`](Self::rejected_updates)
///   counts it) and **clamps** everything else into range: a reading above 1.0 (or `+inf`) means
///   "fully used" and is stored as 1.0, a negative one as 0.0.
///
/// So no update ever stores a value outside `0.0..=1.0`, and garbage never raises the level
/// above what the nearest valid reading calls for.
///
/// # Counters
///
/// Connections and tasks can be set outright, incremented and decremented (decrements stop at
/// zero, they never wrap), or tracked with guards ([`track_task`](Self::track_task),
/// [`track_connection`](Self::track_connection)) that count one for as long as they live.
///
/// ```
/// use recovery_degradation::ResourceMonitor;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let monitor = ResourceMonitor::new();
/// monitor.update_cpu_usage(0.85);
/// monitor.update_cpu_usage(f64::NAN); // ignored
/// monitor.update_memory_usage(1.7); // clamped
/// assert!(monitor.try_update_memory_usage(-0.1).is_err());
/// monitor.increment_tasks();
/// let usage = monitor.get_usage().await;
/// assert_eq!((usage.cpu_percent, usage.memory_percent, usage.active_tasks), (0.85, 1.0, 1));
/// assert_eq!(monitor.rejected_updates(), 1);
/// # }
/// ```
#[derive(Default)]
pub struct ResourceMonitor {
    /// `f64::to_bits` of the CPU fraction.
    cpu_bits: AtomicU64,
    /// `f64::to_bits` of the memory fraction.
    memory_bits: AtomicU64,
    connections: AtomicU64,
    tasks: AtomicU64,
    rejected: AtomicU64,
}

/// Which fraction an update is for (used in errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fraction {
    Cpu,
    Memory,
}

impl Fraction {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu usage",
            Self::Memory => "memory usage",
        }
    }
}

impl ResourceMonitor {
    /// A monitor with every value at zero.
    pub fn new() -> Self {
        Self::default()
    }

    fn cell(&self, which: Fraction) -> &AtomicU64 {
        match which {
            Fraction::Cpu => &self.cpu_bits,
            Fraction::Memory => &self.memory_bits,
        }
    }

    fn store_fraction(&self, which: Fraction, value: f64) {
        if value.is_nan() {
            self.rejected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // `clamp` maps +inf to 1.0 and -inf to 0.0; -0.0 is normalised to 0.0.
        let value = value.clamp(0.0, 1.0) + 0.0;
        self.cell(which).store(value.to_bits(), Ordering::Relaxed);
    }

    fn try_store_fraction(&self, which: Fraction, value: f64) -> Result<(), InvalidUsage> {
        if !(0.0..=1.0).contains(&value) {
            return Err(InvalidUsage {
                resource: which.name(),
                value,
            });
        }
        self.cell(which)
            .store((value + 0.0).to_bits(), Ordering::Relaxed);
        Ok(())
    }

    fn load_fraction(&self, which: Fraction) -> f64 {
        f64::from_bits(self.cell(which).load(Ordering::Relaxed))
    }

    /// Store the CPU fraction: NaN is ignored, anything else is clamped into `0.0..=1.0`.
    pub fn update_cpu_usage(&self, fraction: f64) {
        self.store_fraction(Fraction::Cpu, fraction);
    }

    /// Store the memory fraction: NaN is ignored, anything else is clamped into `0.0..=1.0`.
    pub fn update_memory_usage(&self, fraction: f64) {
        self.store_fraction(Fraction::Memory, fraction);
    }

    /// Store the CPU fraction, or reject it (storing nothing) unless it is in `0.0..=1.0`.
    pub fn try_update_cpu_usage(&self, fraction: f64) -> Result<(), InvalidUsage> {
        self.try_store_fraction(Fraction::Cpu, fraction)
    }

    /// Store the memory fraction, or reject it (storing nothing) unless it is in `0.0..=1.0`.
    pub fn try_update_memory_usage(&self, fraction: f64) -> Result<(), InvalidUsage> {
        self.try_store_fraction(Fraction::Memory, fraction)
    }

    /// How many NaN updates [`update_cpu_usage`](Self::update_cpu_usage) and
    /// [`update_memory_usage`](Self::update_memory_usage) ignored.
    pub fn rejected_updates(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }

    /// Set the number of open connections.
    pub fn set_active_connections(&self, count: u64) {
        self.connections.store(count, Ordering::Relaxed);
    }

    /// One more open connection.
    pub fn increment_connections(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    /// One fewer open connection (stays at zero rather than wrapping).
    pub fn decrement_connections(&self) {
        saturating_decrement(&self.connections);
    }

    /// Set the number of running tasks.
    pub fn set_active_tasks(&self, count: u64) {
        self.tasks.store(count, Ordering::Relaxed);
    }

    /// One more running task: a single relaxed `fetch_add`.
    #[inline]
    pub fn increment_tasks(&self) {
        self.tasks.fetch_add(1, Ordering::Relaxed);
    }

    /// One fewer running task (stays at zero rather than wrapping).
    pub fn decrement_tasks(&self) {
        saturating_decrement(&self.tasks);
    }

    /// Count a running task until the returned guard is dropped.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use recovery_degradation::ResourceMonitor;
    /// let monitor = Arc::new(ResourceMonitor::new());
    /// let guard = monitor.track_task();
    /// assert_eq!(monitor.active_tasks(), 1);
    /// drop(guard);
    /// assert_eq!(monitor.active_tasks(), 0);
    /// ```
    pub fn track_task(self: &Arc<Self>) -> ActivityGuard {
        self.increment_tasks();
        ActivityGuard {
            monitor: Arc::clone(self),
            counter: Counter::Tasks,
        }
    }

    /// Count an open connection until the returned guard is dropped.
    pub fn track_connection(self: &Arc<Self>) -> ActivityGuard {
        self.increment_connections();
        ActivityGuard {
            monitor: Arc::clone(self),
            counter: Counter::Connections,
        }
    }

    /// The number of running tasks, without building a whole [`ResourceUsage`].
    pub fn active_tasks(&self) -> u64 {
        self.tasks.load(Ordering::Relaxed)
    }

    /// The number of open connections.
    pub fn active_connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// The current reading, without awaiting (what [`get_usage`](Self::get_usage) returns).
    pub fn usage(&self) -> ResourceUsage {
        ResourceUsage {
            cpu_percent: self.load_fraction(Fraction::Cpu),
            memory_percent: self.load_fraction(Fraction::Memory),
            active_connections: self.connections.load(Ordering::Relaxed),
            active_tasks: self.tasks.load(Ordering::Relaxed),
        }
    }

    /// The current reading (the spec's async method; it never waits).
    pub async fn get_usage(&self) -> ResourceUsage {
        self.usage()
    }
}

impl fmt::Debug for ResourceMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResourceMonitor")
            .field("usage", &self.usage())
            .field("rejected_updates", &self.rejected_updates())
            .finish()
    }
}

fn saturating_decrement(counter: &AtomicU64) {
    // `Err` only means the counter was already zero: nothing to do.
    let _ = counter.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
}

#[derive(Debug, Clone, Copy)]
enum Counter {
    Tasks,
    Connections,
}

/// Counts one task or connection on a [`ResourceMonitor`] for as long as it lives.
#[must_use = "the count is taken back when the guard is dropped"]
#[derive(Debug)]
pub struct ActivityGuard {
    monitor: Arc<ResourceMonitor>,
    counter: Counter,
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        match self.counter {
            Counter::Tasks => self.monitor.decrement_tasks(),
            Counter::Connections => self.monitor.decrement_connections(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_is_ignored_and_out_of_range_is_clamped() {
        let m = ResourceMonitor::new();
        m.update_cpu_usage(0.4);
        m.update_cpu_usage(f64::NAN);
        assert_eq!(m.usage().cpu_percent, 0.4);
        assert_eq!(m.rejected_updates(), 1);
        m.update_cpu_usage(f64::INFINITY);
        assert_eq!(m.usage().cpu_percent, 1.0);
        m.update_cpu_usage(-3.0);
        assert_eq!(m.usage().cpu_percent, 0.0);
        m.update_memory_usage(f64::NEG_INFINITY);
        assert_eq!(m.usage().memory_percent, 0.0);
        m.update_memory_usage(-0.0);
        assert!(m.usage().memory_percent.is_sign_positive());
    }

    #[test]
    fn try_update_rejects_and_stores_nothing() {
        let m = ResourceMonitor::new();
        m.try_update_memory_usage(0.7).unwrap();
        for bad in [f64::NAN, 1.000_001, -0.01, f64::INFINITY] {
            let e = m.try_update_memory_usage(bad).unwrap_err();
            assert_eq!(e.resource, "memory usage");
            assert!(e.to_string().contains("0.0..=1.0"), "{e}");
        }
        assert_eq!(m.usage().memory_percent, 0.7);
        m.try_update_cpu_usage(1.0).unwrap();
        m.try_update_cpu_usage(0.0).unwrap();
    }

    #[test]
    fn counters_never_wrap() {
        let m = Arc::new(ResourceMonitor::new());
        m.decrement_tasks();
        m.decrement_connections();
        assert_eq!(m.usage().active_tasks, 0);
        assert_eq!(m.usage().active_connections, 0);
        m.set_active_connections(5);
        let g = m.track_connection();
        assert_eq!(m.active_connections(), 6);
        drop(g);
        assert_eq!(m.active_connections(), 5);
    }

    #[test]
    fn counters_add_up_across_threads() {
        let m = Arc::new(ResourceMonitor::new());
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        let _g = m.track_task();
                        m.increment_connections();
                    }
                });
            }
        });
        assert_eq!(m.active_tasks(), 0);
        assert_eq!(m.active_connections(), 40_000);
    }
}
