//! The trait every recovery strategy implements.

use async_trait::async_trait;

use crate::context::RecoveryContext;
use crate::error::SwarmError;
use crate::result::RecoveryResult;

/// A way of recovering from a [`SwarmError`] on a target system `T`.
///
/// These are the spec's six methods, with the target made a type parameter: a strategy that acts
/// through a capability trait implements `RecoveryStrategy<T>` for every `T` with that capability.
/// The trait stays object-safe (the manager holds `Arc<dyn RecoveryStrategy<T>>`); new methods
/// will only ever be added with default bodies.
///
/// Contract:
/// - `can_handle` only asks: it never changes state (it must not, for example, consume a cooldown).
/// - `recover` reports `success: true` only for an effect that really happened.
/// - `recover` waits only through [`RecoveryContext::sleep`], so a manager can release its
///   concurrency slot while a delay runs.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use recovery_core::{RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, SwarmError};
///
/// /// Counts how often it was asked to recover; succeeds on transaction failures.
/// struct RetryTransaction;
///
/// #[async_trait]
/// impl<T: Send + Sync + ?Sized> RecoveryStrategy<T> for RetryTransaction {
///     fn strategy_id(&self) -> &str { "retry_transaction" }
///     fn description(&self) -> &str { "re-runs a failed transaction once" }
///     async fn can_handle(&self, error: &SwarmError) -> bool {
///         matches!(error, SwarmError::TransactionFailed(_))
///     }
///     async fn recover(&self, _ctx: &RecoveryContext<T>, _error: &SwarmError) -> RecoveryResult {
///         RecoveryResult::success(RecoveryAction::Custom("re-ran".into()), "transaction re-run")
///     }
///     async fn cost_estimate(&self) -> f64 { 0.15 }
///     async fn requires_external_resources(&self) -> bool { false }
/// }
///
/// # tokio_test_block_on(async {
/// let strategy: Arc<dyn RecoveryStrategy<()>> = Arc::new(RetryTransaction);
/// let error = SwarmError::TransactionFailed("deadlock".into());
/// assert!(strategy.can_handle(&error).await);
/// let result = strategy.recover(&RecoveryContext::new(Arc::new(())), &error).await;
/// assert!(result.success);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait RecoveryStrategy<T: ?Sized + Send + Sync>: Send + Sync {
    /// A short, stable id (`"exponential_backoff"`), used in history, statistics and metrics.
    fn strategy_id(&self) -> &str;

    /// One sentence for people.
    fn description(&self) -> &str;

    /// Whether this strategy applies to `error`. Must not change any state.
    async fn can_handle(&self, error: &SwarmError) -> bool;

    /// Try to recover from `error` in `context`.
    async fn recover(&self, context: &RecoveryContext<T>, error: &SwarmError) -> RecoveryResult;

    /// Relative cost in `0.0..=1.0`; cheaper strategies are tried first.
    async fn cost_estimate(&self) -> f64;

    /// Whether recovering needs something outside the process (a disk, a network, a person).
    async fn requires_external_resources(&self) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    // Fails to compile the day someone makes the trait object-unsafe.
    fn _object_safe(_: Arc<dyn RecoveryStrategy<()>>, _: Box<dyn RecoveryStrategy<str>>) {}
}
