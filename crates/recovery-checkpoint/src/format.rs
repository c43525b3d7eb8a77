//! The checkpoint file format: a fixed 64-byte header, then the payload.
//!
//! | offset | size | field | notes |
//! |---|---|---|---|
//! | 0 | 8 | magic | `SWRMCKPT` |
//! | 8 | 2 | format version | [`FORMAT_VERSION`]; a reader refuses a newer one |
//! | 10 | 2 | codec id | see [`Codec`] |
//! | 12 | 4 | reserved | zero |
//! | 16 | 8 | sequence number | also in the file name; orders checkpoints |
//! | 24 | 16 | checkpoint id | a uuid; also in the file name |
//! | 40 | 8 | created at | nanoseconds since the Unix epoch |
//! | 48 | 8 | payload length | must equal the file's length minus 64 |
//! | 56 | 4 | reserved | zero |
//! | 60 | 4 | checksum | crc32c of bytes 0..60 and of the payload |
//!
//! All integers are little-endian. The magic and the version come first and stay where they are
//! in every later version, so an old reader can always say "this file is newer than me".
//!
//! The checksum covers the whole file except itself, so any change of a single byte, and any
//! burst of changes within 32 bits, is detected (a CRC property); a truncated or extended file
//! is detected by its length before anything else is trusted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use uuid::Uuid;

use crate::codec::Codec;
use crate::error::CheckpointError;
use crate::store::Checkpoint;

/// The bytes every checkpoint file starts with.
pub const MAGIC: [u8; 8] = *b"SWRMCKPT";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;
/// The length of the header.
pub const HEADER_LEN: usize = 64;
/// The largest payload written or read: 1 GiB.
pub const MAX_PAYLOAD_LEN: u64 = 1 << 30;

const CRC_AT: usize = 60;

/// A checkpoint's header, parsed and checked for internal consistency (not yet against the
/// payload: see [`Header::verify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The payload codec.
    pub codec: Codec,
    /// The sequence number.
    pub sequence: u64,
    /// The checkpoint id.
    pub id: Uuid,
    /// When it was created.
    pub created_at: SystemTime,
    /// The payload's length.
    pub payload_len: u64,
    /// The stored crc32c.
    pub checksum: u32,
    /// The header's raw bytes, which the checksum covers.
    raw: [u8; HEADER_LEN],
}

fn nanos_since_epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The time `t` as the header stores it (nanoseconds since the epoch, clamped to `u64`), so
/// that what is written and what is read back compare equal.
pub fn stored_time(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(nanos_since_epoch(t))
}

/// The header for a checkpoint with this payload.
///
/// # Errors
///
/// [`CheckpointError::SizeLimitExceeded`] if the payload exceeds [`MAX_PAYLOAD_LEN`].
pub fn encode_header(
    id: Uuid,
    sequence: u64,
    created_at: SystemTime,
    codec: Codec,
    payload: &[u8],
) -> Result<[u8; HEADER_LEN], CheckpointError> {
    let len = payload.len() as u64;
    if len > MAX_PAYLOAD_LEN {
        return Err(CheckpointError::SizeLimitExceeded {
            len,
            limit: MAX_PAYLOAD_LEN,
        });
    }
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[10..12].copy_from_slice(&codec.id().to_le_bytes());
    h[16..24].copy_from_slice(&sequence.to_le_bytes());
    h[24..40].copy_from_slice(id.as_bytes());
    h[40..48].copy_from_slice(&nanos_since_epoch(created_at).to_le_bytes());
    h[48..56].copy_from_slice(&len.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&h[..CRC_AT]), payload);
    h[CRC_AT..].copy_from_slice(&crc.to_le_bytes());
    Ok(h)
}

fn u16_at(h: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([h[at], h[at + 1]])
}

fn u32_at(h: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&h[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(h: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[at..at + 8]);
    u64::from_le_bytes(b)
}

impl Header {
    /// Parse the header of a file of `file_len` bytes whose first bytes are `bytes` (at least
    /// [`HEADER_LEN`] of them if the file has that many).
    ///
    /// Checks, in order: length, magic, version, the declared payload length against the limit
    /// and against the file's own length. The checksum, the codec id and the reserved fields
    /// are checked by [`Header::verify`], once the payload has been read.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Truncated`], [`CheckpointError::Malformed`],
    /// [`CheckpointError::NewerFormatVersion`], [`CheckpointError::SizeLimitExceeded`].
    pub fn parse(bytes: &[u8], file_len: u64) -> Result<Self, CheckpointError> {
        let Some(h) = bytes.get(..HEADER_LEN) else {
            return Err(CheckpointError::Truncated {
                expected: HEADER_LEN as u64,
                actual: file_len,
            });
        };
        if h[0..8] != MAGIC {
            return Err(CheckpointError::Malformed {
                reason: "bad magic: not a checkpoint file".into(),
            });
        }
        match u16_at(h, 8) {
            0 => {
                return Err(CheckpointError::Malformed {
                    reason: "format version 0".into(),
                });
            }
            v if v > FORMAT_VERSION => {
                return Err(CheckpointError::NewerFormatVersion {
                    found: v,
                    supported: FORMAT_VERSION,
                });
            }
            _ => {}
        }
        let payload_len = u64_at(h, 48);
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(CheckpointError::SizeLimitExceeded {
                len: payload_len,
                limit: MAX_PAYLOAD_LEN,
            });
        }
        let expected = HEADER_LEN as u64 + payload_len;
        if file_len < expected {
            return Err(CheckpointError::Truncated {
                expected,
                actual: file_len,
            });
        }
        if file_len > expected {
            return Err(CheckpointError::Malformed {
                reason: format!(
                    "{} bytes after the {payload_len}-byte payload",
                    file_len - expected
                ),
            });
        }
        let mut raw = [0u8; HEADER_LEN];
        raw.copy_from_slice(h);
        let mut id = [0u8; 16];
        id.copy_from_slice(&h[24..40]);
        Ok(Header {
            // Checked in `verify`, after the checksum, so damage reads as damage.
            codec: Codec::CURRENT,
            sequence: u64_at(h, 16),
            id: Uuid::from_bytes(id),
            created_at: UNIX_EPOCH + Duration::from_nanos(u64_at(h, 40)),
            payload_len,
            checksum: u32_at(h, CRC_AT),
            raw,
        })
    }

    /// Check the payload against the header: its length, the checksum over both, then the
    /// reserved fields and the codec id. Returns the header with its codec set.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Truncated`], [`CheckpointError::ChecksumMismatch`],
    /// [`CheckpointError::Malformed`], [`CheckpointError::UnknownCodec`].
    pub fn verify(self, payload: &[u8]) -> Result<Self, CheckpointError> {
        let computed = crc32c::crc32c_append(self.checksum_seed(), payload);
        self.verify_computed(payload.len() as u64, computed)
    }

    /// The checksum of the header's own bytes, to continue over the payload
    /// (`crc32c_append`) as it is read.
    pub(crate) fn checksum_seed(&self) -> u32 {
        crc32c::crc32c(&self.raw[..CRC_AT])
    }

    /// [`Header::verify`] for a payload of `payload_len` bytes whose checksum, continued from
    /// [`Header::checksum_seed`], is `computed`.
    pub(crate) fn verify_computed(
        mut self,
        payload_len: u64,
        computed: u32,
    ) -> Result<Self, CheckpointError> {
        if payload_len != self.payload_len {
            return Err(CheckpointError::Truncated {
                expected: HEADER_LEN as u64 + self.payload_len,
                actual: HEADER_LEN as u64 + payload_len,
            });
        }
        if computed != self.checksum {
            return Err(CheckpointError::ChecksumMismatch {
                stored: self.checksum,
                computed,
            });
        }
        if u32_at(&self.raw, 12) != 0 || u32_at(&self.raw, 56) != 0 {
            return Err(CheckpointError::Malformed {
                reason: "reserved header fields are not zero".into(),
            });
        }
        self.codec = Codec::from_id(u16_at(&self.raw, 10))?;
        Ok(self)
    }
}

/// A whole checkpoint file: header and payload.
///
/// # Errors
///
/// [`CheckpointError::SizeLimitExceeded`] if the payload is over [`MAX_PAYLOAD_LEN`].
pub fn encode(checkpoint: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let header = encode_header(
        checkpoint.id,
        checkpoint.sequence,
        checkpoint.created_at,
        checkpoint.codec,
        &checkpoint.payload,
    )?;
    let mut out = Vec::with_capacity(HEADER_LEN + checkpoint.payload.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&checkpoint.payload);
    Ok(out)
}

/// Parse and verify a whole checkpoint file. Any damage (a changed byte, a truncation, extra
/// bytes) is an error; nothing is trusted before it is checked.
///
/// ```
/// use std::time::SystemTime;
/// use recovery_checkpoint::{format, Checkpoint, Codec};
///
/// let checkpoint = Checkpoint {
///     id: uuid::Uuid::from_u128(7),
///     sequence: 3,
///     created_at: format::stored_time(SystemTime::now()),
///     codec: Codec::CURRENT,
///     payload: vec![1, 2, 3],
/// };
/// let mut file = format::encode(&checkpoint).unwrap();
/// assert_eq!(format::decode(&file).unwrap(), checkpoint);
///
/// assert!(format::decode(&file[..66]).is_err());
/// file[65] ^= 0x10;
/// assert!(format::decode(&file).is_err());
/// ```
///
/// # Errors
///
/// As [`Header::parse`] and [`Header::verify`].
pub fn decode(file: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let header = Header::parse(file, file.len() as u64)?;
    let payload = &file[HEADER_LEN..];
    let header = header.verify(payload)?;
    Ok(Checkpoint {
        id: header.id,
        sequence: header.sequence,
        created_at: header.created_at,
        codec: header.codec,
        payload: payload.to_vec(),
    })
}
