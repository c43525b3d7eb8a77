//! The sysinfo sampler on this machine: values in range, memory that follows an allocation, and
//! cgroup limits read from files laid out as the kernel lays them out.

use std::fs;
use std::hint::black_box;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use recovery_degradation::{
    CgroupMemory, MemorySource, ResourceMonitor, ResourceSampler, Sample, Scope, SystemSampler,
};

const MIB: u64 = 1 << 20;

/// Tests that allocate or measure this process's memory take turns, so one test's buffer does
/// not show up in another's reading.
static MEMORY: Mutex<()> = Mutex::new(());

fn memory_turn() -> MutexGuard<'static, ()> {
    MEMORY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A buffer of `bytes` whose every page has been written, so it is resident.
fn resident_buffer(bytes: u64) -> Vec<u8> {
    let mut buffer = vec![0u8; bytes as usize];
    for page in buffer.chunks_mut(4096) {
        page[0] = 1;
    }
    black_box(buffer)
}

/// What the sampler divides memory by: the cgroup limit when it applies, else MemTotal.
fn memory_denominator(sampler: &SystemSampler) -> f64 {
    if sampler.last_memory_source() != Some(MemorySource::Host) {
        let reading = sampler.cgroup().and_then(CgroupMemory::read).unwrap();
        return reading.limit_bytes as f64;
    }
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
    let kib: f64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib * 1024.0
}

/// Spin this thread for `d` of real time (a CPU rate needs a real interval).
fn spin(d: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < d {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn assert_in_range(sample: Sample) {
    for value in [sample.cpu, sample.memory].into_iter().flatten() {
        assert!((0.0..=1.0).contains(&value), "{sample:?}");
    }
}

#[test]
fn host_and_process_samples_are_in_range() {
    let _turn = memory_turn();
    for scope in [Scope::Host, Scope::Process] {
        let monitor = ResourceMonitor::new();
        let mut sampler = SystemSampler::with_scope(scope);
        assert_eq!(sampler.scope(), scope);
        // Sooner than the CPU interval: no CPU rate yet, memory always.
        let early = sampler.sample();
        assert_in_range(early);
        assert!(early.memory.is_some());
        spin(Duration::from_millis(250));
        let sample = sampler.sample_into(&monitor);
        assert_in_range(sample);
        let (cpu, memory) = (sample.cpu.unwrap(), sample.memory.unwrap());
        assert!(memory > 0.0, "{scope:?}: something is resident");
        assert!(cpu > 0.0, "{scope:?}: this thread was spinning");
        let usage = monitor.usage();
        assert_eq!((usage.cpu_percent, usage.memory_percent), (cpu, memory));
        // A sample right after repeats the CPU reading instead of a meaningless rate.
        assert_eq!(sampler.sample().cpu, Some(cpu));
    }
}

#[test]
fn process_memory_follows_an_allocation() {
    let _turn = memory_turn();
    let mut sampler = SystemSampler::process();
    let before = sampler.sample().memory.unwrap();
    let bytes = 256 * MIB;
    let buffer = resident_buffer(bytes);
    let during = sampler.sample().memory.unwrap();
    let expected = bytes as f64 / memory_denominator(&sampler);
    drop(buffer);
    let after = sampler.sample().memory.unwrap();
    assert!(
        during - before >= 0.9 * expected,
        "rss fraction {before} -> {during}, expected a rise of {expected}"
    );
    assert!(
        during - after >= 0.9 * expected,
        "rss fraction {during} -> {after} after freeing, expected a fall of {expected}"
    );
}

#[test]
fn host_memory_is_what_the_kernel_reports() {
    // What the host scope reads is the kernel's own figure, (MemTotal - MemAvailable) /
    // MemTotal, or the cgroup's when a limit applies. Whether an allocation shows in that
    // figure is the kernel's business: on some VMs a touched 512 MiB buffer moves MemAvailable
    // by a tenth of that. So compare with /proc/meminfo read right after, allowing for other
    // processes on a shared machine with a few tries.
    let _turn = memory_turn();
    let mut sampler = SystemSampler::host();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let ours = sampler.sample().memory.unwrap();
        if sampler.last_memory_source() != Some(MemorySource::Host) {
            // A cgroup limit applies; the cgroup tests cover that reading.
            return;
        }
        let meminfo = fs::read_to_string("/proc/meminfo").unwrap();
        let field = |name: &str| -> f64 {
            meminfo
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap()
        };
        let kernel = (field("MemTotal:") - field("MemAvailable:")) / field("MemTotal:");
        if (ours - kernel).abs() < 0.01 {
            return;
        }
        seen.push((ours, kernel));
    }
    panic!("host memory fraction differs from /proc/meminfo: {seen:?}");
}

fn write(dir: &std::path::Path, file: &str, text: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join(file), text).unwrap();
}

#[test]
fn cgroup_v2_limit_and_working_set() {
    let root = tempfile::tempdir().unwrap();
    let own = root.path().join("system.slice/app.service");
    write(&own, "memory.max", "1073741824\n");
    write(&own, "memory.current", "805306368\n");
    write(
        &own,
        "memory.stat",
        "anon 500000000\nfile 300000000\ninactive_file 268435456\nactive_file 1\n",
    );
    let cg = CgroupMemory::detect_in(root.path(), "0::/system.slice/app.service\n").unwrap();
    assert_eq!(cg.source(), MemorySource::CgroupV2);
    assert_eq!(cg.dir(), own);
    let r = cg.read().unwrap();
    assert_eq!(r.limit_bytes, 1 << 30);
    assert_eq!(r.usage_bytes, 768 * MIB);
    assert_eq!(r.working_set_bytes, 512 * MIB);
    assert_eq!(r.fraction(), 0.5);

    // The sampler measures host-scope memory against that limit, exactly.
    let mut sampler = SystemSampler::host().with_cgroup(Some(cg.clone()));
    assert_eq!(sampler.sample().memory, Some(0.5));
    assert_eq!(sampler.last_memory_source(), Some(MemorySource::CgroupV2));

    // No limit set: the host is measured instead.
    write(&own, "memory.max", "max\n");
    assert_eq!(cg.read(), None);
    let memory = sampler.sample().memory.unwrap();
    assert!((0.0..=1.0).contains(&memory));
    assert_eq!(sampler.last_memory_source(), Some(MemorySource::Host));
}

#[test]
fn cgroup_v2_namespace_root_and_v1() {
    // Inside a cgroup namespace the own path is "/" and the files sit at the mount root.
    let root = tempfile::tempdir().unwrap();
    write(root.path(), "memory.max", "2147483648");
    write(root.path(), "memory.current", "3221225472");
    let cg = CgroupMemory::detect_in(root.path(), "0::/\n").unwrap();
    let r = cg.read().unwrap();
    assert_eq!(
        r.working_set_bytes,
        3 << 30,
        "no memory.stat: nothing subtracted"
    );
    assert_eq!(r.fraction(), 1.0, "over the limit is clamped");

    let root = tempfile::tempdir().unwrap();
    let own = root.path().join("memory/docker/abc");
    write(&own, "memory.limit_in_bytes", "536870912\n");
    write(&own, "memory.usage_in_bytes", "268435456\n");
    write(
        &own,
        "memory.stat",
        "cache 1\ntotal_inactive_file 134217728\n",
    );
    let text = "12:pids:/docker/abc\n4:memory:/docker/abc\n0::/\n";
    let cg = CgroupMemory::detect_in(root.path(), text).unwrap();
    assert_eq!(cg.source(), MemorySource::CgroupV1);
    assert_eq!(cg.read().unwrap().fraction(), 0.25);

    // v1 writes "no limit" as a page-rounded i64::MAX.
    write(&own, "memory.limit_in_bytes", "9223372036854771712\n");
    assert_eq!(cg.read(), None);

    // Nothing mounted: no cgroup.
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(CgroupMemory::detect_in(empty.path(), text), None);
    // Garbage in the files is no reading, not a panic.
    write(&own, "memory.limit_in_bytes", "lots\n");
    assert_eq!(cg.read(), None);
}
