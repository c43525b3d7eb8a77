//! Properties of the schedule, the jitter kinds, the budget and the configuration.

use std::time::Duration;

use proptest::prelude::*;
use recovery_backoff::{Backoff, BackoffConfig, ExponentialBackoffStrategy, Jitter, RetryBudget};

/// Durations from zero through milliseconds to the largest there are.
fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::ZERO),
        (0u64..10_000_000_000).prop_map(Duration::from_nanos),
        (0u64..1_000_000, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        Just(Duration::MAX),
    ]
}

fn multiplier() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(1.0),
        Just(2.0),
        1.0..1.000_001f64,
        1.0..4.0f64,
        1.0..1e6f64,
        Just(f64::MAX),
    ]
}

/// Any valid config.
fn config() -> impl Strategy<Value = BackoffConfig> {
    (duration(), duration(), multiplier(), 0u32..20, 0.0..=1.0f64).prop_map(
        |(initial, extra, multiplier, max_retries, jitter_factor)| BackoffConfig {
            initial_delay: initial,
            max_delay: initial.saturating_add(extra),
            multiplier,
            max_retries,
            jitter_factor,
        },
    )
}

fn jitter() -> impl Strategy<Value = Jitter> {
    prop_oneof![
        Just(Jitter::None),
        (0.0..=1.0f64).prop_map(Jitter::Proportional),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
    ]
}

fn any_n() -> impl Strategy<Value = u32> {
    prop_oneof![0u32..70, any::<u32>(), Just(u32::MAX)]
}

fn nanos(d: Duration) -> f64 {
    d.as_nanos() as f64
}

/// `a <= b` up to one nanosecond and a relative 1e-12 (rounding to whole nanoseconds).
fn le(a: f64, b: f64) -> bool {
    a <= b + 1.0 + b.abs() * 1e-12
}

proptest! {
    #[test]
    fn prop_delay_is_within_zero_and_max_delay(c in config(), n in any_n(), j in jitter(), seed in any::<u64>()) {
        prop_assert!(c.validate().is_ok());
        prop_assert!(c.delay(n) <= c.max_delay);
        // Every jittered delay too, from any starting point.
        let start = n.min(c.max_retries);
        for d in Backoff::new(&c, j).starting_at(start).with_seed(seed) {
            prop_assert!(d <= c.max_delay, "{d:?} > {:?}", c.max_delay);
        }
    }

    #[test]
    fn prop_no_jitter_delay_is_the_formula_and_non_decreasing(c in config(), n in any_n(), k in any_n()) {
        // initial × multiplier^n, where 0 × anything (even an infinite power) is 0.
        let power = nanos(c.initial_delay) * c.multiplier.powf(f64::from(n));
        let want = if c.initial_delay.is_zero() { 0.0 } else { power.min(nanos(c.max_delay)) };
        let got = nanos(c.delay(n));
        prop_assert!(le(got, want) && le(want, got), "delay({n}) = {got} ns, formula {want} ns");
        let (lo, hi) = (n.min(k), n.max(k));
        prop_assert!(c.delay(lo) <= c.delay(hi), "delay({lo}) > delay({hi})");
        prop_assert!(c.delay(n) <= c.delay(n.saturating_add(1)));
        let plain: Vec<Duration> = Backoff::new(&c, Jitter::None).collect();
        let formula: Vec<Duration> = (0..c.max_retries).map(|i| c.delay(i)).collect();
        prop_assert_eq!(plain, formula);
    }

    #[test]
    fn prop_each_jitter_kind_stays_within_its_bounds(c in config(), j in jitter(), start in 0u32..20, seed in any::<u64>()) {
        let schedule = Backoff::new(&c, j).starting_at(start).with_seed(seed);
        prop_assert_eq!(schedule.len(), c.max_retries.saturating_sub(start) as usize);
        let cap = nanos(c.max_delay);
        let base = nanos(c.initial_delay).min(cap);
        // Decorrelated's "previous" delay: initial_delay on a fresh schedule, else delay(start - 1).
        let mut prev = if start == 0 { base } else { nanos(c.delay(start - 1)).max(base) };
        for (i, d) in schedule.enumerate() {
            let n = start + i as u32;
            let v = nanos(c.delay(n));
            let d = nanos(d);
            let (lo, hi) = match j {
                Jitter::None => (v, v),
                Jitter::Proportional(f) => (v * (1.0 - f), (v * (1.0 + f)).min(cap)),
                Jitter::Full => (0.0, v),
                Jitter::Equal => (v / 2.0, v),
                Jitter::Decorrelated => (base, (prev * 3.0).min(cap).max(base)),
            };
            prop_assert!(le(lo, d) && le(d, hi), "{j:?} delay {n}: {d} not in [{lo}, {hi}]");
            // The documented bounds agree.
            let b = j.bounds(&c, n, Duration::from_nanos(prev.min(u64::MAX as f64) as u64));
            if prev < u64::MAX as f64 {
                prop_assert!(le(nanos(*b.start()), d) && le(d, nanos(*b.end())), "{j:?}: {d} not in {b:?}");
            }
            prev = d;
        }
    }

    #[test]
    fn prop_budget_without_time_passing_allows_only_floor_plus_ratio(
        ttl_s in 1u64..=60,
        min_per_sec in 0u32..50,
        ratio in prop_oneof![Just(0.0), Just(0.2), 0.0..=1.0f64, 0.0..=20.0f64],
        ops in proptest::collection::vec(any::<bool>(), 0..400),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let budget = RetryBudget::new(Duration::from_secs(ttl_s), min_per_sec, ratio).unwrap();
            let floor = f64::from(min_per_sec) * ttl_s as f64;
            let (mut deposits, mut granted) = (0u64, 0u64);
            for deposit in ops {
                if deposit {
                    budget.deposit();
                    deposits += 1;
                } else if budget.withdraw() {
                    granted += 1;
                    prop_assert!(granted as f64 <= floor + ratio * deposits as f64 + 1e-9,
                        "granted {granted} > floor {floor} + {ratio} x {deposits}");
                } else {
                    // Refused only when the allowance is really spent.
                    prop_assert!(granted as f64 + 1.0 > floor + ratio * deposits as f64 - 1e-6 * deposits as f64 - 1e-9,
                        "refused with granted {granted}, floor {floor}, {ratio} x {deposits}");
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn prop_budget_over_time_never_exceeds_its_window_allowance(
        ttl_s in 1u64..=20,
        min_per_sec in 0u32..5,
        ratio in prop_oneof![Just(0.2), 0.0..=2.0f64],
        ops in proptest::collection::vec((0u8..3, 0u64..3000), 0..300),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async {
            let ttl = Duration::from_secs(ttl_s);
            let budget = RetryBudget::new(ttl, min_per_sec, ratio).unwrap();
            let start = tokio::time::Instant::now();
            let floor = f64::from(min_per_sec) * ttl_s as f64;
            let mut deposits: Vec<Duration> = Vec::new();
            let mut granted: Vec<Duration> = Vec::new();
            for (op, wait_ms) in ops {
                match op {
                    0 => { budget.deposit(); deposits.push(start.elapsed()); }
                    1 => {
                        if budget.withdraw() {
                            let now = start.elapsed();
                            granted.push(now);
                            // Grants in the last ttl (less one slot) are covered by the floor plus
                            // the ratio of the deposits in the last ttl.
                            let recent_grants = granted.iter().filter(|t| **t + ttl >= now + ttl / 10 ).count();
                            let recent_deposits = deposits.iter().filter(|t| **t + ttl > now).count();
                            prop_assert!(recent_grants as f64 <= floor + ratio * recent_deposits as f64 + 1e-9,
                                "at {now:?}: {recent_grants} grants > {floor} + {ratio} x {recent_deposits}");
                        }
                    }
                    _ => tokio::time::advance(Duration::from_millis(wait_ms)).await,
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn prop_config_serde_round_trip(c in config(), m in 0u32..10_000_000, f in 0u32..=1000) {
        // Floats with few digits, so that the JSON text is exact.
        let c = BackoffConfig { multiplier: 1.0 + f64::from(m) / 1000.0, jitter_factor: f64::from(f) / 1000.0, ..c };
        let json = serde_json::to_string(&c).unwrap();
        let back: BackoffConfig = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, c);
    }

    #[test]
    fn prop_bad_configs_are_rejected(
        c in config(),
        bad in prop_oneof![
            (-1e9..0.999_999f64).prop_map(|m| ("multiplier", m)),
            Just(("multiplier", f64::NAN)),
            Just(("multiplier", f64::INFINITY)),
            (1.000_001..1e9f64).prop_map(|f| ("jitter_factor", f)),
            (-1e9..-1e-9f64).prop_map(|f| ("jitter_factor", f)),
            Just(("jitter_factor", f64::NAN)),
            (1u64..1_000_000).prop_map(|extra| ("max_delay", extra as f64)),
        ],
    ) {
        let (field, value) = bad;
        let c = match field {
            "multiplier" => BackoffConfig { multiplier: value, ..c },
            "jitter_factor" => BackoffConfig { jitter_factor: value, ..c },
            _ => BackoffConfig {
                initial_delay: c.max_delay.saturating_add(Duration::from_nanos(value as u64)),
                ..c
            },
        };
        if field == "max_delay" && c.max_delay == Duration::MAX {
            return Ok(());
        }
        let e = c.validate().unwrap_err();
        prop_assert_eq!(e.field, field);
        prop_assert!(e.to_string().contains(field));
        prop_assert!(ExponentialBackoffStrategy::new(c).is_err());
        // Even a bad config never gives a delay above max_delay, or panics.
        prop_assert!(c.delay(7) <= c.max_delay);
    }
}

proptest! {
    #[test]
    fn prop_retry_runs_until_success_or_max_retries(
        failures in 0u32..12,
        max_retries in 0u32..10,
        j in jitter(),
        fatal_at in proptest::option::of(0u32..12),
    ) {
        use std::future::Future;
        use std::task::{Context, Poll, Waker};
        // Zero delays: no runtime and no timer; the retry yields once before each re-run (it
        // wakes itself and returns Pending), so it completes in one poll per run.
        let config = BackoffConfig {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retries,
            ..BackoffConfig::default()
        };
        let mut runs = 0u32;
        let mut notified = 0u32;
        let result = {
            let fut = recovery_backoff::retry(&config, || {
                let run = runs;
                runs += 1;
                std::future::ready(if run < failures { Err(run) } else { Ok(run) })
            })
            .when(|e: &u32| Some(*e) != fatal_at)
            .notify(|_, d| {
                assert_eq!(d, Duration::ZERO);
                notified += 1;
            })
            .jitter(j);
            let mut fut = std::pin::pin!(fut);
            let mut polls = 0u32;
            loop {
                polls += 1;
                if let Poll::Ready(result) = fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                    break (result, polls);
                }
                if polls > 100 {
                    return Err(TestCaseError::fail("a zero-delay retry never finished"));
                }
            }
        };
        let (result, polls) = result;
        // The reference: run until success, a fatal error, or max_retries retries.
        let stop = fatal_at.filter(|f| *f < failures).map_or(failures, |f| f.min(failures));
        let expected_runs = stop.min(max_retries) + 1;
        prop_assert_eq!(runs, expected_runs);
        prop_assert_eq!(notified, expected_runs - 1);
        prop_assert_eq!(polls, expected_runs, "one yield before each re-run");
        if failures <= max_retries && fatal_at.is_none_or(|f| f >= failures) {
            prop_assert_eq!(result, Ok(failures));
        } else {
            prop_assert_eq!(result, Err(expected_runs - 1));
        }
    }
}
