//! The simulation mode: a seed replays bit for bit, `--until` stops before its event, and the
//! metastable-failure experiment shows both of its outcomes.

use std::process::Command;
use std::time::Duration;

use swarm_drill::sim::metastable::{MetastableOptions, run};
use swarm_drill::sim::{FaultMix, SimOptions, simulate};

/// A short run with every fault on, each at a rate high enough to happen within it.
fn short(seed: u64) -> SimOptions {
    SimOptions {
        seed,
        days: 0.03,
        faults: FaultMix {
            coordinator_restart: 4.0,
            capability_outage: 4.0,
            corruption: 8.0,
            store_failure: 8.0,
            pressure_wave: 4.0,
            silent: 8.0,
            crash: 8.0,
            churn: 8.0,
            ..FaultMix::default()
        },
        ..SimOptions::default()
    }
}

#[test]
fn the_same_seed_gives_the_same_report_and_trace_digest_byte_for_byte() {
    let a = simulate(&short(21), false).unwrap();
    let b = simulate(&short(21), false).unwrap();
    assert!(a.passed(), "{}", a.table());
    assert!(a.events > 1000, "{} events", a.events);
    for kind in [
        "communication",
        "crash",
        "coordinator_restart",
        "second_caller",
    ] {
        assert!(
            a.faults.get(kind).copied().unwrap_or(0) > 0,
            "no {kind} fault in the run: {:?}",
            a.faults
        );
    }
    assert_eq!(a.trace_digest, b.trace_digest);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap(),
        "the reports differ"
    );
    assert_eq!(a.table(), b.table());
    let other = simulate(&short(22), false).unwrap();
    assert_ne!(
        a.trace_digest, other.trace_digest,
        "another seed, another run"
    );
}

#[test]
fn until_stops_just_before_its_event_and_shows_the_last_ones() {
    let options = SimOptions {
        until_event: Some(500),
        ..short(5)
    };
    let a = simulate(&options, false).unwrap();
    let b = simulate(&options, false).unwrap();
    assert_eq!(a.events, 499);
    assert_eq!(a.stopped.as_deref(), Some("stopped before event 500"));
    assert!(
        a.last_events.last().unwrap().starts_with("499 "),
        "{:?}",
        a.last_events.last()
    );
    assert_eq!(a, b);
}

#[test]
fn the_drill_replays_a_seed_and_prints_its_digest() {
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_swarm-drill"))
            .env_remove("RUST_LOG")
            .args(["--simulate", "--days", "0.01", "--seed", "4"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (a, b) = (run(), run());
    assert_eq!(a, b, "two runs of one seed print different reports");
    let last = a.lines().last().unwrap();
    assert!(last.starts_with("simulate: seed 4, 0.01 days, "), "{last}");
    assert!(last.contains(" 0 lost, throughput "), "{last}");
    assert!(last.contains(", digest "), "{last}");
}

#[test]
fn bad_options_are_named() {
    let e = simulate(
        &SimOptions {
            utilisation: 1.5,
            ..SimOptions::default()
        },
        false,
    )
    .unwrap_err();
    assert!(e.contains("--utilisation"), "{e}");
    let e = simulate(
        &SimOptions {
            faults: FaultMix {
                hang: f64::NAN,
                ..FaultMix::default()
            },
            ..SimOptions::default()
        },
        false,
    )
    .unwrap_err();
    assert!(e.contains("`hang`"), "{e}");
}

#[test]
fn without_a_retry_budget_retries_sustain_the_overload_and_with_one_it_drains() {
    let cut = Duration::from_secs(2);
    let without = run(&MetastableOptions {
        cut,
        budget: false,
        ..MetastableOptions::default()
    });
    let with = run(&MetastableOptions {
        cut,
        budget: true,
        ..MetastableOptions::default()
    });
    assert!(
        without.seconds_below_half_in_first_minute >= 60,
        "without a budget, goodput was below 50% for only {} of the first 60 s after the cut: {:?}",
        without.seconds_below_half_in_first_minute,
        &without.goodput[..10]
    );
    assert!(
        with.back_to_95_after
            .is_some_and(|d| d <= Duration::from_secs(10)),
        "with the budget, goodput was back to 95% after {:?}: {:?}",
        with.back_to_95_after,
        &with.goodput[..15]
    );
    assert!(without.wasted_work > with.wasted_work);
}
