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
/// Counter: checkpoints taken (by monitoring or `create_checkpoint`), labelled `outcome`.
pub const CHECKPOINTS_CREATED: &str = "swarm_recovery_checkpoints_created_total";
/// Counter: checkpoints restored by a recovery that succeeded.
pub const CHECKPOINTS_RESTORED: &str = "swarm_recovery_checkpoints_restored_total";
/// Counter: healing actions applied by a recovery that succeeded, labelled `action` (the kind
/// of action: `RestartComponent`, `AdjustConfig`, `ReallocateTasks`, ...; never its argument).
pub const HEALING_ACTIONS: &str = "swarm_recovery_healing_actions_total";
/// Gauge: the degradation level last applied, 0 (Normal) to 3 (Critical), by a recovery or by
/// monitoring.
pub const DEGRADATION_LEVEL: &str = "swarm_recovery_degradation_level";

/// Every metric the manager records, as exported.
pub const ALL: [&str; 7] = [
    ATTEMPTS,
    DURATION,
    MANUAL_INTERVENTIONS,
    CHECKPOINTS_CREATED,
    CHECKPOINTS_RESTORED,
    HEALING_ACTIONS,
    DEGRADATION_LEVEL,
];

/// Count a checkpoint taken or not.
#[cfg(feature = "checkpoint")]
pub(crate) fn checkpoint_created(ok: bool) {
    metrics::counter!(CHECKPOINTS_CREATED, "outcome" => outcome(ok)).increment(1);
}

/// Count a checkpoint restored outside a strategy's own result (a workflow's compensation).
#[cfg(all(feature = "workflow", feature = "checkpoint"))]
pub(crate) fn checkpoint_restored() {
    metrics::counter!(CHECKPOINTS_RESTORED).increment(1);
}

/// Set the level gauge.
pub(crate) fn degradation_level(level: u8) {
    metrics::gauge!(DEGRADATION_LEVEL).set(f64::from(level));
}

/// Record what a successful result did beyond the attempt itself: a restore, a level, a
/// healing action.
pub(crate) fn effect(action: &recovery_core::RecoveryAction) {
    use recovery_core::RecoveryAction;
    match action {
        RecoveryAction::Restored { .. } => metrics::counter!(CHECKPOINTS_RESTORED).increment(1),
        RecoveryAction::Degraded { level } => degradation_level(*level),
        RecoveryAction::Healed { action, .. } => {
            // The kind only (`RestartComponent(agent_protocol)` counts as `RestartComponent`),
            // so the label set stays small.
            let kind = action.split(['(', ' ', ':']).next().unwrap_or("unknown");
            metrics::counter!(HEALING_ACTIONS, "action" => kind.to_owned()).increment(1);
        }
        _ => {}
    }
}

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
