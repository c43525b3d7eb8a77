//! The resource monitor's hot path: a counter update and `get_usage()`, alone and with a second
//! thread hammering the same monitor, each against a bare relaxed atomic add in the same run.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::Criterion;
use recovery_degradation::{ResourceMonitor, ResourceUsage};

/// Run `measured` `iters` times while another thread runs `hammer` in a loop; returns the time
/// of the measured loop only (the hammer is running before the clock starts).
fn contended(iters: u64, hammer: impl Fn() + Sync, mut measured: impl FnMut()) -> Duration {
    let stop = AtomicBool::new(false);
    let started = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            started.store(true, Ordering::Release);
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..64 {
                    hammer();
                }
            }
        });
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        let start = Instant::now();
        for _ in 0..iters {
            measured();
        }
        let elapsed = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        elapsed
    })
}

/// `get_usage()` never waits: poll it once.
fn get_usage_now(monitor: &ResourceMonitor) -> ResourceUsage {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(monitor.get_usage()).poll(&mut cx) {
        Poll::Ready(usage) => usage,
        Poll::Pending => unreachable!("get_usage never waits"),
    }
}

fn monitor_update(c: &mut Criterion) {
    let mut g = c.benchmark_group("monitor_update");

    let bare = AtomicU64::new(0);
    g.bench_function("relaxed_atomic_add", |b| {
        b.iter(|| black_box(&bare).fetch_add(1, Ordering::Relaxed))
    });
    let monitor = ResourceMonitor::new();
    g.bench_function("counter_update", |b| {
        b.iter(|| black_box(&monitor).increment_tasks())
    });
    monitor.update_cpu_usage(0.5);
    g.bench_function("get_usage", |b| {
        b.iter(|| get_usage_now(black_box(&monitor)))
    });

    let bare = AtomicU64::new(0);
    g.bench_function("relaxed_atomic_add_contended", |b| {
        b.iter_custom(|iters| {
            contended(
                iters,
                || {
                    bare.fetch_add(1, Ordering::Relaxed);
                },
                || {
                    black_box(&bare).fetch_add(1, Ordering::Relaxed);
                },
            )
        })
    });
    let monitor = ResourceMonitor::new();
    g.bench_function("counter_update_contended", |b| {
        b.iter_custom(|iters| {
            contended(
                iters,
                || monitor.increment_tasks(),
                || black_box(&monitor).increment_tasks(),
            )
        })
    });
    g.bench_function("get_usage_contended", |b| {
        b.iter_custom(|iters| {
            contended(
                iters,
                || {
                    monitor.increment_tasks();
                    monitor.update_cpu_usage(0.5);
                },
                || {
                    black_box(get_usage_now(black_box(&monitor)));
                },
            )
        })
    });
    g.finish();
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented `pub fn`.
fn main() {
    let mut c = Criterion::default().configure_from_args();
    monitor_update(&mut c);
    c.final_summary();
}
