//! The manager's dispatch cost: a `recover` with a task named, `max_concurrent_recoveries = 3`
//! and one strategy that succeeds at once, against calling that strategy's `recover` directly,
//! with 1 and with 64 concurrent callers on a 2-worker runtime.
//!
//! Both sides build per call what one error needs: the owned error (the manager takes one) and
//! a context holding a clone of the caller's `Arc` of the target, naming the task (the direct
//! caller builds it, the manager builds its own). So the difference is the manager's own work:
//! choosing the strategy, the slot, the retry ledger, the history, the tracing event and the
//! metrics. The goal: at most 1 µs of it per recovery, and 64 callers no slower per recovery
//! than 1.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError,
    TaskId, async_trait,
};
use recovery_manager::{RecoveryConfig, RecoveryManager};
use tokio::runtime::Runtime;

/// A strategy that succeeds at once.
struct Instant_;

#[async_trait]
impl StrategyInfo for Instant_ {
    fn strategy_id(&self) -> &str {
        "instant"
    }
    fn description(&self) -> &str {
        "succeeds at once"
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
impl RecoveryStrategy<()> for Instant_ {
    async fn recover(&self, _: &RecoveryContext<()>, _: &SwarmError) -> RecoveryResult {
        RecoveryResult::success(RecoveryAction::Custom("done".into()), "done")
    }
}

fn error() -> SwarmError {
    SwarmError::CommunicationError(black_box("connection reset").to_owned())
}

/// A different task for each call, as a swarm's failures are.
fn task(n: u64) -> Option<TaskId> {
    Some(TaskId::from_u128(u128::from(n)))
}

fn manager(slots: usize) -> Arc<RecoveryManager<()>> {
    let manager = RecoveryManager::empty(RecoveryConfig {
        max_concurrent_recoveries: slots,
        ..RecoveryConfig::default()
    })
    .expect("a valid config");
    let rt = recovery_benches::runtime();
    rt.block_on(manager.add_strategy(Arc::new(Instant_)));
    Arc::new(manager)
}

/// The same manager with the learned order on: a Thompson draw to rank the candidates and a
/// posterior update per attempt, under one lock.
fn learned_manager(slots: usize) -> Arc<RecoveryManager<()>> {
    let manager = RecoveryManager::builder()
        .config(RecoveryConfig {
            max_concurrent_recoveries: slots,
            ..RecoveryConfig::default()
        })
        .strategy(Arc::new(Instant_))
        .learned_order(recovery_manager::LearningConfig::default())
        .build()
        .expect("a valid config");
    Arc::new(manager)
}

/// `callers` tasks share `iters` calls on `rt`; returns the time for all of them. `caller(n)`
/// is one caller: a task that makes `n` calls with its own handles (cloned once per caller, as a
/// coordinator's task holds its own, so the harness adds no shared reference count per call).
fn concurrent<F, Fut>(rt: &Runtime, callers: u64, iters: u64, caller: F) -> Duration
where
    F: Fn(u64) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let per = iters.div_ceil(callers);
    rt.block_on(async {
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..callers {
            set.spawn(caller(per));
        }
        while set.join_next().await.is_some() {}
        // Report time per `iters` calls, whatever the rounding up above added.
        start
            .elapsed()
            .mul_f64(iters as f64 / (per * callers) as f64)
    })
}

fn main() {
    let mut c = Criterion::default().configure_from_args();

    // 1 and 64 callers sharing the same total of calls on a 2-worker runtime; the manager has
    // the default 3 slots.
    let mut g = c.benchmark_group("manager_dispatch");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let m = manager(3);
    let learned = learned_manager(3);
    let target = Arc::new(());
    let strategy = Arc::new(Instant_);
    for callers in [1u64, 64] {
        // A `BenchmarkId`, not `format!("manager/{callers}")`: criterion turns a `/` inside a
        // function name into `_`, and the ratio file names `manager_dispatch/manager/64`.
        g.bench_function(BenchmarkId::new("manager", callers), |b| {
            b.iter_custom(|iters| {
                concurrent(&rt, callers, iters, |calls| {
                    let (m, target) = (Arc::clone(&m), Arc::clone(&target));
                    async move {
                        for n in 0..calls {
                            // The target is one system shared by all callers: `recover` takes
                            // its own `Arc` of it, as in a coordinator.
                            let r = m.recover(Arc::clone(&target), error(), task(n), None).await;
                            black_box(r.map(|r| r.success).unwrap_or(false));
                        }
                    }
                })
            })
        });
        // The same with the learned order.
        g.bench_function(BenchmarkId::new("learned", callers), |b| {
            b.iter_custom(|iters| {
                concurrent(&rt, callers, iters, |calls| {
                    let (m, target) = (Arc::clone(&learned), Arc::clone(&target));
                    async move {
                        for n in 0..calls {
                            let r = m.recover(Arc::clone(&target), error(), task(n), None).await;
                            black_box(r.map(|r| r.success).unwrap_or(false));
                        }
                    }
                })
            })
        });
        // The same harness calling the strategy directly, with a context per call naming the
        // task: what the callers cost without the manager.
        g.bench_function(BenchmarkId::new("direct", callers), |b| {
            b.iter_custom(|iters| {
                concurrent(&rt, callers, iters, |calls| {
                    let (s, target) = (Arc::clone(&strategy), Arc::clone(&target));
                    async move {
                        for n in 0..calls {
                            let context =
                                RecoveryContext::new(Arc::clone(&target)).with_task(task(n));
                            black_box(s.recover(&context, &error()).await.success);
                        }
                    }
                })
            })
        });
    }
    g.finish();

    c.final_summary();
}
