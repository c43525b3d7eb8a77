//! The learned order over half a simulated day on paused time, with 32 callers at once: the
//! cheap strategy works for six hours and then stops; the order follows it there and away
//! again, and no recovery fails because of it.

use std::sync::Arc;
use std::time::Duration;

use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo,
    SwarmError, async_trait,
};
use recovery_manager::{LearningConfig, RecoveryConfig, RecoveryManager};
use tokio::time::Instant;

/// Recovers `TransactionFailed` after `takes`, while `works(now)` says so.
struct Timed {
    id: &'static str,
    cost: f64,
    takes: Duration,
    works_until: Option<Instant>,
}

#[async_trait]
impl StrategyInfo for Timed {
    fn strategy_id(&self) -> &str {
        self.id
    }
    fn description(&self) -> &str {
        "recovers after a while, until a set time"
    }
    async fn can_handle(&self, error: &SwarmError) -> bool {
        error.kind() == ErrorKind::TransactionFailed
    }
    async fn cost_estimate(&self) -> f64 {
        self.cost
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<()> for Timed {
    async fn recover(&self, _: &RecoveryContext<()>, _: &SwarmError) -> RecoveryResult {
        tokio::time::sleep(self.takes).await;
        if self.works_until.is_none_or(|t| Instant::now() < t) {
            RecoveryResult::success(RecoveryAction::Custom(self.id.to_owned()), "worked")
        } else {
            RecoveryResult::failure(RecoveryAction::None, "stopped working")
        }
    }
}

/// Per simulated hour: recoveries, those the cheap strategy did, and those that tried it
/// first in vain (they took its second plus the other's five).
#[derive(Debug, Default, Clone, Copy)]
struct Hour {
    recoveries: u64,
    by_cheap: u64,
    cheap_in_vain: u64,
    failed: u64,
}

#[tokio::test(start_paused = true)]
async fn the_order_follows_a_strategy_that_stops_working_over_half_a_day_with_32_callers() {
    const HOURS: usize = 12;
    let start = Instant::now();
    let switch = start + Duration::from_secs(6 * 3600);
    let manager = Arc::new(
        RecoveryManager::<()>::builder()
            .config(RecoveryConfig {
                history_retention: 1_000,
                max_concurrent_recoveries: 64,
                ..RecoveryConfig::default()
            })
            .strategy(Arc::new(Timed {
                id: "cheap",
                cost: 0.1,
                takes: Duration::from_secs(1),
                works_until: Some(switch),
            }))
            .strategy(Arc::new(Timed {
                id: "dear",
                cost: 0.3,
                takes: Duration::from_secs(5),
                works_until: None,
            }))
            .learned_order(LearningConfig {
                seed: 3,
                ..LearningConfig::default()
            })
            .build()
            .unwrap(),
    );
    let hours = Arc::new(std::sync::Mutex::new([Hour::default(); HOURS]));
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..32u64 {
        let (manager, hours) = (Arc::clone(&manager), Arc::clone(&hours));
        callers.spawn(async move {
            // Callers start spread over a minute and pause 20 to 51 s between recoveries.
            tokio::time::sleep(Duration::from_secs(caller * 2)).await;
            let mut n = 0u64;
            while start.elapsed() < Duration::from_secs(HOURS as u64 * 3600) {
                let began = Instant::now();
                let hour = (start.elapsed().as_secs() / 3600) as usize;
                let r = manager
                    .recover(
                        Arc::new(()),
                        SwarmError::TransactionFailed("row locked".into()),
                        None,
                        None,
                    )
                    .await
                    .unwrap();
                let took = began.elapsed();
                {
                    let mut h = hours.lock().unwrap();
                    let h = &mut h[hour];
                    h.recoveries += 1;
                    h.failed += u64::from(!r.success);
                    h.by_cheap += u64::from(r.action == RecoveryAction::Custom("cheap".into()));
                    h.cheap_in_vain += u64::from(took >= Duration::from_secs(6));
                }
                n += 1;
                tokio::time::sleep(Duration::from_secs(20 + (caller * 7 + n * 13) % 32)).await;
            }
        });
    }
    while let Some(joined) = callers.join_next().await {
        joined.unwrap();
    }
    let hours = *hours.lock().unwrap();
    for (i, h) in hours.iter().enumerate() {
        assert!(h.recoveries > 2_000, "hour {i}: {h:?}");
        assert_eq!(
            h.failed, 0,
            "the dear strategy always works: hour {i}: {h:?}"
        );
        let share = |n: u64| n as f64 / h.recoveries as f64;
        match i {
            // While the cheap one works, it goes first (cost 0.1 against 0.3), but for the
            // draws of a wide posterior.
            0..=5 => assert!(share(h.by_cheap) >= 0.95, "hour {i}: {h:?}"),
            // The hour it stops working, the order moves within minutes...
            6 => assert!(share(h.cheap_in_vain) <= 0.1, "hour {i}: {h:?}"),
            // ...and stays moved: the cheap one is still drawn first now and then.
            _ => {
                assert_eq!(h.by_cheap, 0, "hour {i}: {h:?}");
                assert!(share(h.cheap_in_vain) <= 0.01, "hour {i}: {h:?}");
            }
        }
    }
}
