//! `cargo xtask test`: every step CI runs, each run even when an earlier one failed, and one
//! closing line `xtask test: N passed, N failed` over the steps and the tests they ran.

use crate::cmd::{self, Error};
use crate::{postgres, soak, tidy};

/// The steps and tests passed and failed so far.
#[derive(Debug, Default)]
struct Tally {
    passed: u64,
    failed: u64,
    failures: Vec<String>,
}

impl Tally {
    /// A step that is one check (fmt, clippy, a build).
    fn step(&mut self, what: &str, outcome: cmd::Result) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(e) => {
                eprintln!("xtask: FAILED: {what}: {e}");
                self.failed += 1;
                self.failures.push(what.to_owned());
            }
        }
    }

    /// A step that runs tests: its tests count, and the step counts as a failure of its own
    /// when it failed without a failed test (it did not build, say).
    fn tests(&mut self, what: &str, (outcome, passed, failed): (cmd::Result, u64, u64)) {
        self.passed += passed;
        self.failed += failed;
        if let Err(e) = outcome {
            eprintln!("xtask: FAILED: {what}: {e}");
            if failed == 0 {
                self.failed += 1;
            }
            self.failures.push(what.to_owned());
        }
    }
}

/// The README's test command.
pub(crate) fn run() -> cmd::Result {
    eprintln!(
        "xtask: test (on a fresh clone the first steps compile the workspace, a few minutes)"
    );
    let mut t = Tally::default();
    t.step(
        "cargo fmt --check",
        cmd::cargo(&["fmt", "--all", "--", "--check"]),
    );
    t.step(
        "cargo clippy -D warnings",
        cmd::cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    );
    t.step("tidy", tidy::run());
    // The tests of swarm-postgres need a server: a throwaway one (installed if missing) unless
    // SWARM_POSTGRES_URL names one; they fail, never skip, without it here. It is stopped when
    // this function returns, also on failure.
    let server = match postgres::Server::start() {
        Ok(s) => Some(s),
        Err(e) => {
            t.step("start PostgreSQL", Err(e));
            None
        }
    };
    // Property tests run here with a modest case count; `cargo xtask proptest` runs many more.
    let mut env = vec![("PROPTEST_CASES", "64")];
    if let Some(s) = &server {
        env.extend(s.env());
    } else {
        env.push(("SWARM_POSTGRES_REQUIRED", "1"));
    }
    t.tests(
        "workspace tests",
        cmd::cargo_test(&["test", "--workspace", "--all-targets"], &env),
    );
    t.tests(
        "doctests",
        cmd::cargo_test(&["test", "--workspace", "--doc"], &env),
    );
    // The lean retry crate: the schedule, the budget and the standalone retry alone.
    t.tests(
        "recovery-backoff without default features",
        cmd::cargo_test(
            &["test", "-p", "recovery-backoff", "--no-default-features"],
            &[],
        ),
    );
    for features in crate::manager_feature_sets() {
        let mut args = vec!["test", "-p", "recovery-manager", "--no-default-features"];
        if !features.is_empty() {
            args.extend(["--features", features]);
        }
        t.tests(
            &format!("recovery-manager with [{features}]"),
            cmd::cargo_test(&args, &[("PROPTEST_CASES", "16")]),
        );
    }
    // Every combination a user can pick builds: the manager's four strategies and workflows in
    // all 32 combinations (with `sysinfo` beside `degradation`), and the umbrella's features
    // alone.
    for features in crate::strategy_powerset() {
        t.step(
            &format!("recovery-manager builds with [{features}]"),
            cmd::cargo(&[
                "check",
                "--quiet",
                "-p",
                "recovery-manager",
                "--no-default-features",
                "--features",
                &features,
            ]),
        );
    }
    for feature in [
        "",
        "backoff",
        "checkpoint",
        "degradation",
        "healing",
        "sysinfo",
        "coordinator",
        "testkit",
        "workflow",
    ] {
        t.step(
            &format!("swarm-recovery builds with [{feature}]"),
            cmd::cargo(&[
                "check",
                "--quiet",
                "-p",
                "swarm-recovery",
                "--no-default-features",
                "--features",
                feature,
            ]),
        );
    }
    if crate::has_crash_test() {
        t.step(
            "crash test",
            crate::crash_test(&["--iterations".into(), "20".into()]),
        );
    }
    // The short soak: 16 simulated days, every invariant checked after every event, and the
    // default workload's throughput with faults against the same workload without.
    t.step("short soak", soak::run(&soak::Soak::short()));
    // The same with the learned order, predictive degradation, breakers and a workflow on.
    t.step(
        "short soak, enhancements on",
        soak::run(&soak::Soak::short_enhanced()),
    );
    t.step("throughput with faults", soak::throughput_check());
    // Predictive degradation against the plain controller under ramped waves, 8 seeds each (`cargo xtask prediction` runs 16).
    t.step("prediction comparison", crate::prediction::run(8));
    // The multi-process test: 3 instance processes sharing 10,000 tasks on the server, one
    // killed every 3 s and one paused past its leases; every task completed exactly once.
    if let Some(s) = &server {
        t.step(
            "multi-instance drill",
            cmd::cargo(&[
                "run",
                "--quiet",
                "--release",
                "-p",
                "swarm-drill",
                "--",
                "--postgres",
                s.url(),
            ]),
        );
    }
    drop(server);
    println!("xtask test: {} passed, {} failed", t.passed, t.failed);
    if t.failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!("failed: {}", t.failures.join(", "))))
    }
}
