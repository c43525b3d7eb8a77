//! An exhaustive damage sweep over a checkpoint of about 4 KiB: truncation at every offset and
//! every single-bit flip. Each is detected, none panics, and loading falls back to the previous
//! valid checkpoint every time.

mod common;

use common::{SwarmState, Target};
use recovery_checkpoint::{CheckpointRecoveryStrategy, CheckpointStore, FileStore, format};
use std::sync::Arc;

#[tokio::test]
async fn every_truncation_and_every_bit_flip_falls_back_to_the_previous_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path()).unwrap());
    let strategy = CheckpointRecoveryStrategy::with_store(store.clone(), 10).unwrap();
    let target = Target::new(SwarmState::sample(8, 38, 1));
    let previous = strategy.create_checkpoint(&target).await.unwrap();
    let previous_state = target.get();
    target.set(SwarmState::sample(8, 38, 2));
    let newest = strategy.create_checkpoint(&target).await.unwrap();

    let info = store.list().await.unwrap()[0];
    assert_eq!(info.id, newest);
    let path = store.path_of(info);
    let original = std::fs::read(&path).unwrap();
    assert!(
        (3 * 1024..6 * 1024).contains(&original.len()),
        "the sweep wants a checkpoint of about 4 KiB, got {}",
        original.len()
    );

    let mut cases = 0usize;
    let mut check = async |damaged: &[u8], what: &str| {
        let err = format::decode(damaged).unwrap_err();
        assert!(err.is_corruption(), "{what}: {err}");
        std::fs::write(&path, damaged).unwrap();
        let latest = store.latest().await.unwrap();
        assert_eq!(latest.id, previous, "{what}");
        cases += 1;
    };
    for cut in 0..original.len() {
        check(&original[..cut], &format!("truncated to {cut}")).await;
    }
    let mut damaged = original.clone();
    for byte in 0..original.len() {
        for bit in 0..8 {
            damaged[byte] ^= 1 << bit;
            check(&damaged, &format!("bit {bit} of byte {byte} flipped")).await;
            damaged[byte] ^= 1 << bit;
        }
    }
    assert_eq!(cases, original.len() * 9);

    // The store says why, too.
    std::fs::write(&path, &original[..100]).unwrap();
    assert!(store.get(newest).await.unwrap_err().is_corruption());

    // And the strategy restores the previous state through the same fallback.
    std::fs::write(&path, &original[..original.len() / 2]).unwrap();
    target.set(SwarmState::empty());
    let report = strategy
        .restore_from_checkpoint(&target, None)
        .await
        .unwrap();
    assert_eq!(report.checkpoint_id, previous);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].id, newest);
    assert_eq!(target.get(), previous_state);

    // Undamaged, the newest is valid again.
    std::fs::write(&path, &original).unwrap();
    assert_eq!(store.latest().await.unwrap().id, newest);
}
