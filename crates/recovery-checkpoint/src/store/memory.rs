//! Checkpoints kept in memory.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Checkpoint, CheckpointInfo, CheckpointStore};
use crate::codec::Codec;
use crate::error::CheckpointError;
use crate::format::{MAX_PAYLOAD_LEN, stored_time};

/// A store in memory: fast, and gone with the process. What
/// [`CheckpointRecoveryStrategy::new`](crate::CheckpointRecoveryStrategy::new) uses; useful in
/// tests and for rolling back in-process state.
///
/// Payloads are kept exactly as put, so `get` never finds damage here.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_sequence: u64,
    by_sequence: BTreeMap<u64, Checkpoint>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No code path panics while holding the lock, but a poisoned map is still consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn put(&self, codec: Codec, payload: Vec<u8>) -> Result<CheckpointInfo, CheckpointError> {
        if payload.len() as u64 > MAX_PAYLOAD_LEN {
            return Err(CheckpointError::SizeLimitExceeded {
                len: payload.len() as u64,
                limit: MAX_PAYLOAD_LEN,
            });
        }
        let mut inner = self.lock();
        inner.next_sequence += 1;
        let checkpoint = Checkpoint {
            id: Uuid::new_v4(),
            sequence: inner.next_sequence,
            created_at: stored_time(SystemTime::now()),
            codec,
            payload,
        };
        let info = checkpoint.info();
        inner.by_sequence.insert(info.sequence, checkpoint);
        Ok(info)
    }

    async fn get(&self, id: Uuid) -> Result<Checkpoint, CheckpointError> {
        self.lock()
            .by_sequence
            .values()
            .find(|c| c.id == id)
            .cloned()
            .ok_or(CheckpointError::NotFound { id })
    }

    async fn list(&self) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        Ok(self
            .lock()
            .by_sequence
            .values()
            .rev()
            .map(Checkpoint::info)
            .collect())
    }

    async fn delete(&self, id: Uuid) -> Result<(), CheckpointError> {
        let mut inner = self.lock();
        let sequence = inner
            .by_sequence
            .values()
            .find(|c| c.id == id)
            .map(|c| c.sequence)
            .ok_or(CheckpointError::NotFound { id })?;
        inner.by_sequence.remove(&sequence);
        Ok(())
    }
}
