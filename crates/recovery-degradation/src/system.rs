//! `SystemSampler`: real CPU and memory readings from the `sysinfo` crate (feature `sysinfo`,
//! on by default).

use std::time::Instant;

use sysinfo::{MINIMUM_CPU_UPDATE_INTERVAL, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::cgroup::CgroupMemory;
use crate::sampler::{MemorySource, ResourceSampler, Sample, Scope};

/// Reads real CPU and memory through the `sysinfo` crate.
///
/// # Memory in a container
///
/// When the process runs in a cgroup with a memory limit (v2 `memory.max`, v1
/// `memory.limit_in_bytes`) smaller than the host's memory, memory is measured against that
/// limit, because that is where the kernel's OOM killer acts: in [`Scope::Host`] the fraction is
/// the cgroup's working set (usage less inactive file cache, as `memory.stat` reports it, which
/// is what kubelet and docker report) over the limit; in [`Scope::Process`] it is the process's
/// resident memory over the limit. Without a limit, the host's used memory (total less
/// available) or the process's resident memory over the host's total.
///
/// # CPU needs an interval
///
/// CPU usage is a rate: it is measured between two refreshes at least
/// [`sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`] apart (200 ms on Linux). The sampler takes the first
/// refresh when it is built; a sample taken sooner than that interval after the previous CPU
/// refresh repeats the previous CPU reading (or `None` if there is none yet) rather than
/// report a meaningless rate. Memory is read fresh on every sample.
///
/// ```
/// use recovery_degradation::{ResourceMonitor, ResourceSampler, SystemSampler};
/// let monitor = ResourceMonitor::new();
/// let mut sampler = SystemSampler::host();
/// let sample = sampler.sample_into(&monitor);
/// let memory = sample.memory.expect("memory is measured on every sample");
/// assert!((0.0..=1.0).contains(&memory));
/// assert_eq!(monitor.usage().memory_percent, memory);
/// ```
pub struct SystemSampler {
    /// Refreshed only for CPU: sysinfo moves a process's CPU-time baseline on every refresh of
    /// that process, whatever is asked for, so memory refreshes must not touch this one.
    cpu_system: System,
    memory_system: System,
    scope: Scope,
    pid: Option<Pid>,
    cgroup: Option<CgroupMemory>,
    last_cpu_refresh: Option<Instant>,
    last_cpu: Option<f64>,
    process_cpu_ms: Option<u64>,
    last_memory_source: Option<MemorySource>,
}

impl std::fmt::Debug for SystemSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemSampler")
            .field("scope", &self.scope)
            .field("pid", &self.pid)
            .field("cgroup", &self.cgroup)
            .field("last_cpu", &self.last_cpu)
            .field("last_memory_source", &self.last_memory_source)
            .finish_non_exhaustive()
    }
}

impl SystemSampler {
    /// A sampler of the whole host (or container), with the cgroup detected.
    pub fn host() -> Self {
        Self::with_scope(Scope::Host)
    }

    /// A sampler of this process, with the cgroup detected.
    pub fn process() -> Self {
        Self::with_scope(Scope::Process)
    }

    /// A sampler of `scope`, with the cgroup detected ([`CgroupMemory::detect`]).
    pub fn with_scope(scope: Scope) -> Self {
        let mut sampler = Self {
            cpu_system: System::new(),
            memory_system: System::new(),
            scope,
            pid: sysinfo::get_current_pid().ok(),
            cgroup: CgroupMemory::detect(),
            last_cpu_refresh: None,
            last_cpu: None,
            process_cpu_ms: None,
            last_memory_source: None,
        };
        sampler.process_cpu_ms = sampler.refresh_cpu();
        sampler
    }

    /// The same sampler measuring memory against `cgroup` (or, with `None`, against the host
    /// only) instead of the detected one.
    pub fn with_cgroup(mut self, cgroup: Option<CgroupMemory>) -> Self {
        self.cgroup = cgroup;
        self
    }

    /// The scope.
    pub fn scope(&self) -> Scope {
        self.scope
    }

    /// The cgroup memory is measured against when it has a limit.
    pub fn cgroup(&self) -> Option<&CgroupMemory> {
        self.cgroup.as_ref()
    }

    /// What the last memory reading was measured against.
    pub fn last_memory_source(&self) -> Option<MemorySource> {
        self.last_memory_source
    }

    /// Refresh CPU times; returns this process's accumulated CPU time (ms) for
    /// [`Scope::Process`].
    fn refresh_cpu(&mut self) -> Option<u64> {
        self.last_cpu_refresh = Some(Instant::now());
        match self.scope {
            Scope::Host => {
                self.cpu_system.refresh_cpu_usage();
                None
            }
            Scope::Process => {
                let pid = self.pid?;
                self.cpu_system.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing().with_cpu(),
                );
                Some(self.cpu_system.process(pid)?.accumulated_cpu_time())
            }
        }
    }

    fn sample_cpu(&mut self) -> Option<f64> {
        let previous = self.last_cpu_refresh?;
        if previous.elapsed() < MINIMUM_CPU_UPDATE_INTERVAL {
            return self.last_cpu;
        }
        let previous_cpu_ms = self.process_cpu_ms;
        // The refresh at construction is the baseline, so this one measures a real interval.
        self.process_cpu_ms = self.refresh_cpu();
        let fraction = match self.scope {
            Scope::Host => f64::from(self.cpu_system.global_cpu_usage()) / 100.0,
            Scope::Process => {
                // CPU time over wall time, from sysinfo's accumulated CPU time. (Its per-refresh
                // `cpu_usage` stays 0 for a process whose CPU time was still 0 ticks at the
                // previous refresh, which a young, mostly idle process can be.)
                let spent_ms = self.process_cpu_ms?.saturating_sub(previous_cpu_ms?);
                let wall_ms = self
                    .last_cpu_refresh?
                    .duration_since(previous)
                    .as_secs_f64()
                    * 1000.0;
                let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
                spent_ms as f64 / wall_ms / cpus as f64
            }
        };
        if !fraction.is_finite() {
            return self.last_cpu;
        }
        self.last_cpu = Some(fraction.clamp(0.0, 1.0));
        self.last_cpu
    }

    fn sample_memory(&mut self) -> Option<f64> {
        self.memory_system.refresh_memory();
        let host_total = self.memory_system.total_memory();
        let limit = self
            .cgroup
            .as_ref()
            .and_then(CgroupMemory::read)
            .filter(|r| host_total == 0 || r.limit_bytes < host_total);
        let (used, total, source) = match (self.scope, limit) {
            (Scope::Host, Some(r)) => (r.working_set_bytes, r.limit_bytes, r.source),
            (Scope::Host, None) => (
                self.memory_system.used_memory(),
                host_total,
                MemorySource::Host,
            ),
            (Scope::Process, limit) => {
                let pid = self.pid?;
                self.memory_system.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing().with_memory(),
                );
                let rss = self.memory_system.process(pid)?.memory();
                match limit {
                    Some(r) => (rss, r.limit_bytes, r.source),
                    None => (rss, host_total, MemorySource::Host),
                }
            }
        };
        if total == 0 {
            return None;
        }
        self.last_memory_source = Some(source);
        Some((used as f64 / total as f64).clamp(0.0, 1.0))
    }
}

impl ResourceSampler for SystemSampler {
    fn sample(&mut self) -> Sample {
        Sample {
            cpu: self.sample_cpu(),
            memory: self.sample_memory(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::ResourceMonitor;

    #[test]
    fn system_sampler_is_a_resource_sampler() {
        let mut boxed: Box<dyn ResourceSampler> = Box::new(SystemSampler::process());
        let monitor = ResourceMonitor::new();
        let sample = boxed.sample_into(&monitor);
        assert_eq!(sample.memory, Some(monitor.usage().memory_percent));
    }
}
