//! The crate's own errors, and how they cross the seam into `SwarmError`.

use std::io;
use std::path::PathBuf;

use recovery_core::SwarmError;
use uuid::Uuid;

/// Why a checkpoint could not be written, read, decoded or restored.
///
/// Each variant names one cause. They fall in three groups, which is how they cross into
/// [`SwarmError`]:
///
/// - the store is empty, lacks an id, or cannot be written or read: [`SwarmError::Storage`];
/// - a checkpoint file is damaged, from a newer format, or does not decode:
///   [`SwarmError::StateCorruption`];
/// - the target itself failed to take or restore a snapshot: its own error, unchanged.
///
/// ```
/// use recovery_checkpoint::CheckpointError;
/// use recovery_core::{ErrorKind, SwarmError};
///
/// let e = CheckpointError::ChecksumMismatch { stored: 1, computed: 2 };
/// assert_eq!(SwarmError::from(e).kind(), ErrorKind::StateCorruption);
/// assert_eq!(SwarmError::from(CheckpointError::Empty).kind(), ErrorKind::Storage);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// No checkpoint with this id is in the store.
    #[error("no checkpoint with id {id}")]
    NotFound {
        /// The id asked for.
        id: Uuid,
    },
    /// The store holds no checkpoint at all.
    #[error("the checkpoint store is empty")]
    Empty,
    /// The store holds checkpoints, but every one of them is damaged or does not decode.
    #[error("no valid checkpoint: all {} passed over ({})", skipped.len(), SkippedCheckpoint::join(skipped))]
    NoValidCheckpoint {
        /// Each checkpoint passed over, newest first, with why.
        skipped: Vec<SkippedCheckpoint>,
    },
    /// The checkpoint directory cannot be created or written.
    #[error("checkpoint directory {} is not writable: {source}", dir.display())]
    DirectoryNotWritable {
        /// The directory.
        dir: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Another I/O step failed (`op` names it: `write`, `fsync`, `rename`, `fsync directory`,
    /// `read`, ...).
    #[error("checkpoint {op} failed on {}: {source}", path.display())]
    Io {
        /// The step that failed.
        op: &'static str,
        /// The file or directory it acted on.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// A store's backend (a database, a network service) failed; `op` names the step.
    #[error("checkpoint store {store}: {op} failed: {source}")]
    Backend {
        /// Which store (for example `postgres`).
        store: &'static str,
        /// The step that failed (`put`, `get`, `list`, `delete`, `connect`, ...).
        op: &'static str,
        /// What the backend said.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file was written by a newer version of this crate, in a format this one cannot read.
    #[error(
        "checkpoint file format version {found} is newer than the newest this build reads ({supported})"
    )]
    NewerFormatVersion {
        /// The version in the file.
        found: u16,
        /// The newest version this build reads.
        supported: u16,
    },
    /// The payload codec named in the header is unknown to this build.
    #[error("unknown checkpoint codec id {id}")]
    UnknownCodec {
        /// The codec id in the header.
        id: u16,
    },
    /// The checksum stored in the header does not match the file's contents.
    #[error("checkpoint checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The crc32c in the header.
        stored: u32,
        /// The crc32c of what was read.
        computed: u32,
    },
    /// The file is shorter than its header says.
    #[error("checkpoint file truncated: {expected} bytes expected, {actual} found")]
    Truncated {
        /// How long the file should be.
        expected: u64,
        /// How long it is.
        actual: u64,
    },
    /// A payload or file is larger than this crate reads or writes.
    #[error("checkpoint of {len} bytes exceeds the limit of {limit} bytes")]
    SizeLimitExceeded {
        /// The size found (or declared).
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not a checkpoint, or its header is inconsistent (bad magic, wrong name, extra
    /// bytes, reserved fields set).
    #[error("not a valid checkpoint file: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The state could not be encoded.
    #[error("cannot encode the checkpoint state: {reason}")]
    Encode {
        /// The codec's message.
        reason: String,
    },
    /// The payload passed its checksum but does not decode into the target's state type (or it
    /// declares a collection longer than the whole payload, or runs out of bytes).
    #[error("cannot decode the checkpoint state: {reason}")]
    Decode {
        /// The codec's message.
        reason: String,
    },
    /// After the restore, the target's state did not equal the checkpoint's.
    #[error("checkpoint {id} was restored but the target's state does not equal it")]
    VerificationFailed {
        /// The checkpoint restored.
        id: Uuid,
    },
    /// The target failed to take or restore a snapshot.
    #[error("target failed: {0}")]
    Target(#[source] SwarmError),
    /// A background task doing blocking work (file I/O, encoding) was cancelled or panicked.
    #[error("checkpoint {op} task did not finish: {reason}")]
    Interrupted {
        /// What the task was doing.
        op: &'static str,
        /// Why it did not finish.
        reason: String,
    },
}

impl CheckpointError {
    /// Whether this error says a checkpoint is damaged or unreadable (as opposed to the store
    /// failing or the target failing).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Self::NewerFormatVersion { .. }
                | Self::UnknownCodec { .. }
                | Self::ChecksumMismatch { .. }
                | Self::Truncated { .. }
                | Self::SizeLimitExceeded { .. }
                | Self::Malformed { .. }
                | Self::Decode { .. }
        )
    }
}

impl From<CheckpointError> for SwarmError {
    fn from(e: CheckpointError) -> Self {
        match e {
            CheckpointError::Target(inner) => inner,
            e if e.is_corruption() || matches!(e, CheckpointError::VerificationFailed { .. }) => {
                SwarmError::StateCorruption(e.to_string())
            }
            e => SwarmError::Storage(e.to_string()),
        }
    }
}

/// A checkpoint passed over while looking for the newest valid one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedCheckpoint {
    /// Its id.
    pub id: Uuid,
    /// Its sequence number.
    pub sequence: u64,
    /// Why it was passed over (the error's message).
    pub reason: String,
}

impl SkippedCheckpoint {
    /// `id (#sequence): reason` for each, joined with `"; "`.
    pub fn join(skipped: &[SkippedCheckpoint]) -> String {
        skipped
            .iter()
            .map(|s| format!("{} (#{}): {}", s.id, s.sequence, s.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// A [`CheckpointConfig`](crate::CheckpointConfig) value that cannot work; the message names the
/// field and the rule it broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid checkpoint config: `{field}` {problem}")]
pub struct InvalidCheckpointConfig {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl From<InvalidCheckpointConfig> for SwarmError {
    fn from(e: InvalidCheckpointConfig) -> Self {
        SwarmError::InvalidConfiguration(e.to_string())
    }
}
