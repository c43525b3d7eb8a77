//! The manager's dispatch overhead: a `recover` whose only strategy succeeds at once, against
//! calling that strategy's `recover` directly, for one caller and for 64 concurrent callers.
//!
//! Both sides build per call what one error needs: the owned error (the manager takes one) and
//! a context holding a clone of the caller's `Arc` of the target (the direct caller builds it,
//! the manager builds its own). So the ratio is the manager's own work: choosing the strategy,
//! a slot, the retry ledger, the history, the tracing event and the metrics. A second baseline
//! reuses one context for every call, as a reference for the strategy's own cost.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError,
    async_trait,
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

    let mut g = c.benchmark_group("manager_dispatch");
    let rt = recovery_benches::runtime();
    let strategy = Instant_;
    // The caller's own handle on its system, cloned per call as a coordinator would.
    let target = Arc::new(());
    // A direct call needs a context for the error at hand (its task, agent, time), so the
    // baseline builds one per call, as the manager does.
    g.bench_function("direct", |b| {
        b.to_async(&rt).iter(|| async {
            let e = error();
            let context = RecoveryContext::new(Arc::clone(&target))
                .with_task(None)
                .with_agent(None);
            black_box(strategy.recover(&context, &e).await.success)
        })
    });
    // For reference: one context reused by every call (only the strategy's own work).
    let shared = RecoveryContext::new(Arc::clone(&target));
    g.bench_function("direct_shared_context", |b| {
        b.to_async(&rt).iter(|| async {
            let e = error();
            black_box(strategy.recover(&shared, &e).await.success)
        })
    });
    let m = manager(3);
    g.bench_function("manager", |b| {
        b.to_async(&rt).iter(|| async {
            let r = m.recover(Arc::clone(&target), error(), None, None).await;
            black_box(r.map(|r| r.success).unwrap_or(false))
        })
    });
    g.finish();

    // Throughput as callers grow: the same total number of calls, shared by 1 or 64 tasks on a
    // 2-worker runtime.
    let mut g = c.benchmark_group("manager_callers");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let m = manager(64);
    for callers in [1u64, 64] {
        let m = Arc::clone(&m);
        let target = Arc::new(());
        // A `BenchmarkId`, not `format!("manager/{callers}")`: criterion turns a `/` inside a
        // function name into `_`, and the ratio file names `manager_callers/manager/64`.
        g.bench_function(BenchmarkId::new("manager", callers), |b| {
            let m = Arc::clone(&m);
            b.iter_custom(|iters| {
                concurrent(&rt, callers, iters, |calls| {
                    let (m, target) = (Arc::clone(&m), Arc::clone(&target));
                    async move {
                        for _ in 0..calls {
                            // The target is one system shared by all callers: `recover` takes
                            // its own `Arc` of it, as in a coordinator.
                            let r = m.recover(Arc::clone(&target), error(), None, None).await;
                            black_box(r.map(|r| r.success).unwrap_or(false));
                        }
                    }
                })
            })
        });
    }
    let strategy = Arc::new(Instant_);
    let target = Arc::new(());
    // The same harness calling the strategy directly, with a context per call for the shared
    // target (as `manager_dispatch/direct`): what 1 and 64 callers cost without the manager.
    for callers in [1u64, 64] {
        g.bench_function(BenchmarkId::new("direct", callers), |b| {
            b.iter_custom(|iters| {
                concurrent(&rt, callers, iters, |calls| {
                    let (s, target) = (Arc::clone(&strategy), Arc::clone(&target));
                    async move {
                        for _ in 0..calls {
                            let context = RecoveryContext::new(Arc::clone(&target))
                                .with_task(None)
                                .with_agent(None);
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
