//! Exponential backoff for the swarm: delay schedules with jitter, a shared retry budget, a
//! standalone retry API, and a recovery strategy that really retries.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use recovery_backoff::{retry, BackoffConfig, Jitter, RetryBudget};
//! use recovery_core::SwarmError;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The spec's configuration: 100 ms, 200 ms, 400 ms, 800 ms ... never above 60 s.
//! let config = BackoffConfig {
//!     initial_delay: Duration::from_millis(100),
//!     max_delay: Duration::from_secs(60),
//!     multiplier: 2.0,
//!     max_retries: 5,
//!     jitter_factor: 0.1,
//! };
//! config.validate()?;
//! assert_eq!(config.delay(3), Duration::from_millis(800));
//!
//! // Retry any async operation, without a manager: here one that fails twice.
//! let budget = Arc::new(RetryBudget::default());
//! let mut runs = 0;
//! let value = retry(&config, || {
//!     runs += 1;
//!     let run = runs;
//!     async move {
//!         if run <= 2 { Err(SwarmError::CommunicationError("connection reset".into())) } else { Ok("sent") }
//!     }
//! })
//! .when(SwarmError::is_recoverable)
//! .jitter(Jitter::Full)
//! .budget(&budget)
//! .await?;
//! assert_eq!((value, runs), ("sent", 3));
//!
//! // Or, with the `strategy` feature (on by default), hand the strategy to a recovery
//! // manager; the spec's example.
//! # #[cfg(feature = "strategy")] {
//! let strategy = recovery_backoff::ExponentialBackoffStrategy::new(BackoffConfig::default())?;
//! assert_eq!(strategy.config().max_retries, 5);
//! # }
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! - `strategy` (default): [`ExponentialBackoffStrategy`] and [`Retry`], which plug into
//!   recovery-core and the recovery manager; turns on `serde`.
//! - `serde`: `Serialize` and `Deserialize` for [`BackoffConfig`] (durations written as
//!   `"100ms"`) and [`Jitter`].
//! - `tower`: `BackoffPolicy`, a `tower::retry::Policy` with this crate's schedule, jitter and
//!   predicate, and `tower::retry::budget::Budget` for [`RetryBudget`].
//!
//! With `default-features = false` the crate is the schedule, the budget and the standalone
//! [`retry`], and depends on tokio's timer, `pin-project-lite` and `libm` only (fewer crates than
//! backon): no serde, uuid, async-trait or tracing.
//!
//! # When to use it
//!
//! For failures that go away by themselves: a dropped connection, a timeout, a transaction
//! that lost a race, a resource that is busy, a system that is overloaded for the moment.
//! Retrying is the cheapest recovery (cost 0.1), so the manager tries it first; when it gives up
//! it says so and lets more expensive strategies run. It does not help with a corrupt state
//! (restore a checkpoint) and never runs for a non-recoverable error.
//!
//! # What it really does
//!
//! - [`BackoffConfig`] is the spec's five fields. [`BackoffConfig::delay`]`(n)` is
//!   `min(initial_delay × multiplier^n, max_delay)`: never negative, never above `max_delay`, and
//!   free of overflow and panics for any `n` up to `u32::MAX`. A bad config (multiplier below 1
//!   or not finite, jitter outside `0..=1`, `max_delay` below `initial_delay`) is refused with a
//!   [`BackoffConfigError`] that names the field.
//! - [`Backoff`] is the schedule as an iterator of at most `max_retries` jittered delays.
//! - [`ExponentialBackoffStrategy`] waits each delay through
//!   [`RecoveryContext::sleep`](recovery_core::RecoveryContext::sleep), re-runs the failed
//!   operation through the [`Retry`] capability, and reports success only when that run
//!   returned `Ok`, as [`RecoveryAction::Retried`](recovery_core::RecoveryAction::Retried)
//!   with the number of retries.
//! - [`retry()`] does the same for any async closure and any error type, as backon and
//!   tokio-retry do, without a manager.
//!
//! # Jitter
//!
//! Clients that failed together retry together unless their delays are spread out. [`Jitter`]
//! offers the spec's proportional jitter (the default: each delay moved by up to
//! ±`jitter_factor`), and the full, equal and decorrelated jitter of the AWS Architecture
//! Blog's "Exponential Backoff And Jitter" (full jitter spreads clients most and, in the blog's
//! simulation, did the contended work with the fewest calls). Whatever the kind, the cap is
//! applied **after** the jitter, so no delay exceeds `max_delay`; see [`Jitter`] for each kind's
//! bounds.
//!
//! # The retry budget
//!
//! `max_retries` bounds one request's retries; it does nothing against a retry storm, where
//! every caller of a failed dependency multiplies its load by `1 + max_retries`. A
//! [`RetryBudget`] shared by the callers (tower's `TpsBudget`: a floor of retries per second
//! plus a ratio of requests, over a sliding window) bounds the group's retries: under total
//! failure, attempts stay at most `1 + ratio` times the requests, plus the floor.
//!
//! # The seam
//!
//! The strategy acts on the system it recovers only through [`Retry`], one async method that
//! re-runs the operation a [`RetryRequest`] names and says whether it succeeded now. A system
//! takes this strategy by implementing that trait; tests use a small fake.
//!
//! # What it promises
//!
//! - Success only when the target's retry returned `Ok`; the attempt count is the number of
//!   retries really made.
//! - No more than `max_retries` retries for a failure, counting the context's `retry_count`,
//!   and none that a budget refused.
//! - Waiting only through the context's sleeper, and no timer for a zero delay.

mod budget;
mod config;
mod error;
mod jitter;
#[cfg(feature = "strategy")]
mod retry;
mod schedule;
mod standalone;
#[cfg(feature = "strategy")]
mod strategy;
#[cfg(feature = "tower")]
mod tower;
mod xoshiro;

pub use budget::RetryBudget;
pub use config::BackoffConfig;
pub use error::{BackoffConfigError, InvalidBudget};
pub use jitter::Jitter;
#[cfg(feature = "strategy")]
pub use retry::{Retry, RetryRequest};
pub use schedule::Backoff;
pub use standalone::{
    AdjustDelay, BudgetHandle, KeepDelay, NotifyNobody, NotifyRetry, RetryEveryError, RetrySleeper,
    RetryWhen, Retrying, TokioSleeper, retry,
};
#[cfg(feature = "strategy")]
pub use strategy::ExponentialBackoffStrategy;
#[cfg(feature = "tower")]
pub use tower::BackoffPolicy;
