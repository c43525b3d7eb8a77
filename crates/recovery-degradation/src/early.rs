//! The decision of predictive degradation at one monitoring step: whether a forecast steps the
//! level above what the measured pressure calls for, and how long that early level is held.
//!
//! Each resource has its own trend (its usage over its threshold), so that the noise of one
//! (CPU follows every task that starts or ends) does not hide the ramp of another (memory
//! builds up); the forecast is the highest of theirs.
//!
//! Plain and synchronous: the strategy's step feeds it the time, the pressures, the level the
//! target runs at and the level the hysteresis controller chose, and applies what it returns.

use crate::DegradationLevel;
use crate::config::LevelPolicy;
use crate::level::Pressure;
use crate::predict::{Forecast, Trend};

/// The highest level a forecast alone may step to. Critical (which also refuses new agents)
/// is entered only on measured pressure.
pub(crate) const HIGHEST_EARLY: DegradationLevel = DegradationLevel::Minimal;

/// What predictive degradation makes of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum EarlyDecision {
    /// The level the controller chose stands.
    Plain,
    /// A forecast steps the level to `level`, above the controller's choice: the next
    /// threshold is forecast to be reached in `in_secs` seconds.
    Early {
        /// The level to apply.
        level: DegradationLevel,
        /// Seconds until the forecast crossing.
        in_secs: f64,
    },
    /// An earlier forecast still holds the level at `level`, above the controller's choice
    /// (the load the early step shed lowers the pressure the controller sees; letting it back
    /// in before the forecast crossing has passed would only meet the pressure later).
    Held {
        /// The level to keep.
        level: DegradationLevel,
    },
}

/// The trends and the hold of an early step.
#[derive(Debug, Clone)]
pub(crate) struct Early {
    /// One per resource, in [`Pressure::each`]'s order.
    trends: [Trend; 4],
    lead_secs: f64,
    /// What an early step holds, if anything.
    hold: Option<Hold>,
}

/// An early level, held until `until` (seconds on the trends' clock).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Hold {
    level: DegradationLevel,
    until: f64,
}

impl Early {
    /// A trend like `trend` for each resource, looking `lead_secs` ahead, and no hold.
    pub(crate) fn new(trend: &Trend, lead_secs: f64) -> Self {
        Self {
            trends: std::array::from_fn(|_| trend.clone()),
            lead_secs,
            hold: None,
        }
    }

    /// At `t` seconds, with each resource's `pressures` measured, the target running at `from`
    /// and the controller choosing `plain`: does a forecast step or hold the level higher?
    ///
    /// The trends watch the entry point of the level above `plain` (above `from` when the
    /// controller would step down), so that a rise is seen coming at whatever level it starts.
    /// A forecast crossing steps one level, to the watched one (at most [`HIGHEST_EARLY`]), and
    /// holds it until a lead time after the forecast crossing. A steep ramp climbs a level per
    /// forecast, so each step's shed load is measured before the next; stepping at once to
    /// the level the ramp projects to shed as much time at Critical but about half again as
    /// many tasks (decision 0017).
    pub(crate) fn decide(
        &mut self,
        t: f64,
        pressures: &[Pressure; 4],
        from: DegradationLevel,
        plain: DegradationLevel,
        policy: &LevelPolicy,
    ) -> EarlyDecision {
        let watched = above(plain.max(from));
        let threshold = policy.entry(watched);
        let early = watched.min(HIGHEST_EARLY);
        // Every trend sees every sample, whichever forecasts the soonest crossing.
        let soonest = self
            .trends
            .iter_mut()
            .zip(pressures)
            .filter_map(|(trend, p)| match trend.observe(t, p.value, threshold) {
                Forecast::Crossing { in_secs, .. } => Some(in_secs),
                Forecast::Steady | Forecast::WarmingUp => None,
            })
            .reduce(f64::min);
        if self.hold.is_some_and(|h| t >= h.until) {
            self.hold = None;
        }
        if let Some(in_secs) = soonest {
            let fresh = Hold {
                level: early,
                until: t + in_secs.max(0.0) + self.lead_secs,
            };
            self.hold = Some(match self.hold {
                Some(h) => Hold {
                    level: h.level.max(fresh.level),
                    until: h.until.max(fresh.until),
                },
                None => fresh,
            });
            if early > plain && early > from {
                return EarlyDecision::Early {
                    level: early,
                    in_secs,
                };
            }
        }
        match self.hold {
            Some(h) if h.level > plain && from >= h.level => EarlyDecision::Held { level: h.level },
            _ => EarlyDecision::Plain,
        }
    }
}

/// The next level up (Critical stays Critical).
fn above(level: DegradationLevel) -> DegradationLevel {
    use DegradationLevel::*;
    match level {
        Normal => Reduced,
        Reduced => Minimal,
        Minimal | Critical => Critical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predict::TrendConfig;
    use DegradationLevel::*;
    use std::time::Duration;

    fn early(lead: f64) -> Early {
        let config = TrendConfig {
            lead_time: Duration::from_secs_f64(lead),
            ..TrendConfig::default()
        };
        Early::new(&Trend::new(config), lead)
    }

    /// Memory at pressure `p`, the other resources idle.
    fn memory(p: f64) -> [Pressure; 4] {
        use crate::Resource::*;
        let idle = |resource| Pressure {
            value: 0.1,
            resource,
        };
        [
            idle(Cpu),
            Pressure {
                value: p,
                resource: Memory,
            },
            idle(Connections),
            idle(Tasks),
        ]
    }

    /// Feed a ramp through a plain controller and the early decision together; return each
    /// step's (t, level).
    fn drive(e: &mut Early, ramp: impl Fn(f64) -> f64, until: f64) -> Vec<(f64, DegradationLevel)> {
        let policy = LevelPolicy::default();
        let mut controller = crate::LevelController::new(policy.clone()).unwrap();
        let mut out = Vec::new();
        let mut t = 0.0;
        while t < until {
            let p = ramp(t);
            let from = controller.level();
            let plain = controller.peek_pressure(p);
            let level = match e.decide(t, &memory(p), from, plain, &policy) {
                EarlyDecision::Plain => plain,
                EarlyDecision::Early { level, .. } | EarlyDecision::Held { level } => level,
            };
            controller.set_level(level);
            out.push((t, level));
            t += 5.0;
        }
        out
    }

    #[test]
    fn a_ramp_past_minimal_is_met_at_minimal_before_the_controller_would() {
        let mut e = early(60.0);
        // From 0.6, 0.002 a second: Reduced's 1.0 at 200 s, Minimal's 1.05 at 225 s, and
        // Critical's 1.10 at 250 s, which the measured pressure alone enters.
        let levels = drive(&mut e, |t| 0.6 + 0.002 * t, 300.0);
        let minimal_at = levels.iter().find(|(_, l)| *l == Minimal).unwrap().0;
        assert!(
            minimal_at <= 225.0 - 30.0,
            "Minimal at {minimal_at}: {levels:?}"
        );
        let critical_at = levels.iter().find(|(_, l)| *l == Critical).unwrap().0;
        assert_eq!(
            critical_at, 250.0,
            "a forecast never enters Critical: {levels:?}"
        );
    }

    #[test]
    fn a_steep_ramp_is_met_one_level_a_step() {
        let mut e = early(60.0);
        // Flat, then 0.004 a second from 200 s: Reduced's entry at 300 s, Minimal's at 312.5 s.
        // One lead time ahead is 0.24 higher, past Minimal's entry, yet the first early step
        // goes to Reduced, and Minimal waits for the next forecast.
        let levels = drive(&mut e, |t| 0.6 + 0.004 * (t - 200.0).max(0.0), 400.0);
        let first = levels.iter().position(|(_, l)| *l > Normal).unwrap();
        assert_eq!(levels[first].1, Reduced, "{levels:?}");
        assert!(levels[first].0 < 300.0, "before the crossing: {levels:?}");
        for w in levels.windows(2) {
            let ((_, was), (t, now)) = (w[0], w[1]);
            if now > was && now < Critical {
                assert_eq!(now, above(was), "two levels at once at {t}: {levels:?}");
            }
        }
    }

    #[test]
    fn an_early_level_is_held_a_lead_time_past_the_forecast_crossing_then_let_go() {
        let mut e = early(60.0);
        // Up to 0.95 by 175 s, then the early step sheds load: the pressure falls to 0.7.
        let levels = drive(
            &mut e,
            |t| if t < 175.0 { 0.6 + 0.002 * t } else { 0.7 },
            900.0,
        );
        let first = levels.iter().find(|(_, l)| *l > Normal).unwrap().0;
        let held: Vec<_> = levels
            .iter()
            .filter(|(t, _)| *t > 180.0 && *t < 240.0)
            .collect();
        assert!(first < 175.0, "stepped at {first}");
        assert!(held.iter().all(|(_, l)| *l >= Reduced), "{levels:?}");
        assert_eq!(levels.last().unwrap().1, Normal, "let go: {levels:?}");
    }

    #[test]
    fn a_flat_signal_is_left_to_the_controller() {
        let mut e = early(60.0);
        let policy = LevelPolicy::default();
        for i in 0..500 {
            let t = f64::from(i) * 5.0;
            let p = 0.9 + 0.02 * ((i % 7) as f64 - 3.0) / 3.0;
            assert_eq!(
                e.decide(t, &memory(p), Normal, Normal, &policy),
                EarlyDecision::Plain,
                "t {t}"
            );
        }
    }
}
