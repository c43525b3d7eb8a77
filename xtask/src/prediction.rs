//! `cargo xtask prediction [--seeds N]`: does predictive degradation cut the time at Critical
//! under pressure waves that build up? Each seed runs a simulated day without prediction and
//! with it (the responsive detector, a 120 s lead), in each regime below; one line per regime
//! with both medians.
//!
//! The simulation is deterministic, so the figures only move when the code does. A regime that
//! is `checked` fails the task unless prediction lowers the median time at Critical and lowers
//! it on more seeds than it raises it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cmd::{self, Error};

/// A workload the comparison runs.
struct Regime {
    name: &'static str,
    args: &'static [&'static str],
    /// Whether prediction must cut the time at Critical here, or the line is only reported.
    checked: bool,
}

const REGIMES: [Regime; 3] = [
    Regime {
        name: "5-minute ramps, run limit 16",
        args: &["--wave-ramp", "5m", "--max-parallel", "16"],
        checked: true,
    },
    Regime {
        name: "5-minute ramps, default run limit",
        args: &["--wave-ramp", "5m"],
        checked: true,
    },
    // The plain controller already climbs level by level in time on slow ramps: reported, so a
    // change that makes prediction hurt there shows, but not a goal.
    Regime {
        name: "10-minute ramps, run limit 16",
        args: &["--wave-ramp", "10m", "--max-parallel", "16"],
        checked: false,
    },
];

/// What prediction adds to a run.
const PREDICTION: [&str; 3] = ["--responsive-prediction", "--prediction-lead", "120s"];

/// What one simulated day came to.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Day {
    critical_s: f64,
    failed: u64,
}

pub(crate) fn parse(args: &[String]) -> cmd::Result<u64> {
    match args {
        [] => Ok(16),
        [flag, n] if flag == "--seeds" => n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            Error::Usage(format!(
                "prediction: --seeds wants a number of at least 1, got `{n}`"
            ))
        }),
        other => Err(Error::Usage(format!(
            "prediction: unknown arguments `{}`",
            other.join(" ")
        ))),
    }
}

/// Run every regime over `seeds` seeds; `Err` if a run failed or a checked regime is not cut.
pub(crate) fn run(seeds: u64) -> cmd::Result {
    cmd::cargo(&["build", "--quiet", "--release", "-p", "swarm-drill"])?;
    let drill = cmd::target_dir().join("release").join("swarm-drill");
    let out_dir = cmd::target_dir().join("prediction");
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Error::Failed(format!("cannot create {}: {e}", out_dir.display())))?;
    let mut missed = Vec::new();
    for (r, regime) in REGIMES.iter().enumerate() {
        let runs: Vec<(u64, bool)> = (1..=seeds).flat_map(|s| [(s, false), (s, true)]).collect();
        let days = in_parallel(&runs, |&(seed, predict)| {
            let json = out_dir.join(format!("regime{r}-seed{seed}-{predict}.json"));
            simulate(&drill, seed, regime.args, predict, &json)
        })?;
        // The runs are each seed without prediction, then with it.
        let (without, with): (Vec<Day>, Vec<Day>) =
            days.chunks_exact(2).map(|pair| (pair[0], pair[1])).unzip();
        let summary = Summary::of(&without, &with);
        println!("prediction: {}, {seeds} seeds: {summary}", regime.name);
        if regime.checked && !summary.cuts() {
            missed.push(regime.name);
        }
    }
    if missed.is_empty() {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "prediction did not cut the time at Critical in: {}",
            missed.join("; ")
        )))
    }
}

/// One simulated day of `seed`, its report written to `json`.
fn simulate(
    drill: &Path,
    seed: u64,
    args: &[&str],
    predict: bool,
    json: &PathBuf,
) -> cmd::Result<Day> {
    let out = Command::new(drill)
        .args(["--simulate", "--no-baseline", "--days", "1", "--seed"])
        .arg(seed.to_string())
        .args(args)
        .args(predict.then_some(PREDICTION).into_iter().flatten())
        .arg("--json")
        .arg(json)
        .output()
        .map_err(|e| Error::Failed(format!("cannot start {}: {e}", drill.display())))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        return Err(Error::Failed(format!(
            "seed {seed} {}{} failed: {}",
            args.join(" "),
            if predict { " with prediction" } else { "" },
            text.lines().last().unwrap_or("no output")
        )));
    }
    let text = std::fs::read_to_string(json)
        .map_err(|e| Error::Failed(format!("cannot read {}: {e}", json.display())))?;
    day_of(&text).ok_or_else(|| {
        Error::Failed(format!(
            "{} has no level_seconds or failed count",
            json.display()
        ))
    })
}

/// The time at Critical and the failed tasks of a report.
fn day_of(json: &str) -> Option<Day> {
    let report: serde_json::Value = serde_json::from_str(json).ok()?;
    Some(Day {
        // A day that never reached Critical has no entry.
        critical_s: report["level_seconds"]["critical"].as_f64().unwrap_or(0.0),
        failed: report["failed"].as_u64()?,
    })
}

/// Run `f` on every item, one per core at a time; the results in the items' order.
fn in_parallel<I: Sync, T: Send>(
    items: &[I],
    f: impl Fn(&I) -> cmd::Result<T> + Sync,
) -> cmd::Result<Vec<T>> {
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, cmd::Result<T>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..crate::soak::jobs())
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        mine.push((i, f(item)));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked"))
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Both medians of a regime, and on how many seeds prediction lowered or raised the time.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    critical_without: f64,
    critical_with: f64,
    less: usize,
    more: usize,
    seeds: usize,
    failed_without: f64,
    failed_with: f64,
}

impl Summary {
    /// `without[i]` and `with[i]` are the same seed.
    fn of(without: &[Day], with: &[Day]) -> Self {
        let pairs = without.iter().zip(with);
        Self {
            critical_without: median(without.iter().map(|d| d.critical_s)),
            critical_with: median(with.iter().map(|d| d.critical_s)),
            less: pairs
                .clone()
                .filter(|(a, b)| b.critical_s < a.critical_s)
                .count(),
            more: pairs.filter(|(a, b)| b.critical_s > a.critical_s).count(),
            seeds: without.len(),
            failed_without: median(without.iter().map(|d| d.failed as f64)),
            failed_with: median(with.iter().map(|d| d.failed as f64)),
        }
    }

    /// Prediction lowered the median, and lowered it on more seeds than it raised it.
    fn cuts(&self) -> bool {
        self.critical_with < self.critical_without && self.less > self.more
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let change = if self.critical_without > 0.0 {
            format!(
                " ({:+.0} %)",
                100.0 * (self.critical_with / self.critical_without - 1.0)
            )
        } else {
            String::new()
        };
        write!(
            f,
            "time at Critical, median {:.0} s without prediction, {:.0} s with{change}, \
             less on {} of {} seeds, more on {}; tasks failed, median {:.0} without, {:.0} with",
            self.critical_without,
            self.critical_with,
            self.less,
            self.seeds,
            self.more,
            self.failed_without,
            self.failed_with
        )
    }
}

/// The median (the mean of the middle two for an even count); 0 for none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(critical_s: f64) -> Day {
        Day {
            critical_s,
            failed: 10,
        }
    }

    #[test]
    fn a_cut_needs_a_lower_median_and_more_seeds_lower_than_higher() {
        let without = [day(100.0), day(200.0), day(300.0)];
        let s = Summary::of(&without, &[day(90.0), day(150.0), day(310.0)]);
        assert_eq!(
            (s.critical_without, s.critical_with, s.less, s.more),
            (200.0, 150.0, 2, 1)
        );
        assert!(s.cuts());
        assert!(
            !Summary::of(&without, &without).cuts(),
            "no change is no cut"
        );
        let lucky = Summary::of(&without, &[day(110.0), day(150.0), day(310.0)]);
        assert!(
            !lucky.cuts(),
            "a lower median from one seed of three is not a cut"
        );
    }

    #[test]
    fn reports_and_arguments_parse_and_bad_ones_are_named() {
        let day = day_of(r#"{"level_seconds": {"critical": 12.5}, "failed": 3}"#);
        assert_eq!(
            day,
            Some(Day {
                critical_s: 12.5,
                failed: 3
            })
        );
        let calm = day_of(r#"{"level_seconds": {"normal": 86400.0}, "failed": 0}"#);
        assert_eq!(calm.map(|d| d.critical_s), Some(0.0));
        assert_eq!(day_of("{}"), None);
        assert_eq!(day_of("not json"), None);
        assert_eq!(median([3.0, 1.0, 2.0, 10.0].into_iter()), 2.5);
        let args = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        assert_eq!(parse(&args("")).unwrap(), 16);
        assert_eq!(parse(&args("--seeds 4")).unwrap(), 4);
        assert!(parse(&args("--seeds 0")).is_err());
        assert!(parse(&args("--days 2")).is_err());
    }
}
