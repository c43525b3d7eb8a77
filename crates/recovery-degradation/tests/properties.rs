//! Properties of levels, hysteresis, bad input and configuration.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use recovery_degradation::{
    DegradationConfig, DegradationLevel, GracefulDegradationStrategy, LevelController, LevelPolicy,
    Pressure, ResourceMonitor, ResourceUsage,
};

fn fraction() -> impl Strategy<Value = f64> {
    prop_oneof![0.0..=1.0f64, Just(0.0), Just(1.0)]
}

/// A value that is not a valid fraction.
fn garbage() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        -1e9..-1e-12f64,
        (1.0 + 1e-12)..1e9f64,
    ]
}

fn usage() -> impl Strategy<Value = ResourceUsage> {
    (fraction(), fraction(), 0u64..3000, 0u64..1500).prop_map(|(c, m, n, t)| ResourceUsage {
        cpu_percent: c,
        memory_percent: m,
        active_connections: n,
        active_tasks: t,
    })
}

fn config() -> impl Strategy<Value = DegradationConfig> {
    (0.05..=1.0f64, 0.05..=1.0f64, 1u64..2000, 1u64..1000).prop_map(|(c, m, n, t)| {
        DegradationConfig {
            cpu_threshold: c,
            memory_threshold: m,
            connection_threshold: n,
            task_threshold: t,
        }
    })
}

/// A valid policy: entry points above 1.0 and a margin no wider than the smallest gap.
fn policy() -> impl Strategy<Value = LevelPolicy> {
    (0.01..0.5f64, 0.01..0.5f64, 0.0..=1.0f64, any::<bool>()).prop_map(
        |(g1, g2, share, gradual)| {
            let minimal_at = 1.0 + g1;
            let critical_at = minimal_at + g2;
            let gap = (minimal_at - 1.0).min(critical_at - minimal_at);
            LevelPolicy {
                minimal_at,
                critical_at,
                hysteresis_margin: gap * share,
                gradual_recovery: gradual,
                retry_after: Duration::from_secs(30),
            }
        },
    )
}

fn level() -> impl Strategy<Value = DegradationLevel> {
    prop::sample::select(DegradationLevel::ALL.to_vec())
}

/// The reference model of the hysteresis rule, written plainly: rise to what pressure calls
/// for; else keep each level, from the current one down, whose entry minus margin is reached.
fn reference_step(current: DegradationLevel, p: f64, policy: &LevelPolicy) -> DegradationLevel {
    let called = DegradationLevel::ALL
        .into_iter()
        .filter(|l| *l == DegradationLevel::Normal || p >= policy.entry(*l))
        .max()
        .unwrap();
    if called >= current {
        return called;
    }
    let kept = DegradationLevel::ALL
        .into_iter()
        .filter(|l| *l <= current)
        .filter(|l| {
            *l == DegradationLevel::Normal || p >= policy.entry(*l) - policy.hysteresis_margin
        })
        .max()
        .unwrap();
    if policy.gradual_recovery && kept < current {
        // One level down per observation.
        return DegradationLevel::ALL[DegradationLevel::ALL
            .iter()
            .position(|l| *l == current)
            .unwrap()
            - 1];
    }
    kept
}

/// What the documented rule makes of a bad fraction: NaN adds no pressure, the rest is pulled
/// to the nearest valid value.
fn valid_part(x: f64) -> f64 {
    if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) }
}

proptest! {
    #[test]
    fn prop_level_is_monotone_in_usage(
        a in usage(),
        b in usage(),
        config in config(),
        policy in policy(),
    ) {
        // `hi` is at least `lo` in every resource.
        let lo = ResourceUsage {
            cpu_percent: a.cpu_percent.min(b.cpu_percent),
            memory_percent: a.memory_percent.min(b.memory_percent),
            active_connections: a.active_connections.min(b.active_connections),
            active_tasks: a.active_tasks.min(b.active_tasks),
        };
        let hi = ResourceUsage {
            cpu_percent: a.cpu_percent.max(b.cpu_percent),
            memory_percent: a.memory_percent.max(b.memory_percent),
            active_connections: a.active_connections.max(b.active_connections),
            active_tasks: a.active_tasks.max(b.active_tasks),
        };
        prop_assert!(
            DegradationLevel::for_usage(&lo, &config, &policy)
                <= DegradationLevel::for_usage(&hi, &config, &policy)
        );
        let (plo, phi) = (Pressure::of(&lo, &config).value, Pressure::of(&hi, &config).value);
        prop_assert!(plo <= phi);
        // From the same level, the hysteresis is monotone too.
        for start in DegradationLevel::ALL {
            let c = LevelController::new(policy.clone()).unwrap().starting_at(start);
            prop_assert!(c.peek_pressure(plo) <= c.peek_pressure(phi));
        }
    }

    #[test]
    fn prop_controller_matches_the_reference_model(
        policy in policy(),
        start in level(),
        pressures in prop::collection::vec(0.0..1.5f64, 1..40),
    ) {
        let mut c = LevelController::new(policy.clone()).unwrap().starting_at(start);
        let mut model = start;
        for p in pressures {
            model = reference_step(model, p, &policy);
            prop_assert_eq!(c.observe_pressure(p), model, "pressure {}", p);
        }
    }

    #[test]
    fn prop_level_changes_at_most_once_within_the_hysteresis_band(
        policy in policy(),
        threshold in 1usize..4,
        start_below in any::<bool>(),
        shares in prop::collection::vec(0.0..1.0f64, 1..60),
    ) {
        let at = DegradationLevel::ALL[threshold];
        let below = DegradationLevel::ALL[threshold - 1];
        let above = DegradationLevel::ALL.get(threshold + 1).copied();
        let entry = policy.entry(at);
        let margin = policy.hysteresis_margin;
        // The band: from a margin below the entry point to a margin above it, kept between the
        // neighbouring levels' entry points.
        let low = (entry - margin).max(policy.entry(below));
        let high = above.map_or(entry + margin, |a| (entry + margin).min(policy.entry(a)));
        let start = if start_below { below } else { at };
        let mut c = LevelController::new(policy.clone()).unwrap().starting_at(start);
        let mut changes = 0;
        let mut level = start;
        for share in shares {
            // A sample in [low, high).
            let p = low + (high - low) * share;
            prop_assume!(p < high || high == low);
            let next = c.observe_pressure(p);
            prop_assert!(next == below || next == at, "left the band's two levels: {:?}", next);
            if next != level {
                changes += 1;
            }
            level = next;
        }
        prop_assert!(changes <= 1, "{} changes", changes);
    }

    #[test]
    fn prop_out_of_range_never_raises_the_level(
        valid in usage(),
        bad_cpu in prop::option::of(garbage()),
        bad_memory in prop::option::of(garbage()),
        config in config(),
        policy in policy(),
    ) {
        let dirty = ResourceUsage {
            cpu_percent: bad_cpu.unwrap_or(valid.cpu_percent),
            memory_percent: bad_memory.unwrap_or(valid.memory_percent),
            ..valid
        };
        let valid_part = ResourceUsage {
            cpu_percent: valid_part(dirty.cpu_percent),
            memory_percent: valid_part(dirty.memory_percent),
            ..valid
        };
        let p = Pressure::of(&dirty, &config).value;
        prop_assert!(p.is_finite() && p >= 0.0);
        prop_assert!(
            DegradationLevel::for_usage(&dirty, &config, &policy)
                <= DegradationLevel::for_usage(&valid_part, &config, &policy)
        );
        // Nor can garbage call for more than a fully used resource does.
        let full = ResourceUsage { cpu_percent: 1.0, memory_percent: 1.0, ..valid };
        prop_assert!(
            DegradationLevel::for_usage(&dirty, &config, &policy)
                <= DegradationLevel::for_usage(&full, &config, &policy)
        );
    }

    #[test]
    fn prop_monitor_stores_only_valid_fractions(
        updates in prop::collection::vec(prop_oneof![fraction(), garbage()], 1..30),
        config in config(),
        policy in policy(),
    ) {
        let monitor = ResourceMonitor::new();
        let checked = ResourceMonitor::new();
        let mut expected = 0.0;
        let mut nan = 0;
        for x in &updates {
            monitor.update_cpu_usage(*x);
            let accepted = checked.try_update_cpu_usage(*x).is_ok();
            prop_assert_eq!(accepted, (0.0..=1.0).contains(x));
            if x.is_nan() {
                nan += 1;
            } else {
                expected = x.clamp(0.0, 1.0);
            }
            let stored = monitor.usage().cpu_percent;
            prop_assert!((0.0..=1.0).contains(&stored));
            prop_assert_eq!(stored, expected);
            prop_assert!((0.0..=1.0).contains(&checked.usage().cpu_percent));
        }
        prop_assert_eq!(monitor.rejected_updates(), nan);
        // The level from the monitor is the level of the valid reading it kept.
        let kept = ResourceUsage { cpu_percent: expected, ..Default::default() };
        prop_assert_eq!(
            DegradationLevel::for_usage(&monitor.usage(), &config, &policy),
            DegradationLevel::for_usage(&kept, &config, &policy)
        );
    }

    #[test]
    fn prop_config_validation_names_the_first_bad_field(
        cpu in prop_oneof![fraction(), garbage()],
        memory in prop_oneof![fraction(), garbage()],
        connections in 0u64..3,
        tasks in 0u64..3,
    ) {
        let config = DegradationConfig {
            cpu_threshold: cpu,
            memory_threshold: memory,
            connection_threshold: connections,
            task_threshold: tasks,
        };
        let good = |x: f64| x > 0.0 && x <= 1.0;
        let first_bad = if !good(cpu) {
            Some("cpu_threshold")
        } else if !good(memory) {
            Some("memory_threshold")
        } else if connections == 0 {
            Some("connection_threshold")
        } else if tasks == 0 {
            Some("task_threshold")
        } else {
            None
        };
        let monitor = Arc::new(ResourceMonitor::new());
        match (config.validate(), first_bad) {
            (Ok(()), None) => {
                prop_assert!(GracefulDegradationStrategy::new(config, monitor).is_ok());
            }
            (Err(e), Some(field)) => {
                prop_assert_eq!(e.field, field);
                prop_assert!(e.to_string().contains(field));
                prop_assert!(GracefulDegradationStrategy::new(config, monitor).is_err());
            }
            (got, want) => prop_assert!(false, "validate gave {:?}, expected a problem with {:?}", got, want),
        }
    }

    #[test]
    fn prop_policy_validation(
        minimal_at in prop_oneof![0.5..2.0f64, garbage()],
        critical_at in prop_oneof![0.5..2.0f64, garbage()],
        margin in prop_oneof![-0.1..0.6f64, garbage()],
    ) {
        let policy = LevelPolicy {
            minimal_at,
            critical_at,
            hysteresis_margin: margin,
            ..Default::default()
        };
        let ordered = minimal_at.is_finite()
            && minimal_at > 1.0
            && critical_at.is_finite()
            && critical_at > minimal_at;
        let gap = (minimal_at - 1.0).min(critical_at - minimal_at);
        let valid = ordered && margin >= 0.0 && margin <= gap + 1e-9;
        prop_assert_eq!(policy.validate().is_ok(), valid, "{:?}", policy);
        prop_assert_eq!(LevelController::new(policy).is_ok(), valid);
    }
}
