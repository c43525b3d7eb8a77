//! The capability through which the strategy degrades the system it protects.

use async_trait::async_trait;
use recovery_core::SwarmError;

use crate::level::DegradationLevel;

/// A system that can run at a [`DegradationLevel`]: what the degradation strategy acts through.
///
/// # Contract
///
/// An implementation (a coordinator) promises, for the level it runs at:
///
/// - **Admission.** New work whose priority the level does not admit
///   ([`DegradationLevel::admits`]) is refused at submission with [`SwarmError::Overloaded`],
///   built by [`DegradationLevel::admit`] (it says which level and when to try again), or
///   deferred; it is never accepted and then dropped.
/// - **Accepted work is never dropped.** Raising the level does not cancel or lose work that
///   was already accepted, of any priority: it keeps running (or waiting for a slot) and
///   completes.
/// - **Limits shrink.** At most [`DegradationLevel::scaled_limit`] of the normal concurrency
///   limit runs at once; work beyond that waits for a slot.
/// - **Non-essential features pause** ([`DegradationLevel::paused_features`]: speculative work
///   and background maintenance from Reduced, detailed telemetry from Minimal, new connections
///   at Critical) and resume when the level falls again. `apply_level` is the target's one
///   chance to do that: it gets the level, and the level says which features to pause.
/// - `apply_level` returns `Ok` only once the system really runs at the level, so that
///   [`current_level`](Self::current_level) reports it afterwards; the strategy checks this and
///   reports failure otherwise.
///
/// ```
/// use std::sync::atomic::{AtomicU8, Ordering};
/// use recovery_core::{async_trait, SwarmError};
/// use recovery_degradation::{Degradable, DegradationLevel};
///
/// struct Coordinator { level: AtomicU8 }
///
/// #[async_trait]
/// impl Degradable for Coordinator {
///     async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
///         // A real coordinator resizes its executor and pauses features here.
///         self.level.store(level.as_u8(), Ordering::SeqCst);
///         Ok(())
///     }
///     async fn current_level(&self) -> DegradationLevel {
///         DegradationLevel::from_u8(self.level.load(Ordering::SeqCst)).unwrap_or(DegradationLevel::Critical)
///     }
/// }
/// ```
#[async_trait]
pub trait Degradable: Send + Sync {
    /// Apply `level`; `Ok` only once the system really runs at that level.
    async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError>;

    /// The level the system currently runs at.
    async fn current_level(&self) -> DegradationLevel;
}

/// A shared system degrades as the system does, so `&Arc<System>` can be passed where a
/// `Degradable` is wanted.
#[async_trait]
impl<T: Degradable + ?Sized> Degradable for std::sync::Arc<T> {
    async fn apply_level(&self, level: DegradationLevel) -> Result<(), SwarmError> {
        (**self).apply_level(level).await
    }

    async fn current_level(&self) -> DegradationLevel {
        (**self).current_level().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fails to compile the day someone makes the trait object-unsafe.
    fn _object_safe(_: &dyn Degradable) {}
}
