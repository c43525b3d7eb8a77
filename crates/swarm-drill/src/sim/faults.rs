//! When faults happen: one Poisson process per kind, at its rate per hour of simulated time.

use std::time::Duration;

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use tokio::time::Instant;

use super::options::FaultMix;

/// A kind of fault the simulation injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Fault {
    Communication,
    Hang,
    Crash,
    Silent,
    Corruption,
    PressureWave,
    CapabilityOutage,
    SecondCaller,
    StoreFailure,
    CoordinatorRestart,
    Churn,
    BadPatch,
    Wedged,
    BadAgent,
}

impl Fault {
    const ALL: [Fault; 14] = [
        Self::Communication,
        Self::Hang,
        Self::Crash,
        Self::Silent,
        Self::Corruption,
        Self::PressureWave,
        Self::CapabilityOutage,
        Self::SecondCaller,
        Self::StoreFailure,
        Self::CoordinatorRestart,
        Self::Churn,
        Self::BadPatch,
        Self::Wedged,
        Self::BadAgent,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Communication => "communication",
            Self::Hang => "hang",
            Self::Crash => "crash",
            Self::Silent => "silent",
            Self::Corruption => "corruption",
            Self::PressureWave => "pressure_wave",
            Self::CapabilityOutage => "capability_outage",
            Self::SecondCaller => "second_caller",
            Self::StoreFailure => "store_failure",
            Self::CoordinatorRestart => "coordinator_restart",
            Self::Churn => "churn",
            Self::BadPatch => "bad_patch",
            Self::Wedged => "wedged",
            Self::BadAgent => "bad_agent",
        }
    }

    fn rate(self, mix: &FaultMix) -> f64 {
        match self {
            Self::Communication => mix.communication,
            Self::Hang => mix.hang,
            Self::Crash => mix.crash,
            Self::Silent => mix.silent,
            Self::Corruption => mix.corruption,
            Self::PressureWave => mix.pressure_wave,
            Self::CapabilityOutage => mix.capability_outage,
            Self::SecondCaller => mix.second_caller,
            Self::StoreFailure => mix.store_failure,
            Self::CoordinatorRestart => mix.coordinator_restart,
            Self::Churn => mix.churn,
            Self::BadPatch => mix.bad_patch,
            Self::Wedged => mix.wedged,
            Self::BadAgent => mix.bad_agent,
        }
    }
}

/// The next time of each kind of fault.
#[derive(Debug)]
pub(crate) struct FaultClock {
    next: Vec<(Fault, Option<Instant>)>,
    rates: Vec<f64>,
}

/// An exponential wait for a process of `per_hour` events an hour.
fn wait(per_hour: f64, rng: &mut Xoshiro256PlusPlus) -> Duration {
    let u: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    Duration::from_secs_f64(-libm::log(u) * 3600.0 / per_hour)
}

impl FaultClock {
    pub(crate) fn new(mix: &FaultMix, rng: &mut Xoshiro256PlusPlus) -> Self {
        let now = Instant::now();
        let rates: Vec<f64> = Fault::ALL.iter().map(|f| f.rate(mix)).collect();
        let next = Fault::ALL
            .iter()
            .zip(&rates)
            .map(|(f, &r)| (*f, (r > 0.0).then(|| now + wait(r, rng))))
            .collect();
        Self { next, rates }
    }

    /// The earliest pending fault and its time.
    pub(crate) fn next(&self) -> Option<(Instant, Fault)> {
        self.next
            .iter()
            .filter_map(|(f, at)| at.map(|at| (at, *f)))
            .min()
    }

    /// `f` happened: schedule its next one.
    pub(crate) fn advance(&mut self, f: Fault, rng: &mut Xoshiro256PlusPlus) {
        let now = Instant::now();
        if let Some(i) = Fault::ALL.iter().position(|x| *x == f) {
            let rate = self.rates[i];
            self.next[i].1 = (rate > 0.0).then(|| now + wait(rate, rng));
        }
    }
}
