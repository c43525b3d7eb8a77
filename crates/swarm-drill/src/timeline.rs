//! What the drill looked like over time: a sample every `every` of completed tasks, injected
//! faults, recoveries by strategy, the degradation level and the tasks in flight. The HTML
//! report draws it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use recovery_manager::RecoveryManager;
use serde::{Deserialize, Serialize};
use swarm_integration::SwarmCoordinator;
use tokio::task::JoinHandle;

use crate::executor::DrillExecutor;

/// One sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Seconds since the drill started (simulated seconds in simulation mode).
    pub t: f64,
    /// Tasks completed so far.
    pub completed: u64,
    /// Faults injected so far, all kinds.
    pub faults: u64,
    /// Recovery attempts so far, by strategy.
    pub recoveries: BTreeMap<String, u64>,
    /// The degradation level: 0 (Normal) to 3 (Critical).
    pub level: u8,
    /// Runs in flight.
    pub in_flight: u64,
}

/// The samples of one run, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// The sampling interval, seconds.
    pub every_secs: f64,
    /// The samples.
    pub points: Vec<Point>,
}

/// A sampler running beside the drill; [`Sampler::finish`] takes a last sample and returns
/// the timeline.
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Timeline>,
}

impl Sampler {
    pub(crate) fn start(
        coordinator: Arc<SwarmCoordinator>,
        manager: Arc<RecoveryManager<SwarmCoordinator>>,
        executor: Arc<DrillExecutor>,
        every: Duration,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let stop = Arc::clone(&stop);
            async move {
                let started = tokio::time::Instant::now();
                let mut timeline = Timeline {
                    every_secs: every.as_secs_f64(),
                    points: Vec::new(),
                };
                loop {
                    let last = stop.load(Ordering::Relaxed);
                    let stats = coordinator.stats();
                    let recoveries = manager.attempts_by_strategy();
                    timeline.points.push(Point {
                        t: started.elapsed().as_secs_f64(),
                        completed: stats.completed,
                        faults: executor.injected().values().sum(),
                        recoveries,
                        level: coordinator.level().as_u8(),
                        in_flight: coordinator.parallelism().0 as u64,
                    });
                    // Bounded: past 2,000 samples, every other one is dropped and the interval
                    // doubles.
                    if timeline.points.len() >= 2000 {
                        timeline.points = timeline.points.iter().step_by(2).cloned().collect();
                        timeline.every_secs *= 2.0;
                    }
                    if last {
                        return timeline;
                    }
                    tokio::time::sleep(Duration::from_secs_f64(timeline.every_secs)).await;
                }
            }
        });
        Self { stop, task }
    }

    pub(crate) async fn finish(self) -> Timeline {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap_or_default()
    }
}
