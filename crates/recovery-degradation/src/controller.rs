//! The hysteresis state machine that turns pressure into a level.

use crate::DegradationLevel;
use crate::config::{DegradationConfig, LevelPolicy};
use crate::error::InvalidDegradationConfig;
use crate::level::Pressure;
use crate::monitor::ResourceUsage;

/// The hysteresis state machine: the level, given the pressures seen so far.
///
/// Rule: a level is **entered** when pressure reaches its entry point
/// ([`LevelPolicy::entry`]); the current level is **kept** while pressure stays at or above its
/// entry point minus [`LevelPolicy::hysteresis_margin`], and when it falls below that the level
/// steps down: one level per observation with [`LevelPolicy::gradual_recovery`] (the
/// default), else to the highest lower level whose own (entry − margin) is still reached. Rising
/// is immediate (pressure is dangerous), falling waits for the margin (so a value jittering at a
/// threshold does not flap) and comes one step at a time (so the load let back in is measured
/// before more is).
///
/// Pure and synchronous: no clock, no I/O.
///
/// ```
/// use recovery_degradation::{DegradationConfig, DegradationLevel, LevelController, LevelPolicy};
/// let mut c = LevelController::new(LevelPolicy::default()).unwrap();
/// assert_eq!(c.observe_pressure(1.0), DegradationLevel::Reduced); // entered at 1.0
/// assert_eq!(c.observe_pressure(0.96), DegradationLevel::Reduced); // kept within the margin
/// assert_eq!(c.observe_pressure(0.94), DegradationLevel::Normal); // left below 0.95
/// assert_eq!(c.observe_pressure(1.2), DegradationLevel::Critical); // entered at once
/// assert_eq!(c.observe_pressure(0.5), DegradationLevel::Minimal); // left one level a step
/// assert_eq!(c.observe_pressure(0.5), DegradationLevel::Reduced);
/// assert_eq!(c.observe_pressure(0.5), DegradationLevel::Normal);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LevelController {
    policy: LevelPolicy,
    level: DegradationLevel,
}

impl LevelController {
    /// A controller at Normal, after checking `policy`.
    pub fn new(policy: LevelPolicy) -> Result<Self, InvalidDegradationConfig> {
        policy.validate()?;
        Ok(Self {
            policy,
            level: DegradationLevel::Normal,
        })
    }

    /// A controller for a policy known to be valid (the default one).
    pub(crate) fn new_unchecked(policy: LevelPolicy) -> Self {
        Self {
            policy,
            level: DegradationLevel::Normal,
        }
    }

    /// The same controller, starting at `level` instead of Normal.
    pub fn starting_at(mut self, level: DegradationLevel) -> Self {
        self.level = level;
        self
    }

    /// The current level.
    pub fn level(&self) -> DegradationLevel {
        self.level
    }

    /// The policy.
    pub fn policy(&self) -> &LevelPolicy {
        &self.policy
    }

    /// What the level would become on pressure `p`, without changing it.
    pub fn peek_pressure(&self, p: f64) -> DegradationLevel {
        if p.is_nan() {
            return self.level;
        }
        let called = DegradationLevel::for_pressure(p, &self.policy);
        if called >= self.level {
            return called;
        }
        let mut level = self.level;
        while p < self.policy.entry(level) - self.policy.hysteresis_margin {
            match level.below() {
                Some(lower) => level = lower,
                None => break,
            }
            if self.policy.gradual_recovery {
                break;
            }
        }
        level
    }

    /// Feed pressure `p` and return the new level. NaN carries no information: the level stays.
    pub fn observe_pressure(&mut self, p: f64) -> DegradationLevel {
        self.level = self.peek_pressure(p);
        self.level
    }

    /// Feed a usage reading, measured against `config`, and return the new level.
    pub fn observe(
        &mut self,
        usage: &ResourceUsage,
        config: &DegradationConfig,
    ) -> DegradationLevel {
        self.observe_pressure(Pressure::of(usage, config).value)
    }

    /// Set the level outright (for example to the level the target reports it really runs at).
    pub fn set_level(&mut self, level: DegradationLevel) {
        self.level = level;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn falling_steps_down_through_the_levels() {
        let mut c = LevelController::new(LevelPolicy::default()).unwrap();
        assert_eq!(c.observe_pressure(2.0), DegradationLevel::Critical);
        assert_eq!(c.observe_pressure(1.06), DegradationLevel::Critical);
        assert_eq!(c.observe_pressure(1.04), DegradationLevel::Minimal);
        assert_eq!(c.observe_pressure(f64::NAN), DegradationLevel::Minimal);
        assert_eq!(
            c.observe_pressure(0.5),
            DegradationLevel::Reduced,
            "one level a step"
        );
        assert_eq!(c.observe_pressure(0.5), DegradationLevel::Normal);
        let mut all_at_once = LevelController::new(LevelPolicy {
            gradual_recovery: false,
            ..LevelPolicy::default()
        })
        .unwrap();
        assert_eq!(
            all_at_once.observe_pressure(2.0),
            DegradationLevel::Critical
        );
        assert_eq!(all_at_once.observe_pressure(0.5), DegradationLevel::Normal);
    }
}
