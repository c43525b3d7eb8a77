//! The learned strategy order in the simulation: a fault mix where the cheapest strategy that
//! handles `TransactionFailed` (retrying) never recovers it. With the learned order the mean
//! time to recovery of that kind falls by more than half against the fixed order, and every
//! other kind keeps the strategy it tried first.

use swarm_drill::sim::{FaultMix, SimOptions, simulate};

fn run(learned_order: bool) -> swarm_drill::sim::SimReport {
    let options = SimOptions {
        seed: 1,
        days: 0.1,
        faults: FaultMix {
            wedged: 30.0,
            ..FaultMix::default()
        },
        learned_order,
        ..SimOptions::default()
    };
    let report = simulate(&options, false).unwrap();
    assert!(report.passed(), "{}", report.table());
    report
}

#[test]
fn learning_halves_the_time_to_recover_the_kind_the_cheapest_strategy_cannot() {
    let fixed = run(false);
    let learned = run(true);
    let tx = |r: &swarm_drill::sim::SimReport| r.by_error_kind["TransactionFailed"].clone();
    let (f, l) = (tx(&fixed), tx(&learned));
    assert!(f.recoveries > 50 && l.recoveries > 50, "{f:?} {l:?}");
    assert!(
        l.mean_time_to_recovery_s <= 0.5 * f.mean_time_to_recovery_s,
        "TransactionFailed: learned {:.1} s against fixed {:.1} s",
        l.mean_time_to_recovery_s,
        f.mean_time_to_recovery_s
    );
    assert_eq!(f.usual_first().unwrap().0, "exponential_backoff");
    assert_eq!(l.usual_first().unwrap().0, "rebuild_entry");
    for (kind, line) in &fixed.by_error_kind {
        if kind == "TransactionFailed" {
            continue;
        }
        let before = line.usual_first().unwrap().0;
        let after = learned.by_error_kind[kind].usual_first().unwrap().0;
        assert_eq!(before, after, "{kind} is tried first with another strategy");
    }
    assert!(
        learned
            .learned_order
            .iter()
            .any(|e| e.strategy_id == "rebuild_entry" && e.mean > 0.8),
        "{:?}",
        learned.learned_order
    );
    assert!(fixed.learned_order.is_empty());
}
