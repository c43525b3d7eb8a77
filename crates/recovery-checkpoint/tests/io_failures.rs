//! Injected failures of each step of a durable write: reported as errors, never as a committed
//! checkpoint, and leaving nothing that a later load could take for a checkpoint.

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use recovery_checkpoint::{CheckpointError, CheckpointStore, Codec, FileIo, FileStore};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Step {
    Create,
    Write,
    PartialWrite,
    Fsync,
    Rename,
    RenameThenFail,
    DirFsync,
}

/// Real I/O, except that `step` fails while `armed` is set.
#[derive(Debug)]
struct Failing {
    step: Step,
    armed: AtomicBool,
}

fn injected() -> io::Error {
    io::Error::other("injected failure")
}

impl Failing {
    fn fails(&self, step: Step) -> bool {
        self.step == step && self.armed.load(Ordering::SeqCst)
    }
}

impl FileIo for Failing {
    fn create(&self, path: &Path) -> io::Result<File> {
        if self.fails(Step::Create) {
            return Err(io::Error::from(io::ErrorKind::PermissionDenied));
        }
        File::options().write(true).create_new(true).open(path)
    }

    fn write(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        if self.fails(Step::Write) {
            return Err(injected());
        }
        if self.fails(Step::PartialWrite) && bytes.len() > 1 {
            file.write_all(&bytes[..bytes.len() / 2])?;
            return Err(io::Error::from(io::ErrorKind::StorageFull));
        }
        file.write_all(bytes)
    }

    fn sync_file(&self, file: &File) -> io::Result<()> {
        if self.fails(Step::Fsync) {
            return Err(injected());
        }
        file.sync_data()
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        if self.fails(Step::Rename) {
            return Err(injected());
        }
        std::fs::rename(from, to)?;
        if self.fails(Step::RenameThenFail) {
            return Err(injected());
        }
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if self.fails(Step::DirFsync) {
            return Err(injected());
        }
        File::open(dir)?.sync_all()
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

async fn check(step: Step, op: &str) {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(Failing {
        step,
        armed: AtomicBool::new(false),
    });
    let store = FileStore::open_with_io(dir.path(), io.clone()).unwrap();
    let good = store.put(Codec::CURRENT, vec![7; 300]).await.unwrap();
    let before = names(dir.path());

    io.armed.store(true, Ordering::SeqCst);
    let err = store.put(Codec::CURRENT, vec![9; 5000]).await.unwrap_err();
    io.armed.store(false, Ordering::SeqCst);
    match (&err, step) {
        (CheckpointError::DirectoryNotWritable { .. }, Step::Create) => {}
        (CheckpointError::Io { op: got, .. }, _) => assert_eq!(*got, op, "{step:?}: {err}"),
        _ => panic!("{step:?}: unexpected error {err}"),
    }

    // Nothing new on disk, nothing new listed; the old checkpoint is still the latest.
    assert_eq!(names(dir.path()), before, "{step:?}");
    assert_eq!(store.list().await.unwrap(), vec![good], "{step:?}");
    assert_eq!(store.latest().await.unwrap().id, good.id, "{step:?}");
    let reopened = FileStore::open(dir.path()).unwrap();
    assert_eq!(reopened.latest().await.unwrap().id, good.id, "{step:?}");

    // The next write works, with a fresh, higher sequence number.
    let next = store.put(Codec::CURRENT, vec![1; 10]).await.unwrap();
    assert!(next.sequence > good.sequence + 1, "{step:?}");
    assert_eq!(store.latest().await.unwrap().payload, vec![1; 10]);
}

#[tokio::test]
async fn a_failed_create_is_a_not_writable_error() {
    check(Step::Create, "create").await;
}

#[tokio::test]
async fn a_failed_write_is_an_error_and_leaves_nothing() {
    check(Step::Write, "write").await;
}

#[tokio::test]
async fn a_partial_write_is_an_error_and_leaves_nothing() {
    check(Step::PartialWrite, "write").await;
}

#[tokio::test]
async fn a_failed_fsync_is_an_error_and_leaves_nothing() {
    check(Step::Fsync, "fsync").await;
}

#[tokio::test]
async fn a_failed_rename_is_an_error_and_leaves_nothing() {
    check(Step::Rename, "rename").await;
}

#[tokio::test]
async fn a_rename_that_happened_but_reported_failure_is_withdrawn() {
    check(Step::RenameThenFail, "rename").await;
}

#[tokio::test]
async fn a_failed_directory_fsync_is_an_error_and_the_checkpoint_is_withdrawn() {
    check(Step::DirFsync, "fsync directory").await;
}

#[test]
fn a_directory_that_cannot_be_written_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let io = Arc::new(Failing {
        step: Step::Create,
        armed: AtomicBool::new(true),
    });
    let err = FileStore::open_with_io(dir.path(), io).unwrap_err();
    assert!(
        matches!(&err, CheckpointError::DirectoryNotWritable { dir: d, .. } if d == dir.path()),
        "{err}"
    );
    assert!(err.to_string().contains("not writable"));
    assert!(names(dir.path()).is_empty());
}

#[test]
fn a_directory_under_a_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    assert!(FileStore::open(file.join("checkpoints")).is_err());
}
