//! Chooses, runs and records recovery strategies for a swarm.
//!
//! ```
//! use std::sync::Arc;
//! use recovery_core::{async_trait, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError};
//! use recovery_manager::{RecoveryConfig, RecoveryManager};
//!
//! struct Reconnect;
//!
//! #[async_trait]
//! impl StrategyInfo for Reconnect {
//!     fn strategy_id(&self) -> &str { "reconnect" }
//!     fn description(&self) -> &str { "reconnects the channel" }
//!     async fn can_handle(&self, e: &SwarmError) -> bool { matches!(e, SwarmError::CommunicationError(_)) }
//!     async fn cost_estimate(&self) -> f64 { 0.1 }
//!     async fn requires_external_resources(&self) -> bool { false }
//! }
//!
//! #[async_trait]
//! impl RecoveryStrategy<()> for Reconnect {
//!     async fn recover(&self, _: &RecoveryContext<()>, _: &SwarmError) -> RecoveryResult {
//!         RecoveryResult::success(RecoveryAction::Custom("reconnected".into()), "channel reconnected")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = RecoveryManager::empty(RecoveryConfig::default())?;
//! manager.add_strategy(Arc::new(Reconnect)).await;
//!
//! let error = SwarmError::CommunicationError("Network timeout".to_string());
//! let result = manager.recover(Arc::new(()), error, None, None).await?;
//! assert!(result.success);
//!
//! // The spec's success-rate example, as written.
//! let history = manager.get_recovery_history().await;
//! let successful_recoveries = history.iter().filter(|a| a.result.success).count();
//! let success_rate = successful_recoveries as f64 / history.len() as f64;
//! println!("Recovery success rate: {:.1}%", success_rate * 100.0);
//! assert_eq!(success_rate, 1.0);
//! # Ok(()) }
//! ```
//!
//! # Which strategies, for which target
//!
//! The features `backoff`, `checkpoint`, `degradation` and `healing` (all on by default) make
//! the strategies of this workspace available; the bounds follow the strategies registered, not
//! the features. [`RecoveryManager::builder`] registers each with a step that asks only for its
//! capability (`.backoff(..)` where `T: Retry`, `.checkpoint(..)` where `T: Checkpointable`, and
//! so on), so a feature that another crate in the build turns on never breaks a manager for a
//! target with fewer capabilities. [`RecoveryManager::new`] and
//! [`with_config`](RecoveryManager::with_config), the spec's, register all four, for a target
//! that has all four (with all four features on). [`RecoveryManager::empty`] registers none.
//!
//! # Selection
//!
//! A non-recoverable error ([`ErrorKind::is_recoverable`](recovery_core::ErrorKind::is_recoverable))
//! runs no strategy and returns a result that says manual intervention is required. Otherwise
//! the strategies whose `can_handle` is true run by ascending `cost_estimate`, ties in
//! registration order (the defaults: backoff 0.1, healing 0.2, checkpoint 0.3, degradation 0.4),
//! until one succeeds with confidence above 0.5 or a result says not to continue. A result with
//! no effect ([`RecoveryResult::no_change`](recovery_core::RecoveryResult::no_change)) is never
//! a success: the next strategy runs.
//!
//! # Retries are counted once
//!
//! `retry_count` in a strategy's context is the number of re-runs already made for this
//! failure of this task: what earlier recoveries of the task reported
//! ([`RecoveryResult::retries_made`](recovery_core::RecoveryResult::retries_made)), or what the
//! caller says ([`RecoveryRequest::with_retry_count`]), plus what earlier strategies of the same
//! recovery made. The count ends when a retry succeeds or after a quiet
//! [`DEFAULT_RETRY_WINDOW`]; a recovery that names no task starts at 0. So the backoff strategy's
//! `max_retries = 5` means five re-runs of a failure in all, however many recoveries it takes.
//!
//! # Concurrency
//!
//! At most `max_concurrent_recoveries` recoveries do work at once (a `tokio::sync::Semaphore`,
//! first come first served). The manager gives each recovery's context a sleeper that gives the
//! permit back while the strategy waits out a delay, so a thousand recoveries waiting 100 ms
//! each finish in about 100 ms, not in 333 rounds. Dropping a `recover` future releases its
//! permit; the history holds only attempts that finished.
//!
//! # Monitoring
//!
//! `recovery_manager.start_monitoring().await;` starts sampling resources, stepping
//! degradation and taking periodic checkpoints of the [`attach`](RecoveryManager::attach)ed
//! target; it lasts until the manager is dropped or stopped, and needs no handle kept.
//!
//! # Observability
//!
//! Every attempt emits, inside a `recovery` span, the spec's event at INFO level:
//! `recovery_attempt_id`, `strategy_used`, `error_type`, `success`, `confidence`, `duration_ms`,
//! message "Recovery attempt completed". Through the [`metrics`](https://docs.rs/metrics) facade:
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `swarm_recovery_attempts_total` | counter | `strategy`, `error_kind`, `outcome` |
//! | `swarm_recovery_attempt_duration_seconds` | histogram | `strategy` |
//! | `swarm_recovery_manual_interventions_total` | counter | `error_kind` |
//!
//! What a recovery costs is measured by `cargo xtask bench` (the `manager_*` groups) and
//! recorded in `benches/README.md`.

mod builder;
mod config;
mod history;
mod learned;
mod ledger;
mod manager;
pub mod metrics;
mod monitoring;
mod parts;
mod settings;
mod slot;
#[cfg(feature = "workflow")]
pub mod workflow;

pub use builder::RecoveryManagerBuilder;
pub use config::{
    InvalidRecoveryConfig, MAX_CONCURRENT_RECOVERIES, MAX_HISTORY_RETENTION, MAX_INTERVAL,
    RecoveryConfig,
};
pub use history::{AttemptStats, NO_STRATEGY, RecoveryAttempt, RecoveryStatistics, RecoveryTimes};
pub use learned::{InvalidLearningConfig, LearnedEstimate, LearningConfig};
pub use manager::{DEFAULT_RETRY_WINDOW, RecoveryManager, RecoveryRequest};
pub use monitoring::MonitoringHandle;
pub use settings::{RecoverySettings, SettingsError};
