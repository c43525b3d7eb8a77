//! `FakeState`: a state to checkpoint, corrupt and restore.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use recovery_checkpoint::Checkpointable;
use recovery_core::{SwarmError, async_trait};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A [`Checkpointable`] target whose whole state is one value: set it (to corrupt it), read it,
/// and make snapshots or restores fail, or restores be ignored (they return `Ok` and change
/// nothing, so the strategy's check afterwards must catch it).
///
/// ```
/// use std::sync::Arc;
/// use recovery_checkpoint::CheckpointRecoveryStrategy;
/// use recovery_core::{RecoveryContext, RecoveryStrategy, SwarmError};
/// use recovery_testkit::FakeState;
///
/// # recovery_testkit::block_on_paused(async {
/// let target = Arc::new(FakeState::new(vec![1, 2, 3]));
/// let strategy = CheckpointRecoveryStrategy::new(10).unwrap();
/// strategy.create_checkpoint(&target).await.unwrap();
/// target.set(vec![]); // corrupted
/// let result = strategy.recover(&RecoveryContext::new(target.clone()), &SwarmError::StateCorruption("lost".into())).await;
/// assert!(result.success);
/// assert_eq!(target.get(), [1, 2, 3]);
/// # });
/// ```
#[derive(Debug)]
pub struct FakeState<S> {
    state: Mutex<S>,
    fail_snapshots: AtomicBool,
    fail_restores: AtomicBool,
    ignore_restores: AtomicBool,
    snapshots: AtomicUsize,
    restores: AtomicUsize,
}

impl<S: Clone> FakeState<S> {
    /// A target whose state is `state`.
    pub fn new(state: S) -> Self {
        Self {
            state: Mutex::new(state),
            fail_snapshots: AtomicBool::new(false),
            fail_restores: AtomicBool::new(false),
            ignore_restores: AtomicBool::new(false),
            snapshots: AtomicUsize::new(0),
            restores: AtomicUsize::new(0),
        }
    }

    /// The current state.
    pub fn get(&self) -> S {
        self.lock().clone()
    }

    /// Replace the state (to corrupt it, say).
    pub fn set(&self, state: S) {
        *self.lock() = state;
    }

    /// Make snapshots fail with `StateCorruption` (or work again).
    pub fn fail_snapshots(&self, fail: bool) {
        self.fail_snapshots.store(fail, Ordering::SeqCst);
    }

    /// Make restores fail with `StateCorruption`, changing nothing (or work again).
    pub fn fail_restores(&self, fail: bool) {
        self.fail_restores.store(fail, Ordering::SeqCst);
    }

    /// Make restores return `Ok` and change nothing (or work again).
    pub fn ignore_restores(&self, ignore: bool) {
        self.ignore_restores.store(ignore, Ordering::SeqCst);
    }

    /// Snapshots taken so far.
    pub fn snapshots(&self) -> usize {
        self.snapshots.load(Ordering::SeqCst)
    }

    /// Restores that changed the state so far.
    pub fn restores(&self) -> usize {
        self.restores.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, S> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl<S> Checkpointable for FakeState<S>
where
    S: Serialize + DeserializeOwned + PartialEq + Clone + Send + Sync + 'static,
{
    type State = S;

    async fn snapshot(&self) -> Result<S, SwarmError> {
        if self.fail_snapshots.load(Ordering::SeqCst) {
            return Err(SwarmError::StateCorruption(
                "snapshot refused (fake)".into(),
            ));
        }
        self.snapshots.fetch_add(1, Ordering::SeqCst);
        Ok(self.get())
    }

    async fn restore(&self, state: S) -> Result<(), SwarmError> {
        if self.fail_restores.load(Ordering::SeqCst) {
            return Err(SwarmError::StateCorruption("restore refused (fake)".into()));
        }
        if !self.ignore_restores.load(Ordering::SeqCst) {
            self.set(state);
            self.restores.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
}
