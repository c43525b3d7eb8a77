//! `swarm-drill`: run a swarm under injected faults and report how recovery kept it going.
//!
//! Exit codes: 0 when no task was lost and no invariant broke, 1 when one was, 2 for a bad flag
//! or configuration.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

mod cluster_cli;

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use recovery_manager::RecoverySettings;
use swarm_drill::{
    DrillError, DrillOptions, FaultRates, Progress, Report, baseline_report, drill_settings, run,
};

/// Run a swarm coordinator under injected faults and report how the recovery system kept it
/// going.
#[derive(Debug, Parser)]
#[command(version, about, allow_negative_numbers = true)]
struct Cli {
    /// Agents to register.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    agents: u32,
    /// Tasks to submit.
    #[arg(long, default_value_t = 20_000)]
    tasks: u64,
    /// Seed of the fault plan: the same seed injects the same faults into the same runs.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Share of runs that fail with a communication error.
    #[arg(long, default_value_t = FaultRates::default().communication, value_parser = rate)]
    comm_error_rate: f64,
    /// Share of runs that hang past the task timeout.
    #[arg(long, default_value_t = FaultRates::default().timeout, value_parser = rate)]
    timeout_rate: f64,
    /// Share of runs whose agent crashes mid-task.
    #[arg(long, default_value_t = FaultRates::default().agent_crash, value_parser = rate)]
    crash_rate: f64,
    /// Share of runs that corrupt the coordinator's state.
    #[arg(long, default_value_t = FaultRates::default().state_corruption, value_parser = rate)]
    corruption_rate: f64,
    /// Share of runs that cause a resource-pressure spike.
    #[arg(long, default_value_t = FaultRates::default().resource_pressure, value_parser = rate)]
    pressure_rate: f64,
    /// Share of runs that fail with a non-recoverable protocol mismatch.
    #[arg(long, default_value_t = FaultRates::default().non_recoverable, value_parser = rate)]
    fatal_rate: f64,
    /// Stop waiting for tasks after this long (e.g. `90s`, `2m`); unfinished tasks count as lost.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    duration_limit: Duration,
    /// Recovery settings (the manager's TOML file: [recovery], [backoff], [checkpoint],
    /// [degradation], [healing]). Without it the drill's own defaults apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Keep checkpoints in this directory (over the config file's `[checkpoint] dir`; default: a
    /// temporary one, removed at the end).
    #[arg(long, value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// First run the same workload without faults and report throughput against it.
    #[arg(long)]
    baseline: bool,
    /// Write a self-contained HTML report with charts to this file (completed tasks against the
    /// fault-free run, which it runs first; faults and recoveries by strategy; the degradation
    /// level; runs in flight). In simulation mode the time axis is simulated time.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Tasks in flight at once.
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    in_flight: u32,
    /// Simulation mode: the whole swarm on one thread on a paused clock, every source of
    /// randomness from `--seed`; a simulated day costs seconds, and a seed replays exactly.
    /// Uses `--agents` (default 16 here), `--days`, `--utilisation`, `--median-task`.
    #[arg(long)]
    simulate: bool,
    /// Simulated days (simulation mode).
    #[arg(long, default_value_t = 1.0, requires = "simulate")]
    days: f64,
    /// The share of the agents' time the workload asks for (simulation mode).
    #[arg(long, default_value_t = 0.7, requires = "simulate")]
    utilisation: f64,
    /// The median task length, log-normal (simulation mode).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, requires = "simulate")]
    median_task: Duration,
    /// Stop just before this event, printing the last events (simulation mode; with
    /// `RUST_LOG=swarm_drill::sim=debug` every event is traced).
    #[arg(long, value_name = "EVENT", requires = "simulate")]
    until: Option<u64>,
    /// Skip the fault-free run of the same workload (simulation mode; the soak skips it).
    #[arg(long, requires = "simulate")]
    no_baseline: bool,
    /// Step the degradation level early on a forecast of the pressure (simulation mode).
    #[arg(long, requires = "simulate")]
    predictive: bool,
    /// Order the strategies by what they achieved, by error kind (the learned order), instead
    /// of by cost alone (simulation mode; elsewhere use the config file's `[learning]`).
    #[arg(long, requires = "simulate")]
    learned_order: bool,
    /// How long each pressure wave takes to build up, e.g. `5m` (simulation mode; default 0s:
    /// waves arrive at once, and there is no trend for `--predictive` to see).
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, requires = "simulate")]
    wave_ramp: Duration,
    /// How far ahead `--predictive` looks (simulation mode).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, requires = "simulate")]
    prediction_lead: Duration,
    /// `--predictive` with the detector made for sparse samples (`TrendConfig::responsive`:
    /// faster smoothing, 2 slope deviations, 2 samples to confirm) instead of the default one,
    /// which sees no ramp at a 30 s interval (simulation mode; implies `--predictive`).
    #[arg(long, requires = "simulate")]
    responsive_prediction: bool,
    /// How often the manager samples resources and steps the level (simulation mode).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, requires = "simulate")]
    monitoring_interval: Duration,
    /// A circuit breaker per agent (simulation mode; elsewhere use the config file's
    /// `[breaker]`).
    #[arg(long, requires = "simulate")]
    breakers: bool,
    /// A recovery workflow for coordination timeouts: alert, retry, check the audit
    /// (simulation mode; elsewhere use the config file's `[[workflows]]`).
    #[arg(long, requires = "simulate")]
    workflows: bool,
    /// The coordinator's run limit, which each degradation level scales by 1, 0.75, 0.5 and
    /// 0.25 (simulation mode; default twice the agents, so that only Critical's quarter binds;
    /// as many as the agents makes every level shed load).
    #[arg(long, value_name = "N", requires = "simulate")]
    max_parallel: Option<usize>,
    /// The four enhancements at once: `--learned-order --predictive --breakers --workflows`
    /// (simulation mode).
    #[arg(long, requires = "simulate")]
    enhancements: bool,
    /// Set one fault's rate per simulated hour, e.g. `--fault wedged=30` (simulation mode;
    /// repeat for more; `wedged` is off by default).
    #[arg(long = "fault", value_name = "NAME=PER_HOUR", value_parser = fault_rate, requires = "simulate")]
    faults: Vec<(String, f64)>,
    /// A scenario instead of the drill: `metastable` runs the metastable-failure experiment.
    #[arg(long, value_name = "NAME", value_parser = ["metastable"])]
    scenario: Option<String>,
    /// Serve the metrics for Prometheus at http://ADDR/metrics while the drill runs: `PORT`
    /// (on 127.0.0.1) or `IP:PORT`; port 0 picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR", value_parser = swarm_drill::prometheus::parse_listen)]
    metrics_listen: Option<std::net::SocketAddr>,
    /// With `--metrics-listen`: keep serving this long after the report, so that Prometheus
    /// scrapes the last values.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration, requires = "metrics_listen")]
    metrics_linger: Duration,
    #[command(flatten)]
    cluster: cluster_cli::ClusterArgs,
}

/// A warning when the file's monitoring interval is too long for a drill of seconds: the level
/// is lowered again only at a monitoring step, so a level raised by a pressure spike stays for
/// most of the run and lower priorities are refused meanwhile.
fn slow_monitoring(settings: &RecoverySettings) -> Option<String> {
    let every = settings.recovery.monitoring_interval;
    (every > Duration::from_secs(1)).then(|| {
        format!(
            "the config's monitoring_interval is {}: the degradation level is stepped down at most \
             once per interval, so a level raised by a pressure spike stays for most of a drill of \
             seconds and lower priorities are refused meanwhile (the drill's own settings use 100ms)",
            humantime::format_duration(every)
        )
    })
}

fn fault_rate(s: &str) -> Result<(String, f64), String> {
    let (name, rate) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not NAME=PER_HOUR (for example wedged=30)"))?;
    let rate: f64 = rate
        .trim()
        .parse()
        .map_err(|_| format!("`{rate}` is not a number of faults per hour"))?;
    let mut mix = swarm_drill::sim::FaultMix::default();
    mix.set(name.trim(), rate)?;
    Ok((name.trim().to_owned(), rate))
}

fn rate(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("a rate is a share of runs within 0..=1, got {v}"))
    }
}

/// A progress bar on a terminal, a plain line every few seconds otherwise.
enum Reporter {
    Bar(ProgressBar),
    Lines { last: Mutex<Instant> },
}

impl Progress for Reporter {
    fn update(&self, settled: u64, total: u64) {
        match self {
            Reporter::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(settled);
            }
            Reporter::Lines { last } => {
                let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(2) || settled == total {
                    *last = Instant::now();
                    eprintln!("drill: {settled}/{total} tasks settled");
                }
            }
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match drill(cli) {
        Ok(passed) => {
            if passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(DrillError::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The simulation mode.
fn simulate(cli: &Cli) -> Result<bool, DrillError> {
    let agents_given = cluster_cli::given("--agents");
    let options = swarm_drill::sim::SimOptions {
        seed: cli.seed,
        days: cli.days,
        agents: if agents_given {
            cli.agents as usize
        } else {
            16
        },
        utilisation: cli.utilisation,
        median_task: cli.median_task,
        until_event: cli.until,
        predictive: cli.predictive || cli.enhancements || cli.responsive_prediction,
        responsive_prediction: cli.responsive_prediction,
        learned_order: cli.learned_order || cli.enhancements,
        breakers: cli.breakers || cli.enhancements,
        wave_ramp: cli.wave_ramp,
        prediction_lead: cli.prediction_lead,
        monitoring_interval: cli.monitoring_interval,
        workflows: cli.workflows || cli.enhancements,
        max_parallel_tasks: cli.max_parallel,
        ..swarm_drill::sim::SimOptions::default()
    };
    let mut options = options;
    for (name, rate) in &cli.faults {
        options.faults.set(name, *rate).map_err(DrillError::Usage)?;
    }
    let report = swarm_drill::sim::simulate(&options, !cli.no_baseline && cli.until.is_none())
        .map_err(DrillError::Usage)?;
    print!("{}", report.table());
    println!("{}", report.last_line());
    if let Some(path) = &cli.json {
        write_json(path, &report)?;
    }
    if let Some(path) = &cli.html {
        let o = &report.options;
        let page = swarm_drill::html::Page {
            title: format!(
                "swarm-drill --simulate: {} simulated day(s), {} agents, seed {}",
                o.days, o.agents, o.seed
            ),
            last_line: report.last_line(),
            options: vec![
                ("seed".into(), o.seed.to_string()),
                (
                    "days, agents, utilisation".into(),
                    format!("{}, {}, {}", o.days, o.agents, o.utilisation),
                ),
                ("median task".into(), format!("{:?}", o.median_task)),
                ("trace digest".into(), report.trace_digest.clone()),
            ],
            table: report.table(),
            timeline: &report.timeline,
            baseline: report.fault_free_timeline.as_ref(),
            time_label: "simulated hours",
            time_unit: 3600.0,
            passed: report.passed(),
        };
        write_html(path, &page)?;
    }
    Ok(report.passed() || cli.until.is_some())
}

/// The metastable-failure experiment: a sweep of the cut's length, with and without the
/// retry budget.
fn metastable() -> bool {
    use swarm_drill::sim::metastable::sweep;
    println!(
        "metastable-failure experiment: capacity 1000/s, load 0.8, timeout 1 s, 4 immediate resends, capacity cut to 0.2\n"
    );
    println!(
        "  cut   without budget: seconds < 50 % of the first 60 | with budget: back to 95 % after"
    );
    let cuts: Vec<Duration> = [1, 2, 3, 4, 6]
        .into_iter()
        .map(Duration::from_secs)
        .collect();
    let mut shown = false;
    for (cut, without, with) in sweep(&cuts) {
        let back = with
            .back_to_95_after
            .map_or("never".to_owned(), |d| format!("{} s", d.as_secs()));
        println!(
            "  {:>2} s  {:>46} | {back}",
            cut.as_secs(),
            without.seconds_below_half_in_first_minute
        );
        if cut == Duration::from_secs(2) {
            shown = without.seconds_below_half_in_first_minute >= 60
                && with
                    .back_to_95_after
                    .is_some_and(|d| d <= Duration::from_secs(10));
        }
    }
    println!(
        "\nmetastable: at a 2 s cut, without a budget the system {}",
        if shown {
            "stays below 50 % goodput for 60 s; with the retry budget it is back to 95 % within 10 s"
        } else {
            "did not behave as expected"
        }
    );
    shown
}

/// The HTML page of a drill run.
fn drill_page<'a>(report: &'a Report, baseline: Option<&'a Report>) -> swarm_drill::html::Page<'a> {
    let o = &report.options;
    let r = &o.rates;
    swarm_drill::html::Page {
        title: format!(
            "swarm-drill: {} tasks on {} agents, seed {}",
            o.tasks, o.agents, o.seed
        ),
        last_line: report.last_line(),
        options: vec![
            ("seed".into(), o.seed.to_string()),
            (
                "agents, tasks, in flight".into(),
                format!("{}, {}, {}", o.agents, o.tasks, o.in_flight),
            ),
            (
                "fault rates per run".into(),
                format!(
                    "communication {}, timeout {}, crash {}, corruption {}, pressure {}, fatal {}",
                    r.communication,
                    r.timeout,
                    r.agent_crash,
                    r.state_corruption,
                    r.resource_pressure,
                    r.non_recoverable
                ),
            ),
            (
                "throughput".into(),
                match report.baseline_throughput {
                    Some(b) => format!(
                        "{:.0} tasks/s, fault-free {b:.0} tasks/s ({:.2})",
                        report.throughput,
                        report.throughput / b
                    ),
                    None => format!("{:.0} tasks/s", report.throughput),
                },
            ),
        ],
        table: report.table(),
        timeline: &report.timeline,
        baseline: baseline.map(|b| &b.timeline),
        time_label: "seconds",
        time_unit: 1.0,
        passed: report.passed(),
    }
}

fn write_html(
    path: &std::path::Path,
    page: &swarm_drill::html::Page<'_>,
) -> Result<(), DrillError> {
    std::fs::write(path, page.render()).map_err(|e| {
        DrillError::Setup(format!(
            "cannot write the HTML report to {}: {e}",
            path.display()
        ))
    })?;
    eprintln!("drill: HTML report written to {}", path.display());
    Ok(())
}

fn write_json<T: serde::Serialize>(path: &std::path::Path, report: &T) -> Result<(), DrillError> {
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| DrillError::Setup(format!("cannot encode the report: {e}")))?;
    std::fs::write(path, text).map_err(|e| {
        DrillError::Setup(format!(
            "cannot write the report to {}: {e}",
            path.display()
        ))
    })
}

fn drill(cli: Cli) -> Result<bool, DrillError> {
    if cli.scenario.as_deref() == Some("metastable") {
        return Ok(metastable());
    }
    if cli.simulate {
        return simulate(&cli);
    }
    if let Some(url) = &cli.cluster.postgres {
        let shared = cluster_cli::Shared {
            agents: cli.agents,
            tasks: cli.tasks,
            seed: cli.seed,
            comm_error_rate: cli.comm_error_rate,
            in_flight: cli.in_flight,
            json: cli.json.as_deref(),
        };
        return cluster_cli::run(&cli.cluster, url, &shared);
    }
    let settings = match &cli.config {
        Some(path) => {
            let settings =
                RecoverySettings::load(path).map_err(|e| DrillError::Usage(e.to_string()))?;
            if let Some(warning) = slow_monitoring(&settings) {
                eprintln!("drill: {warning}");
            }
            settings
        }
        None => drill_settings(),
    };
    let options = DrillOptions {
        agents: cli.agents as usize,
        tasks: cli.tasks,
        seed: cli.seed,
        rates: FaultRates {
            communication: cli.comm_error_rate,
            timeout: cli.timeout_rate,
            agent_crash: cli.crash_rate,
            state_corruption: cli.corruption_rate,
            resource_pressure: cli.pressure_rate,
            non_recoverable: cli.fatal_rate,
        },
        duration_limit: cli.duration_limit,
        settings,
        checkpoint_dir: cli.checkpoint_dir.clone(),
        in_flight: cli.in_flight as usize,
        ..DrillOptions::default()
    };
    options.rates.validate().map_err(DrillError::Usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| DrillError::Setup(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        if let Some(addr) = cli.metrics_listen {
            let served = swarm_drill::prometheus::serve_metrics(addr)?;
            eprintln!("drill: metrics for Prometheus at http://{served}/metrics");
        }
        let baseline = if cli.baseline || cli.html.is_some() {
            eprintln!("drill: running the fault-free baseline first");
            Some(baseline_report(&options).await?)
        } else {
            None
        };
        let reporter = if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(options.tasks);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} tasks settled ({per_sec})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Reporter::Bar(bar)
        } else {
            Reporter::Lines {
                last: Mutex::new(Instant::now()),
            }
        };
        let mut report = run(&options, &reporter).await?;
        if let Reporter::Bar(bar) = &reporter {
            bar.finish_and_clear();
        }
        report.baseline_throughput = baseline.as_ref().map(|b| b.throughput);
        print!("{}", report.table());
        println!("{}", report.last_line());
        if let Some(path) = &cli.json {
            write_json(path, &report)?;
        }
        if let Some(path) = &cli.html {
            write_html(path, &drill_page(&report, baseline.as_ref()))?;
        }
        if cli.metrics_listen.is_some() && !cli.metrics_linger.is_zero() {
            eprintln!(
                "drill: serving the metrics for another {}",
                humantime::format_duration(cli.metrics_linger)
            );
            tokio::time::sleep(cli.metrics_linger).await;
        }
        Ok(report.passed())
    })
}
