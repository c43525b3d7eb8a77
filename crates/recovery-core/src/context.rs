//! What a strategy is told about the failure it is asked to recover.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::id::{AgentId, TaskId};

/// How a strategy waits out a delay.
///
/// Strategies never call `tokio::time::sleep` themselves; they call [`RecoveryContext::sleep`],
/// which uses the context's `Sleeper` if one is set. A manager sets one that gives up its
/// concurrency slot while the delay runs, so a recovery that is only waiting does not keep others
/// from starting. Tests can rely on `tokio::time::pause()` instead.
///
/// ```
/// use std::time::Duration;
/// use recovery_core::Sleeper;
///
/// /// A sleeper that returns at once (for a dry run).
/// struct NoWait;
///
/// #[async_trait::async_trait]
/// impl Sleeper for NoWait {
///     async fn sleep(&self, _delay: Duration) {}
/// }
/// ```
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync {
    /// Wait for `delay`. Called only with a non-zero delay.
    async fn sleep(&self, delay: Duration);
}

/// The context a strategy recovers in: the target system, what failed, and how often it already
/// failed.
///
/// `T` is the system being recovered (for example a swarm coordinator). A strategy acts on it only
/// through the small capability trait its own crate defines (`Retry`, `Checkpointable`,
/// `Degradable`, `Healable`), so recovery-core knows nothing about coordinators.
///
/// ```
/// use std::sync::Arc;
/// use recovery_core::{RecoveryContext, TaskId};
///
/// struct MySystem;
///
/// let ctx = RecoveryContext::new(Arc::new(MySystem))
///     .with_task(TaskId::from_u128(1))
///     .with_retry_count(2)
///     .with_metadata("region", "eu-1");
/// assert_eq!(ctx.retry_count, 2);
/// assert_eq!(ctx.metadata["region"], "eu-1");
/// ```
pub struct RecoveryContext<T: ?Sized> {
    /// The system being recovered.
    pub target: Arc<T>,
    /// The task whose failure is being recovered, if any.
    pub failed_task_id: Option<TaskId>,
    /// The agent that failed, if any.
    pub failed_agent_id: Option<AgentId>,
    /// How many times the failed operation was already re-run for this failure of this task,
    /// before this recovery (0 on the first recovery of a failure). A retry strategy with
    /// `max_retries = 5` makes at most `5 - retry_count` more.
    pub retry_count: u32,
    /// When the error happened.
    pub error_timestamp: SystemTime,
    /// Free-form notes for strategies and history.
    pub metadata: HashMap<String, String>,
    sleeper: Option<Arc<dyn Sleeper>>,
}

impl<T: ?Sized> RecoveryContext<T> {
    /// A context for `target` with no task, no agent, `retry_count` 0 and the current time.
    pub fn new(target: Arc<T>) -> Self {
        Self::at(target, SystemTime::now())
    }

    /// A context for `target` whose error happened at `error_timestamp` (no clock read).
    pub fn at(target: Arc<T>, error_timestamp: SystemTime) -> Self {
        Self {
            target,
            failed_task_id: None,
            failed_agent_id: None,
            retry_count: 0,
            error_timestamp,
            metadata: HashMap::new(),
            sleeper: None,
        }
    }

    /// Set the failed task.
    pub fn with_task(mut self, task: impl Into<Option<TaskId>>) -> Self {
        self.failed_task_id = task.into();
        self
    }

    /// Set the failed agent.
    pub fn with_agent(mut self, agent: impl Into<Option<AgentId>>) -> Self {
        self.failed_agent_id = agent.into();
        self
    }

    /// Set how many retries were already made for this failure.
    pub fn with_retry_count(mut self, retry_count: u32) -> Self {
        self.retry_count = retry_count;
        self
    }

    /// Add a metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Use `sleeper` for [`RecoveryContext::sleep`].
    pub fn with_sleeper(mut self, sleeper: Arc<dyn Sleeper>) -> Self {
        self.sleeper = Some(sleeper);
        self
    }

    /// Wait for `delay`, through the context's [`Sleeper`] if one is set, else with
    /// `tokio::time::sleep`.
    ///
    /// A zero delay returns at once and arms no timer: on tokio even `sleep(Duration::ZERO)`
    /// waits for the next 1 ms timer tick.
    pub async fn sleep(&self, delay: Duration) {
        if delay.is_zero() {
            return;
        }
        match &self.sleeper {
            Some(sleeper) => sleeper.sleep(delay).await,
            None => tokio::time::sleep(delay).await,
        }
    }
}

impl<T: ?Sized> Clone for RecoveryContext<T> {
    fn clone(&self) -> Self {
        Self {
            target: Arc::clone(&self.target),
            failed_task_id: self.failed_task_id,
            failed_agent_id: self.failed_agent_id,
            retry_count: self.retry_count,
            error_timestamp: self.error_timestamp,
            metadata: self.metadata.clone(),
            sleeper: self.sleeper.clone(),
        }
    }
}

impl<T: ?Sized> fmt::Debug for RecoveryContext<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecoveryContext")
            .field("failed_task_id", &self.failed_task_id)
            .field("failed_agent_id", &self.failed_agent_id)
            .field("retry_count", &self.retry_count)
            .field("error_timestamp", &self.error_timestamp)
            .field("metadata", &self.metadata)
            .field("sleeper", &self.sleeper.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    struct Recording(AtomicU64);

    #[async_trait::async_trait]
    impl Sleeper for Recording {
        async fn sleep(&self, delay: Duration) {
            self.0.fetch_add(delay.as_millis() as u64, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn sleep_uses_the_sleeper_and_skips_zero() {
        let rec = Arc::new(Recording(AtomicU64::new(0)));
        let ctx = RecoveryContext::new(Arc::new(())).with_sleeper(rec.clone());
        ctx.sleep(Duration::ZERO).await;
        ctx.sleep(Duration::from_millis(40)).await;
        ctx.sleep(Duration::from_millis(2)).await;
        assert_eq!(rec.0.load(Ordering::SeqCst), 42);
    }

    #[tokio::test(start_paused = true)]
    async fn default_sleep_is_tokio_time() {
        let ctx = RecoveryContext::new(Arc::new(()));
        let start = tokio::time::Instant::now();
        ctx.sleep(Duration::from_millis(250)).await;
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }
}
