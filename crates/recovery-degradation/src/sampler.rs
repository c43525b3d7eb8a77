//! Samplers: where real CPU and memory readings come from.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sysinfo::{MINIMUM_CPU_UPDATE_INTERVAL, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

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

/// Whose CPU and memory a [`SystemSampler`] measures.
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

/// The memory controller of the cgroup this process runs in (v1 or v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMemory {
    dir: PathBuf,
    source: MemorySource,
}

/// One reading of a cgroup's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupMemoryReading {
    /// The limit, in bytes.
    pub limit_bytes: u64,
    /// Memory charged to the cgroup, page cache included.
    pub usage_bytes: u64,
    /// `usage_bytes` less the inactive file cache (which the kernel reclaims before it kills).
    pub working_set_bytes: u64,
    /// Which cgroup version it came from.
    pub source: MemorySource,
}

impl CgroupMemoryReading {
    /// The working set as a fraction of the limit, in `0.0..=1.0`.
    pub fn fraction(&self) -> f64 {
        if self.limit_bytes == 0 {
            return 1.0;
        }
        (self.working_set_bytes as f64 / self.limit_bytes as f64).clamp(0.0, 1.0)
    }
}

/// cgroup v1 writes "no limit" as a huge number (a page-rounded `i64::MAX`).
const V1_NO_LIMIT: u64 = 1 << 60;

impl CgroupMemory {
    /// The cgroup of this process, from `/proc/self/cgroup` under `/sys/fs/cgroup`; `None`
    /// outside Linux or when no memory controller is mounted.
    pub fn detect() -> Option<Self> {
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        Self::detect_in(Path::new("/sys/fs/cgroup"), &own)
    }

    /// The cgroup named by `proc_self_cgroup` (the text of `/proc/self/cgroup`) under the
    /// cgroup mount `root`.
    ///
    /// v2 (a `0::/path` line): `root/path/memory.max`, else `root/memory.max` (the usual view
    /// inside a container with a cgroup namespace). v1 (a `N:memory:/path` line):
    /// `root/memory/path/memory.limit_in_bytes`, else `root/memory/memory.limit_in_bytes`.
    /// v2 is preferred when both are present.
    pub fn detect_in(root: &Path, proc_self_cgroup: &str) -> Option<Self> {
        let mut v2_path = None;
        let mut v1_path = None;
        for line in proc_self_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let path = path.trim().trim_start_matches('/');
            if id == "0" && controllers.is_empty() {
                v2_path = Some(path.to_owned());
            } else if controllers.split(',').any(|c| c == "memory") {
                v1_path = Some(path.to_owned());
            }
        }
        let pick = |base: PathBuf, own: Option<&String>, file: &str| -> Option<PathBuf> {
            let mut candidates = Vec::new();
            if let Some(own) = own.filter(|p| !p.is_empty()) {
                candidates.push(base.join(own));
            }
            candidates.push(base);
            candidates.into_iter().find(|d| d.join(file).is_file())
        };
        if let Some(dir) = pick(root.to_path_buf(), v2_path.as_ref(), "memory.max") {
            return Some(Self {
                dir,
                source: MemorySource::CgroupV2,
            });
        }
        if let Some(dir) = pick(
            root.join("memory"),
            v1_path.as_ref(),
            "memory.limit_in_bytes",
        ) {
            return Some(Self {
                dir,
                source: MemorySource::CgroupV1,
            });
        }
        None
    }

    /// The cgroup directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Which cgroup version.
    pub fn source(&self) -> MemorySource {
        self.source
    }

    /// The current reading, or `None` when the cgroup sets no limit or its files cannot be read.
    pub fn read(&self) -> Option<CgroupMemoryReading> {
        let read_u64 = |file: &str| -> Option<String> {
            fs::read_to_string(self.dir.join(file))
                .ok()
                .map(|s| s.trim().to_owned())
        };
        let (limit_file, usage_file, inactive_key) = match self.source {
            MemorySource::CgroupV2 => ("memory.max", "memory.current", "inactive_file"),
            _ => (
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
                "total_inactive_file",
            ),
        };
        let limit = read_u64(limit_file)?;
        if limit == "max" {
            return None;
        }
        let limit_bytes: u64 = limit.parse().ok()?;
        if limit_bytes == 0 || limit_bytes >= V1_NO_LIMIT {
            return None;
        }
        let usage_bytes: u64 = read_u64(usage_file)?.parse().ok()?;
        let inactive = read_u64("memory.stat")
            .and_then(|stat| {
                stat.lines().find_map(|line| {
                    let (key, value) = line.split_once(' ')?;
                    (key == inactive_key).then(|| value.trim().parse::<u64>().ok())?
                })
            })
            .unwrap_or(0);
        Some(CgroupMemoryReading {
            limit_bytes,
            usage_bytes,
            working_set_bytes: usage_bytes.saturating_sub(inactive),
            source: self.source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fails to compile the day someone makes the trait object-unsafe (the manager holds a
    // `Box<dyn ResourceSampler>`).
    fn _object_safe(_: Box<dyn ResourceSampler>) {}

    #[test]
    fn system_sampler_is_a_resource_sampler() {
        let mut boxed: Box<dyn ResourceSampler> = Box::new(SystemSampler::process());
        let monitor = ResourceMonitor::new();
        let sample = boxed.sample_into(&monitor);
        assert_eq!(sample.memory, Some(monitor.usage().memory_percent));
    }
}
