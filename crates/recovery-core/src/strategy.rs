//! The traits every recovery strategy implements.

use async_trait::async_trait;

use crate::context::RecoveryContext;
use crate::error::SwarmError;
use crate::result::RecoveryResult;

/// What a strategy says about itself, whatever system it recovers: its id, which errors it
/// handles, what it costs.
///
/// These are five of the spec's six methods. None of them needs the target system, so they
/// live here rather than in the generic [`RecoveryStrategy<T>`]: `strategy.can_handle(&error)`
/// works on any strategy without naming a target type.
///
/// Contract:
/// - `can_handle` only asks: it never changes state (it must not, for example, consume a
///   cooldown or a retry budget).
/// - `cost_estimate` is a relative cost in `0.0..=1.0`; the manager tries cheaper strategies
///   first.
///
/// New methods will only ever be added with default bodies, so a strategy written today keeps
/// compiling.
#[async_trait]
pub trait StrategyInfo: Send + Sync {
    /// A short, stable id (`"exponential_backoff"`), used in history, statistics and metrics.
    fn strategy_id(&self) -> &str;

    /// One sentence for people.
    fn description(&self) -> &str;

    /// Whether this strategy applies to `error`. Must not change any state.
    async fn can_handle(&self, error: &SwarmError) -> bool;

    /// Relative cost in `0.0..=1.0`; cheaper strategies are tried first.
    async fn cost_estimate(&self) -> f64;

    /// Whether recovering needs something outside the process (a disk, a network, a person).
    async fn requires_external_resources(&self) -> bool;
}

/// A way of recovering from a [`SwarmError`] on a target system `T`: the spec's `recover`.
///
/// The target is a type parameter, and only this trait has it: a strategy that acts through a
/// capability trait implements `RecoveryStrategy<T>` for every `T` with that capability
/// (`impl<T: Retry + ?Sized> RecoveryStrategy<T> for ExponentialBackoffStrategy`). Everything
/// else it says about itself is in the supertrait [`StrategyInfo`].
///
/// The trait stays object-safe on purpose (the manager holds `Arc<dyn RecoveryStrategy<T>>`,
/// and a test below fails to compile the day that breaks); new methods will only ever be added
/// with default bodies.
///
/// Contract:
/// - `recover` reports `success: true` only for an effect that really happened. A recovery that
///   found nothing to do says so with [`RecoveryResult::no_change`], which is not a success.
/// - `recover` waits only through [`RecoveryContext::sleep`], so a manager can release its
///   concurrency slot while a delay runs.
///
/// ```
/// use std::sync::Arc;
/// use async_trait::async_trait;
/// use recovery_core::{RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError};
///
/// /// Re-runs a failed transaction once.
/// struct RetryTransaction;
///
/// #[async_trait]
/// impl StrategyInfo for RetryTransaction {
///     fn strategy_id(&self) -> &str { "retry_transaction" }
///     fn description(&self) -> &str { "re-runs a failed transaction once" }
///     async fn can_handle(&self, error: &SwarmError) -> bool {
///         matches!(error, SwarmError::TransactionFailed(_))
///     }
///     async fn cost_estimate(&self) -> f64 { 0.15 }
///     async fn requires_external_resources(&self) -> bool { false }
/// }
///
/// #[async_trait]
/// impl<T: Send + Sync + ?Sized> RecoveryStrategy<T> for RetryTransaction {
///     async fn recover(&self, _ctx: &RecoveryContext<T>, _error: &SwarmError) -> RecoveryResult {
///         RecoveryResult::success(RecoveryAction::Custom("re-ran".into()), "transaction re-run")
///     }
/// }
///
/// # tokio_test_block_on(async {
/// let error = SwarmError::TransactionFailed("deadlock".into());
/// // No target type needed to ask.
/// assert!(RetryTransaction.can_handle(&error).await);
///
/// let strategy: Arc<dyn RecoveryStrategy<()>> = Arc::new(RetryTransaction);
/// assert!(strategy.can_handle(&error).await);
/// let result = strategy.recover(&RecoveryContext::new(Arc::new(())), &error).await;
/// assert!(result.success);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait RecoveryStrategy<T: ?Sized + Send + Sync>: StrategyInfo {
    /// Try to recover from `error` in `context`.
    async fn recover(&self, context: &RecoveryContext<T>, error: &SwarmError) -> RecoveryResult;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    // Fail to compile the day someone makes either trait object-unsafe.
    fn _object_safe(_: Arc<dyn RecoveryStrategy<()>>, _: Box<dyn RecoveryStrategy<str>>) {}
    fn _info_object_safe(_: Arc<dyn StrategyInfo>) {}
}
