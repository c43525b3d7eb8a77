//! Samplers: where real CPU and memory readings come from.

use serde::{Deserialize, Serialize};

use crate::monitor::ResourceMonitor;

/// One reading of CPU and memory; `None` where nothing could be measured (yet).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// CPU fraction in `0.0..=1.0`, if measured.
    pub cpu: Option<f64>,
    /// Memory fraction in `0.0..=1.0`, if measured.
    pub memory: Option<f64>,
}

/// A source of CPU and memory readings that feeds a [`ResourceMonitor`].
///
/// The manager's monitoring loop calls [`sample_into`](Self::sample_into) once per interval.
/// Sampling is synchronous and quick (it reads a few files under `/proc` on Linux); a loop that
/// must never block may call it from `spawn_blocking`.
///
/// ```
/// use recovery_degradation::{ResourceMonitor, ResourceSampler, Sample};
///
/// /// A sampler that replays fixed readings (for tests).
/// struct Fixed(Sample);
/// impl ResourceSampler for Fixed {
///     fn sample(&mut self) -> Sample { self.0 }
/// }
///
/// let monitor = ResourceMonitor::new();
/// Fixed(Sample { cpu: Some(0.5), memory: None }).sample_into(&monitor);
/// assert_eq!(monitor.usage().cpu_percent, 0.5);
/// ```
pub trait ResourceSampler: Send {
    /// Take a reading.
    fn sample(&mut self) -> Sample;

    /// Take a reading and store what was measured in `monitor` (what was not measured is left
    /// as it was). Returns the reading.
    fn sample_into(&mut self, monitor: &ResourceMonitor) -> Sample {
        let sample = self.sample();
        if let Some(cpu) = sample.cpu {
            monitor.update_cpu_usage(cpu);
        }
        if let Some(memory) = sample.memory {
            monitor.update_memory_usage(memory);
        }
        sample
    }
}

/// Whose CPU and memory a `SystemSampler` (feature `sysinfo`) measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The whole host (or container): all CPUs' busy share; memory in use.
    Host,
    /// This process only: its CPU time as a share of the CPUs it may use
    /// (`std::thread::available_parallelism`, which honours cgroup quotas), and its resident
    /// memory.
    Process,
}

/// What a memory fraction was measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemorySource {
    /// The host's total memory.
    Host,
    /// A cgroup v1 memory limit (`memory.limit_in_bytes`).
    CgroupV1,
    /// A cgroup v2 memory limit (`memory.max`).
    CgroupV2,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fails to compile the day someone makes the trait object-unsafe (the manager holds a
    // `Box<dyn ResourceSampler>`).
    fn _object_safe(_: Box<dyn ResourceSampler>) {}
}
