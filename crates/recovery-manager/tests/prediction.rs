//! Predictive recovery through the manager's monitoring: on a rising pressure the level is
//! stepped early, a checkpoint is taken, and the history records why.

#![cfg(all(feature = "checkpoint", feature = "degradation"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use recovery_checkpoint::CheckpointRecoveryStrategy;
use recovery_core::{ErrorKind, RecoveryAction};
use recovery_degradation::predict::TrendConfig;
use recovery_degradation::{
    DegradationConfig, DegradationLevel, GracefulDegradationStrategy, ResourceMonitor,
    ResourceSampler, Sample,
};
use recovery_manager::{RecoveryConfig, RecoveryManager};
use recovery_testkit::FakeTarget;

/// Memory rising from 0.30 by `per_tick` each sample.
struct Ramp {
    ticks: Arc<AtomicU64>,
    per_tick: f64,
}

impl ResourceSampler for Ramp {
    fn sample(&mut self) -> Sample {
        let n = self.ticks.fetch_add(1, Ordering::Relaxed) as f64;
        Sample {
            cpu: Some(0.2),
            memory: Some((0.30 + self.per_tick * n).min(1.0)),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_forecast_steps_the_level_early_takes_a_checkpoint_and_is_in_the_history() {
    let ticks = Arc::new(AtomicU64::new(0));
    let degradation = GracefulDegradationStrategy::new(
        DegradationConfig::default(),
        Arc::new(ResourceMonitor::new()),
    )
    .unwrap()
    .with_prediction(TrendConfig::default())
    .unwrap();
    let manager = RecoveryManager::<FakeTarget>::builder()
        .config(RecoveryConfig {
            monitoring_interval: Duration::from_secs(1),
            checkpoint_interval: Duration::from_secs(30 * 24 * 3600),
            ..RecoveryConfig::default()
        })
        .checkpoint(CheckpointRecoveryStrategy::default())
        .degradation(degradation)
        .sampler(Ramp {
            ticks: Arc::clone(&ticks),
            per_tick: 0.002,
        })
        .build()
        .unwrap();
    let target = Arc::new(FakeTarget::new());
    manager.attach(&target);
    manager.start_monitoring().await;
    // The memory threshold (0.85) is reached at tick 275; step a second at a time until the
    // level moves.
    let mut stepped_at = None;
    for _ in 0..400 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if target.level.level() != DegradationLevel::Normal {
            stepped_at = Some(ticks.load(Ordering::Relaxed));
            break;
        }
    }
    let stepped_at = stepped_at.expect("the level never moved");
    assert!(
        stepped_at + 60 <= 275,
        "stepped at tick {stepped_at}, not a minute early"
    );
    assert_eq!(target.level.level(), DegradationLevel::Reduced);
    assert_eq!(target.state.snapshots(), 1, "a checkpoint was taken");
    let history = manager.get_recovery_history().await;
    let early = history
        .iter()
        .find(|a| a.strategy_id == "graceful_degradation")
        .expect("the early step is in the history");
    assert_eq!(early.error_kind(), ErrorKind::Overloaded);
    assert!(early.result.success);
    assert!(matches!(
        early.result.action,
        RecoveryAction::Degraded { level: 1 }
    ));
    let secs: f64 = early.result.metadata["forecast_secs"].parse().unwrap();
    assert!(secs >= 60.0, "{secs}");
    assert!(early.result.metadata.contains_key("checkpoint_id"));
    assert!(
        early.result.action_taken.contains("forecast"),
        "{}",
        early.result.action_taken
    );
}
