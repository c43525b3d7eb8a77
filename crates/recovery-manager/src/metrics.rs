//! The names of the metrics the manager records through the `metrics` facade.

/// Counter: recovery attempts, labelled `strategy`, `error_kind`, `outcome` (`success` or `failure`).
pub const ATTEMPTS: &str = "swarm_recovery_attempts_total";
/// Histogram: duration of each attempt in seconds, labelled `strategy`.
pub const DURATION: &str = "swarm_recovery_attempt_duration_seconds";
/// Counter: errors that went straight to manual intervention, labelled `error_kind`.
pub const MANUAL_INTERVENTIONS: &str = "swarm_recovery_manual_interventions_total";
