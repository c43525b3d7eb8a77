//! The capability a system needs for checkpoint recovery: take a snapshot of its state, and
//! restore one.

use async_trait::async_trait;
use recovery_core::SwarmError;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A system whose state can be checkpointed and restored.
///
/// The state is a plain serde value that holds everything needed to rebuild the system (for a
/// swarm coordinator: agents and their status and trust, tasks and their assignments, the
/// configuration, recent events, metadata). The contract, which the strategy checks:
///
/// - `snapshot` returns the current state, consistent (taken under the system's own lock).
/// - `restore(s)` replaces the state with `s`, all or nothing: on error nothing has changed.
/// - After a successful `restore(s)`, `snapshot()` returns a state that
///   [`is_restored`](Checkpointable::is_restored) accepts against `s`; by default that means
///   it equals `s`.
///
/// To make snapshots cheap for a large state, make `State` an `Arc` of it (serde's `rc`
/// feature serialises the value inside). If `restore` then keeps the very `Arc` it is given,
/// the check after a restore can be free too: std's `==` on `Arc<T>` looks at the pointer
/// first only when `T: Eq`, so for a state that is only `PartialEq` (it holds an `f64`),
/// override [`is_restored`](Checkpointable::is_restored) with
/// `Arc::ptr_eq(checkpoint, current) || checkpoint == current`. Otherwise the strategy compares
/// the whole state after every restore, which for a large state takes milliseconds.
///
/// Freeing a large previous state takes milliseconds too: in `restore`, hand it to `tokio::task::spawn_blocking(move || drop(previous))` and await that,
/// rather than stall the runtime thread. (With glibc it is also faster there: the strategy
/// decodes on the blocking pool, so the memory is that pool's to free.)
///
/// ```
/// use std::sync::Mutex;
/// use recovery_checkpoint::Checkpointable;
/// use recovery_core::SwarmError;
///
/// struct Counter(Mutex<u64>);
///
/// #[async_trait::async_trait]
/// impl Checkpointable for Counter {
///     type State = u64;
///     async fn snapshot(&self) -> Result<u64, SwarmError> {
///         Ok(*self.0.lock().unwrap())
///     }
///     async fn restore(&self, state: u64) -> Result<(), SwarmError> {
///         *self.0.lock().unwrap() = state;
///         Ok(())
///     }
/// }
/// ```
#[async_trait]
pub trait Checkpointable: Send + Sync {
    /// Everything a checkpoint holds.
    type State: Serialize + DeserializeOwned + PartialEq + Clone + Send + Sync + 'static;

    /// The current state.
    async fn snapshot(&self) -> Result<Self::State, SwarmError>;

    /// Replace the current state with `state`, all or nothing.
    async fn restore(&self, state: Self::State) -> Result<(), SwarmError>;

    /// Whether `current`, a snapshot taken right after restoring `checkpoint`, shows the
    /// restore took effect. By default: they are equal.
    ///
    /// Override only for a system whose restore deliberately keeps some newer facts (for
    /// example tasks that finished after the checkpoint stay finished), and check everything
    /// else: the strategy reports success only when this returns true.
    fn is_restored(&self, checkpoint: &Self::State, current: &Self::State) -> bool {
        checkpoint == current
    }
}

/// A shared system checkpoints as the system does, so the spec's
/// `strategy.create_checkpoint(&coordinator)` works with the `Arc` users hold.
#[async_trait]
impl<T: Checkpointable + ?Sized> Checkpointable for std::sync::Arc<T> {
    type State = T::State;

    async fn snapshot(&self) -> Result<Self::State, SwarmError> {
        (**self).snapshot().await
    }

    async fn restore(&self, state: Self::State) -> Result<(), SwarmError> {
        (**self).restore(state).await
    }

    fn is_restored(&self, checkpoint: &Self::State, current: &Self::State) -> bool {
        (**self).is_restored(checkpoint, current)
    }
}
