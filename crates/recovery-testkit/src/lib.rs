//! Fakes for testing recovery strategies and the code around them.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use recovery_backoff::{BackoffConfig, ExponentialBackoffStrategy};
//! use recovery_core::{RecoveryContext, RecoveryStrategy, SwarmError};
//! use recovery_testkit::FakeRetry;
//!
//! # recovery_testkit::block_on_paused(async {
//! // An operation that fails twice more, then works; it records every retry and when it ran.
//! let target = Arc::new(FakeRetry::failing(2, SwarmError::CommunicationError("reset".into())));
//! let strategy = ExponentialBackoffStrategy::new(BackoffConfig { jitter_factor: 0.0, ..Default::default() }).unwrap();
//! let result = strategy
//!     .recover(&RecoveryContext::new(target.clone()), &SwarmError::CommunicationError("reset".into()))
//!     .await;
//! assert!(result.success);
//! assert_eq!(target.call_count(), 3);
//! // On tokio's paused clock: 100 ms, then 200 ms, then 400 ms later.
//! assert_eq!(target.call_times(), [100, 300, 700].map(Duration::from_millis));
//! # });
//! ```
//!
//! # What is here
//!
//! One fake per capability trait, each behind the feature of its strategy crate (all on by
//! default), so a test of one strategy pulls in only that strategy:
//!
//! | fake | capability | what it does |
//! |---|---|---|
//! | [`FakeRetry`] (`backoff`) | `Retry` | fails as scripted, then succeeds; records each request and when it came |
//! | [`FakeState`] (`checkpoint`) | `Checkpointable` | holds a state you can corrupt; snapshots and restores can be made to fail or to be ignored |
//! | [`FakeLevel`] (`degradation`) | `Degradable` | runs at a level; can refuse a level or report `Ok` and stay put |
//! | [`FakeHealing`] (`healing`) | `Healable` | named components, a tunable config, work to move; records each restart |
//! | [`FakeTarget`] (all four) | all four | the four above in one system, for a manager with every strategy |
//!
//! Beside them: [`ScriptedStrategy`], a custom strategy whose results you script (for code that
//! drives a manager), [`RecordingSleeper`] (a context's sleeper that records delays and returns
//! at once), [`RecordingAlertSink`] (`healing`), and paused-time helpers ([`block_on_paused`],
//! [`settle`]).
//!
//! # For authors of custom strategies
//!
//! A strategy acts on its target through a capability trait of its own; the fakes here show the
//! pattern (a small struct that records what was done to it and lets the test say what happens
//! next). Test a custom strategy on tokio's paused clock (`#[tokio::test(start_paused = true)]`
//! or [`block_on_paused`]), so its delays cost no time and a test can assert on them exactly,
//! and check the contract of [`RecoveryStrategy`](recovery_core::RecoveryStrategy): success
//! only for an effect the fake observed, [`RecoveryResult::no_change`](recovery_core::RecoveryResult::no_change)
//! when there was nothing to do, and `can_handle` changing nothing.

#[cfg(feature = "healing")]
mod alert;
#[cfg(feature = "checkpoint")]
mod checkpoint;
#[cfg(feature = "degradation")]
mod degradation;
#[cfg(feature = "healing")]
mod healing;
#[cfg(feature = "backoff")]
mod retry;
mod sleeper;
mod strategy;
#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
mod target;
mod time;

#[cfg(feature = "healing")]
pub use alert::RecordingAlertSink;
#[cfg(feature = "checkpoint")]
pub use checkpoint::FakeState;
#[cfg(feature = "degradation")]
pub use degradation::FakeLevel;
#[cfg(feature = "healing")]
pub use healing::FakeHealing;
#[cfg(feature = "backoff")]
pub use retry::{FakeRetry, RetryCall};
pub use sleeper::RecordingSleeper;
pub use strategy::{ScriptedCall, ScriptedStrategy};
#[cfg(all(
    feature = "backoff",
    feature = "checkpoint",
    feature = "degradation",
    feature = "healing"
))]
pub use target::FakeTarget;
pub use time::{block_on_paused, paused_runtime, settle};
