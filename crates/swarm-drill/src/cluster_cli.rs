//! The flags and the entry of the multi-instance mode (`--postgres URL`), and of the instance
//! processes it starts (the hidden `--instance-of`).

use std::time::Duration;

use swarm_drill::DrillError;
use swarm_drill::cluster::{ClusterOptions, InstanceOptions};

/// The multi-instance mode's flags.
#[derive(Debug, clap::Args)]
pub(crate) struct ClusterArgs {
    /// Multi-instance mode: instance processes share one swarm on this PostgreSQL database
    /// (`postgres://user@host:port/db`) while the drill kills and pauses them; uses `--agents`
    /// (per instance, default 8 here), `--tasks` (default 10,000 here), `--seed`,
    /// `--comm-error-rate` (default 0.01 here) and `--in-flight` (tasks an instance holds at
    /// once, default 64 here).
    #[arg(long, value_name = "URL")]
    pub(crate) postgres: Option<String>,
    /// Instance processes (multi-instance mode).
    #[arg(long, default_value_t = 3, requires = "postgres", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) instances: u32,
    /// How long each run takes (multi-instance mode).
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration, requires = "postgres")]
    pub(crate) task_time: Duration,
    /// Kill one instance with SIGKILL, and start it again, this often; `0s`: never
    /// (multi-instance mode).
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration, requires = "postgres")]
    pub(crate) kill_every: Duration,
    /// Pause one instance with SIGSTOP this long, once, a second in (multi-instance mode;
    /// default: the lease TTL + 3 s).
    #[arg(long, value_parser = humantime::parse_duration, requires = "postgres", conflicts_with = "no_pause")]
    pub(crate) pause: Option<Duration>,
    /// Pause no instance (multi-instance mode).
    #[arg(long, requires = "postgres")]
    pub(crate) no_pause: bool,
    /// How long a claim holds without renewal (multi-instance mode).
    #[arg(long, default_value = "15s", value_parser = humantime::parse_duration, requires = "postgres")]
    pub(crate) lease_ttl: Duration,
    /// How often leases are renewed (multi-instance mode).
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration, requires = "postgres")]
    pub(crate) renew_every: Duration,
    /// Measure instead: 10 ms tasks on 1, 2 and 3 instances, no-op tasks, claim latency
    /// (multi-instance mode).
    #[arg(long, requires = "postgres")]
    pub(crate) bench: bool,
    /// Run as one instance of this swarm (started by the multi-instance mode).
    #[arg(long, hide = true, requires_all = ["postgres", "instance_name"])]
    pub(crate) instance_of: Option<String>,
    /// The instance's name.
    #[arg(long, hide = true)]
    pub(crate) instance_name: Option<String>,
}

/// Whether `flag` was on the command line (so that a mode's own default applies otherwise).
pub(crate) fn given(flag: &str) -> bool {
    std::env::args().any(|a| a == flag || a.starts_with(&format!("{flag}=")))
}

/// The drill's flags the multi-instance mode shares.
pub(crate) struct Shared<'a> {
    pub(crate) agents: u32,
    pub(crate) tasks: u64,
    pub(crate) seed: u64,
    pub(crate) comm_error_rate: f64,
    pub(crate) in_flight: u32,
    pub(crate) json: Option<&'a std::path::Path>,
}

/// The multi-instance mode, an instance process, or the bench. Returns whether it passed.
pub(crate) fn run(args: &ClusterArgs, url: &str, shared: &Shared<'_>) -> Result<bool, DrillError> {
    let Shared {
        agents,
        tasks,
        seed,
        comm_error_rate,
        in_flight,
        json,
    } = *shared;
    let agents = if given("--agents") {
        agents as usize
    } else {
        8
    };
    let options = ClusterOptions {
        instances: args.instances as usize,
        agents,
        tasks: if given("--tasks") { tasks } else { 10_000 },
        task: args.task_time,
        comm_error_rate: if given("--comm-error-rate") {
            comm_error_rate
        } else {
            0.01
        },
        seed,
        kill_every: args.kill_every,
        pause: (!args.no_pause).then(|| {
            args.pause
                .unwrap_or(args.lease_ttl + Duration::from_secs(3))
        }),
        lease_ttl: args.lease_ttl,
        renew_every: args.renew_every,
        max_in_flight: if given("--in-flight") {
            in_flight as usize
        } else {
            swarm_postgres::ClusterConfig::new("-", "-").max_in_flight
        },
        ..ClusterOptions::new(url)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| DrillError::Setup(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        if let (Some(swarm), Some(name)) = (&args.instance_of, &args.instance_name) {
            let o = InstanceOptions {
                url: url.to_owned(),
                swarm: swarm.clone(),
                name: name.clone(),
                agents: options.agents,
                task: options.task,
                comm_error_rate: options.comm_error_rate,
                seed,
                lease_ttl: options.lease_ttl,
                renew_every: options.renew_every,
                max_in_flight: options.max_in_flight,
            };
            swarm_drill::cluster::run_instance(&o).await?;
            return Ok(true);
        }
        if args.bench {
            let report = swarm_drill::cluster::bench(&options).await?;
            print!("{}", report.table());
            if let Some(path) = json {
                crate::write_json(path, &report)?;
            }
            return Ok(true);
        }
        eprintln!(
            "drill: {} instance processes, {} agents each, {} tasks of {:?}; SIGKILL every {:?}, SIGSTOP {:?}",
            options.instances, options.agents, options.tasks, options.task, options.kill_every, options.pause
        );
        let report = swarm_drill::cluster::drill(&options).await?;
        print!("{}", report.table());
        println!("{}", report.last_line());
        if let Some(path) = json {
            crate::write_json(path, &report)?;
        }
        Ok(report.passed())
    })
}
