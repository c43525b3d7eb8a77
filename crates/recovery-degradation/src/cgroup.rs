//! The memory controller of this process's cgroup: a memory limit that is not the host's.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::sampler::MemorySource;

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
