//! The capability through which the strategy re-runs the failed operation.

use async_trait::async_trait;
use recovery_core::{AgentId, SwarmError, TaskId};

/// A system that can re-run an operation that failed: what
/// [`ExponentialBackoffStrategy`](crate::ExponentialBackoffStrategy) acts through.
///
/// # Contract
///
/// - `retry` runs the operation that the request names (the failed task, the message to the
///   failed agent) **once more**, now, and returns `Ok` only if that run really succeeded. The
///   strategy reports success on that `Ok` alone.
/// - It returns the run's error otherwise; a non-recoverable error
///   ([`SwarmError::is_recoverable`] false) stops the retries.
/// - It does not wait or retry by itself: the strategy owns the delays.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use recovery_backoff::{Retry, RetryRequest};
/// use recovery_core::{async_trait, SwarmError};
///
/// /// Sends a message that gets through on the third try.
/// struct Channel { sends: AtomicU32 }
///
/// #[async_trait]
/// impl Retry for Channel {
///     async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
///         if self.sends.fetch_add(1, Ordering::SeqCst) < 2 {
///             Err(SwarmError::CommunicationError(format!("attempt {}: reset", request.attempt)))
///         } else {
///             Ok(())
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Retry: Send + Sync {
    /// Re-run the failed operation the request names; `Ok` only if it really succeeded now.
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError>;
}

/// A shared system retries as the system does, so `&Arc<System>` can be passed where a `Retry`
/// is wanted.
#[async_trait]
impl<T: Retry + ?Sized> Retry for std::sync::Arc<T> {
    async fn retry(&self, request: RetryRequest) -> Result<(), SwarmError> {
        (**self).retry(request).await
    }
}

/// What [`Retry::retry`] is asked to re-run.
///
/// Non-exhaustive, so fields can be added; build one with [`RetryRequest::new`] and the
/// `with_*` methods.
///
/// ```
/// use recovery_backoff::RetryRequest;
/// use recovery_core::{SwarmError, TaskId};
///
/// let task = TaskId::from_u128(7);
/// let request = RetryRequest::new(SwarmError::CoordinationTimeout("30s".into()), 1).with_task(task);
/// assert_eq!((request.failed_task_id, request.attempt), (Some(task), 1));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct RetryRequest {
    /// The task whose operation failed, if any (from the recovery context).
    pub failed_task_id: Option<TaskId>,
    /// The agent that failed, if any (from the recovery context).
    pub failed_agent_id: Option<AgentId>,
    /// Which retry this is: 1 for the first retry of the failure, counting the retries already
    /// made for the same failure (the context's `retry_count`).
    pub attempt: u32,
    /// The most recent error: the original one before the first retry, then the last retry's.
    pub error: SwarmError,
}

impl RetryRequest {
    /// A request to re-run the operation that failed with `error`, as retry number `attempt`.
    pub fn new(error: SwarmError, attempt: u32) -> Self {
        Self {
            failed_task_id: None,
            failed_agent_id: None,
            attempt,
            error,
        }
    }

    /// Name the failed task.
    pub fn with_task(mut self, task: impl Into<Option<TaskId>>) -> Self {
        self.failed_task_id = task.into();
        self
    }

    /// Name the failed agent.
    pub fn with_agent(mut self, agent: impl Into<Option<AgentId>>) -> Self {
        self.failed_agent_id = agent.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fails to compile the day someone makes the trait object-unsafe.
    fn _object_safe(_: &dyn Retry) {}
}
