//! `cargo xtask bench [--quick] [FILTER]`: run the criterion benches, then print one table of
//! every ratio declared in `benches/ratios/*.tsv`, from the medians of the same run.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::cmd::{self, Error};

/// One declared line: `label<TAB>numerator id<TAB>denominator id<TAB>goal`.
///
/// A goal that is a number is the most the ratio numerator / denominator may be. A goal that
/// ends in `ns` is absolute: the numerator's median less the denominator's (`-` for none) may
/// be at most that many nanoseconds (the manager's dispatch cost, its strategy's work excluded).
#[derive(Debug, PartialEq)]
struct Ratio {
    label: String,
    numerator: String,
    denominator: String,
    goal: Option<Goal>,
}

#[derive(Debug, PartialEq, Clone, Copy)]
enum Goal {
    Ratio(f64),
    Nanos(f64),
}

pub(crate) fn run(args: &[String]) -> cmd::Result {
    let mut quick = false;
    let mut filter = None;
    for arg in args {
        match arg.as_str() {
            "--quick" => quick = true,
            a if a.starts_with('-') => {
                return Err(Error::Usage(format!("bench: unknown flag `{a}`")));
            }
            a if filter.is_none() => filter = Some(a.to_owned()),
            a => return Err(Error::Usage(format!("bench: unexpected argument `{a}`"))),
        }
    }
    let mut cargo_args = vec!["bench", "-p", "recovery-benches", "--"];
    if quick {
        cargo_args.push("--quick");
    }
    if let Some(f) = &filter {
        cargo_args.push(f);
    }
    cmd::cargo(&cargo_args)?;
    let mut table = summary(
        &cmd::workspace_root().join("benches/ratios"),
        &cmd::target_dir(),
    )?;
    if filter.is_none() {
        table.push('\n');
        table.push_str(&postgres_bench()?);
    }
    println!("\n{table}");
    let out = cmd::target_dir().join("bench-summary.md");
    fs::write(&out, &table)
        .map_err(|e| Error::Failed(format!("writing {}: {e}", out.display())))?;
    eprintln!("xtask: summary written to {}", out.display());
    Ok(())
}

/// The multi-instance bench on a throwaway PostgreSQL server (`swarm-drill --bench`): its
/// table, as the drill prints it.
fn postgres_bench() -> cmd::Result<String> {
    let server = crate::postgres::Server::start()?;
    cmd::cargo(&["build", "--quiet", "--release", "-p", "swarm-drill"])?;
    let drill = cmd::target_dir().join("release/swarm-drill");
    let out = std::process::Command::new(&drill)
        .args(["--postgres", server.url(), "--bench"])
        .output()
        .map_err(|e| Error::Failed(format!("cannot run {}: {e}", drill.display())))?;
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "the multi-instance bench failed ({})",
            out.status
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn parse_ratios(text: &str, source: &str) -> cmd::Result<Vec<Ratio>> {
    let mut ratios = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [label, numerator, denominator, goal] = fields[..] else {
            return Err(Error::Failed(format!(
                "{source}:{}: want 4 tab-separated fields (label, numerator, denominator, goal), found {}",
                n + 1,
                fields.len()
            )));
        };
        let bad = |g: &str| {
            Error::Failed(format!(
                "{source}:{}: goal `{g}` is not a number, a number of ns, or `-`",
                n + 1
            ))
        };
        let goal = match goal.trim() {
            "-" => None,
            g => match g.strip_suffix("ns") {
                Some(ns) => Some(Goal::Nanos(ns.trim().parse::<f64>().map_err(|_| bad(g))?)),
                None => Some(Goal::Ratio(g.parse::<f64>().map_err(|_| bad(g))?)),
            },
        };
        ratios.push(Ratio {
            label: label.trim().to_owned(),
            numerator: numerator.trim().to_owned(),
            denominator: denominator.trim().to_owned(),
            goal,
        });
    }
    Ok(ratios)
}

/// The median (ns) criterion recorded for a bench id, if that bench ran.
fn median_ns(criterion_dir: &Path, id: &str) -> Option<f64> {
    let path = criterion_dir.join(id).join("new/estimates.json");
    let text = fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn human(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.1} ns")
    } else if ns < 1e6 {
        format!("{:.2} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

fn summary(ratios_dir: &Path, target: &Path) -> cmd::Result<String> {
    let criterion_dir = target.join("criterion");
    let mut files: Vec<_> = fs::read_dir(ratios_dir)
        .map_err(|e| Error::Failed(format!("reading {}: {e}", ratios_dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
        .collect();
    files.sort();
    let mut out = String::from(
        "| measure | numerator (median) | denominator (median) | ratio or cost | goal | |\n|---|---|---|---|---|---|\n",
    );
    for file in files {
        let text = fs::read_to_string(&file)
            .map_err(|e| Error::Failed(format!("reading {}: {e}", file.display())))?;
        for r in parse_ratios(&text, &file.display().to_string())? {
            let num = median_ns(&criterion_dir, &r.numerator);
            let den = if r.denominator == "-" {
                Some(0.0)
            } else {
                median_ns(&criterion_dir, &r.denominator)
            };
            let shown_den = |d: f64| {
                if r.denominator == "-" {
                    "-".to_owned()
                } else {
                    human(d)
                }
            };
            match (num, den, r.goal) {
                (Some(n), Some(d), Some(Goal::Nanos(goal))) => {
                    let cost = n - d;
                    let verdict = if cost <= goal { "met" } else { "MISSED" };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {} | ≤ {} | {} |",
                        r.label,
                        human(n),
                        shown_den(d),
                        human(cost),
                        human(goal),
                        verdict
                    );
                }
                (Some(n), Some(d), goal) if d > 0.0 => {
                    let ratio = n / d;
                    let (shown, verdict) = match goal {
                        Some(Goal::Ratio(g)) => {
                            (format!("≤ {g}"), if ratio <= g { "met" } else { "MISSED" })
                        }
                        _ => ("-".to_owned(), ""),
                    };
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | {:.3} | {} | {} |",
                        r.label,
                        human(n),
                        shown_den(d),
                        ratio,
                        shown,
                        verdict
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "| {} | {} | {} | not run | {} | |",
                        r.label,
                        r.numerator,
                        r.denominator,
                        match r.goal {
                            Some(Goal::Ratio(g)) => format!("≤ {g}"),
                            Some(Goal::Nanos(g)) => format!("≤ {}", human(g)),
                            None => "-".to_owned(),
                        }
                    );
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ratio_lines_and_rejects_bad_ones() {
        let ok = "# comment\nsuccess vs direct\tg/a\tg/b\t2.0\nscaling\tg/x/1\tg/x/2\t-\n";
        let r = parse_ratios(ok, "t").unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].goal, Some(Goal::Ratio(2.0)));
        assert_eq!(r[1].goal, None);
        assert!(parse_ratios("a\tb\tc\n", "t").is_err());
        assert!(parse_ratios("a\tb\tc\tfast\n", "t").is_err());
        let abs = parse_ratios("cost\tg/a\t-\t1000ns\n", "t").unwrap();
        assert_eq!(abs[0].goal, Some(Goal::Nanos(1000.0)));
    }

    #[test]
    fn summary_reads_criterion_medians() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        let ratios = dir.join("ratios");
        fs::create_dir_all(&ratios).unwrap();
        fs::write(
            ratios.join("a.tsv"),
            "fast\tg/x\tg/y\t2\nslow\tg/y\tg/x\t1\nnone\tg/z\tg/x\t-\ncost\tg/x\tg/y\t4ns\nabs\tg/x\t-\t20ns\n",
        )
        .unwrap();
        for (id, median) in [("g/x", 10.0), ("g/y", 5.0)] {
            let d = dir.join("target/criterion").join(id).join("new");
            fs::create_dir_all(&d).unwrap();
            fs::write(
                d.join("estimates.json"),
                format!("{{\"median\":{{\"point_estimate\":{median}}}}}"),
            )
            .unwrap();
        }
        let table = summary(&ratios, &dir.join("target")).unwrap();
        fs::remove_dir_all(&dir).unwrap();
        assert!(
            table.contains("| fast | 10.0 ns | 5.0 ns | 2.000 | ≤ 2 | met |"),
            "{table}"
        );
        assert!(
            table.contains("| slow | 5.0 ns | 10.0 ns | 0.500 | ≤ 1 | met |"),
            "{table}"
        );
        assert!(table.contains("| none | g/z | g/x | not run |"), "{table}");
        assert!(
            table.contains("| cost | 10.0 ns | 5.0 ns | 5.0 ns | ≤ 4.0 ns | MISSED |"),
            "{table}"
        );
        assert!(
            table.contains("| abs | 10.0 ns | - | 10.0 ns | ≤ 20.0 ns | met |"),
            "{table}"
        );
    }
}
