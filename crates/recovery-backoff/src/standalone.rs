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
/// is drawn (a budget, if set, gets its one deposit). A zero delay arms no timer: the next
/// attempt starts at once (on tokio even `sleep(Duration::ZERO)` waits for the next 1 ms tick).
/// The config is copied, not validated; with an invalid one the delays still stay within
/// `[0, max_delay]`.
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
) -> Retrying<'static, F, Fut, RetryEveryError<E>, NotifyNobody<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    Retrying {
        config: *config,
        jitter: None,
        budget: BudgetHandle::None,
        op,
        when: retry_every_error::<E>,
        notify: notify_nobody::<E>,
        schedule: None,
        started: false,
        state: State::Idle,
    }
}

/// The default [`Retrying::when`]: every error is retried.
pub type RetryEveryError<E> = fn(&E) -> bool;

/// The default [`Retrying::notify`]: nobody is told.
pub type NotifyNobody<E> = fn(&E, Duration);

fn retry_every_error<E>(_: &E) -> bool {
    true
}

fn notify_nobody<E>(_: &E, _: Duration) {}

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
        config: BackoffConfig,
        jitter: Option<Jitter>,
        budget: BudgetHandle<'b>,
        op: F,
        when: W,
        notify: N,
        schedule: Option<Backoff>,
        started: bool,
        #[pin]
        state: State<Fut>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<Fut> {
        Idle,
        Running { #[pin] fut: Fut },
        Sleeping { #[pin] sleep: Sleep },
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
            config: self.config,
            jitter: self.jitter,
            budget: self.budget,
            op: self.op,
            when,
            notify: self.notify,
            schedule: self.schedule,
            started: self.started,
            state: self.state,
        }
    }

    /// Call `notify` with the error and the delay before each retry (for logging or counting).
    pub fn notify<N2>(self, notify: N2) -> Retrying<'b, F, Fut, W, N2>
    where
        N2: FnMut(&E, Duration),
    {
        Retrying {
            config: self.config,
            jitter: self.jitter,
            budget: self.budget,
            op: self.op,
            when: self.when,
            notify,
            schedule: self.schedule,
            started: self.started,
            state: self.state,
        }
    }

    /// Use `jitter` instead of the config's default jitter.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = Some(jitter);
        self
    }

    /// Draw retries from `budget` (shared with other callers): one deposit when the operation
    /// first runs, one withdrawal before each retry; a refused withdrawal ends the retries with
    /// the last error.
    pub fn budget<'c>(self, budget: impl Into<BudgetHandle<'c>>) -> Retrying<'c, F, Fut, W, N> {
        Retrying {
            config: self.config,
            jitter: self.jitter,
            budget: budget.into(),
            op: self.op,
            when: self.when,
            notify: self.notify,
            schedule: self.schedule,
            started: self.started,
            state: self.state,
        }
    }
}

impl<F, Fut, T, E, W, N> Future for Retrying<'_, F, Fut, W, N>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    W: FnMut(&E) -> bool,
    N: FnMut(&E, Duration),
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Idle => {
                    if !*this.started {
                        *this.started = true;
                        if let Some(budget) = this.budget.get() {
                            budget.deposit();
                        }
                    }
                    let fut = (this.op)();
                    this.state.set(State::Running { fut });
                }
                StateProj::Running { fut } => {
                    let error = match ready!(fut.poll(cx)) {
                        Ok(value) => return Poll::Ready(Ok(value)),
                        Err(error) => error,
                    };
                    if !(this.when)(&error) {
                        return Poll::Ready(Err(error));
                    }
                    let config = *this.config;
                    let jitter = this.jitter.unwrap_or_else(|| config.default_jitter());
                    let schedule = this
                        .schedule
                        .get_or_insert_with(|| Backoff::new(&config, jitter));
                    let Some(delay) = schedule.next() else {
                        return Poll::Ready(Err(error));
                    };
                    if let Some(budget) = this.budget.get() {
                        if !budget.withdraw() {
                            return Poll::Ready(Err(error));
                        }
                    }
                    (this.notify)(&error, delay);
                    drop(error);
                    if delay.is_zero() {
                        this.state.set(State::Idle);
                    } else {
                        this.state.set(State::Sleeping {
                            sleep: tokio::time::sleep(delay),
                        });
                    }
                }
                StateProj::Sleeping { sleep } => {
                    ready!(sleep.poll(cx));
                    this.state.set(State::Idle);
                }
            }
        }
    }
}
