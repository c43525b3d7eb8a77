//! `cargo xtask soak --seeds N --days D`: N seeds of the drill's simulation mode, D simulated days
//! each, in parallel on the machine's cores; one line per failing seed and a closing line.

use std::collections::VecDeque;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use crate::cmd::{self, Error};

/// What to run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Soak {
    pub(crate) seeds: u64,
    pub(crate) days: f64,
    pub(crate) first_seed: u64,
    /// Run with the four enhancements on (`--enhancements`: learned order, predictive
    /// degradation, breakers, workflows).
    pub(crate) enhancements: bool,
}

impl Soak {
    /// What `cargo xtask test` runs: 16 seeds of one simulated day.
    pub(crate) fn short() -> Self {
        Self {
            seeds: 16,
            days: 1.0,
            first_seed: 1,
            enhancements: false,
        }
    }

    /// The short soak with the four enhancements on.
    pub(crate) fn short_enhanced() -> Self {
        Self {
            enhancements: true,
            ..Self::short()
        }
    }
}

pub(crate) fn parse(args: &[String]) -> cmd::Result<Soak> {
    let mut soak = Soak::short();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--enhancements" {
            soak.enhancements = true;
            continue;
        }
        let value = it
            .next()
            .ok_or_else(|| Error::Usage(format!("soak: `{flag}` wants a value")))?;
        match flag.as_str() {
            "--seeds" => {
                soak.seeds = value.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    Error::Usage(format!(
                        "soak: --seeds wants a number of at least 1, got `{value}`"
                    ))
                })?;
            }
            "--days" => {
                soak.days = value
                    .parse()
                    .ok()
                    .filter(|d: &f64| *d > 0.0 && *d <= 365.0)
                    .ok_or_else(|| {
                        Error::Usage(format!(
                            "soak: --days wants a number within (0, 365], got `{value}`"
                        ))
                    })?;
            }
            "--first-seed" => {
                soak.first_seed = value.parse().map_err(|_| {
                    Error::Usage(format!("soak: --first-seed wants a number, got `{value}`"))
                })?;
            }
            other => return Err(Error::Usage(format!("soak: unknown flag `{other}`"))),
        }
    }
    Ok(soak)
}

/// Run the soak; `Err` if a seed failed.
pub(crate) fn run(soak: &Soak) -> cmd::Result {
    cmd::cargo(&["build", "--quiet", "--release", "-p", "swarm-drill"])?;
    let drill = cmd::target_dir().join("release").join("swarm-drill");
    let started = Instant::now();
    eprintln!(
        "xtask: soak of {} seeds x {} days{}, {} at a time",
        soak.seeds,
        soak.days,
        if soak.enhancements {
            " with the four enhancements"
        } else {
            ""
        },
        jobs()
    );
    let outcome = run_seeds(&drill, soak, false)?;
    for f in &outcome.failures {
        println!("soak: seed {} failed: {}", f.seed, f.why);
    }
    eprintln!("xtask: soak took {:.0} s", started.elapsed().as_secs_f64());
    println!(
        "soak: {} seeds x {} days{}, {} passed, {} failed",
        soak.seeds,
        soak.days,
        if soak.enhancements {
            " (enhancements on)"
        } else {
            ""
        },
        outcome.passed,
        outcome.failures.len()
    );
    if outcome.failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "{} seeds failed",
            outcome.failures.len()
        )))
    }
}

/// How many seeds run at once: one per core.
pub(crate) fn jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// A seed that failed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) seed: u64,
    /// The drill's line that says what broke.
    pub(crate) why: String,
    /// Wall time from the start of the soak to this failure.
    pub(crate) after: std::time::Duration,
}

/// What a run of seeds came to.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) passed: u64,
    pub(crate) failures: Vec<Failure>,
}

/// Run the seeds of `soak` with `drill`, one per core at a time; with `first_failure`, stop
/// starting seeds once one failed.
pub(crate) fn run_seeds(
    drill: &std::path::Path,
    soak: &Soak,
    first_failure: bool,
) -> cmd::Result<Outcome> {
    let started = Instant::now();
    let mut waiting: VecDeque<u64> = (soak.first_seed..soak.first_seed + soak.seeds).collect();
    let mut running: Vec<(u64, Child)> = Vec::new();
    let mut outcome = Outcome::default();
    let days = soak.days.to_string();
    while !waiting.is_empty() || !running.is_empty() {
        let stop = |o: &Outcome| first_failure && !o.failures.is_empty();
        while running.len() < jobs() && !stop(&outcome) {
            let Some(seed) = waiting.pop_front() else {
                break;
            };
            let child = Command::new(drill)
                .args([
                    "--simulate",
                    "--no-baseline",
                    "--seed",
                    &seed.to_string(),
                    "--days",
                    &days,
                ])
                .args(soak.enhancements.then_some("--enhancements"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| Error::Failed(format!("cannot start {}: {e}", drill.display())))?;
            running.push((seed, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut still = Vec::new();
        for (seed, mut child) in running {
            match child.try_wait() {
                Ok(Some(_)) => {
                    let out = child
                        .wait_with_output()
                        .map_err(|e| Error::Failed(format!("seed {seed}: {e}")))?;
                    let text = String::from_utf8_lossy(&out.stdout);
                    if out.status.success() {
                        outcome.passed += 1;
                    } else {
                        let why = text
                            .lines()
                            .find(|l| l.starts_with("invariant broken"))
                            .or_else(|| text.lines().last())
                            .unwrap_or("no output (it crashed?)");
                        outcome.failures.push(Failure {
                            seed,
                            why: format!("{why} ({})", out.status),
                            after: started.elapsed(),
                        });
                    }
                }
                Ok(None) => still.push((seed, child)),
                Err(e) => return Err(Error::Failed(format!("seed {seed}: {e}"))),
            }
        }
        running = still;
    }
    outcome.failures.sort_by_key(|f| f.seed);
    Ok(outcome)
}

/// The default workload with the default fault mix keeps at least this share of the
/// fault-free run's throughput.
const THROUGHPUT_GOAL: f64 = 0.9;

/// Run seed 1 for a simulated day with its fault-free baseline, and check the throughput.
pub(crate) fn throughput_check() -> cmd::Result {
    let drill = cmd::target_dir().join("release").join("swarm-drill");
    let out = Command::new(&drill)
        .args(["--simulate", "--seed", "1", "--days", "1"])
        .stderr(Stdio::null())
        .output()
        .map_err(|e| Error::Failed(format!("cannot start {}: {e}", drill.display())))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or("no output");
    let ratio = last
        .split(", throughput ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse::<f64>().ok())
        .ok_or_else(|| Error::Failed(format!("no throughput in the drill's last line: {last}")))?;
    eprintln!(
        "xtask: throughput with faults {ratio:.3} of fault-free (seed 1, 1 simulated day; goal at least {THROUGHPUT_GOAL})"
    );
    if !out.status.success() || ratio < THROUGHPUT_GOAL {
        return Err(Error::Failed(format!(
            "the throughput check failed: {last}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_named() {
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(
            parse(&args("--seeds 100 --days 7")).unwrap(),
            Soak {
                seeds: 100,
                days: 7.0,
                first_seed: 1,
                enhancements: false,
            }
        );
        assert!(
            parse(&args("--enhancements --seeds 2"))
                .unwrap()
                .enhancements
        );
        assert!(parse(&args("--seeds 0")).is_err());
        assert!(parse(&args("--days -1")).is_err());
        assert!(parse(&args("--days")).is_err());
        assert!(parse(&args("--nights 3")).is_err());
    }
}
