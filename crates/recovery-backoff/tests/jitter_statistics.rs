//! Each jitter kind draws delays as its formula says: over 100,000 draws, the mean delay and the
//! share of draws that land on the cap match the formula within a few percent. (Bounds tests
//! cannot see a wrong distribution inside the right bounds: capping decorrelated jitter's range
//! before drawing, instead of capping the draw, keeps every delay in bounds but never reaches the
//! cap.)

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use recovery_backoff::{Backoff, BackoffConfig, Jitter};

const DRAWS: u64 = 100_000;

/// 100 ms, doubling, capped at 250 ms: delay 0 is 100 ms, delay 1 is 200 ms, delay 2 and later
/// sit at the cap.
fn config() -> BackoffConfig {
    BackoffConfig {
        initial_delay: Duration::from_millis(100),
        max_delay: Duration::from_millis(250),
        multiplier: 2.0,
        max_retries: 8,
        jitter_factor: 0.1,
    }
}

/// The mean (in ms) and the share at the cap of delay `n` over `DRAWS` schedules, each seeded
/// on its own.
fn measure(jitter: Jitter, n: u32) -> (f64, f64) {
    let config = config();
    let mut sum = 0.0;
    let mut at_cap = 0u64;
    for seed in 0..DRAWS {
        let delay = Backoff::new(&config, jitter)
            .with_seed(seed)
            .nth(n as usize)
            .expect("max_retries covers n");
        assert!(delay <= config.max_delay, "{jitter:?} gave {delay:?}");
        sum += delay.as_secs_f64() * 1000.0;
        at_cap += u64::from(delay == config.max_delay);
    }
    (sum / DRAWS as f64, at_cap as f64 / DRAWS as f64)
}

/// `measured` within 2 % of `expected`, and a share within 1 percentage point.
fn assert_matches(what: &str, (mean, share): (f64, f64), (want_mean, want_share): (f64, f64)) {
    assert!(
        (mean - want_mean).abs() <= 0.02 * want_mean,
        "{what}: mean {mean:.2} ms, formula {want_mean:.2} ms"
    );
    assert!(
        (share - want_share).abs() <= 0.01,
        "{what}: {:.2} % at the cap, formula {:.2} %",
        share * 100.0,
        want_share * 100.0
    );
}

#[test]
fn none_is_the_exponential_delay_exactly() {
    assert_matches("none, n=0", measure(Jitter::None, 0), (100.0, 0.0));
    assert_matches("none, n=1", measure(Jitter::None, 1), (200.0, 0.0));
    assert_matches("none, n=3", measure(Jitter::None, 3), (250.0, 1.0));
}

#[test]
fn proportional_moves_each_delay_by_up_to_its_factor_then_caps() {
    // v (1 + r), r uniform in [-f, f]: mean v below the cap; at the cap half the draws are
    // above it and land on it, so the mean is cap (1 - f/4).
    let f = 0.5;
    assert_matches(
        "proportional, n=0",
        measure(Jitter::Proportional(f), 0),
        (100.0, 0.0),
    );
    // n = 1: v = 200, v (1 + r) above 250 when r > 0.25: a share of (0.5 - 0.25) / 1.0.
    // Mean: the uniform on [100, 300] capped at 250.
    let capped_mean = capped_uniform_mean(100.0, 300.0, 250.0);
    assert_matches(
        "proportional, n=1",
        measure(Jitter::Proportional(f), 1),
        (capped_mean, 0.25),
    );
    assert_matches(
        "proportional, n=4",
        measure(Jitter::Proportional(f), 4),
        (250.0 * (1.0 - f / 4.0), 0.5),
    );
}

#[test]
fn full_is_uniform_below_the_exponential_delay() {
    // uniform in [0, v]: mean v / 2, never on the cap but by chance.
    assert_matches("full, n=0", measure(Jitter::Full, 0), (50.0, 0.0));
    assert_matches("full, n=1", measure(Jitter::Full, 1), (100.0, 0.0));
    assert_matches("full, n=5", measure(Jitter::Full, 5), (125.0, 0.0));
}

#[test]
fn equal_keeps_half_and_draws_the_other_half() {
    // v/2 + uniform in [0, v/2]: mean 3v/4.
    assert_matches("equal, n=0", measure(Jitter::Equal, 0), (75.0, 0.0));
    assert_matches("equal, n=5", measure(Jitter::Equal, 5), (187.5, 0.0));
}

/// The mean of `min(cap, uniform(a, b))`.
fn capped_uniform_mean(a: f64, b: f64, cap: f64) -> f64 {
    if cap >= b {
        return (a + b) / 2.0;
    }
    ((cap * cap - a * a) / 2.0 + cap * (b - cap)) / (b - a)
}

#[test]
fn decorrelated_caps_the_draw_not_the_range() {
    // The first delay: min(250, uniform(100, 3 × 100)). A quarter of the draws are above 250
    // and land on the cap; the mean is 193.75 ms. (Capping the range first, uniform(100, 250),
    // gives a mean of 175 ms and never the cap.)
    assert_matches(
        "decorrelated, n=0",
        measure(Jitter::Decorrelated, 0),
        (capped_uniform_mean(100.0, 300.0, 250.0), 0.25),
    );
    assert!((capped_uniform_mean(100.0, 300.0, 250.0) - 193.75).abs() < 1e-9);
}

#[test]
fn decorrelated_later_delays_match_the_articles_formula() {
    // Later delays depend on the earlier ones, so compare with a plain implementation of the
    // article's `sleep = min(cap, random_between(base, sleep * 3))`, its own generator and as
    // many draws: the two distributions' means and shares at the cap agree.
    let (base, cap): (f64, f64) = (100.0, 250.0);
    let mut rng = StdRng::seed_from_u64(42);
    for n in 1..4u32 {
        let mut sum = 0.0;
        let mut at_cap = 0u64;
        for _ in 0..DRAWS {
            let mut sleep: f64 = base;
            for _ in 0..=n {
                sleep = cap.min(rng.random_range(base..sleep * 3.0));
            }
            sum += sleep;
            at_cap += u64::from(sleep == cap);
        }
        let model = (sum / DRAWS as f64, at_cap as f64 / DRAWS as f64);
        assert_matches(
            &format!("decorrelated, n={n}"),
            measure(Jitter::Decorrelated, n),
            model,
        );
        // And the cap is reached often: the buggy range-capping never reached it at all.
        assert!(model.1 > 0.25, "n = {n}: {model:?}");
    }
}
