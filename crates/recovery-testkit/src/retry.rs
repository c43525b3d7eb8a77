//! `FakeRetry`: an operation that fails as scripted, for the backoff strategy's `Retry`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use recovery_backoff::{Retry, RetryRequest};
use recovery_core::{SwarmError, async_trait};
use tokio::time::Instant;

/// One call to [`FakeRetry::retry`]: when it came (tokio time since the fake was made) and what
/// it asked for.
#[derive(Debug, Clone)]
pub struct RetryCall {
    /// Time since the fake was made, on tokio's clock (exact under a paused clock).
    pub at: Duration,
    /// The request.
    pub request: RetryRequest,
}

/// A [`Retry`] target whose retries return what it was told to, in order, then a default; it
/// records every call.
///
/// ```
/// use recovery_backoff::{Retry, RetryRequest};
/// use recovery_core::SwarmError;
/// use recovery_testkit::FakeRetry;
///
/// # recovery_testkit::block_on_paused(async {
/// let down = SwarmError::CommunicationError("down".into());
/// let fake = FakeRetry::failing(1, down.clone());
/// assert_eq!(fake.retry(RetryRequest::new(down.clone(), 1)).await, Err(down.clone()));
/// assert_eq!(fake.retry(RetryRequest::new(down, 2)).await, Ok(()));
/// assert_eq!(fake.call_count(), 2);
/// # });
/// ```
#[derive(Debug)]
pub struct FakeRetry {
    script: Mutex<VecDeque<Result<(), SwarmError>>>,
    then: Mutex<Result<(), SwarmError>>,
    calls: Mutex<Vec<RetryCall>>,
    made: Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FakeRetry {
    /// Every retry succeeds.
    pub fn succeeding() -> Self {
        Self::scripted([], Ok(()))
    }

    /// The first `times` retries fail with `error`; the rest succeed.
    pub fn failing(times: usize, error: SwarmError) -> Self {
        Self::scripted(std::iter::repeat_n(Err(error), times), Ok(()))
    }

    /// Every retry fails with `error`.
    pub fn always_failing(error: SwarmError) -> Self {
        Self::scripted([], Err(error))
    }

    /// The retries return `script` in order, then `then` for ever.
    pub fn scripted(
        script: impl IntoIterator<Item = Result<(), SwarmError>>,
        then: Result<(), SwarmError>,
    ) -> Self {
        Self {
            script: Mutex::new(script.into_iter().collect()),
            then: Mutex::new(then),
            calls: Mutex::new(Vec::new()),
            made: Instant::now(),
        }
    }

    /// From now on, retries return `result` (once the script is used up).
    pub fn set_then(&self, result: Result<(), SwarmError>) {
        *lock(&self.then) = result;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RetryCall> {
        lock(&self.calls).clone()
    }

    /// How many calls so far.
    pub fn call_count(&self) -> usize {
        lock(&self.calls).len()
    }

    /// When each call came, on tokio's clock since the fake was made.
    pub fn call_times(&self) -> Vec<Duration> {
        lock(&self.calls).iter().map(|c| c.at).collect()
    }
}

#[async_trait]
impl Retry for FakeRetry {
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
        lock(&self.calls).push(RetryCall {
            at: self.made.elapsed(),
            request,
        });
        let next = lock(&self.script).pop_front();
        next.unwrap_or_else(|| lock(&self.then).clone())
    }
}
