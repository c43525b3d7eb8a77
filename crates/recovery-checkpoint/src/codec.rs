//! The one module that knows how a state becomes bytes: serde with bincode 2 (`=2.0.1`), its
//! standard configuration (little-endian, variable-length integers).
//!
//! Everything codec-specific stays here, behind [`Codec`], whose id is written into every file
//! header: switching to another codec is a new variant and a new id, and old files still name
//! the codec they were written with.
//!
//! # Decoding untrusted bytes
//!
//! bincode's standard configuration has no size limit, and its serde path trusts each length
//! prefix for the capacity it pre-allocates. So decoding here:
//!
//! - sets bincode's byte limit (`with_limit`) to a small multiple of the payload's own length,
//!   which bounds what a string or byte field can claim before it is read;
//! - reads through a guard that refuses any sequence or map whose declared length exceeds the
//!   payload's whole length (every element takes at least one byte), before anything is
//!   allocated for it, and hands serde a capacity hint no larger than a sixteenth of that
//!   length; a collection that declares more elements than the bytes that follow it hold fails
//!   when those bytes run out, having allocated only for the elements it decoded and that hint;
//! - refuses trailing bytes after the state.
//!
//! It decodes with bincode's own slice decoder, the one `bincode::serde::decode_from_slice`
//! uses (`seed_decode_from_slice`, with the guard as the seed), and asks it for every string
//! and byte field as a borrowed slice of the payload, owned `String`s and byte buffers too
//! (bincode's owned path would allocate and zero a buffer of the declared length before it
//! knows the bytes are there): a length that runs past the end of the payload fails before
//! anything is allocated for it, and a good one costs one allocation of exactly its size. The
//! guard checks against the payload's length, a constant, rather than the bytes left, which
//! would need a reader of its own that counts every byte. So a guarded decode costs little
//! more than a raw one (`benches/README.md` has the figures).
//!
//! The one consequence for state types: a collection of zero-sized elements (`Vec<()>`) longer
//! than the payload is refused. Checkpoint states have no such fields.

use std::fmt;
use std::marker::PhantomData;

use bincode::config::{self, Config};
use bincode::error::DecodeError;
use serde::Serialize;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Deserializer, Visitor};

use crate::error::CheckpointError;
use crate::format::MAX_PAYLOAD_LEN;

/// How a checkpoint's payload is encoded; its id is stored in the file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// serde through bincode 2.0.1, `config::standard()` (id 1).
    Bincode2,
}

impl Codec {
    /// The codec new checkpoints are written with.
    pub const CURRENT: Codec = Codec::Bincode2;

    /// The id stored in the file header.
    pub const fn id(self) -> u16 {
        match self {
            Codec::Bincode2 => 1,
        }
    }

    /// The codec with this id.
    pub fn from_id(id: u16) -> Result<Self, CheckpointError> {
        match id {
            1 => Ok(Codec::Bincode2),
            id => Err(CheckpointError::UnknownCodec { id }),
        }
    }

    /// Encode `state`.
    ///
    /// # Errors
    ///
    /// [`CheckpointError::Encode`] if serde fails (a map with non-string keys is fine; a
    /// `Serialize` impl that returns an error is not), [`CheckpointError::SizeLimitExceeded`]
    /// if the payload exceeds [`MAX_PAYLOAD_LEN`].
    pub fn encode<S: Serialize + ?Sized>(self, state: &S) -> Result<Vec<u8>, CheckpointError> {
        self.encode_with_capacity(state, 0)
    }

    /// [`Codec::encode`] into a buffer allocated with room for `capacity` bytes: given the
    /// size of the previous checkpoint, a payload of about that size is written without the
    /// buffer being moved and copied as it grows.
    ///
    /// # Errors
    ///
    /// As [`Codec::encode`].
    pub fn encode_with_capacity<S: Serialize + ?Sized>(
        self,
        state: &S,
        capacity: usize,
    ) -> Result<Vec<u8>, CheckpointError> {
        match self {
            Codec::Bincode2 => {
                let capacity = capacity.min(MAX_PAYLOAD_LEN as usize);
                let mut bytes = Vec::with_capacity(capacity);
                bincode::serde::encode_into_std_write(state, &mut bytes, config::standard())
                    .map_err(|e| CheckpointError::Encode {
                        reason: e.to_string(),
                    })?;
                if bytes.len() as u64 > MAX_PAYLOAD_LEN {
                    return Err(CheckpointError::SizeLimitExceeded {
                        len: bytes.len() as u64,
                        limit: MAX_PAYLOAD_LEN,
                    });
                }
                Ok(bytes)
            }
        }
    }

    /// Decode a state from `bytes`, which must hold exactly one encoded state.
    ///
    /// Never panics and never allocates more than a small multiple of `bytes.len()` for
    /// lengths the input declares (see the module docs).
    ///
    /// # Errors
    ///
    /// [`CheckpointError::SizeLimitExceeded`] for a payload over [`MAX_PAYLOAD_LEN`],
    /// [`CheckpointError::Decode`] for anything that is not exactly one valid `S`.
    pub fn decode<S: DeserializeOwned>(self, bytes: &[u8]) -> Result<S, CheckpointError> {
        match self {
            Codec::Bincode2 => decode_bincode(bytes),
        }
    }
}

/// bincode counts every primitive it decodes against the limit at its in-memory size (a `u128`
/// written as one varint byte claims 16 bytes), so a valid payload claims at most 16 times its
/// length. The limit is a const generic; pick the smallest of these powers of four that fits.
const CLAIM_PER_BYTE: u64 = 16;

fn decode_bincode<S: DeserializeOwned>(bytes: &[u8]) -> Result<S, CheckpointError> {
    let len = bytes.len() as u64;
    if len > MAX_PAYLOAD_LEN {
        return Err(CheckpointError::SizeLimitExceeded {
            len,
            limit: MAX_PAYLOAD_LEN,
        });
    }
    let needed = (len * CLAIM_PER_BYTE).max(1 << 12);
    macro_rules! with_limit {
        ($($shift:literal),*) => {
            $(
                if needed <= 1u64 << $shift {
                    return decode_with(bytes, config::standard().with_limit::<{ 1usize << $shift }>());
                }
            )*
        };
    }
    with_limit!(12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34);
    // Unreachable while MAX_PAYLOAD_LEN * CLAIM_PER_BYTE <= 2^34, which is checked at compile
    // time below.
    Err(CheckpointError::SizeLimitExceeded {
        len,
        limit: MAX_PAYLOAD_LEN,
    })
}

const _: () = assert!(MAX_PAYLOAD_LEN * CLAIM_PER_BYTE <= 1 << 34);

fn decode_with<S: DeserializeOwned, C: Config>(bytes: &[u8], cfg: C) -> Result<S, CheckpointError> {
    // bincode's own slice decoder, as `bincode::serde::decode_from_slice` uses: strings and
    // byte fields reach serde as slices of the payload. The guard wraps the deserializer it
    // builds, from the root down.
    let root = GuardSeed {
        inner: PhantomData::<S>,
        payload_len: bytes.len(),
    };
    let (value, read) =
        bincode::serde::seed_decode_from_slice(root, bytes, cfg).map_err(|e: DecodeError| {
            CheckpointError::Decode {
                reason: e.to_string(),
            }
        })?;
    match bytes.len() - read {
        0 => Ok(value),
        n => Err(CheckpointError::Decode {
            reason: format!("{n} bytes left over after the state"),
        }),
    }
}

/// Of the payload's bytes, how many each pre-allocated element must be backed by: serde gets a
/// capacity hint of at most `payload_len / PREALLOC_BYTES_PER_ELEMENT`. Larger collections still
/// decode; they grow as elements arrive.
const PREALLOC_BYTES_PER_ELEMENT: usize = 16;

fn capped_hint(hint: Option<usize>, payload_len: usize) -> Option<usize> {
    hint.map(|n| n.min(payload_len / PREALLOC_BYTES_PER_ELEMENT))
}

fn check_len<E: de::Error>(len: Option<usize>, payload_len: usize) -> Result<(), E> {
    match len {
        Some(n) if n > payload_len => Err(E::custom(format_args!(
            "a collection declares {n} elements but the whole payload has only {payload_len} bytes"
        ))),
        _ => Ok(()),
    }
}

/// A deserializer that forwards to bincode's, checking every input-declared collection length.
struct Guard<D> {
    inner: D,
    payload_len: usize,
}

/// A visitor that forwards to the caller's, wrapping the accessors it is handed.
struct GuardVisitor<V> {
    inner: V,
    payload_len: usize,
    /// Whether a sequence's length came from the input (`deserialize_seq`), not from the type
    /// (`deserialize_tuple`, fixed arrays).
    input_len: bool,
}

struct GuardSeed<T> {
    inner: T,
    payload_len: usize,
}

struct GuardSeq<A> {
    inner: A,
    payload_len: usize,
}

struct GuardMap<A> {
    inner: A,
    payload_len: usize,
}

struct GuardEnum<A> {
    inner: A,
    payload_len: usize,
}

impl<V> GuardVisitor<V> {
    fn new(inner: V, payload_len: usize, input_len: bool) -> Self {
        Self {
            inner,
            payload_len,
            input_len,
        }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident ( $($arg:ident : $ty:ty),* ) => $input_len:expr;)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, D::Error> {
                self.inner.$method($($arg,)* GuardVisitor::new(visitor, self.payload_len, $input_len))
            }
        )*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Guard<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any() => true;
        deserialize_bool() => false;
        deserialize_i8() => false;
        deserialize_i16() => false;
        deserialize_i32() => false;
        deserialize_i64() => false;
        deserialize_i128() => false;
        deserialize_u8() => false;
        deserialize_u16() => false;
        deserialize_u32() => false;
        deserialize_u64() => false;
        deserialize_u128() => false;
        deserialize_f32() => false;
        deserialize_f64() => false;
        deserialize_char() => false;
        deserialize_str() => false;
        deserialize_bytes() => false;
        deserialize_option() => false;
        deserialize_unit() => false;
        deserialize_unit_struct(name: &'static str) => false;
        deserialize_newtype_struct(name: &'static str) => false;
        deserialize_seq() => true;
        deserialize_tuple(len: usize) => false;
        deserialize_tuple_struct(name: &'static str, len: usize) => false;
        deserialize_map() => true;
        deserialize_struct(name: &'static str, fields: &'static [&'static str]) => false;
        deserialize_enum(name: &'static str, variants: &'static [&'static str]) => false;
        deserialize_identifier() => false;
        deserialize_ignored_any() => false;
    }

    /// Read as a borrowed `str`: bincode's owned path would allocate (and zero) a buffer of
    /// the declared length before it knows the bytes are there; the borrowed one takes them
    /// from the payload, or fails, and the visitor copies exactly what was read.
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_str(GuardVisitor::new(visitor, self.payload_len, false))
    }

    /// Read as borrowed bytes, for the reason given at `deserialize_string`.
    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner
            .deserialize_bytes(GuardVisitor::new(visitor, self.payload_len, false))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident ( $ty:ty );)*) => {
        $(
            fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.inner.$method(v)
            }
        )*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for GuardVisitor<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_some(Guard {
            inner: d,
            payload_len: self.payload_len,
        })
    }

    fn visit_newtype_struct<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
        self.inner.visit_newtype_struct(Guard {
            inner: d,
            payload_len: self.payload_len,
        })
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        if self.input_len {
            check_len(seq.size_hint(), self.payload_len)?;
        }
        self.inner.visit_seq(GuardSeq {
            inner: seq,
            payload_len: self.payload_len,
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        check_len(map.size_hint(), self.payload_len)?;
        self.inner.visit_map(GuardMap {
            inner: map,
            payload_len: self.payload_len,
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.inner.visit_enum(GuardEnum {
            inner: data,
            payload_len: self.payload_len,
        })
    }
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for GuardSeed<T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        self.inner.deserialize(Guard {
            inner: d,
            payload_len: self.payload_len,
        })
    }
}

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for GuardSeq<A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(GuardSeed {
            inner: seed,
            payload_len: self.payload_len,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        capped_hint(self.inner.size_hint(), self.payload_len)
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for GuardMap<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(GuardSeed {
            inner: seed,
            payload_len: self.payload_len,
        })
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(GuardSeed {
            inner: seed,
            payload_len: self.payload_len,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        capped_hint(self.inner.size_hint(), self.payload_len)
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for GuardEnum<A> {
    type Error = A::Error;
    type Variant = GuardEnum<A::Variant>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(GuardSeed {
            inner: seed,
            payload_len: self.payload_len,
        })?;
        Ok((
            value,
            GuardEnum {
                inner: variant,
                payload_len: self.payload_len,
            },
        ))
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for GuardEnum<A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.newtype_variant_seed(GuardSeed {
            inner: seed,
            payload_len: self.payload_len,
        })
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner
            .tuple_variant(len, GuardVisitor::new(visitor, self.payload_len, false))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner
            .struct_variant(fields, GuardVisitor::new(visitor, self.payload_len, false))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn round_trip_of_nested_values() {
        type Nested = (Vec<Option<String>>, HashMap<u32, Vec<u8>>, [u64; 3], u128);
        let value: Nested = (
            vec![Some("a".into()), None],
            HashMap::from([(7, vec![1, 2, 3])]),
            [1, 2, u64::MAX],
            u128::MAX,
        );
        let bytes = Codec::CURRENT.encode(&value).unwrap();
        let back: Nested = Codec::CURRENT.decode(&bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn a_capacity_hint_changes_nothing_in_the_bytes() {
        let value = (vec!["a".to_string(); 100], u128::MAX);
        let plain = Codec::CURRENT.encode(&value).unwrap();
        for capacity in [0, 1, plain.len(), 10 * plain.len()] {
            assert_eq!(
                Codec::CURRENT
                    .encode_with_capacity(&value, capacity)
                    .unwrap(),
                plain
            );
        }
        assert_eq!(
            plain,
            bincode::serde::encode_to_vec(&value, config::standard()).unwrap()
        );
    }

    #[test]
    fn a_forged_length_is_refused() {
        // A Vec<u64> declaring 2^40 elements, followed by two bytes.
        let mut bytes = vec![253];
        bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
        bytes.extend_from_slice(&[1, 2]);
        let err = Codec::CURRENT.decode::<Vec<u64>>(&bytes).unwrap_err();
        assert!(matches!(err, CheckpointError::Decode { .. }), "{err}");
        assert!(err.to_string().contains("declares"), "{err}");
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = Codec::CURRENT.encode(&5u32).unwrap();
        bytes.push(0);
        assert!(matches!(
            Codec::CURRENT.decode::<u32>(&bytes),
            Err(CheckpointError::Decode { .. })
        ));
    }

    #[test]
    fn unknown_codec_ids_are_refused() {
        assert_eq!(Codec::from_id(1).unwrap(), Codec::Bincode2);
        assert!(matches!(
            Codec::from_id(9),
            Err(CheckpointError::UnknownCodec { id: 9 })
        ));
    }
}
