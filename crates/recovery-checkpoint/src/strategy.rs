//! The checkpoint recovery strategy: restore the newest valid checkpoint, and prove it.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

// The clock of the runtime (paused in tests and the simulation), as the other strategies use.
use tokio::time::Instant;

use async_trait::async_trait;
use recovery_core::{
    RecoveryAction, RecoveryContext, RecoveryResult, RecoveryStrategy, StrategyInfo, SwarmError,
};
use uuid::Uuid;

use crate::checkpointable::Checkpointable;
use crate::codec::Codec;
use crate::config::CheckpointConfig;
use crate::error::{CheckpointError, InvalidCheckpointConfig, SkippedCheckpoint};
use crate::store::{Checkpoint, CheckpointStore, MemoryStore, blocking, pass_over};

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The checkpoint restored.
    pub checkpoint_id: Uuid,
    /// Its sequence number.
    pub sequence: u64,
    /// When it was created.
    pub created_at: SystemTime,
    /// Newer checkpoints passed over because they were damaged or did not decode, newest first
    /// (each also logged with a tracing warning).
    pub skipped: Vec<SkippedCheckpoint>,
}

/// Restores a system's state from a checkpoint: for state corruption and concurrency errors.
///
/// See the crate docs for what it promises. Create checkpoints with
/// [`create_checkpoint`](Self::create_checkpoint) (the manager does so every
/// `checkpoint_interval`); [`recover`](RecoveryStrategy::recover) restores the newest valid one
/// and reports success only after the target's state equals it.
///
/// # Which store
///
/// [`new`](Self::new) and [`Default`] keep checkpoints in memory ([`MemoryStore`]): no
/// surprise files, and enough to roll back in-process state. To survive a crash, give it a
/// [`FileStore`](crate::FileStore) with [`with_store`](Self::with_store).
pub struct CheckpointRecoveryStrategy {
    store: Arc<dyn CheckpointStore>,
    config: CheckpointConfig,
    /// The payload size of the last checkpoint created, to size the next one's buffer.
    last_payload_len: AtomicUsize,
    /// Encode and decode on tokio's blocking pool (the default), or on the calling task.
    codec_on_blocking_pool: bool,
}

impl fmt::Debug for CheckpointRecoveryStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckpointRecoveryStrategy")
            .field("config", &self.config)
            .field(
                "uses_external_resources",
                &self.store.uses_external_resources(),
            )
            .finish_non_exhaustive()
    }
}

impl Default for CheckpointRecoveryStrategy {
    /// Ten checkpoints, in memory.
    fn default() -> Self {
        Self {
            store: Arc::new(MemoryStore::new()),
            config: CheckpointConfig::default(),
            last_payload_len: AtomicUsize::new(0),
            codec_on_blocking_pool: true,
        }
    }
}

impl CheckpointRecoveryStrategy {
    /// A strategy keeping the `max_checkpoints` newest checkpoints in memory.
    ///
    /// # Errors
    ///
    /// [`InvalidCheckpointConfig`] if `max_checkpoints` is 0.
    pub fn new(max_checkpoints: usize) -> Result<Self, InvalidCheckpointConfig> {
        Self::with_store(Arc::new(MemoryStore::new()), max_checkpoints)
    }

    /// A strategy keeping the `max_checkpoints` newest checkpoints in `store`.
    ///
    /// # Errors
    ///
    /// [`InvalidCheckpointConfig`] if `max_checkpoints` is 0.
    pub fn with_store(
        store: Arc<dyn CheckpointStore>,
        max_checkpoints: usize,
    ) -> Result<Self, InvalidCheckpointConfig> {
        Self::from_config(store, CheckpointConfig { max_checkpoints })
    }

    /// A strategy with `config` (checked) over `store`.
    ///
    /// # Errors
    ///
    /// [`InvalidCheckpointConfig`] if `config` does not validate.
    pub fn from_config(
        store: Arc<dyn CheckpointStore>,
        config: CheckpointConfig,
    ) -> Result<Self, InvalidCheckpointConfig> {
        config.validate()?;
        Ok(Self {
            store,
            config,
            last_payload_len: AtomicUsize::new(0),
            codec_on_blocking_pool: true,
        })
    }

    /// The same strategy encoding and decoding on the task that creates or restores a
    /// checkpoint, instead of on tokio's blocking pool. The blocking pool keeps a large state's
    /// codec off the runtime's threads (the default); the calling task makes the order of
    /// events independent of thread timing, which a deterministic simulation needs. For small
    /// states either is fine.
    pub fn with_codec_on_calling_task(mut self) -> Self {
        self.codec_on_blocking_pool = false;
        self
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn CheckpointStore> {
        &self.store
    }

    /// How many checkpoints are kept.
    pub fn max_checkpoints(&self) -> usize {
        self.config.max_checkpoints
    }

    /// Take a snapshot of `target`, store it as a new checkpoint (durably, with a file store),
    /// delete all but the newest `max_checkpoints`, and return the new checkpoint's id.
    ///
    /// A failure to delete old checkpoints is logged, not returned: the new checkpoint is
    /// committed by then.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Target`] if the snapshot fails, [`CheckpointError::Encode`] if it does
    /// not encode, or the store's error; in every case no checkpoint was added.
    pub async fn create_checkpoint<T>(&self, target: &T) -> Result<Uuid, CheckpointError>
    where
        T: Checkpointable + ?Sized,
    {
        let state = target.snapshot().await.map_err(CheckpointError::Target)?;
        // Room for the size of the last payload and an eighth more, so a state that grew a
        // little is still written without the buffer moving.
        let last = self.last_payload_len.load(Ordering::Relaxed);
        let capacity = last.saturating_add(last / 8);
        let encode = move || Codec::CURRENT.encode_with_capacity(&state, capacity);
        let payload = if self.codec_on_blocking_pool {
            blocking("encode", encode).await?
        } else {
            encode()?
        };
        self.last_payload_len
            .store(payload.len(), Ordering::Relaxed);
        let info = self.store.put(Codec::CURRENT, payload).await?;
        match self.store.retain_newest(self.config.max_checkpoints).await {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::debug!(deleted = deleted.len(), "old checkpoints deleted");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot delete old checkpoints"),
        }
        tracing::debug!(checkpoint_id = %info.id, sequence = info.sequence, "checkpoint created");
        Ok(info.id)
    }

    /// Restore `target` from checkpoint `id`, or from the newest valid checkpoint if `id` is
    /// `None`, and check that the target's state now equals it.
    ///
    /// With `None`, checkpoints that are damaged or do not decode are passed over (logged, and
    /// listed in the report) for the next older one. With `Some(id)`, that checkpoint or an
    /// error. A checkpoint is decoded in full before the target is touched, so a damaged one is
    /// never half-applied.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::NotFound`], [`CheckpointError::Empty`],
    /// [`CheckpointError::NoValidCheckpoint`], a corruption error for a requested id,
    /// [`CheckpointError::Target`] if the target fails to restore or snapshot,
    /// [`CheckpointError::VerificationFailed`] if its state does not equal the checkpoint's
    /// afterwards.
    pub async fn restore_from_checkpoint<T>(
        &self,
        target: &T,
        id: Option<Uuid>,
    ) -> Result<RestoreReport, CheckpointError>
    where
        T: Checkpointable + ?Sized,
    {
        let (checkpoint, state, skipped) = match id {
            Some(id) => {
                let checkpoint = self.store.get(id).await?;
                let (checkpoint, state) =
                    decode::<T::State>(checkpoint, self.codec_on_blocking_pool).await?;
                (checkpoint, state, Vec::new())
            }
            None => self.newest_valid::<T::State>().await?,
        };
        target
            .restore(state.clone())
            .await
            .map_err(CheckpointError::Target)?;
        let now = target.snapshot().await.map_err(CheckpointError::Target)?;
        if !target.is_restored(&state, &now) {
            return Err(CheckpointError::VerificationFailed { id: checkpoint.id });
        }
        tracing::info!(
            checkpoint_id = %checkpoint.id,
            sequence = checkpoint.sequence,
            skipped = skipped.len(),
            "state restored from a checkpoint"
        );
        Ok(RestoreReport {
            checkpoint_id: checkpoint.id,
            sequence: checkpoint.sequence,
            created_at: checkpoint.created_at,
            skipped,
        })
    }

    /// The newest checkpoint that reads and decodes, with those passed over.
    async fn newest_valid<S>(
        &self,
    ) -> Result<(Checkpoint, S, Vec<SkippedCheckpoint>), CheckpointError>
    where
        S: serde::de::DeserializeOwned + Send + 'static,
    {
        let listed = self.store.list().await?;
        if listed.is_empty() {
            return Err(CheckpointError::Empty);
        }
        let mut skipped = Vec::new();
        for info in listed {
            let loaded = match self.store.get(info.id).await {
                Ok(checkpoint) => decode::<S>(checkpoint, self.codec_on_blocking_pool).await,
                Err(e) => Err(e),
            };
            match loaded {
                Ok((checkpoint, state)) => return Ok((checkpoint, state, skipped)),
                Err(e) => skipped.push(pass_over(info, &e)),
            }
        }
        Err(CheckpointError::NoValidCheckpoint { skipped })
    }
}

/// Decode a checkpoint's payload (off the async threads if `on_pool`); hand the checkpoint
/// back without it.
async fn decode<S>(
    mut checkpoint: Checkpoint,
    on_pool: bool,
) -> Result<(Checkpoint, S), CheckpointError>
where
    S: serde::de::DeserializeOwned + Send + 'static,
{
    let payload = std::mem::take(&mut checkpoint.payload);
    let codec = checkpoint.codec;
    let decode = move || codec.decode::<S>(&payload);
    let state = if on_pool {
        blocking("decode", decode).await?
    } else {
        decode()?
    };
    Ok((checkpoint, state))
}

fn handles(error: &SwarmError) -> bool {
    matches!(
        error,
        SwarmError::StateCorruption(_) | SwarmError::ConcurrencyError(_)
    )
}

#[async_trait]
impl StrategyInfo for CheckpointRecoveryStrategy {
    fn strategy_id(&self) -> &str {
        "checkpoint_recovery"
    }

    fn description(&self) -> &str {
        "restores the newest valid checkpoint and checks the state equals it"
    }

    /// State corruption (which covers consistency errors) and concurrency errors. Not resource
    /// conflicts: rolling back state does not settle who gets a resource, and would throw away
    /// good work each time two parties contend.
    async fn can_handle(&self, error: &SwarmError) -> bool {
        handles(error)
    }

    async fn cost_estimate(&self) -> f64 {
        0.3
    }

    async fn requires_external_resources(&self) -> bool {
        self.store.uses_external_resources()
    }
}

#[async_trait]
impl<T: Checkpointable + ?Sized> RecoveryStrategy<T> for CheckpointRecoveryStrategy {
    async fn recover(&self, context: &RecoveryContext<T>, error: &SwarmError) -> RecoveryResult {
        let started = Instant::now();
        if !handles(error) {
            return RecoveryResult::no_change(format!(
                "checkpoint recovery does not handle {}",
                error.kind()
            ))
            .with_duration(started.elapsed());
        }
        match self.restore_from_checkpoint(&*context.target, None).await {
            Ok(report) => {
                let mut result = RecoveryResult::success(
                    RecoveryAction::Restored {
                        checkpoint_id: report.checkpoint_id,
                    },
                    format!(
                        "restored checkpoint {} (sequence {}); the state equals it",
                        report.checkpoint_id, report.sequence
                    ),
                )
                // The state is exactly the checkpoint's; work since then is lost or redone.
                .with_confidence(0.9)
                .with_metadata("checkpoint_id", report.checkpoint_id.to_string())
                .with_metadata("checkpoint_sequence", report.sequence.to_string())
                .with_metadata("skipped_checkpoints", report.skipped.len().to_string());
                if !report.skipped.is_empty() {
                    result = result.with_metadata(
                        "skipped_checkpoint_details",
                        SkippedCheckpoint::join(&report.skipped),
                    );
                }
                result.with_duration(started.elapsed())
            }
            Err(e) => {
                let mut result = RecoveryResult::failure(
                    RecoveryAction::None,
                    format!("checkpoint restore failed: {e}"),
                )
                .with_metadata("error", e.to_string());
                if let CheckpointError::NoValidCheckpoint { skipped } = &e {
                    result = result
                        .with_metadata("skipped_checkpoints", skipped.len().to_string())
                        .with_metadata(
                            "skipped_checkpoint_details",
                            SkippedCheckpoint::join(skipped),
                        );
                }
                result.with_duration(started.elapsed())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Fails to compile the day the strategy stops fitting the manager's `Arc<dyn ..>`.
    struct Unit;
    #[async_trait]
    impl Checkpointable for Unit {
        type State = u8;
        async fn snapshot(&self) -> Result<u8, SwarmError> {
            Ok(0)
        }
        async fn restore(&self, _: u8) -> Result<(), SwarmError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn fits_the_managers_trait_object() {
        let s: Arc<dyn RecoveryStrategy<dyn Checkpointable<State = u8>>> =
            Arc::new(CheckpointRecoveryStrategy::default());
        assert_eq!(s.strategy_id(), "checkpoint_recovery");
        assert_eq!(s.cost_estimate().await, 0.3);
        assert!(!s.requires_external_resources().await);
        let target: Arc<dyn Checkpointable<State = u8>> = Arc::new(Unit);
        let ctx = RecoveryContext::new(target);
        let r = s
            .recover(&ctx, &SwarmError::StateCorruption("x".into()))
            .await;
        assert!(!r.success);
        assert!(r.metadata["error"].contains("empty"), "{r:?}");
    }

    #[test]
    fn zero_retention_is_refused() {
        assert_eq!(
            CheckpointRecoveryStrategy::new(0).unwrap_err().field,
            "max_checkpoints"
        );
        assert_eq!(CheckpointRecoveryStrategy::default().max_checkpoints(), 10);
    }
}
