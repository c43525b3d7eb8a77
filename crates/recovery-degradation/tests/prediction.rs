//! Predictive stepping in the strategy, on a paused clock: a memory ramp steps the level to
//! Reduced at least the lead time before memory reaches its threshold; stationary noise below
//! the threshold never moves the level; without prediction the ramp is met only at the threshold.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use recovery_core::SwarmError;
use recovery_degradation::predict::TrendConfig;
use recovery_degradation::{
    Degradable, DegradationConfig, DegradationLevel, GracefulDegradationStrategy, ResourceMonitor,
};

struct Target(Mutex<DegradationLevel>);

#[async_trait]
impl Degradable for Target {
    async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
        *self.0.lock().unwrap() = level;
        Ok(())
    }

    async fn current_level(&self) -> DegradationLevel {
        *self.0.lock().unwrap()
    }
}

fn strategy(predict: bool) -> (GracefulDegradationStrategy, Arc<ResourceMonitor>) {
    let monitor = Arc::new(ResourceMonitor::new());
    let s = GracefulDegradationStrategy::new(DegradationConfig::default(), Arc::clone(&monitor))
        .unwrap();
    let s = if predict {
        s.with_prediction(TrendConfig {
            lead_time: Duration::from_secs(60),
            ..TrendConfig::default()
        })
        .unwrap()
    } else {
        s
    };
    (s, monitor)
}

/// Seconds from the start until the level first left Normal, stepping once a second while
/// memory follows `memory(t)`.
async fn first_step(predict: bool, secs: u32, memory: impl Fn(f64) -> f64) -> Option<f64> {
    let (s, monitor) = strategy(predict);
    let target = Target(Mutex::new(DegradationLevel::Normal));
    for t in 0..secs {
        monitor.update_memory_usage(memory(f64::from(t)));
        let change = s.step(&target).await.unwrap();
        if let Some(c) = change {
            if c.from == DegradationLevel::Normal {
                if predict {
                    assert!(
                        c.forecast_secs.is_some(),
                        "an early step carries its forecast"
                    );
                }
                return Some(f64::from(t));
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    None
}

#[tokio::test(start_paused = true)]
async fn a_ramp_steps_the_level_at_least_the_lead_time_before_the_threshold() {
    let threshold = DegradationConfig::default().memory_threshold;
    // 20 % to the threshold at 0.25 % a second.
    let ramp = |t: f64| 0.20 + 0.0025 * t;
    let crossing = (threshold - 0.20) / 0.0025;
    let early = first_step(true, 600, ramp).await.expect("it stepped");
    assert!(
        crossing - early >= 60.0,
        "stepped {:.0} s before the crossing",
        crossing - early
    );
    let late = first_step(false, 600, ramp)
        .await
        .expect("the controller steps at the threshold");
    assert!(
        late >= crossing - 1.0,
        "without prediction it waits for the threshold ({late} s)"
    );
}

#[tokio::test(start_paused = true)]
async fn stationary_noise_below_the_threshold_never_moves_the_level() {
    let mut state = 11u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let noise: Vec<f64> = (0..1800).map(|_| 0.55 + 0.2 * (next() - 0.5)).collect();
    let stepped = first_step(true, 1800, |t| noise[t as usize]).await;
    assert_eq!(stepped, None, "noise moved the level");
}
