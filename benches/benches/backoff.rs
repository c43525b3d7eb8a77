//! The cost of retrying: a call that succeeds at once, and a call that fails 3 times with zero
//! delay before succeeding, each through a direct call (the baseline), recovery-backoff's
//! `retry`, backon and tokio-retry, on a current-thread tokio runtime; and a tower service that
//! succeeds at once behind `RetryLayer`, with recovery-backoff's `BackoffPolicy` against a policy
//! on tower's own `ExponentialBackoff`.
//!
//! Each measurement runs its whole loop inside one `block_on`, so the runtime's entry cost is
//! not counted per call.

use std::cell::Cell;
use std::future::Future;
use std::hint::black_box;
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use criterion::Criterion;
use recovery_backoff::{BackoffConfig, retry};
use tokio::runtime::Runtime;
use tokio_retry::strategy::{ExponentialBackoff, FixedInterval};

/// The error the operations fail with.
#[derive(Debug, Clone, Copy)]
struct Fail;

/// An operation that fails `failures` times per call (the counter is reset before each call).
struct Op {
    failures: u32,
    runs: Cell<u32>,
}

impl Op {
    fn new(failures: u32) -> Self {
        Self {
            failures,
            runs: Cell::new(0),
        }
    }

    fn reset(&self) {
        self.runs.set(0);
    }

    fn call(&self) -> impl Future<Output = Result<u32, Fail>> + use<'_> {
        let run = self.runs.get();
        self.runs.set(run + 1);
        let failures = self.failures;
        async move {
            if black_box(run) < failures {
                Err(Fail)
            } else {
                Ok(run)
            }
        }
    }
}

/// Time `iters` calls of `call`, all inside one `block_on`.
fn timed<F, Fut>(rt: &Runtime, iters: u64, mut call: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u32, Fail>>,
{
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            let r = call().await;
            black_box(r.is_ok());
        }
        start.elapsed()
    })
}

/// The four contenders on an operation that fails `failures` times; `config`, `backon` and
/// `tokio_retry_schedule` give each one its schedule.
fn group(
    c: &mut Criterion,
    name: &str,
    failures: u32,
    config: BackoffConfig,
    backon: ExponentialBuilder,
    tokio_retry_schedule: fn() -> Vec<Duration>,
) {
    let rt = recovery_benches::runtime();
    let op = Op::new(failures);
    let mut g = c.benchmark_group(name);

    g.bench_function("direct", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                op.reset();
                loop {
                    if let Ok(v) = op.call().await {
                        break Ok(v);
                    }
                }
            })
        })
    });

    g.bench_function("recovery_backoff", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || {
                op.reset();
                retry(&config, || op.call())
            })
        })
    });

    g.bench_function("backon", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || {
                op.reset();
                (|| op.call()).retry(backon)
            })
        })
    });

    let schedule = tokio_retry_schedule();
    g.bench_function("tokio_retry", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || {
                op.reset();
                tokio_retry::Retry::start(schedule.iter().copied(), || op.call())
            })
        })
    });

    g.finish();
}

/// A policy on tower's own `ExponentialBackoff`, as a tower user writes one: at most `left`
/// retries, each after the backoff's next delay.
#[derive(Clone)]
struct TowerExponential {
    backoff: tower::retry::backoff::ExponentialBackoff,
    left: u32,
}

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for TowerExponential {
    type Future = tokio::time::Sleep;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        use tower::retry::backoff::Backoff;
        if result.is_ok() || self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.backoff.next_backoff())
    }

    fn clone_request(&mut self, req: &Req) -> Option<Req> {
        Some(req.clone())
    }
}

/// Time `iters` calls of `svc`, each once it is ready, all inside one `block_on`.
fn calls<S>(rt: &Runtime, svc: &mut S, iters: u64) -> Duration
where
    S: tower::Service<u32>,
    S::Error: std::fmt::Debug,
{
    use tower::ServiceExt;
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            let r = svc.ready().await.unwrap().call(i as u32).await;
            black_box(r.is_ok());
        }
        start.elapsed()
    })
}

/// A service that succeeds at once behind tower's `RetryLayer`, with each policy.
fn tower_group(c: &mut Criterion) {
    use tower::ServiceBuilder;
    use tower::retry::RetryLayer;
    use tower::retry::backoff::{ExponentialBackoffMaker, MakeBackoff};
    use tower::util::rng::HasherRng;

    let rt = recovery_benches::runtime();
    let ok = || tower::service_fn(|x: u32| async move { Ok::<u32, Fail>(x) });
    let mut g = c.benchmark_group("tower_retry_success");
    let ours = recovery_backoff::BackoffPolicy::new(BackoffConfig::default());
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(ours))
        .service(ok());
    g.bench_function("recovery_backoff", |b| {
        b.iter_custom(|iters| calls(&rt, &mut svc, iters))
    });
    let mut maker = ExponentialBackoffMaker::new(
        Duration::from_millis(100),
        Duration::from_secs(60),
        0.1,
        HasherRng::default(),
    )
    .expect("valid");
    let theirs = TowerExponential {
        backoff: maker.make_backoff(),
        left: 5,
    };
    let mut svc = ServiceBuilder::new()
        .layer(RetryLayer::new(theirs))
        .service(ok());
    g.bench_function("tower_exponential", |b| {
        b.iter_custom(|iters| calls(&rt, &mut svc, iters))
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    tower_group(&mut c);

    // The spec's schedule (100 ms, x2, 5 retries); the operation succeeds at once, so no
    // delay is ever taken.
    group(
        &mut c,
        "retry_success",
        0,
        BackoffConfig::default(),
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_times(5),
        || {
            ExponentialBackoff::from_millis(2)
                .factor(50)
                .take(5)
                .collect()
        },
    );

    // Zero delays; the operation fails 3 times, then succeeds.
    group(
        &mut c,
        "retry_fail3_zero_delay",
        3,
        BackoffConfig {
            initial_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..BackoffConfig::default()
        },
        ExponentialBuilder::default()
            .with_min_delay(Duration::ZERO)
            .with_max_delay(Duration::ZERO)
            .with_max_times(5),
        || FixedInterval::new(Duration::ZERO).take(5).collect(),
    );

    c.final_summary();
}
