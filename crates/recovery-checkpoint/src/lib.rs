//! Durable, crash-safe checkpoints, and a recovery strategy that really restores them.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use recovery_checkpoint::{Checkpointable, CheckpointRecoveryStrategy, FileStore};
//! use recovery_core::{RecoveryAction, RecoveryContext, RecoveryStrategy, StrategyInfo, SwarmError};
//!
//! /// A system whose whole state is a list of task names.
//! struct Tasks(Mutex<Vec<String>>);
//!
//! #[async_trait::async_trait]
//! impl Checkpointable for Tasks {
//!     type State = Vec<String>;
//!     async fn snapshot(&self) -> Result<Vec<String>, SwarmError> {
//!         Ok(self.0.lock().unwrap().clone())
//!     }
//!     async fn restore(&self, state: Vec<String>) -> Result<(), SwarmError> {
//!         *self.0.lock().unwrap() = state;
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(FileStore::open(dir.path())?);
//! let strategy = CheckpointRecoveryStrategy::with_store(store, 10)?;
//!
//! // The spec's lines: the strategy takes the `Arc` you hold.
//! let coordinator = Arc::new(Tasks(Mutex::new(vec!["index".into(), "train".into()])));
//! let checkpoint_id = strategy.create_checkpoint(&coordinator).await?;
//!
//! // The state goes bad ...
//! coordinator.0.lock().unwrap().clear();
//!
//! // ... and the strategy puts it back, and says so only once the state equals the checkpoint.
//! let error = SwarmError::StateCorruption("task list lost".into());
//! assert!(strategy.can_handle(&error).await);
//! let result = strategy.recover(&RecoveryContext::new(coordinator.clone()), &error).await;
//! assert!(result.success);
//! assert_eq!(result.action, RecoveryAction::Restored { checkpoint_id });
//! assert_eq!(*coordinator.0.lock().unwrap(), ["index", "train"]);
//!
//! // A named checkpoint can be restored too.
//! let restored = strategy.restore_from_checkpoint(&coordinator, Some(checkpoint_id)).await?;
//! assert_eq!(restored.checkpoint_id, checkpoint_id);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```
//!
//! # When to use it
//!
//! For errors that mean the state itself is wrong: [`StateCorruption`] (which covers
//! consistency errors) and [`ConcurrencyError`] (a race left the state inconsistent). Retrying
//! does not help those; going back to the last known-good state does. It costs 0.3, so the
//! manager tries retries and self-healing first. Work done since the checkpoint is lost (or,
//! if the system's restore keeps it, redone).
//!
//! [`StateCorruption`]: recovery_core::SwarmError::StateCorruption
//! [`ConcurrencyError`]: recovery_core::SwarmError::ConcurrencyError
//!
//! # What it really does
//!
//! - A system takes part by implementing [`Checkpointable`]: a serde state, a `snapshot` and a
//!   `restore`. This crate knows nothing of coordinators.
//! - [`CheckpointRecoveryStrategy::create_checkpoint`] takes a snapshot, encodes it (serde
//!   and bincode 2, in [`codec`]), stores it in a [`CheckpointStore`] and keeps the newest
//!   `max_checkpoints` (default 10).
//! - `recover` and [`CheckpointRecoveryStrategy::restore_from_checkpoint`] read the newest
//!   checkpoint, check it (length, checksum, header), decode it in full, restore it, take a
//!   snapshot again and compare: only if the state equals the checkpoint's is it a success
//!   ([`RecoveryAction::Restored`](recovery_core::RecoveryAction::Restored)). A checkpoint
//!   that is damaged or does not decode is passed over for the next older one, logged with a
//!   tracing warning and listed in the result's metadata (`skipped_checkpoints`,
//!   `skipped_checkpoint_details`); it is never half-applied.
//! - Stores: [`MemoryStore`] (what [`CheckpointRecoveryStrategy::new`] uses) and
//!   [`FileStore`], one file per checkpoint in a directory, written atomically and durably.
//!
//! # What is promised
//!
//! With a [`FileStore`]:
//!
//! - **Atomic against a process crash.** A checkpoint is written to a temp file, fsynced,
//!   renamed into place and the directory fsynced. Killed at any moment, the process leaves the
//!   old set of checkpoints or the new one: never a torn file under a checkpoint name. The
//!   example `crash_test` (run by `cargo xtask crash-test`) kills a writer with SIGKILL
//!   hundreds of times and checks exactly that.
//! - **Durable once `put` (and so `create_checkpoint`) returns**, as far as `fsync` is. A
//!   failed write, fsync, rename or directory fsync is an error, the checkpoint is withdrawn,
//!   and no fsync is retried.
//! - **Damage is detected**: every byte of a file is covered by a crc32c checksum and its
//!   length by the header, so a flipped byte or a truncation is an error, never a wrong
//!   state. A file from a newer format version is refused by name.
//! - **Decoding is bounded**: no length in a file is trusted beyond the file's own size, and
//!   decoding allocates at most a small multiple of the payload's length (see [`codec`]).
//!
//! # What is not
//!
//! - Power loss on hardware (or a virtual disk) that acknowledges a flush it has not done: the
//!   newest checkpoints can then be lost or damaged. Damage is still detected and passed over.
//! - Several processes writing one directory at once: sequence numbers are assigned by the
//!   one writer. Readers in other processes are fine.
//! - A [`MemoryStore`] is gone with the process.
//! - Restoring the right state of the rest of the world: the checkpoint is the system's state
//!   at that time; what happened outside it since is not undone.
//!
//! The file format and the directory layout are described in [`format`](mod@format) and [`FileStore`].

mod checkpointable;
pub mod codec;
mod config;
#[cfg(feature = "store-contract")]
pub mod contract;
mod error;
pub mod format;
mod store;
mod strategy;

pub use checkpointable::Checkpointable;
pub use codec::Codec;
pub use config::CheckpointConfig;
pub use error::{CheckpointError, InvalidCheckpointConfig, SkippedCheckpoint};
pub use store::{
    Checkpoint, CheckpointInfo, CheckpointStore, FileIo, FileStore, MemoryStore, RealFileIo,
};
pub use strategy::{CheckpointRecoveryStrategy, RestoreReport};
