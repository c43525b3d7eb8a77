//! Properties of the manager under concurrent recoveries.

use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError,
    TaskId, async_trait,
};
use recovery_manager::{RecoveryConfig, RecoveryManager};

/// Succeeds or fails as the context's task id says (odd ids fail), after an optional delay.
struct ByTask {
    id: &'static str,
}

#[async_trait]
impl StrategyInfo for ByTask {
    fn strategy_id(&self) -> &str {
        self.id
    }
    fn description(&self) -> &str {
        "outcome set by the task id"
    }
    async fn can_handle(&self, _: &SwarmError) -> bool {
        true
    }
    async fn cost_estimate(&self) -> f64 {
        if self.id == "a" { 0.1 } else { 0.2 }
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<()> for ByTask {
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

/// Counts the recoveries doing work (not waiting out a delay), and the most seen at once.
#[derive(Default)]
struct Busy {
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

/// One unit of work in progress; dropping it (also when the recovery is cancelled) ends it.
struct Working<'a>(&'a Busy);

impl<'a> Working<'a> {
    fn start(busy: &'a Busy) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let now = busy.now.fetch_add(1, SeqCst) + 1;
        busy.most.fetch_max(now, SeqCst);
        Working(busy)
    }
}

impl Drop for Working<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Works, waits out a delay through the context (giving its slot away), and works again.
struct WorkWaitWork {
    busy: Arc<Busy>,
}

#[async_trait]
impl StrategyInfo for WorkWaitWork {
    fn strategy_id(&self) -> &str {
        "work-wait-work"
    }
    fn description(&self) -> &str {
        "yields while working, sleeps between"
    }
    async fn can_handle(&self, _: &SwarmError) -> bool {
        true
    }
    async fn cost_estimate(&self) -> f64 {
        0.1
    }
    async fn requires_external_resources(&self) -> bool {
        false
    }
}

#[async_trait]
impl RecoveryStrategy<()> for WorkWaitWork {
    async fn recover(&self, ctx: &RecoveryContext<()>, _: &SwarmError) -> RecoveryResult {
        let n = ctx.failed_task_id.map_or(0, |t| t.as_uuid().as_u128());
        {
            let _working = Working::start(&self.busy);
            tokio::time::sleep(Duration::from_millis((n % 3) as u64)).await;
        }
        ctx.sleep(Duration::from_millis((n % 5) as u64 * 10)).await;
        let _working = Working::start(&self.busy);
        tokio::time::sleep(Duration::from_millis((n % 2) as u64)).await;
        RecoveryResult::success(RecoveryAction::None, "ok")
    }
}

proptest! {
    #[test]
    fn prop_cancelled_recoveries_give_back_their_slots(
        slots in 1usize..5,
        // Per recovery: its task id, and whether (and after how many ms) it is cancelled.
        recoveries in proptest::collection::vec((0u128..1000, proptest::option::of(0u64..60)), 1..60),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
        rt.block_on(async {
            let busy = Arc::new(Busy::default());
            let m = Arc::new(RecoveryManager::empty(RecoveryConfig {
                max_concurrent_recoveries: slots,
                ..Default::default()
            }).unwrap());
            m.add_strategy(Arc::new(WorkWaitWork { busy: Arc::clone(&busy) })).await;
            let mut handles = Vec::new();
            for &(t, cancel_after) in &recoveries {
                let m = m.clone();
                let handle = tokio::spawn(async move {
                    let e = SwarmError::CommunicationError("x".into());
                    m.recover(Arc::new(()), e, Some(TaskId::from_u128(t)), None).await
                });
                handles.push((handle, cancel_after));
            }
            for (handle, cancel_after) in &handles {
                if let Some(ms) = cancel_after {
                    let abort = handle.abort_handle();
                    let ms = *ms;
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                        abort.abort();
                    });
                }
            }
            let mut finished = 0;
            for (handle, _) in handles {
                match handle.await {
                    Ok(result) => {
                        prop_assert!(result.unwrap().success);
                        finished += 1;
                    }
                    Err(e) => prop_assert!(e.is_cancelled()),
                }
            }
            let most = busy.most.load(std::sync::atomic::Ordering::SeqCst);
            prop_assert!(most <= slots, "{most} recoveries worked at once with {slots} slots");
            prop_assert_eq!(busy.now.load(std::sync::atomic::Ordering::SeqCst), 0);
            prop_assert_eq!(m.available_slots(), slots, "every slot given back");
            // Only finished attempts are in the history.
            prop_assert_eq!(m.get_recovery_history().await.len(), finished.min(100));
            Ok(())
        })?;
    }
}
