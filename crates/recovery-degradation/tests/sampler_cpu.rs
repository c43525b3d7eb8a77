//! Process CPU follows this process's own spinning, and not another process's.
//!
//! Its own test binary, so no other test's threads run in this process while it measures.
//! A CPU rate needs real time: each window is real work (this thread spinning, or a child
//! process spinning while this one waits for it), about 0.5 s each, never a timer.

#![cfg(target_os = "linux")]

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use recovery_degradation::{ResourceSampler, SystemSampler};

fn spin(d: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < d {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

#[test]
fn process_cpu_rises_when_this_process_spins_a_core() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let mut process = SystemSampler::process();
    let mut host = SystemSampler::host();

    // Window 1: a child process spins; this one only waits for it to exit.
    let status = Command::new("timeout")
        .args(["0.5", "sh", "-c", "while :; do :; done"])
        .status()
        .expect("run a spinning child");
    assert_eq!(status.code(), Some(124), "timeout ended the child");
    let elsewhere = process.sample().cpu.unwrap();

    // Window 2: this thread spins one core.
    spin(Duration::from_millis(500));
    let here = process.sample().cpu.unwrap();
    let host_cpu = host.sample().cpu.unwrap();

    eprintln!(
        "process cpu: child spinning {elsewhere:.3}, self spinning {here:.3}; host {host_cpu:.3}; {cpus} cpus"
    );
    assert!((0.0..=1.0).contains(&elsewhere) && (0.0..=1.0).contains(&here));
    assert!((0.0..=1.0).contains(&host_cpu) && host_cpu > 0.0);
    // One spinning thread is one core's worth of the CPUs we may use; on a shared machine it
    // gets its fair share of a core (a third with two other busy threads per core, measured at
    // about 0.34 of 2 CPUs with two busy loops beside it), so ask for a quarter of one.
    assert!(here >= 0.25 / cpus, "spinning one core read as {here}");
    assert!(
        elsewhere < here / 2.0,
        "waiting read as {elsewhere}, spinning as {here}"
    );
}
