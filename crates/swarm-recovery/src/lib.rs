//! The swarm recovery workspace behind one dependency: the spec's
//! `use synapsed_swarm::recovery::*;` is `use swarm_recovery::prelude::*;`.
//!
//! ```
//! use swarm_recovery::prelude::*;
//!
//! /// A custom strategy, as the spec's `MyCustomStrategy`.
//! struct MyCustomStrategy;
//!
//! #[async_trait]
//! impl StrategyInfo for MyCustomStrategy {
//!     fn strategy_id(&self) -> &str { "my_custom" }
//!     fn description(&self) -> &str { "asks a person" }
//!     async fn can_handle(&self, error: &SwarmError) -> bool { error.is_recoverable() }
//!     async fn cost_estimate(&self) -> f64 { 0.9 }
//!     async fn requires_external_resources(&self) -> bool { true }
//! }
//!
//! #[async_trait]
//! impl RecoveryStrategy<SwarmCoordinator> for MyCustomStrategy {
//!     async fn recover(&self, _: &RecoveryContext<SwarmCoordinator>, _: &SwarmError) -> RecoveryResult {
//!         RecoveryResult::no_change("nobody answered the page")
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! // The spec's "Basic Recovery Manager Setup", line for line.
//! let recovery_manager = RecoveryManager::<SwarmCoordinator>::new();
//!
//! // Start background monitoring
//! recovery_manager.start_monitoring().await;
//!
//! // Add custom strategies if needed
//! let custom_strategy = Arc::new(MyCustomStrategy);
//! recovery_manager.add_strategy(custom_strategy).await;
//! assert_eq!(recovery_manager.strategy_ids().len(), 5);
//! # }
//! ```
//!
//! # Features
//!
//! The same as recovery-manager's, all on by default: `backoff`, `checkpoint`, `degradation`,
//! `healing` (each strategy crate, and the manager's feature of the same name), `sysinfo` (the
//! host sampler), `coordinator` (`SwarmCoordinator`, which uses all four), and `workflow`
//! (recovery workflows and the manager's workflow steps). `testkit` adds the
//! fakes of recovery-testkit. A program that wants one strategy can also depend on that
//! strategy's crate alone (`recovery-backoff` for the standalone `retry`).
//!
//! # Where each part lives
//!
//! Every crate of the workspace is re-exported as a module: [`core`], [`manager`],
//! [`backoff`], [`checkpoint`], [`degradation`], [`healing`], [`coordinator`], [`workflow`],
//! [`testkit`].
//! The [`prelude`] gathers what a program that recovers a swarm names most.

pub use recovery_core as core;
pub use recovery_manager as manager;

#[cfg(feature = "backoff")]
pub use recovery_backoff as backoff;
#[cfg(feature = "checkpoint")]
pub use recovery_checkpoint as checkpoint;
#[cfg(feature = "degradation")]
pub use recovery_degradation as degradation;
#[cfg(feature = "healing")]
pub use recovery_healing as healing;
#[cfg(feature = "testkit")]
pub use recovery_testkit as testkit;
#[cfg(feature = "workflow")]
pub use recovery_workflow as workflow;
#[cfg(feature = "coordinator")]
pub use swarm_integration as coordinator;

pub mod prelude;
