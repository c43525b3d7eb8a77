//! The names of the metrics the manager records through the `metrics` facade, and the keys it
//! builds once per strategy so that recording an attempt neither allocates nor hashes.

use metrics::{Key, Label, Level, Metadata, SharedString};
use recovery_core::ErrorKind;

/// Counter: recovery attempts, labelled `strategy`, `error_kind`, `outcome` (`success` or `failure`).
pub const ATTEMPTS: &str = "swarm_recovery_attempts_total";
/// Histogram: duration of each attempt in seconds, labelled `strategy`.
pub const DURATION: &str = "swarm_recovery_attempt_duration_seconds";
/// Counter: errors that went straight to manual intervention, labelled `error_kind`.
pub const MANUAL_INTERVENTIONS: &str = "swarm_recovery_manual_interventions_total";

/// What the `counter!` and `histogram!` macros would pass for a metric of this module.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// The keys of one strategy's metrics: an attempts counter per error kind and outcome, and the
/// duration histogram.
///
/// The recorder is looked up at every use (not cached), so a recorder installed after the
/// strategy was registered, or a thread-local one in a test, still receives every value.
#[derive(Debug)]
pub(crate) struct StrategyMetrics {
    strategy: SharedString,
    /// `ATTEMPTS` keys, indexed like [`ErrorKind::ALL`], then failure (0) or success (1).
    attempts: Vec<[Key; 2]>,
    duration: Key,
}

impl StrategyMetrics {
    pub(crate) fn new(strategy: SharedString) -> Self {
        let attempts = ErrorKind::ALL
            .iter()
            .map(|&kind| [false, true].map(|success| attempts_key(&strategy, kind, success)))
            .collect();
        let duration = Key::from_parts(DURATION, vec![Label::new("strategy", strategy.clone())]);
        Self {
            strategy,
            attempts,
            duration,
        }
    }

    /// Count one attempt and record its duration in seconds.
    pub(crate) fn record(&self, kind: ErrorKind, success: bool, seconds: f64) {
        let cached = ErrorKind::ALL
            .iter()
            .position(|k| *k == kind)
            .and_then(|i| self.attempts.get(i));
        metrics::with_recorder(|r| {
            match cached {
                Some(keys) => r.register_counter(&keys[usize::from(success)], &METADATA),
                // A kind missing from `ErrorKind::ALL`: build its key now.
                None => r.register_counter(&attempts_key(&self.strategy, kind, success), &METADATA),
            }
            .increment(1);
            r.register_histogram(&self.duration, &METADATA)
                .record(seconds);
        });
    }
}

/// The `ATTEMPTS` key of one strategy, error kind and outcome.
fn attempts_key(strategy: &SharedString, kind: ErrorKind, success: bool) -> Key {
    Key::from_parts(
        ATTEMPTS,
        vec![
            Label::new("strategy", strategy.clone()),
            Label::from_static_parts("error_kind", kind.as_str()),
            Label::from_static_parts("outcome", outcome(success)),
        ],
    )
}

/// The `outcome` label of an attempt.
pub(crate) fn outcome(success: bool) -> &'static str {
    if success { "success" } else { "failure" }
}
