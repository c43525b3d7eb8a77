//! Injected resource pressure: spikes that push usage past the thresholds for a while.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Usage the drill reports to the resource monitor: calm, or high while a spike lasts.
#[derive(Debug)]
pub struct Pressure {
    until: Mutex<Option<Instant>>,
    spike_length: Duration,
    /// CPU and memory fractions while calm.
    pub calm: f64,
    /// CPU and memory fractions during a spike.
    pub high: f64,
}

impl Pressure {
    /// Spikes last `spike_length`.
    pub fn new(spike_length: Duration) -> Self {
        Self {
            until: Mutex::new(None),
            spike_length,
            calm: 0.35,
            high: 0.97,
        }
    }

    /// Start (or extend) a spike.
    pub fn spike(&self) {
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + self.spike_length);
    }

    /// The usage to report now.
    pub fn current(&self) -> f64 {
        match *self.until.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(until) if Instant::now() < until => self.high,
            _ => self.calm,
        }
    }
}
