//! The fault plan: which fault each run of each task gets, derived from the seed, the task and
//! the attempt only, never from timing.

use serde::{Deserialize, Serialize};

/// A fault the drill's executor injects into one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Fault {
    /// The run succeeds.
    None,
    /// The agent's connection fails: `CommunicationError`.
    Communication,
    /// The run hangs until the coordinator's task timeout ends it.
    Timeout,
    /// The agent crashes mid-run: it is declared failed and its result is lost.
    AgentCrash,
    /// The coordinator's state is damaged and the run reports `StateCorruption`.
    StateCorruption,
    /// A resource-pressure spike: usage jumps past the thresholds and the run is refused with
    /// `Overloaded`.
    ResourcePressure,
    /// An error no strategy may handle: `ProtocolMismatch`.
    NonRecoverable,
}

impl Fault {
    /// Every fault, in report order.
    pub const ALL: [Fault; 7] = [
        Fault::None,
        Fault::Communication,
        Fault::Timeout,
        Fault::AgentCrash,
        Fault::StateCorruption,
        Fault::ResourcePressure,
        Fault::NonRecoverable,
    ];

    /// A short name for reports.
    pub const fn name(self) -> &'static str {
        match self {
            Fault::None => "none",
            Fault::Communication => "communication",
            Fault::Timeout => "timeout",
            Fault::AgentCrash => "agent crash",
            Fault::StateCorruption => "state corruption",
            Fault::ResourcePressure => "resource pressure",
            Fault::NonRecoverable => "non-recoverable",
        }
    }
}

/// The probability of each fault per run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FaultRates {
    /// `CommunicationError` per run.
    pub communication: f64,
    /// A hang past the task timeout per run.
    pub timeout: f64,
    /// An agent crash per run.
    pub agent_crash: f64,
    /// State corruption per run.
    pub state_corruption: f64,
    /// A resource-pressure spike per run.
    pub resource_pressure: f64,
    /// A non-recoverable error per run.
    pub non_recoverable: f64,
}

impl Default for FaultRates {
    fn default() -> Self {
        Self {
            communication: 0.05,
            timeout: 0.0005,
            agent_crash: 0.002,
            state_corruption: 0.0005,
            resource_pressure: 0.001,
            non_recoverable: 0.003,
        }
    }
}

impl FaultRates {
    /// No faults at all (the baseline run).
    pub const NONE: FaultRates = FaultRates {
        communication: 0.0,
        timeout: 0.0,
        agent_crash: 0.0,
        state_corruption: 0.0,
        resource_pressure: 0.0,
        non_recoverable: 0.0,
    };

    /// The sum of every rate; at most 1.
    pub fn total(&self) -> f64 {
        self.communication
            + self.timeout
            + self.agent_crash
            + self.state_corruption
            + self.resource_pressure
            + self.non_recoverable
    }

    /// Check every rate is within `0..=1` and they sum to at most 1; the error names the rate.
    pub fn validate(&self) -> Result<(), String> {
        for (name, rate) in [
            ("--comm-error-rate", self.communication),
            ("--timeout-rate", self.timeout),
            ("--crash-rate", self.agent_crash),
            ("--corruption-rate", self.state_corruption),
            ("--pressure-rate", self.resource_pressure),
            ("--fatal-rate", self.non_recoverable),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be within 0..=1, got {rate}"));
            }
        }
        if self.total() > 1.0 {
            return Err(format!(
                "the fault rates sum to {:.4}; they must sum to at most 1",
                self.total()
            ));
        }
        Ok(())
    }
}

/// SplitMix64's finaliser: a good 64-bit mix, so nearby inputs give unrelated outputs.
pub(crate) const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The fault for run `attempt` (1-based) of task number `task`, under `seed`.
pub fn decide(seed: u64, task: u64, attempt: u32, rates: &FaultRates) -> Fault {
    let h = mix(mix(mix(seed ^ 0x5eed) ^ task) ^ u64::from(attempt));
    // 53 random bits as a fraction in [0, 1).
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    let mut edge = 0.0;
    for (fault, rate) in [
        (Fault::Communication, rates.communication),
        (Fault::Timeout, rates.timeout),
        (Fault::AgentCrash, rates.agent_crash),
        (Fault::StateCorruption, rates.state_corruption),
        (Fault::ResourcePressure, rates.resource_pressure),
        (Fault::NonRecoverable, rates.non_recoverable),
    ] {
        edge += rate;
        if u < edge {
            return fault;
        }
    }
    Fault::None
}

/// A digest of the whole plan: the fault of the first `attempts` runs of every task. Two drills
/// with the same seed, task count and rates print the same digest.
pub fn plan_digest(seed: u64, tasks: u64, attempts: u32, rates: &FaultRates) -> u64 {
    let mut acc = mix(seed);
    for task in 0..tasks {
        for attempt in 1..=attempts {
            let f = decide(seed, task, attempt, rates) as u64;
            acc = mix(acc ^ (task << 8) ^ (u64::from(attempt) << 4) ^ f);
        }
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_depend_only_on_seed_task_and_attempt() {
        let r = FaultRates::default();
        for t in 0..100 {
            assert_eq!(decide(7, t, 1, &r), decide(7, t, 1, &r));
        }
        assert_eq!(plan_digest(7, 500, 3, &r), plan_digest(7, 500, 3, &r));
        assert_ne!(plan_digest(7, 500, 3, &r), plan_digest(8, 500, 3, &r));
    }

    #[test]
    fn rates_are_honoured_roughly() {
        let r = FaultRates {
            communication: 0.1,
            ..FaultRates::NONE
        };
        let n = 100_000;
        let hits = (0..n)
            .filter(|&t| decide(1, t, 1, &r) == Fault::Communication)
            .count();
        let share = hits as f64 / n as f64;
        assert!((0.09..0.11).contains(&share), "{share}");
        assert!((0..1000).all(|t| decide(1, t, 1, &FaultRates::NONE) == Fault::None));
    }

    #[test]
    fn bad_rates_name_the_flag() {
        let e = FaultRates {
            timeout: 1.5,
            ..FaultRates::NONE
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("--timeout-rate"), "{e}");
        let e = FaultRates {
            communication: 0.7,
            agent_crash: 0.7,
            ..FaultRates::NONE
        }
        .validate()
        .unwrap_err();
        assert!(e.contains("sum"), "{e}");
    }
}
