//! One breaker as a plain synchronous state machine: time comes in as an argument, every
//! transition returns a named type, and nothing here locks or waits.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::BreakerConfig;

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It succeeded in time.
    Success,
    /// It failed.
    Failure,
    /// It succeeded, slower than `slow_call_duration`.
    Slow,
}

impl Outcome {
    /// The outcome of a call that took `took` and succeeded or not.
    pub fn of(succeeded: bool, took: Duration, config: &BreakerConfig) -> Self {
        match (succeeded, took > config.slow_call_duration) {
            (false, _) => Self::Failure,
            (true, true) => Self::Slow,
            (true, false) => Self::Success,
        }
    }
}

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls go through and are counted.
    Closed,
    /// Calls are refused until `until`.
    Open {
        /// When it lets a probe through.
        until: Instant,
    },
    /// One probe at a time decides: success closes, failure opens again for longer.
    HalfOpen,
}

/// Whether a call may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A normal call (closed).
    Call,
    /// The one probe of a half-open breaker.
    Probe,
    /// Refused: open, or half-open with its probe out.
    Rejected,
}

/// What a recorded outcome did to the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Nothing changed state.
    Stayed,
    /// It opened, until `until`.
    Opened {
        /// When it lets a probe through.
        until: Instant,
    },
    /// It would have opened, but the set's cap on open breakers was reached: it stays closed.
    CapReached,
    /// The probe succeeded: it closed.
    Closed,
    /// The probe failed: it opened again, for longer.
    Reopened {
        /// When it lets a probe through.
        until: Instant,
    },
}

/// One breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    state: State,
    window: VecDeque<Outcome>,
    /// Opens in a row (a probe's success resets it).
    opens: u32,
    probe_out: bool,
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Breaker {
    /// A closed breaker with an empty window.
    pub fn new() -> Self {
        Self {
            state: State::Closed,
            window: VecDeque::new(),
            opens: 0,
            probe_out: false,
        }
    }

    /// Where it stands at `now` (an open breaker whose time is up is half-open).
    pub fn state(&self, now: Instant) -> State {
        match self.state {
            State::Open { until } if now >= until => State::HalfOpen,
            s => s,
        }
    }

    /// Whether it counts against the set's cap (open or half-open).
    pub fn is_ejected(&self) -> bool {
        !matches!(self.state, State::Closed)
    }

    /// Whether a half-open breaker's probe is out.
    pub fn probe_out(&self) -> bool {
        self.probe_out
    }

    /// Ask to make a call at `now`.
    pub fn admit(&mut self, now: Instant) -> Admission {
        if let State::Open { until } = self.state {
            if now < until {
                return Admission::Rejected;
            }
            self.state = State::HalfOpen;
        }
        match self.state {
            State::Closed => Admission::Call,
            State::HalfOpen if !self.probe_out => {
                self.probe_out = true;
                Admission::Probe
            }
            _ => Admission::Rejected,
        }
    }

    /// A probe's permit was dropped without an outcome: let another probe go.
    pub fn release_probe(&mut self) {
        self.probe_out = false;
    }

    /// Record how an admitted call ended. `may_open` says whether the set's cap lets a closed
    /// breaker open; `open_time` gives the jittered open time for this many opens in a row.
    pub fn record(
        &mut self,
        admitted: Admission,
        outcome: Outcome,
        now: Instant,
        config: &BreakerConfig,
        may_open: bool,
        open_time: &mut dyn FnMut(u32) -> Duration,
    ) -> Transition {
        match (admitted, self.state) {
            (Admission::Probe, State::HalfOpen) => {
                self.probe_out = false;
                if outcome == Outcome::Success {
                    self.state = State::Closed;
                    self.window.clear();
                    self.opens = 0;
                    Transition::Closed
                } else {
                    let until = now + open_time(self.opens);
                    self.opens = self.opens.saturating_add(1);
                    self.state = State::Open { until };
                    Transition::Reopened { until }
                }
            }
            (Admission::Call, State::Closed) => {
                self.window.push_back(outcome);
                while self.window.len() > config.window {
                    self.window.pop_front();
                }
                if !self.should_open(config) {
                    return Transition::Stayed;
                }
                if !may_open {
                    return Transition::CapReached;
                }
                let until = now + open_time(self.opens);
                self.opens = self.opens.saturating_add(1);
                self.state = State::Open { until };
                self.window.clear();
                Transition::Opened { until }
            }
            // A call admitted before the breaker moved on (a late result): not counted.
            _ => Transition::Stayed,
        }
    }

    fn should_open(&self, config: &BreakerConfig) -> bool {
        let n = self.window.len();
        if n < config.minimum_calls {
            return false;
        }
        let failures = self
            .window
            .iter()
            .filter(|o| **o == Outcome::Failure)
            .count();
        let slow = self.window.iter().filter(|o| **o == Outcome::Slow).count();
        failures as f64 >= config.failure_rate_threshold * n as f64
            || slow as f64 >= config.slow_call_rate_threshold * n as f64
    }
}

/// The open time after `opens` opens in a row: `open_for × multiplier^opens`, at most
/// `max_open_for`, shortened by `jitter × unit` (`unit` uniform in [0, 1)).
pub fn open_time(config: &BreakerConfig, opens: u32, unit: f64) -> Duration {
    let grown = config.open_for.as_secs_f64() * config.open_multiplier.powi(opens.min(64) as i32);
    let capped = grown.min(config.max_open_for.as_secs_f64());
    Duration::from_secs_f64(capped * (1.0 - config.jitter * unit.clamp(0.0, 1.0)))
}
