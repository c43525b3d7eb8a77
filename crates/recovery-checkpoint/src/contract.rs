//! The contract every [`CheckpointStore`] keeps, as checks that any store's tests run (feature
//! `store-contract`): a sequence of operations compared, step by step, against a plain model
//! of the store ([`check_ops`], with random sequences from [`ops`]), and a damage sweep over a
//! stored checkpoint's bytes ([`damage_sweep`]). The file store's tests run them, and so do the
//! tests of the PostgreSQL store in `swarm-postgres`.
//!
//! ```
//! use recovery_checkpoint::{MemoryStore, contract::{self, Op}};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let store = MemoryStore::new();
//! let ops = [Op::Put(vec![1]), Op::Put(vec![2]), Op::Latest, Op::Delete(0), Op::List, Op::Retain(0)];
//! contract::check_ops(&store, &ops).await.unwrap();
//! # });
//! ```

use async_trait::async_trait;
use proptest::prelude::*;
use uuid::Uuid;

use crate::codec::Codec;
use crate::error::CheckpointError;
use crate::format;
use crate::store::{CheckpointInfo, CheckpointStore};

/// One step of a sequence: what a store is asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Put this payload.
    Put(Vec<u8>),
    /// Get the checkpoint at this index of the model (modulo its length), and an id that was
    /// never stored.
    Get(usize),
    /// Delete the checkpoint at this index of the model (modulo its length), twice.
    Delete(usize),
    /// List.
    List,
    /// Ask for the newest intact checkpoint.
    Latest,
    /// Keep only this many of the newest.
    Retain(usize),
}

/// Random sequences of up to 40 operations, half of them puts of up to 64 bytes.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Op::Put),
        1 => any::<usize>().prop_map(Op::Get),
        1 => any::<usize>().prop_map(Op::Delete),
        1 => Just(Op::List),
        1 => Just(Op::Latest),
        1 => (0usize..4).prop_map(Op::Retain),
    ];
    prop::collection::vec(op, 0..40)
}

/// Run `ops` on `store` (which must start empty) and on a model of it, and compare after every
/// step: sequence numbers strictly increase, ids are unique, `get` returns what was put,
/// `list` is newest first, `latest` is the newest, `retain_newest` deletes exactly the oldest,
/// and asking for what is not there is `NotFound` or `Empty`.
///
/// # Errors
///
/// The first difference, described.
pub async fn check_ops(store: &dyn CheckpointStore, ops: &[Op]) -> Result<(), String> {
    // Oldest first.
    let mut model: Vec<(CheckpointInfo, Vec<u8>)> = Vec::new();
    let fail = |step: usize, what: String| Err(format!("step {step}: {what}"));
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Put(payload) => {
                let info = store
                    .put(Codec::CURRENT, payload.clone())
                    .await
                    .map_err(|e| format!("step {step}: put failed: {e}"))?;
                if let Some((last, _)) = model.last() {
                    if info.sequence <= last.sequence {
                        return fail(
                            step,
                            format!("sequence {} after {}", info.sequence, last.sequence),
                        );
                    }
                }
                if model.iter().any(|(i, _)| i.id == info.id) {
                    return fail(step, format!("id {} given twice", info.id));
                }
                model.push((info, payload.clone()));
            }
            Op::Get(i) => {
                if !model.is_empty() {
                    let (info, payload) = &model[i % model.len()];
                    match store.get(info.id).await {
                        Ok(c) if c.info() == *info && c.payload == *payload => {}
                        Ok(c) => {
                            return fail(step, format!("get({}) returned {:?}", info.id, c.info()));
                        }
                        Err(e) => return fail(step, format!("get({}) failed: {e}", info.id)),
                    }
                }
                let never = Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0001);
                match store.get(never).await {
                    Err(CheckpointError::NotFound { id }) if id == never => {}
                    other => return fail(step, format!("get of an unknown id gave {other:?}")),
                }
            }
            Op::Delete(i) => {
                if model.is_empty() {
                    continue;
                }
                let (info, _) = model.remove(i % model.len());
                store
                    .delete(info.id)
                    .await
                    .map_err(|e| format!("step {step}: delete({}) failed: {e}", info.id))?;
                match store.delete(info.id).await {
                    Err(CheckpointError::NotFound { .. }) => {}
                    other => return fail(step, format!("a second delete gave {other:?}")),
                }
                match store.get(info.id).await {
                    Err(CheckpointError::NotFound { .. }) => {}
                    other => return fail(step, format!("get after delete gave {other:?}")),
                }
            }
            Op::List => {
                let listed = store
                    .list()
                    .await
                    .map_err(|e| format!("step {step}: list failed: {e}"))?;
                let want: Vec<CheckpointInfo> = model.iter().rev().map(|(i, _)| *i).collect();
                if listed != want {
                    return fail(step, format!("list gave {listed:?}, the model {want:?}"));
                }
            }
            Op::Latest => match (store.latest().await, model.last()) {
                (Ok(c), Some((info, payload))) if c.info() == *info && c.payload == *payload => {}
                (Err(CheckpointError::Empty), None) => {}
                (got, want) => {
                    return fail(
                        step,
                        format!(
                            "latest gave {:?}, the model {want:?}",
                            got.map(|c| c.info())
                        ),
                    );
                }
            },
            Op::Retain(keep) => {
                let deleted = store
                    .retain_newest(*keep)
                    .await
                    .map_err(|e| format!("step {step}: retain_newest failed: {e}"))?;
                let cut = model.len().saturating_sub(*keep);
                let want: Vec<CheckpointInfo> = model.drain(..cut).rev().map(|(i, _)| i).collect();
                if deleted != want {
                    return fail(
                        step,
                        format!("retain_newest({keep}) deleted {deleted:?}, the model {want:?}"),
                    );
                }
            }
        }
    }
    let listed = store
        .list()
        .await
        .map_err(|e| format!("the last list failed: {e}"))?;
    if listed.len() != model.len() {
        return Err(format!(
            "{} stored at the end, the model has {}",
            listed.len(),
            model.len()
        ));
    }
    Ok(())
}

/// The stored bytes of a checkpoint (the file format: header and payload), read and written
/// behind the store's back: how a damage test reaches them.
#[async_trait]
pub trait RawBytes: Send + Sync {
    /// The bytes stored for `info`.
    async fn read(&self, info: CheckpointInfo) -> Vec<u8>;
    /// Replace the bytes stored for `info` with `bytes`.
    async fn write(&self, info: CheckpointInfo, bytes: &[u8]);
}

/// Put two checkpoints with payloads of `payload_len` bytes, then damage the newest in every
/// way of the sweep: truncated at every `stride`-th length, and every bit of every `stride`-th
/// byte flipped. Each damaged copy must be refused by `get` with a corruption error, and
/// `latest` must pass it over for the previous one; the original bytes, put back, are the
/// newest again. Returns the number of damaged copies checked.
///
/// # Errors
///
/// The first damage that was not detected or not passed over, described.
pub async fn damage_sweep(
    store: &dyn CheckpointStore,
    raw: &dyn RawBytes,
    payload_len: usize,
    stride: usize,
) -> Result<usize, String> {
    let stride = stride.max(1);
    let previous = store
        .put(Codec::CURRENT, (0..payload_len).map(|i| i as u8).collect())
        .await
        .map_err(|e| format!("put failed: {e}"))?;
    let newest = store
        .put(
            Codec::CURRENT,
            (0..payload_len).map(|i| (i * 7 + 1) as u8).collect(),
        )
        .await
        .map_err(|e| format!("put failed: {e}"))?;
    let original = raw.read(newest).await;
    if format::decode(&original).is_err() {
        return Err("the stored bytes of an intact checkpoint do not decode".into());
    }
    let mut cases = 0;
    let mut check = async |damaged: &[u8], what: String| -> Result<(), String> {
        raw.write(newest, damaged).await;
        match store.get(newest.id).await {
            Err(e) if e.is_corruption() => {}
            other => return Err(format!("{what}: get gave {:?}", other.map(|c| c.info()))),
        }
        match store.latest().await {
            Ok(c) if c.info() == previous => {}
            other => return Err(format!("{what}: latest gave {:?}", other.map(|c| c.info()))),
        }
        cases += 1;
        Ok(())
    };
    for cut in (0..original.len()).step_by(stride) {
        check(&original[..cut], format!("truncated to {cut}")).await?;
    }
    let mut damaged = original.clone();
    for byte in (0..original.len()).step_by(stride) {
        for bit in 0..8 {
            damaged[byte] ^= 1 << bit;
            check(&damaged, format!("bit {bit} of byte {byte} flipped")).await?;
            damaged[byte] ^= 1 << bit;
        }
    }
    raw.write(newest, &original).await;
    match store.latest().await {
        Ok(c) if c.info() == newest => Ok(cases),
        other => Err(format!(
            "undamaged again, latest gave {:?}",
            other.map(|c| c.info())
        )),
    }
}
