//! Graceful degradation: real resource monitoring, and load shedding by priority that lifts by
//! itself.
//!
//! ```
//! use std::sync::Arc;
//! use recovery_core::Priority;
//! use recovery_degradation::{DegradationConfig, DegradationLevel, LevelController, LevelPolicy, ResourceMonitor};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // The spec's example.
//! let monitor = ResourceMonitor::new();
//! monitor.update_cpu_usage(0.85);
//! monitor.update_memory_usage(0.90);
//! let usage = monitor.get_usage().await;
//! assert_eq!((usage.cpu_percent, usage.memory_percent), (0.85, 0.90));
//!
//! // What that usage means against the spec's thresholds.
//! let degradation_config = DegradationConfig {
//!     cpu_threshold: 0.80,
//!     memory_threshold: 0.85,
//!     connection_threshold: 1000,
//!     task_threshold: 500,
//! };
//! let mut levels = LevelController::new(LevelPolicy::default()).unwrap();
//! let level = levels.observe(&usage, &degradation_config);
//! assert_eq!(level, DegradationLevel::Minimal);
//! assert!(level.admits(Priority::High) && !level.admits(Priority::Normal));
//! # }
//! ```
//!
//! # When to use it
//!
//! When the swarm is short of CPU, memory, connections or task slots, retrying harder makes it
//! worse. [`GracefulDegradationStrategy`] instead makes the coordinator do less: refuse new
//! low-priority work, run fewer tasks at once, pause what is not essential, and keep the core
//! work running. It is the most expensive default strategy (cost 0.4), tried after backoff,
//! healing and checkpoints.
//!
//! # What it really does
//!
//! 1. **Measures.** A [`ResourceMonitor`] holds lock-free counters that the coordinator updates
//!    on its hot path (connections, active tasks) and CPU and memory fractions that a
//!    [`SystemSampler`] reads from the real host or process through `sysinfo` (inside a
//!    container, memory is measured against the cgroup's limit).
//! 2. **Decides a level.** Each resource's usage is divided by its threshold in
//!    [`DegradationConfig`]; the largest ratio is the [`Pressure`]. A [`LevelController`] turns
//!    pressure into a [`DegradationLevel`] with hysteresis ([`LevelPolicy`]): a level is
//!    entered at its entry point and left only when pressure falls a margin below it.
//! 3. **Applies it** through the [`Degradable`] capability trait, and checks the target runs at
//!    it before it reports success.
//! 4. **Lifts it by itself.** The manager's monitoring loop calls
//!    [`GracefulDegradationStrategy::step`] every interval, which lowers the level as soon as
//!    pressure has fallen past the margin, with no error having to occur.
//!
//! # The levels
//!
//! Pressure 1.0 means "a resource is at its threshold". With the default [`LevelPolicy`]:
//!
//! | level | entered at pressure | left below | admits new work of priority | runs at once | pauses |
//! |---|---|---|---|---|---|
//! | Normal (0) | - | - | all | 100 % | nothing |
//! | Reduced (1) | 1.00 | 0.95 | Normal, High, Critical | 75 % | speculative work, background maintenance |
//! | Minimal (2) | 1.05 | 1.00 | High, Critical | 50 % | also detailed telemetry |
//! | Critical (3) | 1.10 | 1.05 | Critical | 25 % | also new connections |
//!
//! With the default thresholds, Reduced starts at 80 % CPU, 85 % memory, 1000 connections or
//! 500 tasks, Minimal at 84 % / 89.25 % / 1050 / 525, Critical at 88 % / 93.5 % / 1100 / 550.
//!
//! # What it promises
//!
//! - Work a level refuses gets [`SwarmError::Overloaded`](recovery_core::SwarmError::Overloaded)
//!   from [`DegradationLevel::admit`], saying which level refused which priority, which
//!   resource is under pressure, and when to try again. Work already accepted is never
//!   dropped (the [`Degradable`] contract).
//! - `recover` reports success only when the target runs at the level (checked through
//!   [`Degradable::current_level`]); if nothing is under pressure it reports failure, because
//!   degrading would not help. Its result carries the usage it measured.
//! - A CPU or memory reading never stores garbage: NaN is ignored, out-of-range values are
//!   clamped ([`ResourceMonitor`]), or rejected by the `try_` methods.

mod cgroup;
mod config;
mod controller;
mod degradable;
mod early;
mod error;
mod level;
mod monitor;
pub mod predict;
mod sampler;
mod strategy;
#[cfg(feature = "sysinfo")]
mod system;

pub use cgroup::{CgroupMemory, CgroupMemoryReading};
pub use config::{DegradationConfig, LevelPolicy};
pub use controller::LevelController;
pub use degradable::Degradable;
pub use error::{InvalidDegradationConfig, InvalidUsage, UnknownLevel, UnknownLevelName};
pub use level::{DegradationLevel, Feature, Pressure, Resource};
pub use monitor::{ActivityGuard, ResourceMonitor, ResourceUsage};
pub use sampler::{MemorySource, ResourceSampler, Sample, Scope};
pub use strategy::{GracefulDegradationStrategy, LevelChange};
#[cfg(feature = "sysinfo")]
pub use system::SystemSampler;
