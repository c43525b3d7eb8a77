//! Project automation, run as `cargo xtask <task>` (the alias is in `.cargo/config.toml`).
//!
//! One module per task. xtask depends on nothing but `serde_json`, so it builds in seconds.

mod bench;
mod cmd;
mod mutants;
mod postgres;
mod prediction;
mod soak;
mod test;
mod tidy;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task> [args]

tasks:
  test                   fmt check, clippy -D warnings, tidy checks, every test and doctest of the
                         workspace, the manager's feature combinations (tests for each alone, a
                         build of all 16), the umbrella's features, a short crash test, the
                         short soak (16 seeds x 1 simulated day), the throughput check and
                         the prediction comparison
  proptest [--cases N]   only the property tests (names prop_*), N cases each (default 1000), release mode
  bench [--quick] [F]    criterion benches (optionally only those matching F), then the table of ratios
  crash-test [--iterations N]
                         kill a checkpoint writer N times (default 200) and check no checkpoint is torn or lost
  drill [ARGS]           run the chaos drill (release) with ARGS
  soak [--seeds N] [--days D] [--enhancements]
                         N seeds (default 16) of D simulated days (default 1) of the drill's
                         simulation mode, in parallel; one line per failing seed
  prediction [--seeds N]
                         N seeds (default 16) of a simulated day under ramped pressure waves,
                         without and with predictive degradation: both medians of the time at
                         Critical in each regime; fails unless prediction cuts it where checked
  mutants                each bug of issue 14 put back by hand (xtask/mutants/*.patch, applied to
                         a scratch worktree of HEAD) must be caught by the short soak
  with-postgres CMD [ARGS]
                         start a throwaway PostgreSQL (installed if missing), run CMD with
                         SWARM_POSTGRES_URL pointing at it, stop it
  ci                     what CI runs: the same as `test`
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((task, rest)) = args.split_first() else {
        eprint!("{USAGE}");
        return ExitCode::from(2);
    };
    let outcome = match task.as_str() {
        "test" | "ci" => test::run(),
        "proptest" => proptest(rest),
        "bench" => bench::run(rest),
        "crash-test" => crash_test(rest),
        "drill" => drill(rest),
        "soak" => soak::parse(rest).and_then(|s| soak::run(&s)),
        "prediction" => prediction::parse(rest).and_then(prediction::run),
        "mutants" => mutants::run(),
        "with-postgres" => with_postgres(rest),
        "tidy" => tidy::run(),
        "-h" | "--help" | "help" => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        other => Err(cmd::Error::Usage(format!("unknown task `{other}`"))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(cmd::Error::Usage(msg)) => {
            eprintln!("xtask: {msg}\n\n{USAGE}");
            ExitCode::from(2)
        }
        Err(cmd::Error::Exit(code)) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Every subset of the four strategy features, `sysinfo` with each that has `degradation`.
pub(crate) fn strategy_powerset() -> Vec<String> {
    let all = [
        "backoff",
        "checkpoint",
        "degradation",
        "healing",
        "workflow",
    ];
    (0..1u32 << all.len())
        .map(|mask| {
            let mut chosen: Vec<&str> = (0..all.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| all[i])
                .collect();
            if chosen.contains(&"degradation") {
                chosen.push("sysinfo");
            }
            chosen.join(",")
        })
        .collect()
}

/// Each strategy alone, and none (all is the workspace run above).
pub(crate) fn manager_feature_sets() -> [&'static str; 6] {
    [
        "",
        "backoff",
        "checkpoint",
        "degradation",
        "healing",
        "workflow",
    ]
}

fn proptest(args: &[String]) -> cmd::Result {
    let cases = match args {
        [] => "1000".to_owned(),
        [flag, n] if flag == "--cases" => {
            n.parse::<u32>()
                .map_err(|_| cmd::Error::Usage(format!("--cases wants a number, got `{n}`")))?;
            n.clone()
        }
        _ => return Err(cmd::Error::Usage("proptest takes only --cases N".into())),
    };
    cmd::cargo_env(
        &["test", "--workspace", "--release", "--tests", "--", "prop_"],
        &[("PROPTEST_CASES", cases.as_str())],
    )
}

pub(crate) fn has_crash_test() -> bool {
    cmd::workspace_root()
        .join("crates/recovery-checkpoint/examples/crash_test.rs")
        .is_file()
}

pub(crate) fn crash_test(args: &[String]) -> cmd::Result {
    let iterations = match args {
        [] => "200".to_owned(),
        [flag, n] if flag == "--iterations" => {
            n.parse::<u32>().map_err(|_| {
                cmd::Error::Usage(format!("--iterations wants a number, got `{n}`"))
            })?;
            n.clone()
        }
        _ => {
            return Err(cmd::Error::Usage(
                "crash-test takes only --iterations N".into(),
            ));
        }
    };
    if !has_crash_test() {
        return Err(cmd::Error::Failed(
            "crash-test needs crates/recovery-checkpoint/examples/crash_test.rs".into(),
        ));
    }
    cmd::cargo(&[
        "run",
        "--quiet",
        "--release",
        "-p",
        "recovery-checkpoint",
        "--example",
        "crash_test",
        "--",
        "--iterations",
        &iterations,
    ])
}

fn with_postgres(args: &[String]) -> cmd::Result {
    let Some((program, rest)) = args.split_first() else {
        return Err(cmd::Error::Usage(
            "with-postgres wants a command to run".into(),
        ));
    };
    let server = postgres::Server::start()?;
    let status = std::process::Command::new(program)
        .args(rest)
        .envs(server.env())
        .status()
        .map_err(|e| cmd::Error::Failed(format!("cannot run {program}: {e}")))?;
    drop(server);
    if status.success() {
        Ok(())
    } else {
        Err(cmd::Error::Failed(format!("{program} failed ({status})")))
    }
}

fn drill(args: &[String]) -> cmd::Result {
    // Cargo's own progress shows: a fresh clone compiles the workspace first.
    eprintln!(
        "xtask: building the drill (release mode; on a fresh clone this compiles the workspace, a few minutes)"
    );
    cmd::cargo(&["build", "--release", "-p", "swarm-drill"])?;
    // `cargo xtask drill -- --seed 7` and `cargo xtask drill --seed 7` mean the same.
    let args = args.strip_prefix(&["--".to_owned()]).unwrap_or(args);
    let drill = cmd::target_dir().join("release/swarm-drill");
    let status = std::process::Command::new(&drill)
        .args(args)
        .status()
        .map_err(|e| cmd::Error::Failed(format!("cannot run {}: {e}", drill.display())))?;
    match status.code() {
        Some(0) => Ok(()),
        // The drill's own exit code: 1 for a lost task or a broken invariant, 2 for a bad flag.
        Some(code) => Err(cmd::Error::Exit(u8::try_from(code).unwrap_or(1))),
        None => Err(cmd::Error::Failed(format!(
            "the drill was stopped by a signal ({status})"
        ))),
    }
}
