//! The strategy through its public API: create, restore, recover, retention, errors.

mod common;

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use common::{SwarmState, Target};
use recovery_checkpoint::{
    CheckpointError, CheckpointRecoveryStrategy, CheckpointStore, Codec, FileStore, MemoryStore,
};
use recovery_core::{
    ErrorKind, RecoveryAction, RecoveryContext, RecoveryStrategy, StrategyInfo, SwarmError,
};
use uuid::Uuid;

fn file_strategy(
    dir: &std::path::Path,
    keep: usize,
) -> (Arc<FileStore>, CheckpointRecoveryStrategy) {
    let store = Arc::new(FileStore::open(dir).unwrap());
    let strategy = CheckpointRecoveryStrategy::with_store(store.clone(), keep).unwrap();
    (store, strategy)
}

fn corruption() -> SwarmError {
    SwarmError::StateCorruption("task index disagrees with agent table".into())
}

#[tokio::test]
async fn recover_restores_the_newest_checkpoint_and_the_state_equals_it() {
    let strategy = CheckpointRecoveryStrategy::new(10).unwrap();
    let target = Arc::new(Target::new(SwarmState::sample(5, 20, 1)));
    strategy.create_checkpoint(&*target).await.unwrap();
    target.set(SwarmState::sample(5, 20, 2));
    let newest = strategy.create_checkpoint(&*target).await.unwrap();
    let expected = target.get();

    target.set(SwarmState::sample(1, 1, 99));
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &corruption())
        .await;
    assert!(result.success, "{result:?}");
    assert!(!result.continue_recovery);
    assert_eq!(
        result.action,
        RecoveryAction::Restored {
            checkpoint_id: newest
        }
    );
    assert_eq!(result.metadata["checkpoint_id"], newest.to_string());
    assert_eq!(result.metadata["skipped_checkpoints"], "0");
    assert_eq!(target.get(), expected);
}

#[tokio::test]
async fn restore_by_id_takes_that_checkpoint() {
    let strategy = CheckpointRecoveryStrategy::default();
    let target = Target::new(SwarmState::sample(3, 4, 1));
    let first = strategy.create_checkpoint(&target).await.unwrap();
    let first_state = target.get();
    target.set(SwarmState::sample(3, 4, 2));
    strategy.create_checkpoint(&target).await.unwrap();

    let report = strategy
        .restore_from_checkpoint(&target, Some(first))
        .await
        .unwrap();
    assert_eq!(report.checkpoint_id, first);
    assert!(report.skipped.is_empty());
    assert_eq!(target.get(), first_state);
}

#[tokio::test]
async fn a_missing_id_and_an_empty_store_are_clear_errors() {
    let strategy = CheckpointRecoveryStrategy::default();
    let target = Target::new(SwarmState::empty());
    let missing = Uuid::from_u128(42);
    let err = strategy
        .restore_from_checkpoint(&target, Some(missing))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CheckpointError::NotFound { id } if id == missing),
        "{err}"
    );
    assert!(err.to_string().contains(&missing.to_string()));

    let err = strategy
        .restore_from_checkpoint(&target, None)
        .await
        .unwrap_err();
    assert!(matches!(err, CheckpointError::Empty), "{err}");
    assert_eq!(SwarmError::from(err).kind(), ErrorKind::Storage);

    let result = strategy
        .recover(&RecoveryContext::new(Arc::new(target)), &corruption())
        .await;
    assert!(!result.success);
    assert!(result.continue_recovery);
    assert_eq!(result.action, RecoveryAction::None);
    assert!(result.metadata["error"].contains("empty"));
}

#[tokio::test]
async fn retention_keeps_the_newest_n() {
    let dir = tempfile::tempdir().unwrap();
    let (store, strategy) = file_strategy(dir.path(), 3);
    let target = Target::new(SwarmState::sample(2, 2, 0));
    let mut ids = Vec::new();
    for seed in 0..5 {
        target.set(SwarmState::sample(2, 2, seed));
        ids.push(strategy.create_checkpoint(&target).await.unwrap());
    }
    let listed: Vec<Uuid> = store.list().await.unwrap().iter().map(|i| i.id).collect();
    assert_eq!(listed, vec![ids[4], ids[3], ids[2]]);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    assert!(matches!(
        store.get(ids[0]).await,
        Err(CheckpointError::NotFound { .. })
    ));
}

#[tokio::test]
async fn a_damaged_newest_checkpoint_is_passed_over_reported_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let (store, strategy) = file_strategy(dir.path(), 10);
    let target = Arc::new(Target::new(SwarmState::sample(4, 8, 1)));
    let good = strategy.create_checkpoint(&*target).await.unwrap();
    let good_state = target.get();
    target.set(SwarmState::sample(4, 8, 2));
    let bad = strategy.create_checkpoint(&*target).await.unwrap();

    // Flip one payload byte of the newest file.
    let info = store.list().await.unwrap()[0];
    assert_eq!(info.id, bad);
    let path = store.path_of(info);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(logs.clone())
            .with_ansi(false)
            .finish(),
    );
    target.set(SwarmState::empty());
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &corruption())
        .await;
    assert!(result.success, "{result:?}");
    assert_eq!(
        result.action,
        RecoveryAction::Restored {
            checkpoint_id: good
        }
    );
    assert_eq!(result.metadata["skipped_checkpoints"], "1");
    let details = &result.metadata["skipped_checkpoint_details"];
    assert!(
        details.contains(&bad.to_string()) && details.contains("checksum"),
        "{details}"
    );
    assert_eq!(target.get(), good_state);
    let logged = logs.text();
    assert!(
        logged.contains("WARN") && logged.contains(&bad.to_string()),
        "{logged}"
    );

    // Asked for by id, the damaged one is an error, and the target is untouched.
    target.set(SwarmState::empty());
    let err = strategy
        .restore_from_checkpoint(&*target, Some(bad))
        .await
        .unwrap_err();
    assert!(
        matches!(err, CheckpointError::ChecksumMismatch { .. }),
        "{err}"
    );
    assert_eq!(SwarmError::from(err).kind(), ErrorKind::StateCorruption);
    assert_eq!(target.get(), SwarmState::empty());
}

#[tokio::test]
async fn when_every_checkpoint_is_damaged_recovery_fails_and_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let (store, strategy) = file_strategy(dir.path(), 10);
    let target = Arc::new(Target::new(SwarmState::sample(2, 2, 1)));
    for _ in 0..2 {
        strategy.create_checkpoint(&*target).await.unwrap();
    }
    for info in store.list().await.unwrap() {
        let path = store.path_of(info);
        let len = std::fs::metadata(&path).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
    }
    let before = target.get();
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &corruption())
        .await;
    assert!(!result.success);
    assert_eq!(result.metadata["skipped_checkpoints"], "2");
    assert!(result.metadata["skipped_checkpoint_details"].contains("truncated"));
    assert_eq!(target.get(), before);
}

#[tokio::test]
async fn a_checkpoint_of_another_type_is_passed_over() {
    let store = Arc::new(MemoryStore::new());
    let strategy = CheckpointRecoveryStrategy::with_store(store.clone(), 10).unwrap();
    let target = Target::new(SwarmState::sample(2, 3, 7));
    let good = strategy.create_checkpoint(&target).await.unwrap();
    let good_state = target.get();
    // Something else wrote a checkpoint that is intact but is not a SwarmState.
    let other = store
        .put(
            Codec::CURRENT,
            Codec::CURRENT.encode(&"not a swarm").unwrap(),
        )
        .await
        .unwrap();
    target.set(SwarmState::empty());
    let report = strategy
        .restore_from_checkpoint(&target, None)
        .await
        .unwrap();
    assert_eq!(report.checkpoint_id, good);
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].id, other.id);
    assert!(report.skipped[0].reason.contains("decode"));
    assert_eq!(target.get(), good_state);
}

#[tokio::test]
async fn success_needs_the_state_to_equal_the_checkpoint() {
    let strategy = CheckpointRecoveryStrategy::default();
    let target = Arc::new(Target::new(SwarmState::sample(2, 2, 1)));
    let id = strategy.create_checkpoint(&*target).await.unwrap();
    target.set(SwarmState::empty());

    // A restore that reports Ok but changes nothing.
    target.ignore_restore.store(true, Ordering::SeqCst);
    let err = strategy
        .restore_from_checkpoint(&*target, None)
        .await
        .unwrap_err();
    assert!(matches!(err, CheckpointError::VerificationFailed { id: v } if v == id));
    let result = strategy
        .recover(&RecoveryContext::new(target.clone()), &corruption())
        .await;
    assert!(!result.success);
    assert!(result.action_taken.contains("does not equal"));

    // A restore that fails: the target's own error comes back.
    target.ignore_restore.store(false, Ordering::SeqCst);
    target.fail_restore.store(true, Ordering::SeqCst);
    let err = strategy
        .restore_from_checkpoint(&*target, None)
        .await
        .unwrap_err();
    assert!(matches!(
        &err,
        CheckpointError::Target(SwarmError::InvalidConfiguration(_))
    ));
    assert_eq!(
        SwarmError::from(err).kind(),
        ErrorKind::InvalidConfiguration
    );
}

#[tokio::test]
async fn handles_corruption_and_concurrency_only_and_asking_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, strategy) = file_strategy(dir.path(), 10);
    let s: &dyn RecoveryStrategy<Target> = &strategy;
    assert_eq!(s.strategy_id(), "checkpoint_recovery");
    assert_eq!(s.cost_estimate().await, 0.3);
    assert!(s.requires_external_resources().await);
    assert!(
        !CheckpointRecoveryStrategy::default()
            .requires_external_resources()
            .await
    );
    assert!(s.can_handle(&corruption()).await);
    assert!(
        s.can_handle(&SwarmError::ConcurrencyError("lost update".into()))
            .await
    );
    for e in [
        SwarmError::ResourceConflict("gpu".into()),
        SwarmError::CommunicationError("reset".into()),
        SwarmError::InvalidConfiguration("x".into()),
    ] {
        assert!(!s.can_handle(&e).await, "{e}");
    }
    assert!(store.list().await.unwrap().is_empty());

    let target = Arc::new(Target::new(SwarmState::sample(1, 1, 1)));
    strategy.create_checkpoint(&*target).await.unwrap();
    let result = s
        .recover(
            &RecoveryContext::new(target.clone()),
            &SwarmError::CommunicationError("reset".into()),
        )
        .await;
    assert!(!result.success);
    assert!(result.continue_recovery);
}

#[tokio::test]
async fn a_file_from_a_newer_format_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (store, strategy) = file_strategy(dir.path(), 10);
    let target = Target::new(SwarmState::sample(1, 1, 1));
    let id = strategy.create_checkpoint(&target).await.unwrap();
    let path = store.path_of(store.list().await.unwrap()[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = strategy
        .restore_from_checkpoint(&target, Some(id))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CheckpointError::NewerFormatVersion {
                found: 2,
                supported: 1
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer"));
}

#[tokio::test]
async fn the_file_store_reopens_where_it_left_off_and_ignores_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let first = {
        let store = FileStore::open(dir.path()).unwrap();
        store.put(Codec::CURRENT, vec![1, 2, 3]).await.unwrap()
    };
    // A crash left a temp file, and someone dropped other files in.
    let temp = dir
        .path()
        .join(format!(".ckpt-{:020}-{}.ckpt.tmp", 9, Uuid::new_v4()));
    std::fs::File::create(&temp)
        .unwrap()
        .write_all(b"half")
        .unwrap();
    std::fs::write(dir.path().join("README.txt"), "notes").unwrap();
    std::fs::write(dir.path().join("ckpt-1-x.ckpt"), "junk").unwrap();

    let store = FileStore::open(dir.path()).unwrap();
    assert!(!temp.exists(), "temp files are removed on open");
    assert_eq!(store.list().await.unwrap(), vec![first]);
    let second = store.put(Codec::CURRENT, vec![4]).await.unwrap();
    assert!(second.sequence > first.sequence);
    let latest = store.latest().await.unwrap();
    assert_eq!((latest.id, latest.payload), (second.id, vec![4]));
    store.delete(second.id).await.unwrap();
    assert!(matches!(
        store.delete(second.id).await,
        Err(CheckpointError::NotFound { .. })
    ));
    assert_eq!(store.latest().await.unwrap().id, first.id);
}

#[tokio::test]
async fn a_file_renamed_to_another_checkpoint_name_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path()).unwrap();
    let a = store.put(Codec::CURRENT, vec![1]).await.unwrap();
    let b = store.put(Codec::CURRENT, vec![2]).await.unwrap();
    std::fs::copy(store.path_of(a), store.path_of(b)).unwrap();
    let err = store.get(b.id).await.unwrap_err();
    assert!(matches!(err, CheckpointError::Malformed { .. }), "{err}");
    assert_eq!(store.latest().await.unwrap().id, a.id);
}

#[tokio::test]
async fn concurrent_checkpoints_all_commit_with_distinct_sequences() {
    let dir = tempfile::tempdir().unwrap();
    let (store, strategy) = file_strategy(dir.path(), 100);
    let strategy = Arc::new(strategy);
    let target = Arc::new(Target::new(SwarmState::sample(2, 2, 1)));
    let mut handles = Vec::new();
    for _ in 0..8 {
        let (s, t) = (strategy.clone(), target.clone());
        handles.push(tokio::spawn(async move { s.create_checkpoint(&*t).await }));
    }
    for h in handles {
        h.await.unwrap().unwrap();
    }
    let listed = store.list().await.unwrap();
    assert_eq!(listed.len(), 8);
    let mut seqs: Vec<u64> = listed.iter().map(|i| i.sequence).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 8);
}

/// A tracing writer into a shared buffer.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;
    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}
