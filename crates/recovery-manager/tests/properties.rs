//! Properties of the manager under concurrent recoveries.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, SwarmError, TaskId,
    async_trait,
};
use recovery_manager::{RecoveryConfig, RecoveryManager};

/// Succeeds or fails as the context's task id says (odd ids fail), after an optional delay.
struct ByTask {
    id: &'static str,
}

#[async_trait]
impl RecoveryStrategy<()> for ByTask {
    fn strategy_id(&self) -> &str {
        self.id
    }
    fn description(&self) -> &str {
        "outcome set by the task id"
    }
    async fn can_handle(&self, _: &SwarmError) -> bool {
        true
    }
    async fn recover(&self, ctx: &RecoveryContext<()>, _: &SwarmError) -> RecoveryResult {
        let n = ctx.failed_task_id.map_or(0, |t| t.as_uuid().as_u128());
        ctx.sleep(Duration::from_millis((n % 7) as u64 * 10)).await;
        tokio::task::yield_now().await;
        if n % 2 == 0 {
            RecoveryResult::success(RecoveryAction::None, "ok")
        } else {
            RecoveryResult::failure(RecoveryAction::None, "no")
        }
    }
    async fn cost_estimate(&self) -> f64 {
        if self.id == "a" { 0.1 } else { 0.2 }
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

proptest! {
    #[test]
    fn prop_history_is_bounded_and_statistics_agree_with_it(
        retention in 1usize..40,
        slots in 1usize..5,
        tasks in proptest::collection::vec(0u128..1000, 1..80),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        rt.block_on(async {
            let m = Arc::new(RecoveryManager::empty(RecoveryConfig {
                history_retention: retention,
                max_concurrent_recoveries: slots,
                ..Default::default()
            }).unwrap());
            m.add_strategy(Arc::new(ByTask { id: "a" })).await;
            m.add_strategy(Arc::new(ByTask { id: "b" })).await;
            let handles: Vec<_> = tasks.iter().map(|&t| {
                let m = m.clone();
                tokio::spawn(async move {
                    let e = SwarmError::CommunicationError("x".into());
                    m.recover(Arc::new(()), e, Some(TaskId::from_u128(t)), None).await.unwrap()
                })
            }).collect();
            let mut expected = 0;
            for (h, t) in handles.into_iter().zip(&tasks) {
                let r = h.await.unwrap();
                // Odd tasks fail in both strategies; even ones succeed in the first.
                prop_assert_eq!(r.success, t % 2 == 0);
                expected += if t % 2 == 0 { 1 } else { 2 };
            }
            let history = m.get_recovery_history().await;
            prop_assert_eq!(history.len(), expected.min(retention));
            let stats = m.statistics().await;
            let rate = history.iter().filter(|a| a.result.success).count() as f64 / history.len() as f64;
            prop_assert_eq!(stats.overall.success_rate(), rate);
            prop_assert_eq!(stats.overall.attempts as usize, history.len());
            prop_assert_eq!(m.available_slots(), slots);
            Ok(())
        })?;
    }
}
