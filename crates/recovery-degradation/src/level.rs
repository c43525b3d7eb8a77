//! Degradation levels, the pressure they are computed from, and the hysteresis that keeps them
//! from flapping.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use recovery_core::{Priority, SwarmError};
use serde::{Deserialize, Serialize};

use crate::config::{DegradationConfig, LevelPolicy};
use crate::error::{UnknownLevel, UnknownLevelName};
use crate::monitor::ResourceUsage;

/// How much a system sheds: what it admits, how much it runs at once, what it pauses.
///
/// Ordered from [`Normal`](Self::Normal) (sheds nothing) to [`Critical`](Self::Critical)
/// (sheds the most), so `Ord` compares severity; [`as_u8`](Self::as_u8) is the number carried in
/// `RecoveryAction::Degraded { level }`.
///
/// | level | admits new work of priority | parallelism | pauses |
/// |---|---|---|---|
/// | Normal (0) | Low, Normal, High, Critical | 1.0 | nothing |
/// | Reduced (1) | Normal, High, Critical | 0.75 | speculative work, background maintenance |
/// | Minimal (2) | High, Critical | 0.5 | also detailed telemetry |
/// | Critical (3) | Critical | 0.25 | also new connections |
///
/// Work that a level refuses is refused at submission with [`SwarmError::Overloaded`] (see
/// [`admit`](Self::admit)); work already accepted is never dropped, it only runs with fewer
/// slots.
///
/// ```
/// use recovery_core::Priority;
/// use recovery_degradation::{DegradationLevel, Feature};
/// let level = DegradationLevel::Minimal;
/// assert!(!level.admits(Priority::Normal) && level.admits(Priority::High));
/// assert_eq!(level.parallelism_factor(), 0.5);
/// assert_eq!(level.scaled_limit(10), 5);
/// assert!(level.pauses(Feature::DetailedTelemetry));
/// assert_eq!(DegradationLevel::from_u8(level.as_u8()), Ok(level));
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum DegradationLevel {
    /// No pressure: everything is admitted and runs.
    #[default]
    Normal,
    /// At a threshold: low-priority work is refused, non-essential background work pauses.
    Reduced,
    /// Above a threshold: only high and critical work is admitted.
    Minimal,
    /// Far above a threshold: only critical work is admitted; new connections are refused.
    Critical,
}

/// A non-essential feature that a coordinator pauses at some degradation level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// Prefetching, speculative or hedged duplicate work. Paused from Reduced on.
    SpeculativeWork,
    /// Periodic maintenance: cleanup, compaction, rebalancing. Paused from Reduced on.
    BackgroundMaintenance,
    /// Verbose tracing and per-task metrics beyond the essential counters. Paused from Minimal
    /// on.
    DetailedTelemetry,
    /// Accepting new agents and connections (existing ones are kept). Paused at Critical.
    NewConnections,
}

impl Feature {
    /// Every feature, in the order they are paused.
    pub const ALL: [Feature; 4] = [
        Self::SpeculativeWork,
        Self::BackgroundMaintenance,
        Self::DetailedTelemetry,
        Self::NewConnections,
    ];

    /// The lowest level at which this feature is paused.
    pub const fn paused_from(self) -> DegradationLevel {
        match self {
            Self::SpeculativeWork | Self::BackgroundMaintenance => DegradationLevel::Reduced,
            Self::DetailedTelemetry => DegradationLevel::Minimal,
            Self::NewConnections => DegradationLevel::Critical,
        }
    }
}

impl DegradationLevel {
    /// Every level, lowest first.
    pub const ALL: [DegradationLevel; 4] =
        [Self::Normal, Self::Reduced, Self::Minimal, Self::Critical];

    /// The level's number: 0 (Normal) to 3 (Critical).
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The level with number `n`.
    pub const fn from_u8(n: u8) -> Result<Self, UnknownLevel> {
        match n {
            0 => Ok(Self::Normal),
            1 => Ok(Self::Reduced),
            2 => Ok(Self::Minimal),
            3 => Ok(Self::Critical),
            _ => Err(UnknownLevel(n)),
        }
    }

    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Reduced => "reduced",
            Self::Minimal => "minimal",
            Self::Critical => "critical",
        }
    }

    /// The next level down, if any.
    pub const fn below(self) -> Option<Self> {
        match self {
            Self::Normal => None,
            Self::Reduced => Some(Self::Normal),
            Self::Minimal => Some(Self::Reduced),
            Self::Critical => Some(Self::Minimal),
        }
    }

    /// The lowest priority of new work this level still admits.
    pub const fn lowest_admitted(self) -> Priority {
        match self {
            Self::Normal => Priority::Low,
            Self::Reduced => Priority::Normal,
            Self::Minimal => Priority::High,
            Self::Critical => Priority::Critical,
        }
    }

    /// Whether new work of `priority` is admitted at this level.
    pub fn admits(self, priority: Priority) -> bool {
        priority >= self.lowest_admitted()
    }

    /// The share of the normal concurrency limit that runs at this level: 1.0, 0.75, 0.5, 0.25.
    pub const fn parallelism_factor(self) -> f64 {
        match self {
            Self::Normal => 1.0,
            Self::Reduced => 0.75,
            Self::Minimal => 0.5,
            Self::Critical => 0.25,
        }
    }

    /// `normal_limit` scaled by [`parallelism_factor`](Self::parallelism_factor), rounded up,
    /// and never below 1 when `normal_limit` is at least 1 (so critical work always has a slot).
    pub fn scaled_limit(self, normal_limit: usize) -> usize {
        if normal_limit == 0 {
            return 0;
        }
        // Exact in f64 for any realistic limit; rounding up keeps at least one slot.
        let scaled = (normal_limit as f64 * self.parallelism_factor()).ceil() as usize;
        scaled.clamp(1, normal_limit)
    }

    /// Whether `feature` is paused at this level.
    pub fn pauses(self, feature: Feature) -> bool {
        self >= feature.paused_from()
    }

    /// The features paused at this level.
    pub fn paused_features(self) -> Vec<Feature> {
        Feature::ALL
            .into_iter()
            .filter(|f| self.pauses(*f))
            .collect()
    }

    /// Admit work of `priority`, or refuse it with the documented error:
    /// [`SwarmError::Overloaded`] whose `reason` names the level, the lowest admitted priority,
    /// the task's priority and (if given) the resource under pressure, and whose `retry_after`
    /// is `retry_after`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use recovery_core::{Priority, SwarmError};
    /// use recovery_degradation::{DegradationLevel, Resource};
    /// let refused = DegradationLevel::Reduced
    ///     .admit(Priority::Low, Some(Resource::Cpu), Duration::from_secs(30))
    ///     .unwrap_err();
    /// let SwarmError::Overloaded { reason, retry_after } = refused else { unreachable!() };
    /// assert_eq!(
    ///     reason,
    ///     "degradation level reduced admits only normal priority and above; this work is low (pressure from cpu)"
    /// );
    /// assert_eq!(retry_after, Duration::from_secs(30));
    /// assert!(DegradationLevel::Reduced.admit(Priority::High, None, Duration::from_secs(30)).is_ok());
    /// ```
    pub fn admit(
        self,
        priority: Priority,
        cause: Option<Resource>,
        retry_after: Duration,
    ) -> Result<(), SwarmError> {
        if self.admits(priority) {
            return Ok(());
        }
        let cause = cause
            .map(|r| format!(" (pressure from {r})"))
            .unwrap_or_default();
        Err(SwarmError::Overloaded {
            reason: format!(
                "degradation level {self} admits only {} priority and above; this work is {priority}{cause}",
                self.lowest_admitted()
            ),
            retry_after,
        })
    }

    /// The level that pressure `p` calls for, without hysteresis: the highest level whose entry
    /// point ([`LevelPolicy::entry`]) is at most `p`. NaN calls for Normal.
    pub fn for_pressure(p: f64, policy: &LevelPolicy) -> Self {
        Self::ALL
            .into_iter()
            .rev()
            .find(|l| *l == Self::Normal || p >= policy.entry(*l))
            .unwrap_or(Self::Normal)
    }

    /// The level `usage` calls for under `config` and `policy`, without hysteresis.
    pub fn for_usage(
        usage: &ResourceUsage,
        config: &DegradationConfig,
        policy: &LevelPolicy,
    ) -> Self {
        Self::for_pressure(Pressure::of(usage, config).value, policy)
    }
}

impl fmt::Display for DegradationLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DegradationLevel {
    type Err = UnknownLevelName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownLevelName(s.to_owned()))
    }
}

impl From<DegradationLevel> for u8 {
    fn from(level: DegradationLevel) -> u8 {
        level.as_u8()
    }
}

impl TryFrom<u8> for DegradationLevel {
    type Error = UnknownLevel;

    fn try_from(n: u8) -> Result<Self, UnknownLevel> {
        Self::from_u8(n)
    }
}

/// A resource the degradation strategy watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// CPU fraction.
    Cpu,
    /// Memory fraction.
    Memory,
    /// Open connections.
    Connections,
    /// Running tasks.
    Tasks,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Connections => "connections",
            Self::Tasks => "tasks",
        })
    }
}

/// How hard the most pressed resource is pushed: usage divided by its threshold.
///
/// `value` is the largest of the four ratios (1.0 means "at the threshold"), `resource` the one
/// it came from (the first in the order cpu, memory, connections, tasks on a tie).
///
/// Bad fractions follow [`ResourceMonitor`](crate::ResourceMonitor)'s rule, so a
/// [`ResourceUsage`] built by hand cannot do worse than a valid one: a NaN fraction adds no
/// pressure, anything else is clamped into `0.0..=1.0` first. `value` is therefore always finite
/// and at least 0.
///
/// ```
/// use recovery_degradation::{DegradationConfig, Pressure, Resource, ResourceUsage};
/// let usage = ResourceUsage { cpu_percent: 0.4, memory_percent: 0.9, active_connections: 10, active_tasks: 250 };
/// let p = Pressure::of(&usage, &DegradationConfig::default());
/// assert_eq!(p.resource, Resource::Memory);
/// assert!((p.value - 0.9 / 0.85).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Pressure {
    /// The largest usage/threshold ratio.
    pub value: f64,
    /// The resource with that ratio.
    pub resource: Resource,
}

/// A fraction as the level computation reads it: NaN is 0, the rest clamped into `0.0..=1.0`.
pub(crate) fn sanitize_fraction(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

impl Pressure {
    /// The pressure of `usage` against `config`'s thresholds.
    ///
    /// A threshold of 0 (which [`DegradationConfig::validate`] rejects) is read as the smallest
    /// positive value, so the result stays finite.
    pub fn of(usage: &ResourceUsage, config: &DegradationConfig) -> Self {
        Self::largest(&Self::each(usage, config))
    }

    /// The largest of [`Pressure::each`]'s (the first of equals).
    pub(crate) fn largest(each: &[Self; 4]) -> Self {
        let mut best = each[0];
        for p in &each[1..] {
            if p.value > best.value {
                best = *p;
            }
        }
        best
    }

    /// Each resource's own usage/threshold ratio, in the order CPU, memory, connections,
    /// tasks (what [`Pressure::of`] takes the largest of).
    pub fn each(usage: &ResourceUsage, config: &DegradationConfig) -> [Self; 4] {
        let ratio = |used: f64, threshold: f64| -> f64 {
            let threshold = if threshold.is_nan() || threshold <= 0.0 {
                f64::MIN_POSITIVE
            } else {
                threshold
            };
            let r = used / threshold;
            if r.is_finite() { r } else { f64::MAX }
        };
        let p = |resource, value| Pressure { value, resource };
        [
            p(
                Resource::Cpu,
                ratio(sanitize_fraction(usage.cpu_percent), config.cpu_threshold),
            ),
            p(
                Resource::Memory,
                ratio(
                    sanitize_fraction(usage.memory_percent),
                    config.memory_threshold,
                ),
            ),
            p(
                Resource::Connections,
                ratio(
                    usage.active_connections as f64,
                    config.connection_threshold as f64,
                ),
            ),
            p(
                Resource::Tasks,
                ratio(usage.active_tasks as f64, config.task_threshold as f64),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admission_table() {
        use DegradationLevel::*;
        use Priority as P;
        let table = [
            (Normal, [true, true, true, true]),
            (Reduced, [false, true, true, true]),
            (Minimal, [false, false, true, true]),
            (Critical, [false, false, false, true]),
        ];
        for (level, row) in table {
            for (p, admitted) in [P::Low, P::Normal, P::High, P::Critical]
                .into_iter()
                .zip(row)
            {
                assert_eq!(level.admits(p), admitted, "{level} {p}");
                assert_eq!(
                    level.admit(p, None, Duration::from_secs(1)).is_ok(),
                    admitted
                );
            }
        }
    }

    #[test]
    fn limits_and_features() {
        use DegradationLevel::*;
        assert_eq!(Critical.scaled_limit(1), 1);
        assert_eq!(Critical.scaled_limit(8), 2);
        assert_eq!(Reduced.scaled_limit(10), 8);
        assert_eq!(Normal.scaled_limit(0), 0);
        assert!(Normal.paused_features().is_empty());
        assert_eq!(
            Reduced.paused_features(),
            [Feature::SpeculativeWork, Feature::BackgroundMaintenance]
        );
        assert_eq!(Critical.paused_features(), Feature::ALL);
    }

    #[test]
    fn numbers_and_names_round_trip() {
        for l in DegradationLevel::ALL {
            assert_eq!(DegradationLevel::from_u8(l.as_u8()), Ok(l));
            assert_eq!(l.to_string().parse::<DegradationLevel>(), Ok(l));
            assert_eq!(
                serde_json::from_str::<DegradationLevel>(&serde_json::to_string(&l).unwrap())
                    .unwrap(),
                l
            );
        }
        assert_eq!(DegradationLevel::from_u8(4), Err(UnknownLevel(4)));
        assert!("max".parse::<DegradationLevel>().is_err());
    }

    #[test]
    fn default_entry_points() {
        let p = LevelPolicy::default();
        let at = |x| DegradationLevel::for_pressure(x, &p);
        assert_eq!(at(0.0), DegradationLevel::Normal);
        assert_eq!(at(0.999), DegradationLevel::Normal);
        assert_eq!(at(1.0), DegradationLevel::Reduced);
        assert_eq!(at(1.05), DegradationLevel::Minimal);
        assert_eq!(at(1.1), DegradationLevel::Critical);
        assert_eq!(at(f64::NAN), DegradationLevel::Normal);
    }

    #[test]
    fn pressure_ignores_nan_and_caps_fractions() {
        let config = DegradationConfig::default();
        let u = ResourceUsage {
            cpu_percent: f64::NAN,
            memory_percent: f64::INFINITY,
            active_connections: 0,
            active_tasks: 0,
        };
        let p = Pressure::of(&u, &config);
        assert_eq!(p.resource, Resource::Memory);
        assert_eq!(p.value, 1.0 / 0.85);
        let broken = DegradationConfig {
            task_threshold: 0,
            ..config
        };
        let u = ResourceUsage {
            active_tasks: 3,
            ..Default::default()
        };
        assert!(Pressure::of(&u, &broken).value.is_finite());
    }
}
