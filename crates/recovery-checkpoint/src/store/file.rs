//! Checkpoints kept as files in one directory.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use async_trait::async_trait;
use uuid::Uuid;

use super::{Checkpoint, CheckpointInfo, CheckpointStore, blocking};
use crate::codec::Codec;
use crate::error::CheckpointError;
use crate::format::{self, HEADER_LEN, Header};

/// The file-system calls a [`FileStore`] makes to write a checkpoint, as a seam: tests pass an
/// implementation that fails one of them to check that the failure is reported and leaves
/// nothing behind. Every method has the real behaviour as its default body, so
/// [`RealFileIo`] is just `impl FileIo for RealFileIo {}`.
///
/// ```
/// use std::{io, path::Path};
/// use recovery_checkpoint::FileIo;
///
/// /// A disk whose directory fsync always fails.
/// #[derive(Debug)]
/// struct BadDirSync;
///
/// impl FileIo for BadDirSync {
///     fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
///         Err(io::Error::other("injected"))
///     }
/// }
/// ```
pub trait FileIo: Send + Sync + fmt::Debug {
    /// Create a new file at `path` for writing; it must not exist yet.
    fn create(&self, path: &Path) -> io::Result<File> {
        OpenOptions::new().write(true).create_new(true).open(path)
    }

    /// Write all of `bytes` to `file`.
    fn write(&self, file: &mut File, bytes: &[u8]) -> io::Result<()> {
        file.write_all(bytes)
    }

    /// Flush `file`'s contents and length to the device (`fdatasync`).
    fn sync_file(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    /// Rename `from` to `to` (atomically, within one directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    /// Flush the directory `dir` (its entries) to the device.
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// The real file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFileIo;

impl FileIo for RealFileIo {}

/// A store that keeps each checkpoint as one file in a directory: the embedded default for a
/// checkpoint that must outlive the process.
///
/// # Directory layout
///
/// ```text
/// <dir>/ckpt-00000000000000000042-67e55044-10b1-426f-9247-bb680e5fe0c8.ckpt   a checkpoint
/// <dir>/.ckpt-00000000000000000043-<uuid>.ckpt.tmp                            being written
/// ```
///
/// A checkpoint's name holds its sequence number (20 digits, so names sort in order) and its
/// id; its header holds both again, and a file whose header and name disagree is refused. Only
/// names of exactly that form are checkpoints: temp files (leading dot, `.tmp`) and any other
/// file are never listed or returned. Temp files left by a crash are removed by
/// [`FileStore::open`]. The file format is described in [`crate::format`].
///
/// # Writing
///
/// `put` writes the header and payload to a temp file in the same directory, fsyncs it
/// (`fdatasync`), renames it to its final name, and fsyncs the directory, as PostgreSQL's
/// `durable_rename` does. Only then does it return. If any step fails, `put` returns the error,
/// removes what it wrote (the temp file, or the renamed file if the directory fsync failed), and
/// never retries an fsync: after a failed fsync the kernel may have dropped the data, so that
/// checkpoint is failed and the next one is written afresh.
///
/// # What is promised, and what is not
///
/// - **Atomic against a process crash**: a reader (this process after a restart, or another
///   one) sees the old set of checkpoints or the new one, never a torn file under a checkpoint
///   name. The crate's crash test kills a writer with SIGKILL hundreds of times to check it.
/// - **Durable after `put` returns**, as far as `fsync` is: on a disk that honours flushes,
///   the checkpoint survives power loss.
/// - Not promised: durability on hardware or virtual disks that acknowledge a flush they have
///   not done (then a power loss can lose the newest checkpoints, or damage one; damage is
///   detected by the checksum and that checkpoint is passed over). Deletions (retention) are
///   not fsynced, so after a power loss an old checkpoint may reappear; it is older, so it
///   never masks a newer one.
/// - Not supported: several processes writing to one directory at once. Sequence numbers are
///   assigned in memory from the names found at `open`, so two writers could assign the same
///   number. One writer and any number of readers are fine.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    io: Arc<dyn FileIo>,
    next_sequence: AtomicU64,
}

const PREFIX: &str = "ckpt-";
/// How much of a payload is read (and checksummed) at a time.
const READ_CHUNK: u64 = 256 << 10;
const SUFFIX: &str = ".ckpt";
const TEMP_PREFIX: &str = ".ckpt-";
const TEMP_SUFFIX: &str = ".tmp";

fn file_name(info: CheckpointInfo) -> String {
    format!("{PREFIX}{:020}-{}{SUFFIX}", info.sequence, info.id)
}

/// The checkpoint a file name names, if it is exactly a checkpoint name.
fn parse_name(name: &str) -> Option<CheckpointInfo> {
    let rest = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (seq, id) = rest.split_once('-')?;
    if seq.len() != 20 || !seq.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let info = CheckpointInfo {
        id: Uuid::try_parse(id).ok()?,
        sequence: seq.parse().ok()?,
    };
    // Only the canonical spelling (lowercase, hyphenated) counts.
    (file_name(info) == name).then_some(info)
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> CheckpointError + 'p {
    move |source| CheckpointError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

fn not_writable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

impl FileStore {
    /// Open (creating it if needed) the store in `dir`, with the real file system.
    ///
    /// This does blocking I/O: it creates the directory, checks that a file can be created in
    /// it, removes temp files a crash left behind, and finds the highest sequence number. Call
    /// it at start-up, or inside `spawn_blocking`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::DirectoryNotWritable`] if the directory cannot be created or written;
    /// [`CheckpointError::Io`] if it cannot be read.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        Self::open_with_io(dir, Arc::new(RealFileIo))
    }

    /// [`FileStore::open`], writing through `io` (a test seam).
    ///
    /// # Errors
    ///
    /// As [`FileStore::open`].
    pub fn open_with_io(
        dir: impl Into<PathBuf>,
        io: Arc<dyn FileIo>,
    ) -> Result<Self, CheckpointError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|source| {
            if not_writable(&source) {
                CheckpointError::DirectoryNotWritable {
                    dir: dir.clone(),
                    source,
                }
            } else {
                CheckpointError::Io {
                    op: "create directory",
                    path: dir.clone(),
                    source,
                }
            }
        })?;
        let mut highest = 0;
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if is_temp_name(&name) {
                let path = entry.path();
                match fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "removed a checkpoint temp file left by an earlier run")
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot remove a checkpoint temp file")
                    }
                }
            } else if let Some(info) = parse_name(&name) {
                highest = highest.max(info.sequence);
            }
        }
        // Check now, with a clear error, that checkpoints can be written here.
        let probe = dir.join(format!(
            "{TEMP_PREFIX}probe-{}{TEMP_SUFFIX}",
            Uuid::new_v4()
        ));
        match io.create(&probe) {
            Ok(file) => {
                drop(file);
                let _ = fs::remove_file(&probe);
            }
            Err(source) if not_writable(&source) => {
                return Err(CheckpointError::DirectoryNotWritable { dir, source });
            }
            Err(source) => {
                return Err(CheckpointError::Io {
                    op: "create",
                    path: probe,
                    source,
                });
            }
        }
        Ok(Self {
            dir,
            io,
            next_sequence: AtomicU64::new(highest + 1),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of the file that holds checkpoint `info` (whether or not it exists).
    pub fn path_of(&self, info: CheckpointInfo) -> PathBuf {
        self.dir.join(file_name(info))
    }

    fn scan(dir: &Path) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
            let entry = entry.map_err(io_err("read directory", dir))?;
            if let Some(info) = entry.file_name().to_str().and_then(parse_name) {
                found.push(info);
            }
        }
        found.sort_unstable_by(|a, b| b.sequence.cmp(&a.sequence).then(b.id.cmp(&a.id)));
        Ok(found)
    }

    fn find(dir: &Path, id: Uuid) -> Result<CheckpointInfo, CheckpointError> {
        Self::scan(dir)?
            .into_iter()
            .find(|info| info.id == id)
            .ok_or(CheckpointError::NotFound { id })
    }

    /// Read and check the file of checkpoint `info`.
    fn read(path: &Path, info: CheckpointInfo) -> Result<Checkpoint, CheckpointError> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CheckpointError::NotFound { id: info.id });
            }
            Err(e) => return Err(io_err("open", path)(e)),
        };
        let file_len = file.metadata().map_err(io_err("stat", path))?.len();
        let mut head = Vec::with_capacity(HEADER_LEN);
        (&mut file)
            .take(HEADER_LEN as u64)
            .read_to_end(&mut head)
            .map_err(io_err("read", path))?;
        // Checks the declared payload length against the file's own length before any
        // allocation is sized by it.
        let header = Header::parse(&head, file_len)?;
        // One buffer of exactly the payload's size, read a chunk at a time; each chunk goes
        // through the checksum while it is still in the cache.
        let mut payload = Vec::with_capacity(header.payload_len as usize);
        let mut crc = header.checksum_seed();
        let mut rest = file.take(header.payload_len);
        loop {
            let start = payload.len();
            let n = (&mut rest)
                .take(READ_CHUNK)
                .read_to_end(&mut payload)
                .map_err(io_err("read", path))?;
            if n == 0 {
                break;
            }
            crc = crc32c::crc32c_append(crc, &payload[start..]);
        }
        let header = header.verify_computed(payload.len() as u64, crc)?;
        if header.id != info.id || header.sequence != info.sequence {
            return Err(CheckpointError::Malformed {
                reason: format!(
                    "the header names checkpoint {} #{}, the file name {} #{}",
                    header.id, header.sequence, info.id, info.sequence
                ),
            });
        }
        Ok(Checkpoint {
            id: header.id,
            sequence: header.sequence,
            created_at: header.created_at,
            codec: header.codec,
            payload,
        })
    }

    /// Write `header` and `payload` durably under `info`'s name; on failure remove what was
    /// written.
    fn write_durably(
        io: &dyn FileIo,
        dir: &Path,
        info: CheckpointInfo,
        header: &[u8],
        payload: &[u8],
    ) -> Result<(), CheckpointError> {
        let name = file_name(info);
        let temp = dir.join(format!(".{name}{TEMP_SUFFIX}"));
        let target = dir.join(&name);
        let remove = |path: &Path| match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a failed checkpoint file")
            }
        };
        let mut file = io.create(&temp).map_err(|source| {
            if not_writable(&source) {
                CheckpointError::DirectoryNotWritable {
                    dir: dir.to_owned(),
                    source,
                }
            } else {
                io_err("create", &temp)(source)
            }
        })?;
        let written = io
            .write(&mut file, header)
            .and_then(|()| io.write(&mut file, payload))
            .map_err(io_err("write", &temp))
            .and_then(|()| io.sync_file(&file).map_err(io_err("fsync", &temp)));
        drop(file);
        if let Err(e) = written {
            remove(&temp);
            return Err(e);
        }
        if let Err(source) = io.rename(&temp, &target) {
            remove(&temp);
            // A rename that reports failure may still have happened.
            remove(&target);
            return Err(CheckpointError::Io {
                op: "rename",
                path: target,
                source,
            });
        }
        if let Err(source) = io.sync_dir(dir) {
            // The rename may not be durable: withdraw the checkpoint rather than report a
            // checkpoint whose durability is unknown.
            remove(&target);
            return Err(CheckpointError::Io {
                op: "fsync directory",
                path: dir.to_owned(),
                source,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl CheckpointStore for FileStore {
    async fn put(&self, codec: Codec, payload: Vec<u8>) -> Result<CheckpointInfo, CheckpointError> {
        let info = CheckpointInfo {
            id: Uuid::new_v4(),
            sequence: self.next_sequence.fetch_add(1, Ordering::SeqCst),
        };
        let header =
            format::encode_header(info.id, info.sequence, SystemTime::now(), codec, &payload)?;
        let io = Arc::clone(&self.io);
        let dir = self.dir.clone();
        blocking("write", move || {
            Self::write_durably(&*io, &dir, info, &header, &payload)
        })
        .await?;
        Ok(info)
    }

    async fn get(&self, id: Uuid) -> Result<Checkpoint, CheckpointError> {
        let dir = self.dir.clone();
        blocking("read", move || {
            let info = Self::find(&dir, id)?;
            Self::read(&dir.join(file_name(info)), info)
        })
        .await
    }

    async fn list(&self) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        let dir = self.dir.clone();
        blocking("list", move || Self::scan(&dir)).await
    }

    async fn delete(&self, id: Uuid) -> Result<(), CheckpointError> {
        let dir = self.dir.clone();
        blocking("delete", move || {
            let path = dir.join(file_name(Self::find(&dir, id)?));
            match fs::remove_file(&path) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    Err(CheckpointError::NotFound { id })
                }
                Err(e) => Err(io_err("delete", &path)(e)),
            }
        })
        .await
    }

    /// One directory scan and one trip to the blocking pool for the whole retention, where
    /// the trait's default lists and then finds each file again.
    async fn retain_newest(&self, keep: usize) -> Result<Vec<CheckpointInfo>, CheckpointError> {
        let dir = self.dir.clone();
        blocking("delete", move || {
            let mut deleted = Vec::new();
            for info in Self::scan(&dir)?.into_iter().skip(keep) {
                let path = dir.join(file_name(info));
                match fs::remove_file(&path) {
                    // Deleted meanwhile by someone else: the goal is met.
                    Ok(()) => deleted.push(info),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => deleted.push(info),
                    Err(e) => return Err(io_err("delete", &path)(e)),
                }
            }
            Ok(deleted)
        })
        .await
    }

    fn uses_external_resources(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_exact_names_count() {
        let info = CheckpointInfo {
            id: Uuid::from_u128(0xabc),
            sequence: 42,
        };
        let name = file_name(info);
        assert_eq!(parse_name(&name), Some(info));
        assert_eq!(parse_name(&format!(".{name}.tmp")), None);
        assert_eq!(parse_name(&name.to_uppercase()), None);
        assert_eq!(parse_name(&name.replace("-0000", "-000x")), None);
        assert_eq!(parse_name("ckpt-1-x.ckpt"), None);
        assert!(is_temp_name(&format!(".{name}.tmp")));
    }
}
