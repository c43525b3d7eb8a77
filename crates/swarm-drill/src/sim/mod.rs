//! The simulation mode: the whole swarm (coordinator, manager, every strategy, the
//! fault-injecting executor, the agents, the clients) on one thread, on tokio's paused clock,
//! every source of randomness drawn from one seed. A simulated day costs seconds, and a seed
//! replays bit for bit: the same options give the same report and the same trace digest.
//!
//! ```
//! use swarm_drill::sim::{SimOptions, simulate};
//!
//! let options = SimOptions { days: 0.02, seed: 3, ..SimOptions::default() };
//! let a = simulate(&options, true).unwrap();
//! let b = simulate(&options, true).unwrap();
//! assert!(a.passed(), "{}", a.table());
//! assert_eq!(a, b);
//! println!("{}", a.last_line());
//! ```
//!
//! What is controlled: ids (seeded uuids), jitter (the backoff's seeded generators), the
//! coordinator's map iteration order (a fixed hasher), `select!` order (`biased`), resource
//! samples (from the swarm's load and injected pressure waves, never the host), checkpoint
//! storage (in memory, encoded on the calling task, with injected write failures). No
//! wall-clock reading decides anything.

mod faults;
pub mod metastable;
mod options;
mod rebuild;
mod report;
mod run;
mod trace;
mod world;

pub use options::{FaultMix, SimOptions};
pub use report::{KindLine, Recovery, SimReport, StrategyLine};
pub use trace::Stop;

/// Run `options` on a fresh paused current-thread runtime; with `baseline`, run the same
/// workload with the fault plan off first and report throughput against it.
///
/// # Errors
///
/// A bad option (named), or a runtime that cannot be built.
pub fn simulate(options: &SimOptions, baseline: bool) -> Result<SimReport, String> {
    options.validate()?;
    let fault_free = if baseline {
        let free = SimOptions {
            faults: FaultMix::none(),
            until_event: None,
            ..options.clone()
        };
        Some(run_once(&free)?)
    } else {
        None
    };
    let mut report = run_once(options)?;
    report.fault_free_per_hour = fault_free.as_ref().map(|f| f.completed_per_hour);
    report.fault_free_timeline = fault_free.map(|f| f.timeline);
    Ok(report)
}

fn run_once(options: &SimOptions) -> Result<SimReport, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    Ok(runtime.block_on(async { run::Sim::new(options.clone()).await.run().await }))
}
