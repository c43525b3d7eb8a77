//! Where checkpoints are kept: the [`CheckpointStore`] trait and its two implementations.

mod file;
mod memory;

use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use crate::codec::Codec;
use crate::error::{CheckpointError, SkippedCheckpoint};

pub use file::{FileIo, FileStore, RealFileIo};
pub use memory::MemoryStore;

/// A stored checkpoint: what identifies it, and its encoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Its id (a random v4 uuid chosen by the store).
    pub id: Uuid,
    /// Its sequence number: strictly increasing in the order checkpoints were put into one
    /// store, which is how "newest" is decided (never by file times).
    pub sequence: u64,
    /// When it was put (nanosecond precision).
    pub created_at: SystemTime,
    /// How the payload is encoded.
    pub codec: Codec,
    /// The encoded state.
    pub payload: Vec<u8>,
}

impl Checkpoint {
    /// Its id and sequence number.
    pub fn info(&self) -> CheckpointInfo {
        CheckpointInfo {
            id: self.id,
            sequence: self.sequence,
        }
    }
}

/// What a listing shows of a checkpoint, before it is read and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckpointInfo {
    /// Its id.
    pub id: Uuid,
    /// Its sequence number.
    pub sequence: u64,
}

/// A place checkpoints are kept, keyed by id and ordered by sequence number.
///
/// It is async so that a store over the network (a database) fits later. Implementations here:
/// [`MemoryStore`] and [`FileStore`].
///
/// Contract:
/// - `put` returns only once the checkpoint is committed (for a file store: durable, as far as
///   fsync is); if it returns an error, the checkpoint is not in the store and nothing it left
///   behind is ever listed or returned.
/// - `get` returns a checkpoint only if it is intact (checksums, lengths); damage is an error.
/// - `list` is newest first (highest sequence number first) and shows what is stored without
///   reading it: an entry may still fail `get`.
///
/// ```
/// use recovery_checkpoint::{CheckpointStore, Codec, MemoryStore};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let store = MemoryStore::new();
/// let first = store.put(Codec::CURRENT, vec![1]).await?;
/// let second = store.put(Codec::CURRENT, vec![2]).await?;
/// assert!(second.sequence > first.sequence);
/// assert_eq!(store.latest().await?.payload, vec![2]);
/// assert_eq!(store.list().await?, vec![second, first]);
/// store.retain_newest(1).await?;
/// assert_eq!(store.list().await?, vec![second]);
/// # Ok::<(), recovery_checkpoint::CheckpointError>(())
/// # }).unwrap();
/// ```
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// Store `payload` (encoded with `codec`) as a new checkpoint, with a fresh id and the next
    /// sequence number; return them once the checkpoint is committed.
    async fn put(&self, codec: Codec, payload: Vec<u8>) -> Result<CheckpointInfo, CheckpointError>;

    /// The checkpoint `id`, checked.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::NotFound`] if no checkpoint has this id; a corruption error
    /// ([`CheckpointError::is_corruption`]) if it is damaged.
    async fn get(&self, id: Uuid) -> Result<Checkpoint, CheckpointError>;

    /// Every stored checkpoint, newest first.
    async fn list(&self) -> Result<Vec<CheckpointInfo>, CheckpointError>;

    /// Remove the checkpoint `id`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::NotFound`] if no checkpoint has this id.
    async fn delete(&self, id: Uuid) -> Result<(), CheckpointError>;

    /// Whether the store needs something outside the process (a disk, a network).
    fn uses_external_resources(&self) -> bool {
        false
    }

    /// The newest checkpoint that is intact; damaged ones are passed over (with a tracing
    /// warning) for the next older one.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Empty`] if the store holds none, [`CheckpointError::NoValidCheckpoint`]
    /// if every one is damaged.
    async fn latest(&self) -> Result<Checkpoint, CheckpointError> {
        let mut skipped = Vec::new();
        let listed = self.list().await?;
        if listed.is_empty() {
            return Err(CheckpointError::Empty);
        }
        for info in listed {
            match self.get(info.id).await {
                Ok(checkpoint) => return Ok(checkpoint),
                Err(e) => skipped.push(pass_over(info, &e)),
            }
        }
        Err(CheckpointError::NoValidCheckpoint { skipped })
    }

    /// Delete all but the `keep` newest checkpoints; return those deleted, newest first.
    async fn retain_newest(&self, keep: usize) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        let mut deleted = Vec::new();
        for info in self.list().await?.into_iter().skip(keep) {
            match self.delete(info.id).await {
                // Deleted meanwhile by someone else: the goal is met.
                Ok(()) | Err(CheckpointError::NotFound { .. }) => deleted.push(info),
                Err(e) => return Err(e),
            }
        }
        Ok(deleted)
    }
}

/// Log that `info` is passed over because of `error`, and say so.
pub(crate) fn pass_over(info: CheckpointInfo, error: &CheckpointError) -> SkippedCheckpoint {
    tracing::warn!(
        checkpoint_id = %info.id,
        sequence = info.sequence,
        error = %error,
        "passing over a checkpoint that cannot be used"
    );
    SkippedCheckpoint {
        id: info.id,
        sequence: info.sequence,
        reason: error.to_string(),
    }
}

/// Run blocking work (file I/O, encoding) off the async threads when a tokio runtime is
/// running, in place otherwise.
pub(crate) async fn blocking<R, F>(op: &'static str, f: F) -> Result<R, CheckpointError>
where
    F: FnOnce() -> Result<R, CheckpointError> + Send + 'static,
    R: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(f)
            .await
            .map_err(|e| CheckpointError::Interrupted {
                op,
                reason: e.to_string(),
            })?,
        Err(_) => f(),
    }
}
