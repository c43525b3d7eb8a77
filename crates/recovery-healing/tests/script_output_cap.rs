//! A script writing 1 GiB has its output cut at the cap, said to be cut, and the parent's memory
//! does not grow past a small multiple of the cap.
//!
//! Alone in its test binary, so no other test moves the process's memory high-water mark.

use std::time::Duration;

use recovery_healing::{ScriptRunner, ScriptSpec};

/// A field of `/proc/self/status` in KiB (`VmHWM`: the peak resident set; `VmRSS`: now).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

#[tokio::test]
async fn a_gibibyte_of_output_is_cut_at_the_cap_in_bounded_memory() {
    const CAP: usize = 1 << 20;
    const GIB: u64 = 1 << 30;
    let runner = ScriptRunner::new()
        .allow(
            "flood",
            ScriptSpec::new("/usr/bin/head")
                .unwrap()
                .with_args(["-c", &GIB.to_string(), "/dev/zero"])
                .with_output_cap(CAP)
                .with_timeout(Duration::from_secs(120)),
        )
        .unwrap();
    // Warm up the runtime's and the allocator's first use of process spawning.
    let warm = ScriptRunner::new()
        .allow("warm", ScriptSpec::new("/bin/echo").unwrap())
        .unwrap();
    warm.run("warm").await.unwrap();

    let hwm_before = status_kib("VmHWM");
    let out = runner.run("flood").await.unwrap();
    let hwm_after = status_kib("VmHWM");

    assert!(out.succeeded(), "head should run to its end: {out:?}");
    assert_eq!(out.stdout.len(), CAP);
    assert!(out.stdout.iter().all(|b| *b == 0));
    assert!(out.stdout_truncated);
    assert!(!out.stderr_truncated);
    let grown_kib = hwm_after.saturating_sub(hwm_before);
    let limit_kib = 4 * CAP as u64 / 1024;
    eprintln!("peak memory grew by {grown_kib} KiB (before {hwm_before} KiB)");
    assert!(
        grown_kib <= limit_kib,
        "peak memory grew by {grown_kib} KiB reading 1 GiB with a 1 MiB cap (limit {limit_kib} KiB)"
    );
}
