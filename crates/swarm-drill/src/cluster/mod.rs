//! The multi-instance drill (`swarm-drill --postgres URL --instances 3`): several instance
//! processes share one swarm on PostgreSQL while the drill kills them with SIGKILL (and starts
//! them again) every few seconds and once pauses one with SIGSTOP for longer than its leases;
//! at the end the database must show every task completed exactly once, none lost, each
//! failure's recovery one owner's at a time, and the paused instance's late writes refused.
//! `--bench` measures throughput and claim latency instead (see `benches/README.md`).

mod bench;
mod children;
mod drill;
mod instance;
mod report;

use std::time::Duration;

use crate::DrillError;

pub use bench::{BenchReport, bench};
pub use drill::drill;
pub use instance::{InstanceOptions, run_instance};
pub use report::ClusterReport;

/// A database error, as the drill reports it.
fn db(e: impl std::fmt::Display) -> DrillError {
    DrillError::Setup(format!("the database: {e}"))
}

/// How the multi-instance drill runs.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// The database (`postgres://...`).
    pub url: String,
    /// Instance processes.
    pub instances: usize,
    /// Agents per instance.
    pub agents: usize,
    /// Tasks to submit.
    pub tasks: u64,
    /// How long each run takes.
    pub task: Duration,
    /// Share of runs that fail with a communication error.
    pub comm_error_rate: f64,
    /// Seed of the faults and of the chaos.
    pub seed: u64,
    /// One instance is killed with SIGKILL (and started again) this often; zero: never.
    pub kill_every: Duration,
    /// One instance is paused with SIGSTOP this long, once; `None`: never.
    pub pause: Option<Duration>,
    /// Lease timings of every instance.
    pub lease_ttl: Duration,
    /// How often leases are renewed.
    pub renew_every: Duration,
    /// Most tasks an instance holds at once.
    pub max_in_flight: usize,
    /// Give up waiting after this long.
    pub duration_limit: Duration,
}

impl ClusterOptions {
    /// The defaults of `swarm-drill --postgres URL`: 3 instances of 8 agents, 10,000 tasks of
    /// 20 ms with 1 % communication errors, a SIGKILL every 3 s, a pause of TTL + 3 s, the
    /// default leases (15 s, renewed every 5 s).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            instances: 3,
            agents: 8,
            tasks: 10_000,
            task: Duration::from_millis(20),
            comm_error_rate: 0.01,
            seed: 7,
            kill_every: Duration::from_secs(3),
            pause: Some(Duration::from_secs(18)),
            lease_ttl: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            max_in_flight: 16,
            duration_limit: Duration::from_secs(600),
        }
    }

    fn instance(&self, swarm: &str, n: usize, generation: u64) -> InstanceOptions {
        InstanceOptions {
            url: self.url.clone(),
            swarm: swarm.to_owned(),
            name: format!("instance-{n}"),
            agents: self.agents,
            task: self.task,
            comm_error_rate: self.comm_error_rate,
            seed: self.seed ^ (n as u64) << 32 ^ generation,
            lease_ttl: self.lease_ttl,
            renew_every: self.renew_every,
            max_in_flight: self.max_in_flight,
        }
    }
}
