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

impl Timeline {
    /// An empty timeline sampled every `every_secs`.
    pub fn new(every_secs: f64) -> Self {
        Self {
            every_secs,
            points: Vec::new(),
        }
    }

    /// Add a sample. Bounded: past 2,000 samples, every other one is dropped and the interval
    /// doubles (a sampler reads [`every_secs`](Self::every_secs) for its next wait).
    pub fn push(&mut self, point: Point) {
        self.points.push(point);
        if self.points.len() >= 2000 {
            self.points = self.points.iter().step_by(2).cloned().collect();
            self.every_secs *= 2.0;
        }
    }
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
                let mut timeline = Timeline::new(every.as_secs_f64());
                loop {
                    let last = stop.load(Ordering::Relaxed);
                    let stats = coordinator.stats();
                    let recoveries = manager.attempts_by_strategy();
                    timeline.push(Point {
                        t: started.elapsed().as_secs_f64(),
                        completed: stats.completed,
                        faults: executor.injected().values().sum(),
                        recoveries,
                        level: coordinator.level().as_u8(),
                        in_flight: coordinator.parallelism().0 as u64,
                    });
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
