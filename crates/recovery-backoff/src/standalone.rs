//! The standalone retry API: `retry(&config, || async { .. }).await`, for any async closure,
//! without a manager.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

use crate::budget::RetryBudget;
use crate::config::BackoffConfig;
use crate::jitter::Jitter;
use crate::schedule::Backoff;

/// Run `op`, and run it again after a backoff delay while it fails, at most
/// `config.max_retries` times; resolves to its first `Ok`, or to its last error.
///
/// The returned [`Retrying`] is a future: await it directly, or first set what to retry
/// ([`when`](Retrying::when), every error by default), a hook called before each retry
/// ([`notify`](Retrying::notify)), the [`jitter`](Retrying::jitter) (the config's
/// [`default_jitter`](BackoffConfig::default_jitter) by default) and a shared
/// [`budget`](Retrying::budget). The error type is yours: it comes back unchanged.
///
/// Costs: when `op` succeeds at once nothing is allocated, no clock is read and no random number
/// is drawn; a budget, if set, gets its one deposit (which reads tokio's clock). The first
/// failure allocates the schedule, and the first real wait its timer, which later waits reuse.
/// A zero delay arms no timer: the next attempt starts at once (on tokio even
/// `sleep(Duration::ZERO)` waits for the next 1 ms tick). The future is small (about 100 bytes
/// plus the closure and its future) and its happy path is inlined into the caller.
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
) -> Retrying<'static, F, Fut, RetryEveryError, NotifyNobody>
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
        state: State::Start,
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
    pub struct Retrying<'b, F, Fut, W, N> {
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
        retries: Option<Box<Retries>>,
        op: F,
        when: W,
        notify: N,
        #[pin]
        state: State<Fut>,
    }
}

/// What a retrying operation needs once it has failed: its schedule, and its timer (made on the
/// first real wait and reset for the next ones).
struct Retries {
    schedule: Backoff,
    sleep: Option<Pin<Box<Sleep>>>,
}

pin_project! {
    #[project = StateProj]
    enum State<Fut> {
        Start,
        Idle,
        Running { #[pin] fut: Fut },
        Sleeping,
    }
}

impl<'b, F, Fut, T, E, W, N> Retrying<'b, F, Fut, W, N>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    /// Retry only the errors for which `when` returns true; any other error is returned at once.
    /// For [`SwarmError`](recovery_core::SwarmError), `.when(SwarmError::is_recoverable)`.
    pub fn when<W2>(self, when: W2) -> Retrying<'b, F, Fut, W2, N>
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
            retries: self.retries,
            op: self.op,
            when,
            notify: self.notify,
            state: self.state,
        }
    }

    /// Call `notify` with the error and the delay before each retry (for logging or counting).
    pub fn notify<N2>(self, notify: N2) -> Retrying<'b, F, Fut, W, N2>
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
            retries: self.retries,
            op: self.op,
            when: self.when,
            notify,
            state: self.state,
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
    pub fn budget<'c>(self, budget: impl Into<BudgetHandle<'c>>) -> Retrying<'c, F, Fut, W, N> {
        Retrying {
            initial: self.initial,
            max: self.max,
            multiplier: self.multiplier,
            max_retries: self.max_retries,
            jitter: self.jitter,
            budget: budget.into(),
            retries: self.retries,
            op: self.op,
            when: self.when,
            notify: self.notify,
            state: self.state,
        }
    }
}

impl<F, Fut, T, E, W, N> Future for Retrying<'_, F, Fut, W, N>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    W: RetryWhen<E>,
    N: NotifyRetry<E>,
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

impl<F, Fut, T, E, W, N> Retrying<'_, F, Fut, W, N>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    W: RetryWhen<E>,
    N: NotifyRetry<E>,
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
                let Some(delay) = retries.schedule.next() else {
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
                    this.state.set(State::Idle);
                } else {
                    match retries.sleep.as_mut() {
                        Some(sleep) => sleep.as_mut().reset(deadline(delay)),
                        None => retries.sleep = Some(Box::pin(tokio::time::sleep(delay))),
                    }
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
                StateProj::Running { fut } => match ready!(fut.poll(cx)) {
                    Ok(value) => return Poll::Ready(Ok(value)),
                    Err(e) => error = Some(e),
                },
                StateProj::Sleeping => {
                    if let Some(sleep) = this.retries.as_mut().and_then(|r| r.sleep.as_mut()) {
                        ready!(sleep.as_mut().poll(cx));
                    }
                    this.state.set(State::Idle);
                }
            }
        }
    }
}

/// `delay` from now, or about 30 years from now if that overflows (as `tokio::time::sleep` does).
fn deadline(delay: Duration) -> tokio::time::Instant {
    let now = tokio::time::Instant::now();
    now.checked_add(delay)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365 * 30))
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
