//! Paused-time helpers: tests that wait minutes of tokio time in no time at all.

use std::future::Future;

/// A current-thread runtime whose clock starts paused: time moves only when every task is idle,
/// jumping straight to the next timer, so delays cost no wall-clock time.
///
/// # Panics
///
/// If the runtime cannot be built (the process is out of threads or file descriptors).
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime builds")
}

/// Run `future` to completion on a fresh [`paused_runtime`].
///
/// ```
/// use std::time::Duration;
/// let waited = recovery_testkit::block_on_paused(async {
///     let start = tokio::time::Instant::now();
///     tokio::time::sleep(Duration::from_secs(3600)).await;
///     start.elapsed()
/// });
/// assert_eq!(waited, Duration::from_secs(3600));
/// ```
pub fn block_on_paused<F: Future>(future: F) -> F::Output {
    paused_runtime().block_on(future)
}

/// Let every task that is ready run until it waits again, without moving the clock: yield to
/// the runtime a number of times. Use it after spawning work, or after `tokio::time::advance`,
/// before asserting on what that work did.
pub async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}
