//! The standalone retry API: `retry(&config, || async { .. }).await`, for any async closure,
//! without a manager.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::budget::RetryBudget;
use crate::config::BackoffConfig;
use crate::jitter::Jitter;
use crate::schedule::Backoff;

/// Run `op`, and run it again after a backoff delay while it fails, at most
/// `config.max_retries` times; resolves to its first `Ok`, or to its last error.
///
/// The returned [`Retrying`] is a future: await it directly, or first set what to retry
/// ([`when`](Retrying::when), every error by default), a hook called before each retry
/// ([`notify`](Retrying::notify)), a delay taken from the error
/// ([`adjust`](Retrying::adjust), for a Retry-After), the [`jitter`](Retrying::jitter) (the
/// config's [`default_jitter`](BackoffConfig::default_jitter) by default), a shared
/// [`budget`](Retrying::budget), and how to wait ([`sleep`](Retrying::sleep), tokio's timer by
/// default). The error type is yours: it comes back unchanged.
///
/// Costs: when `op` succeeds at once nothing is allocated, no clock is read and no random number
/// is drawn; a budget, if set, gets its one deposit (which reads tokio's clock). The first
/// failure allocates the schedule, and each real wait its timer. A zero delay arms no timer (on
/// tokio even `sleep(Duration::ZERO)` waits for the next 1 ms tick): the future yields to the
/// runtime once and runs the operation again, so an operation that fails synchronously with no
/// delay cannot keep its thread from other tasks. The future is small (about 100 bytes plus the
/// closure and its future) and its happy path is inlined into the caller.
///
/// The config is copied, not validated; with an invalid one the delays still stay within
/// `[0, max_delay]`. The future is `'static` (and can be spawned) when `op` is and the budget
/// is shared by `Arc`.
///
/// ```
/// use std::time::Duration;
/// use recovery_backoff::{retry, BackoffConfig, Jitter};
/// use recovery_core::SwarmError;
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let config = BackoffConfig { initial_delay: Duration::from_millis(10), ..BackoffConfig::default() };
/// let mut calls = 0;
/// let mut waited = Vec::new();
/// let answer = retry(&config, || {
///     calls += 1;
///     let n = calls;
///     async move {
///         if n < 3 { Err(SwarmError::CommunicationError("reset".into())) } else { Ok(42) }
///     }
/// })
/// .when(SwarmError::is_recoverable)
/// .notify(|_e, delay| waited.push(delay))
/// .jitter(Jitter::None)
/// .await;
/// assert_eq!(answer, Ok(42));
/// assert_eq!(waited, [Duration::from_millis(10), Duration::from_millis(20)]);
/// # }
/// ```
pub fn retry<F, Fut, T, E>(
    config: &BackoffConfig,
    op: F,
) -> Retrying<'static, F, Fut, RetryEveryError, NotifyNobody, KeepDelay, TokioSleeper>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Retrying {
        initial: config.initial_delay,
        max: config.max_delay,
        multiplier: config.multiplier,
        max_retries: config.max_retries,
        // Proportional(0) is no jitter; no branch on the happy path.
        jitter: Jitter::Proportional(config.jitter_factor),
        budget: BudgetHandle::None,
        retries: None,
        op,
        when: RetryEveryError,
        notify: NotifyNobody,
        adjust: KeepDelay,
        sleeper: TokioSleeper,
        state: State::Start,
    }
}

/// How a [`Retrying`] waits out a delay: any `Fn(Duration) -> impl Future<Output = ()>`, or
/// [`TokioSleeper`] (the default), as backon's `Sleeper`.
///
/// ```
/// use std::time::Duration;
/// use recovery_backoff::{retry, BackoffConfig};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // A test that must not wait: every delay returns at once.
/// let mut runs = 0;
/// let result = retry(&BackoffConfig::default(), || { runs += 1; async { Err::<(), _>("down") } })
///     .sleep(|_delay: Duration| std::future::ready(()))
///     .await;
/// assert_eq!((result, runs), (Err("down"), 6));
/// # }
/// ```
pub trait RetrySleeper {
    /// The future of one wait.
    type Sleep: Future<Output = ()>;

    /// Wait for `delay` (never called with a zero delay).
    fn sleep(&self, delay: Duration) -> Self::Sleep;
}

/// The default of [`Retrying::sleep`]: `tokio::time::sleep`, so `tokio::time::pause()` makes
/// every delay free in tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

impl RetrySleeper for TokioSleeper {
    type Sleep = tokio::time::Sleep;

    fn sleep(&self, delay: Duration) -> Self::Sleep {
        tokio::time::sleep(delay)
    }
}

impl<S, Fut> RetrySleeper for S
where
    S: Fn(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    type Sleep = Fut;

    fn sleep(&self, delay: Duration) -> Fut {
        self(delay)
    }
}

/// What a [`Retrying`] asks before each retry, with the error and the delay the schedule
/// planned (`None` when it has no retry left): any `FnMut(&E, Option<Duration>) ->
/// Option<Duration>`, or [`KeepDelay`] (the default), as backon's `adjust`. `Some(d)` retries
/// after `d`; `None` stops with the error.
pub trait AdjustDelay<E> {
    /// The delay to wait before retrying after `error`, or `None` to stop.
    fn adjust_delay(&mut self, error: &E, planned: Option<Duration>) -> Option<Duration>;
}

impl<E, A: FnMut(&E, Option<Duration>) -> Option<Duration>> AdjustDelay<E> for A {
    fn adjust_delay(&mut self, error: &E, planned: Option<Duration>) -> Option<Duration> {
        self(error, planned)
    }
}

/// The default of [`Retrying::adjust`]: the schedule's delay, unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeepDelay;

impl<E> AdjustDelay<E> for KeepDelay {
    fn adjust_delay(&mut self, _: &E, planned: Option<Duration>) -> Option<Duration> {
        planned
    }
}

/// Which errors a [`Retrying`] retries: any `FnMut(&E) -> bool`, or [`RetryEveryError`] (the
/// default).
pub trait RetryWhen<E> {
    /// Whether `error` is worth a retry.
    fn retry_when(&mut self, error: &E) -> bool;
}

impl<E, W: FnMut(&E) -> bool> RetryWhen<E> for W {
    fn retry_when(&mut self, error: &E) -> bool {
        self(error)
    }
}

/// The default of [`Retrying::when`]: every error is retried.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryEveryError;

impl<E> RetryWhen<E> for RetryEveryError {
    fn retry_when(&mut self, _: &E) -> bool {
        true
    }
}

/// What a [`Retrying`] calls before each retry: any `FnMut(&E, Duration)`, or [`NotifyNobody`]
/// (the default).
pub trait NotifyRetry<E> {
    /// A retry of `error` will be made after `delay`.
    fn notify_retry(&mut self, error: &E, delay: Duration);
}

impl<E, N: FnMut(&E, Duration)> NotifyRetry<E> for N {
    fn notify_retry(&mut self, error: &E, delay: Duration) {
        self(error, delay)
    }
}

/// The default of [`Retrying::notify`]: nobody is told.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotifyNobody;

impl<E> NotifyRetry<E> for NotifyNobody {
    fn notify_retry(&mut self, _: &E, _: Duration) {}
}

/// The budget a [`Retrying`] draws from: none, a borrowed one, or a shared one.
///
/// Made by `From` from `&RetryBudget`, `&Arc<RetryBudget>` or `Arc<RetryBudget>`, so
/// [`Retrying::budget`] takes any of them.
#[derive(Debug, Clone, Default)]
pub enum BudgetHandle<'b> {
    /// No budget: only `max_retries` limits the retries.
    #[default]
    None,
    /// A borrowed budget.
    Borrowed(&'b RetryBudget),
    /// A shared budget.
    Shared(Arc<RetryBudget>),
}

impl BudgetHandle<'_> {
    fn get(&self) -> Option<&RetryBudget> {
        match self {
            BudgetHandle::None => None,
            BudgetHandle::Borrowed(b) => Some(b),
            BudgetHandle::Shared(b) => Some(b),
        }
    }
}

impl<'b> From<&'b RetryBudget> for BudgetHandle<'b> {
    fn from(b: &'b RetryBudget) -> Self {
        BudgetHandle::Borrowed(b)
    }
}

impl<'b> From<&'b Arc<RetryBudget>> for BudgetHandle<'b> {
    fn from(b: &'b Arc<RetryBudget>) -> Self {
        BudgetHandle::Borrowed(b)
    }
}

impl From<Arc<RetryBudget>> for BudgetHandle<'static> {
    fn from(b: Arc<RetryBudget>) -> Self {
        BudgetHandle::Shared(b)
    }
}

pin_project! {
    /// A retrying operation: a builder for its options, and the future that runs it.
    ///
    /// Made by [`retry`]; see there.
    #[must_use = "a retry does nothing until it is awaited"]
    pub struct Retrying<'b, F, Fut, W, N, A, S: RetrySleeper> {
        // The config, unpacked (the jitter resolved), so the future stays small: a future of
        // more than about 128 bytes is moved with a call to memmove, which would cost more
        // than the rest of the happy path.
        initial: Duration,
        max: Duration,
        multiplier: f64,
        max_retries: u32,
        jitter: Jitter,
        budget: BudgetHandle<'b>,
        // Made on the first failure; kept out of `State` and boxed so that the happy path
        // neither carries nor drops it.
        retries: Option<Box<Retries<S::Sleep>>>,
        op: F,
        when: W,
        notify: N,
        adjust: A,
        sleeper: S,
        #[pin]
        state: State<Fut>,
    }
}

/// What a retrying operation needs once it has failed: its schedule, and the wait in progress.
struct Retries<Z> {
    schedule: Backoff,
    sleep: Option<Pin<Box<Z>>>,
}

pin_project! {
    #[project = StateProj]
    enum State<Fut> {
        Start,
        Idle,
        // A zero-delay retry is due; yield to the runtime once before running it.
        Yielding,
        Running { #[pin] fut: Fut },
        Sleeping,
    }
}

impl<'b, F, Fut, T, E, W, N, A, S> Retrying<'b, F, Fut, W, N, A, S>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    S: RetrySleeper,
{
    /// Retry only the errors for which `when` returns true; any other error is returned at once.
    /// For [`SwarmError`](recovery_core::SwarmError), `.when(SwarmError::is_recoverable)`.
    pub fn when<W2>(self, when: W2) -> Retrying<'b, F, Fut, W2, N, A, S>
    where
        W2: FnMut(&E) -> bool,
    {
        Retrying {
            initial: self.initial,
            max: self.max,
            multiplier: self.multiplier,
            max_retries: self.max_retries,
            jitter: self.jitter,
            budget: self.budget,
            retries: None,
            op: self.op,
            when,
            notify: self.notify,
            adjust: self.adjust,
            sleeper: self.sleeper,
            state: State::Start,
        }
    }

    /// Call `notify` with the error and the delay before each retry (for logging or counting).
    pub fn notify<N2>(self, notify: N2) -> Retrying<'b, F, Fut, W, N2, A, S>
    where
        N2: FnMut(&E, Duration),
    {
        Retrying {
            initial: self.initial,
            max: self.max,
            multiplier: self.multiplier,
            max_retries: self.max_retries,
            jitter: self.jitter,
            budget: self.budget,
            retries: None,
            op: self.op,
            when: self.when,
            notify,
            adjust: self.adjust,
            sleeper: self.sleeper,
            state: State::Start,
        }
    }

    /// Decide the delay before each retry from the error: `adjust(error, planned)` gets the
    /// schedule's delay (`None` when no retry is left) and returns the delay to wait, or `None`
    /// to stop and return the error. For an error that says when to come back (a Retry-After),
    /// return that, as backon's `adjust` does. The budget is still asked before each retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use recovery_backoff::{retry, BackoffConfig, Jitter};
    /// use recovery_core::SwarmError;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let start = tokio::time::Instant::now();
    /// let mut first = true;
    /// let result = retry(&BackoffConfig::default(), || {
    ///     let fail = std::mem::take(&mut first);
    ///     async move {
    ///         if fail {
    ///             Err(SwarmError::Overloaded { reason: "busy".into(), retry_after: Duration::from_secs(30) })
    ///         } else {
    ///             Ok("done")
    ///         }
    ///     }
    /// })
    /// .jitter(Jitter::None)
    /// .adjust(|e: &SwarmError, planned| match e {
    ///     SwarmError::Overloaded { retry_after, .. } => planned.map(|d| d.max(*retry_after)),
    ///     _ => planned,
    /// })
    /// .await;
    /// assert_eq!(result, Ok("done"));
    /// assert_eq!(start.elapsed(), Duration::from_secs(30));
    /// # }
    /// ```
    pub fn adjust<A2>(self, adjust: A2) -> Retrying<'b, F, Fut, W, N, A2, S>
    where
        A2: FnMut(&E, Option<Duration>) -> Option<Duration>,
    {
        Retrying {
            initial: self.initial,
            max: self.max,
            multiplier: self.multiplier,
            max_retries: self.max_retries,
            jitter: self.jitter,
            budget: self.budget,
            retries: None,
            op: self.op,
            when: self.when,
            notify: self.notify,
            adjust,
            sleeper: self.sleeper,
            state: State::Start,
        }
    }

    /// Wait out delays with `sleeper` instead of `tokio::time::sleep` (see [`RetrySleeper`]).
    pub fn sleep<S2>(self, sleeper: S2) -> Retrying<'b, F, Fut, W, N, A, S2>
    where
        S2: RetrySleeper,
    {
        Retrying {
            initial: self.initial,
            max: self.max,
            multiplier: self.multiplier,
            max_retries: self.max_retries,
            jitter: self.jitter,
            budget: self.budget,
            retries: None,
            op: self.op,
            when: self.when,
            notify: self.notify,
            adjust: self.adjust,
            sleeper,
            state: State::Start,
        }
    }

    /// Use `jitter` instead of the config's default jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Draw retries from `budget` (shared with other callers): one deposit when the operation
    /// first runs, one withdrawal before each retry; a refused withdrawal ends the retries with
    /// the last error.
    pub fn budget<'c>(
        self,
        budget: impl Into<BudgetHandle<'c>>,
    ) -> Retrying<'c, F, Fut, W, N, A, S> {
        Retrying {
            initial: self.initial,
            max: self.max,
            multiplier: self.multiplier,
            max_retries: self.max_retries,
            jitter: self.jitter,
            budget: budget.into(),
            retries: None,
            op: self.op,
            when: self.when,
            notify: self.notify,
            adjust: self.adjust,
            sleeper: self.sleeper,
            state: State::Start,
        }
    }
}

impl<F, Fut, T, E, W, N, A, S> Future for Retrying<'_, F, Fut, W, N, A, S>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    W: RetryWhen<E>,
    N: NotifyRetry<E>,
    A: AdjustDelay<E>,
    S: RetrySleeper,
{
    type Output = Result<T, E>;

    /// The happy path only (start the operation, poll it), small enough to be inlined into the
    /// caller; everything after a failure is in `poll_retries`.
    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let error = {
            let mut this = self.as_mut().project();
            if let StateProj::Start = this.state.as_mut().project() {
                if let Some(budget) = this.budget.get() {
                    budget.deposit();
                }
                let fut = (this.op)();
                this.state.set(State::Running { fut });
            }
            match this.state.as_mut().project() {
                StateProj::Running { fut } => match ready!(fut.poll(cx)) {
                    Ok(value) => return Poll::Ready(Ok(value)),
                    Err(error) => Some(error),
                },
                _ => None,
            }
        };
        self.poll_retries(cx, error)
    }
}

impl<F, Fut, T, E, W, N, A, S> Retrying<'_, F, Fut, W, N, A, S>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    W: RetryWhen<E>,
    N: NotifyRetry<E>,
    A: AdjustDelay<E>,
    S: RetrySleeper,
{
    /// Decide on `error` (if the last run just failed with it), wait, run again, until a run
    /// succeeds or no retry is left.
    #[inline(never)]
    fn poll_retries(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut error: Option<E>,
    ) -> Poll<Result<T, E>> {
        let mut this = self.project();
        loop {
            if let Some(error) = error.take() {
                if !this.when.retry_when(&error) {
                    return Poll::Ready(Err(error));
                }
                let retries = this.retries.get_or_insert_with(|| {
                    Box::new(Retries {
                        schedule: Backoff::from_parts(
                            *this.initial,
                            *this.max,
                            *this.multiplier,
                            *this.max_retries,
                            *this.jitter,
                        ),
                        sleep: None,
                    })
                });
                let planned = retries.schedule.next();
                let Some(delay) = this.adjust.adjust_delay(&error, planned) else {
                    return Poll::Ready(Err(error));
                };
                if let Some(budget) = this.budget.get() {
                    if !budget.withdraw() {
                        return Poll::Ready(Err(error));
                    }
                }
                this.notify.notify_retry(&error, delay);
                drop(error);
                if delay.is_zero() {
                    this.state.set(State::Yielding);
                } else {
                    retries.sleep = Some(Box::pin(this.sleeper.sleep(delay)));
                    this.state.set(State::Sleeping);
                }
            }
            match this.state.as_mut().project() {
                StateProj::Start => {
                    // Only `poll` starts; kept correct here all the same.
                    if let Some(budget) = this.budget.get() {
                        budget.deposit();
                    }
                    let fut = (this.op)();
                    this.state.set(State::Running { fut });
                }
                StateProj::Idle => {
                    let fut = (this.op)();
                    this.state.set(State::Running { fut });
                }
                StateProj::Yielding => {
                    // What `tokio::task::yield_now` does: ask to be polled again, and let the
                    // runtime run other tasks first.
                    this.state.set(State::Idle);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                StateProj::Running { fut } => match ready!(fut.poll(cx)) {
                    Ok(value) => return Poll::Ready(Ok(value)),
                    Err(e) => error = Some(e),
                },
                StateProj::Sleeping => {
                    if let Some(retries) = this.retries.as_mut() {
                        if let Some(sleep) = retries.sleep.as_mut() {
                            ready!(sleep.as_mut().poll(cx));
                        }
                        retries.sleep = None;
                    }
                    this.state.set(State::Idle);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_future_stays_small() {
        // Above about 128 bytes a move becomes a call to memmove, which costs more than the
        // rest of the happy path together.
        let config = BackoffConfig::default();
        let plain = retry(&config, || async { Ok::<u32, u32>(1) });
        assert!(size_of_val(&plain) <= 112, "{}", size_of_val(&plain));
        let full = retry(&config, || async { Ok::<u32, u32>(1) })
            .when(|_| true)
            .notify(|_, _| ())
            .budget(Arc::new(RetryBudget::default()));
        assert!(size_of_val(&full) <= 112, "{}", size_of_val(&full));
    }
}
