//! What a simulated run does: the workload and the fault mix, per hour of simulated time.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Faults per hour of simulated time, each a Poisson process of its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultMix {
    /// A run fails with a communication error.
    pub communication: f64,
    /// A run hangs past the task timeout.
    pub hang: f64,
    /// An agent crashes (its run fails) and reboots a few minutes later.
    pub crash: f64,
    /// An agent stops sending heartbeats for a while, but keeps working and answering probes.
    pub silent: f64,
    /// The coordinator's state is damaged (an agent wrongly quarantined, metadata scribbled)
    /// and the next run reports `StateCorruption`.
    pub corruption: f64,
    /// A wave of memory and CPU pressure, for minutes.
    pub pressure_wave: f64,
    /// Every agent with the `gpu` capability is down for a while: `gpu` tasks have nobody.
    pub capability_outage: f64,
    /// A task gets a second caller running it at the same time.
    pub second_caller: f64,
    /// The next checkpoint write fails.
    pub store_failure: f64,
    /// The coordinator process crashes and a new one starts from the last checkpoint.
    pub coordinator_restart: f64,
    /// An agent leaves; the autoscaler's replacement joins 1 to 5 minutes later.
    pub churn: f64,
    /// An operator applies a configuration patch with one bad entry.
    pub bad_patch: f64,
    /// A task's scheduling entry wedges: its runs fail with `TransactionFailed` until a
    /// component of the coordinator is restarted, so retrying (the cheapest strategy that
    /// handles the error) never recovers it and the healing rule that restarts
    /// `task_scheduler` does. Off by default: the fault mix of the learned-order experiment.
    pub wedged: f64,
    /// An agent gets a bad deploy for 5 to 20 minutes: every run on it fails, while it still
    /// answers probes and heartbeats, so only a circuit breaker takes it out. Off by default.
    pub bad_agent: f64,
}

impl Default for FaultMix {
    fn default() -> Self {
        Self {
            communication: 120.0,
            hang: 12.0,
            crash: 4.0,
            silent: 2.0,
            corruption: 1.0,
            pressure_wave: 1.0,
            capability_outage: 0.25,
            second_caller: 60.0,
            store_failure: 1.0,
            coordinator_restart: 0.25,
            churn: 2.0,
            bad_patch: 0.5,
            wedged: 0.0,
            bad_agent: 0.0,
        }
    }
}

impl FaultMix {
    /// No faults at all: the fault-free baseline of the same workload.
    pub fn none() -> Self {
        Self {
            communication: 0.0,
            hang: 0.0,
            crash: 0.0,
            silent: 0.0,
            corruption: 0.0,
            pressure_wave: 0.0,
            capability_outage: 0.0,
            second_caller: 0.0,
            store_failure: 0.0,
            coordinator_restart: 0.0,
            churn: 0.0,
            bad_patch: 0.0,
            wedged: 0.0,
            bad_agent: 0.0,
        }
    }

    /// Every rate with its name.
    pub fn rates(&self) -> [(&'static str, f64); 14] {
        [
            ("communication", self.communication),
            ("hang", self.hang),
            ("crash", self.crash),
            ("silent", self.silent),
            ("corruption", self.corruption),
            ("pressure_wave", self.pressure_wave),
            ("capability_outage", self.capability_outage),
            ("second_caller", self.second_caller),
            ("store_failure", self.store_failure),
            ("coordinator_restart", self.coordinator_restart),
            ("churn", self.churn),
            ("bad_patch", self.bad_patch),
            ("wedged", self.wedged),
            ("bad_agent", self.bad_agent),
        ]
    }

    /// Set the rate named `name` (as [`rates`](Self::rates) names it) to `per_hour`.
    ///
    /// # Errors
    ///
    /// An unknown name, with the known ones.
    pub fn set(&mut self, name: &str, per_hour: f64) -> Result<(), String> {
        let slot = match name {
            "communication" => &mut self.communication,
            "hang" => &mut self.hang,
            "crash" => &mut self.crash,
            "silent" => &mut self.silent,
            "corruption" => &mut self.corruption,
            "pressure_wave" => &mut self.pressure_wave,
            "capability_outage" => &mut self.capability_outage,
            "second_caller" => &mut self.second_caller,
            "store_failure" => &mut self.store_failure,
            "coordinator_restart" => &mut self.coordinator_restart,
            "churn" => &mut self.churn,
            "bad_patch" => &mut self.bad_patch,
            "wedged" => &mut self.wedged,
            "bad_agent" => &mut self.bad_agent,
            _ => {
                let known: Vec<&str> = self.rates().iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "there is no fault `{name}`; the faults are {}",
                    known.join(", ")
                ));
            }
        };
        *slot = per_hour;
        self.validate()
    }

    /// Every rate finite, at least 0 and at most 100,000 an hour.
    ///
    /// # Errors
    ///
    /// The first rate out of range, named.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in self.rates() {
            if !(0.0..=100_000.0).contains(&rate) {
                return Err(format!(
                    "the `{name}` fault rate is {rate} an hour; it must be within 0..=100000"
                ));
            }
        }
        Ok(())
    }
}

/// A simulated run: the whole swarm on one thread, on tokio's paused clock, every source of
/// randomness drawn from `seed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimOptions {
    /// The seed of everything random: the workload, the faults, the ids, the jitter.
    pub seed: u64,
    /// Simulated days to run.
    pub days: f64,
    /// Agents at the start (a quarter of them have the `gpu` capability).
    pub agents: usize,
    /// The share of the agents' time the workload asks for (arrivals are paced to it).
    pub utilisation: f64,
    /// The median length of a task; lengths are log-normal.
    pub median_task: Duration,
    /// The log-normal's sigma (0.8: a mean 1.4 times the median, a 99th percentile 6.4 times).
    pub task_sigma: f64,
    /// The share of tasks that need the `gpu` capability.
    pub gpu_share: f64,
    /// The faults.
    pub faults: FaultMix,
    /// Stop just before this event (1 for the first), for debugging.
    pub until_event: Option<u64>,
    /// Step the degradation level early on a forecast of the pressure (predictive recovery).
    pub predictive: bool,
    /// Order the strategies by what they achieved (the learned order) instead of by cost.
    pub learned_order: bool,
    /// How long a pressure wave takes to build up to its amplitude (zero, the default: it
    /// arrives at once). Real pressure builds up; predictive degradation can only see a ramp.
    pub wave_ramp: Duration,
    /// How far ahead predictive degradation looks (its `lead_time`; default 60 s).
    pub prediction_lead: Duration,
    /// Predictive degradation with [`TrendConfig::responsive`], made for the sparse samples
    /// of a 30 s monitoring interval, instead of the default detector.
    ///
    /// [`TrendConfig::responsive`]: recovery_degradation::predict::TrendConfig::responsive
    pub responsive_prediction: bool,
    /// The manager's monitoring interval: how often resources are sampled and the level
    /// stepped (default 30 s, the spec's).
    pub monitoring_interval: Duration,
    /// A circuit breaker per agent (the default `BreakerConfig`, seeded).
    pub breakers: bool,
    /// A recovery workflow for coordination timeouts (alert, retry, verify the swarm's audit),
    /// cheaper than the backoff strategy so that it runs first.
    pub workflows: bool,
    /// The coordinator's run limit, which each degradation level scales (1, 0.75, 0.5, 0.25);
    /// `None`, the default, is twice the agents, so that only Critical's quarter binds.
    pub max_parallel_tasks: Option<usize>,
}

impl Default for SimOptions {
    fn default() -> Self {
        Self {
            seed: 7,
            days: 1.0,
            agents: 16,
            utilisation: 0.7,
            median_task: Duration::from_secs(3),
            task_sigma: 0.8,
            gpu_share: 0.1,
            faults: FaultMix::default(),
            until_event: None,
            predictive: false,
            learned_order: false,
            wave_ramp: Duration::ZERO,
            prediction_lead: Duration::from_secs(60),
            responsive_prediction: false,
            monitoring_interval: Duration::from_secs(30),
            breakers: false,
            workflows: false,
            max_parallel_tasks: None,
        }
    }
}

impl SimOptions {
    /// The same options with the four enhancements on: the learned order, predictive
    /// degradation, circuit breakers and the workflow.
    pub fn with_enhancements(mut self) -> Self {
        self.learned_order = true;
        self.predictive = true;
        self.breakers = true;
        self.workflows = true;
        self
    }

    /// The simulated time the workload runs.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.days * 86_400.0)
    }

    /// The coordinator's run limit: [`SimOptions::max_parallel_tasks`], else twice the agents.
    pub fn run_limit(&self) -> usize {
        self.max_parallel_tasks
            .unwrap_or(self.agents * 2)
            .clamp(1, 4096)
    }

    /// The mean task length: `median × e^(σ²/2)`.
    pub fn mean_task(&self) -> Duration {
        self.median_task
            .mul_f64(libm::exp(self.task_sigma * self.task_sigma / 2.0))
    }

    /// Tasks arriving per second to keep the swarm at `utilisation`.
    pub fn arrival_rate(&self) -> f64 {
        self.utilisation * self.agents as f64 / self.mean_task().as_secs_f64()
    }

    /// Check every value.
    ///
    /// # Errors
    ///
    /// The first value out of range, named.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.days > 0.0 && self.days <= 365.0) {
            return Err(format!(
                "--days is {}; it must be within (0, 365]",
                self.days
            ));
        }
        if !(1..=4096).contains(&self.agents) {
            return Err(format!(
                "--agents is {}; it must be within 1..=4096",
                self.agents
            ));
        }
        if let Some(n) = self.max_parallel_tasks
            && !(1..=4096).contains(&n)
        {
            return Err(format!("--max-parallel is {n}; it must be within 1..=4096"));
        }
        if !(self.utilisation > 0.0 && self.utilisation <= 1.0) {
            return Err(format!(
                "--utilisation is {}; it must be within (0, 1]",
                self.utilisation
            ));
        }
        for (flag, d, max) in [
            ("--wave-ramp", self.wave_ramp, 3600),
            ("--prediction-lead", self.prediction_lead, 3600),
            ("--monitoring-interval", self.monitoring_interval, 3600),
        ] {
            if d > Duration::from_secs(max) {
                return Err(format!("{flag} is {d:?}; it may be at most 1h"));
            }
        }
        if self.prediction_lead.is_zero() {
            return Err("--prediction-lead must be longer than zero".to_owned());
        }
        if self.monitoring_interval < Duration::from_millis(100) {
            return Err(format!(
                "--monitoring-interval is {:?}; it must be at least 100ms",
                self.monitoring_interval
            ));
        }
        if self.median_task.is_zero() || self.median_task > Duration::from_secs(3600) {
            return Err(format!(
                "--median-task is {:?}; it must be within (0, 1h]",
                self.median_task
            ));
        }
        if !(0.0..=3.0).contains(&self.task_sigma) {
            return Err(format!(
                "task_sigma is {}; it must be within 0..=3",
                self.task_sigma
            ));
        }
        if !(0.0..=1.0).contains(&self.gpu_share) {
            return Err(format!(
                "gpu_share is {}; it must be within 0..=1",
                self.gpu_share
            ));
        }
        self.faults.validate()
    }
}
