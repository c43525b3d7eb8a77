//! A trend detector for predictive degradation (the spec's "proactively apply recovery based on
//! system health trends"): Holt's linear smoothing of one resource's usage (a level and a slope,
//! aware of uneven sample intervals), and a forecast `lead_time` ahead. It says to act only when
//! the forecast crosses the threshold while the level is still below it, the slope stands out
//! of its own noise, and that holds for several samples in a row, so a stationary noisy signal
//! below the threshold never triggers it.
//!
//! ```
//! use std::time::Duration;
//! use recovery_degradation::predict::{Forecast, Trend, TrendConfig};
//!
//! let mut trend = Trend::new(TrendConfig { lead_time: Duration::from_secs(30), ..TrendConfig::default() });
//! // Memory climbing 1 % a second from 20 %, sampled every second; the threshold is 90 %.
//! let mut acted_at = None;
//! for t in 0..70 {
//!     let usage = 0.20 + 0.01 * t as f64;
//!     if let Forecast::Crossing { .. } = trend.observe(t as f64, usage, 0.90) {
//!         acted_at.get_or_insert(t);
//!     }
//! }
//! // It crosses 90 % at t = 70: the detector acted at least 30 s before.
//! assert!(acted_at.unwrap() <= 40, "{acted_at:?}");
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the detector smooths and decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrendConfig {
    /// Smoothing of the level (0..1; higher follows faster).
    pub alpha: f64,
    /// Smoothing of the slope (0..1).
    pub beta: f64,
    /// How far ahead to look.
    #[serde(with = "humantime_serde")]
    pub lead_time: Duration,
    /// Samples before it may decide anything.
    pub warm_up: u32,
    /// The forecast uses the slope less this many of its standard deviations (estimated from
    /// the slope's own changes), so that noise does not look like a trend.
    pub slope_sigmas: f64,
    /// The forecast must cross for this many samples in a row.
    pub confirm: u32,
}

impl Default for TrendConfig {
    fn default() -> Self {
        Self {
            alpha: 0.3,
            beta: 0.1,
            lead_time: Duration::from_secs(60),
            warm_up: 20,
            slope_sigmas: 3.0,
            confirm: 3,
        }
    }
}

impl TrendConfig {
    /// A detector for sparse samples (a monitoring interval of 10 s or more, like the spec's
    /// 30 s): faster smoothing (`alpha` 0.5, `beta` 0.3), 2 slope deviations, 2 samples to
    /// confirm, 10 to warm up, so that it sees a ramp of a few minutes within a few samples.
    ///
    /// The price is noise on dense samples: sampled every second, the default never acts on
    /// the stationary traces of the noise test (their threshold only 0.05 above their peaks),
    /// this one does on some; sampled every 30 s, neither does. Where the signal is noisier
    /// than those traces it steps the level on some of it: the guide's simulation page gives
    /// what it cut and what it cost, measured.
    ///
    /// ```
    /// use std::time::Duration;
    /// use recovery_degradation::predict::{Forecast, Trend, TrendConfig};
    ///
    /// // Memory from 50 % to 90 % over 10 minutes, sampled every 30 s; 85 % is reached at 1,125 s.
    /// let usage = |t: f64| (0.5 + 0.4 * (t - 600.0).max(0.0) / 600.0).min(0.9);
    /// let first_act = |config: TrendConfig| {
    ///     let mut trend = Trend::new(config);
    ///     (0..100).map(|i| 30.0 * f64::from(i)).find(|&t| {
    ///         matches!(trend.observe(t, usage(t), 0.85), Forecast::Crossing { .. })
    ///     })
    /// };
    /// let acted = first_act(TrendConfig::responsive()).expect("it acts");
    /// assert!(1125.0 - acted >= 60.0, "acted at {acted}: at least the 60 s lead before");
    /// // At this sampling the default detector, made for noise, never sees the ramp.
    /// assert_eq!(first_act(TrendConfig::default()), None);
    /// ```
    pub fn responsive() -> Self {
        Self {
            alpha: 0.5,
            beta: 0.3,
            warm_up: 10,
            slope_sigmas: 2.0,
            confirm: 2,
            ..Self::default()
        }
    }

    /// Check every field.
    ///
    /// # Errors
    ///
    /// The first bad field, named.
    pub fn validate(&self) -> Result<(), crate::InvalidDegradationConfig> {
        self.check()
            .map_err(|problem| crate::InvalidDegradationConfig {
                field: "prediction",
                problem,
            })
    }

    fn check(&self) -> Result<(), String> {
        let unit = |v: f64| v.is_finite() && v > 0.0 && v < 1.0;
        if !unit(self.alpha) {
            return Err(format!("`alpha` is {}; it must be in (0, 1)", self.alpha));
        }
        if !unit(self.beta) {
            return Err(format!("`beta` is {}; it must be in (0, 1)", self.beta));
        }
        if self.lead_time.is_zero() {
            return Err("`lead_time` must be longer than zero".into());
        }
        if !self.slope_sigmas.is_finite() || self.slope_sigmas < 0.0 {
            return Err(format!(
                "`slope_sigmas` is {}; it must be at least 0",
                self.slope_sigmas
            ));
        }
        if self.confirm == 0 {
            return Err("`confirm` must be at least 1".into());
        }
        Ok(())
    }
}

/// What a sample says about the future.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Forecast {
    /// Not enough samples yet.
    WarmingUp,
    /// No crossing within the lead time (or the level is already past the threshold: the
    /// ordinary level controller acts then).
    Steady,
    /// The usage is forecast to cross the threshold in about `in_secs` seconds.
    Crossing {
        /// Seconds until the forecast crossing.
        in_secs: f64,
        /// The smoothed usage now.
        level: f64,
        /// Its slope, per second.
        slope: f64,
    },
}

/// Holt's linear smoothing of one signal, and the decision.
#[derive(Debug, Clone)]
pub struct Trend {
    config: TrendConfig,
    level: f64,
    slope: f64,
    /// The smoothed square of the slope's changes.
    slope_var: f64,
    last_t: f64,
    samples: u32,
    streak: u32,
}

impl Trend {
    /// A detector with `config` (see [`TrendConfig::validate`]).
    pub fn new(config: TrendConfig) -> Self {
        Self {
            config,
            level: 0.0,
            slope: 0.0,
            slope_var: 0.0,
            last_t: 0.0,
            samples: 0,
            streak: 0,
        }
    }

    /// The smoothed level and slope (per second).
    pub fn state(&self) -> (f64, f64) {
        (self.level, self.slope)
    }

    /// Take the sample `x` at `t` seconds (increasing), and say whether it crosses `threshold`
    /// within the lead time.
    pub fn observe(&mut self, t: f64, x: f64, threshold: f64) -> Forecast {
        let c = &self.config;
        if self.samples == 0 {
            self.level = x;
            self.last_t = t;
            self.samples = 1;
            return Forecast::WarmingUp;
        }
        let dt = (t - self.last_t).max(1e-9);
        self.last_t = t;
        if self.samples == 1 {
            // The second sample gives the first slope.
            self.slope = (x - self.level) / dt;
            self.level = x;
            self.samples = 2;
            return Forecast::WarmingUp;
        }
        let predicted = self.level + self.slope * dt;
        let level = c.alpha * x + (1.0 - c.alpha) * predicted;
        let observed_slope = (level - self.level) / dt;
        let innovation = observed_slope - self.slope;
        self.slope = c.beta * observed_slope + (1.0 - c.beta) * self.slope;
        self.slope_var = c.beta * innovation * innovation + (1.0 - c.beta) * self.slope_var;
        self.level = level;
        self.samples = self.samples.saturating_add(1);
        if self.samples < c.warm_up {
            return Forecast::WarmingUp;
        }
        // The slope's standard deviation: an average with weight beta of changes of this size.
        let slope_sd = (self.slope_var * c.beta / (2.0 - c.beta)).sqrt();
        let cautious = self.slope - c.slope_sigmas * slope_sd;
        // Look as far as the lead time, plus the samples the confirmation takes and one more
        // (the next look comes a sample later).
        let horizon = c.lead_time.as_secs_f64() + f64::from(c.confirm + 1) * dt;
        let crossing = self.level < threshold
            && cautious > 0.0
            && self.level + cautious * horizon >= threshold;
        if !crossing {
            self.streak = 0;
            return Forecast::Steady;
        }
        self.streak += 1;
        if self.streak < c.confirm {
            return Forecast::Steady;
        }
        Forecast::Crossing {
            in_secs: (threshold - self.level) / self.slope,
            level: self.level,
            slope: self.slope,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded uniform number in [0, 1) (SplitMix64), so that the traces repeat.
    fn noise(state: &mut u64) -> f64 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }

    #[test]
    fn on_ramps_it_acts_at_least_the_lead_time_before_the_crossing() {
        for (slope, lead, every) in [
            (0.01, 30.0, 1.0),
            (0.002, 60.0, 5.0),
            (0.02, 10.0, 0.5),
            (0.005, 60.0, 2.0),
        ] {
            let config = TrendConfig {
                lead_time: Duration::from_secs_f64(lead),
                ..TrendConfig::default()
            };
            let mut trend = Trend::new(config);
            let (start, threshold) = (0.2, 0.9);
            let crossing_at = (threshold - start) / slope;
            let mut acted = None;
            let mut t = 0.0;
            while t < crossing_at {
                if let Forecast::Crossing { .. } = trend.observe(t, start + slope * t, threshold) {
                    acted.get_or_insert(t);
                }
                t += every;
            }
            let acted = acted.unwrap_or_else(|| panic!("slope {slope}: never acted"));
            assert!(
                crossing_at - acted >= lead,
                "slope {slope}, lead {lead}: acted {:.1} s before the crossing",
                crossing_at - acted
            );
        }
    }

    /// Feed 1,000 seeded traces of stationary uniform noise to a detector with `config`:
    /// `samples` samples `every` seconds apart, means `0.3` plus up to `mean_span`, amplitudes
    /// `0.02` plus up to `amplitude_span`, each trace's threshold 0.05 above its peaks. Panics
    /// naming the first sample it acts on.
    fn never_acts_on_noise(
        config: &TrendConfig,
        mut seed: u64,
        every: f64,
        samples: u32,
        mean_span: f64,
        amplitude_span: f64,
    ) {
        for trace in 0..1000 {
            let mut trend = Trend::new(config.clone());
            let mean = 0.3 + mean_span * noise(&mut seed);
            let amplitude = 0.02 + amplitude_span * noise(&mut seed);
            let threshold = (mean + amplitude + 0.05).min(0.99);
            for i in 0..samples {
                let x = mean + amplitude * (2.0 * noise(&mut seed) - 1.0);
                let f = trend.observe(every * f64::from(i), x, threshold);
                assert!(
                    !matches!(f, Forecast::Crossing { .. }),
                    "trace {trace}: acted at sample {i} on noise (mean {mean:.2}, ±{amplitude:.2}, threshold {threshold:.2}): {f:?}"
                );
            }
        }
    }

    #[test]
    fn stationary_noise_below_the_threshold_never_triggers_it_in_1000_traces() {
        // An hour each, sampled every second.
        never_acts_on_noise(&TrendConfig::default(), 7, 1.0, 3600, 0.4, 0.15);
    }

    /// The responsive detector is made for sparse samples: on a day of samples 30 s apart it
    /// never acts on stationary noise whose peaks stay 0.05 below the threshold (sampled every
    /// second, as in the test above, it does on some traces).
    #[test]
    fn the_responsive_detector_ignores_sparse_noise_below_the_threshold_in_1000_traces() {
        never_acts_on_noise(&TrendConfig::responsive(), 11, 30.0, 2880, 0.3, 0.1);
    }

    #[test]
    fn a_level_already_past_the_threshold_is_left_to_the_controller() {
        let mut trend = Trend::new(TrendConfig::default());
        let mut last = Forecast::WarmingUp;
        for t in 0..100 {
            last = trend.observe(t as f64, 0.95 + 0.001 * t as f64, 0.9);
        }
        assert_eq!(last, Forecast::Steady);
    }

    #[test]
    fn bad_settings_name_their_field() {
        let e = TrendConfig {
            alpha: 1.5,
            ..TrendConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`alpha`"), "{e}");
        let e = TrendConfig {
            confirm: 0,
            ..TrendConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(e.to_string().contains("`confirm`"), "{e}");
    }
}
