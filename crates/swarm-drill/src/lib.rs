//! The chaos drill: a [`SwarmCoordinator`](swarm_integration::SwarmCoordinator) with 32 agents
//! and 20,000 tasks of mixed priority, an executor that injects faults at set rates
//! (communication errors, timeouts, agent crashes, state corruption, resource-pressure spikes,
//! and a few non-recoverable errors), checkpoints in a file store, and a report of how the
//! recovery system kept the swarm going.
//!
//! Run it with `cargo run --release -p swarm-drill` (or `cargo xtask drill`); `--help` lists the
//! flags. As a library:
//!
//! ```
//! use swarm_drill::{DrillOptions, run};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let options = DrillOptions { agents: 4, tasks: 200, ..DrillOptions::default() };
//! let report = run(&options, &()).await.unwrap();
//! assert_eq!(report.lost, 0);
//! assert!(report.passed());
//! println!("{}", report.last_line());
//! # }
//! ```
//!
//! Each fault decision derives from the seed, the task number and the attempt
//! ([`faults::decide`]), never from timing, so `--seed` repeats the same fault plan (its digest
//! is printed in the report).

pub mod chart;
pub mod cluster;
pub mod executor;
pub mod faults;
pub mod html;
pub mod pressure;
pub mod prometheus;
pub mod report;
pub mod sim;
pub mod timeline;

mod drill;

pub use drill::{
    DrillError, DrillOptions, Progress, baseline, baseline_report, drill_settings, run,
};
pub use faults::{Fault, FaultRates};
pub use report::{Report, RunOptions};
