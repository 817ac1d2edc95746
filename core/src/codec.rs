//! Record serialization into network buffers.
//!
//! Records cross task boundaries as bytes inside fixed-size network buffers, as in Flink's
//! `RecordWriter`. A [`Codec`] states the exact size of a record before it is written, so the
//! writer can decide whether the record fits the current buffer without a trial write.
//! Fixed-size fields are copied; variable-size fields are length-prefixed (`u32`, little endian).
//!
//! Fixed-size records ([`Codec::FIXED_SIZE`]): a type whose every value encodes to the same
//! number of bytes says so, and the framing ([`crate::net::element`]) then checks the length
//! once per record: the writer reserves the record's frame and the reader takes the record's
//! bytes in one bounds check each, and hands the codec an [`Encoder`] or [`Decoder`] over
//! exactly those bytes. That length is a constant of the type, so once the codec is inlined
//! its per-field checks fold away: each field is one copy at a constant offset. A decode that
//! does not use up the record's bytes exactly is a [`DecodeError`], as any malformed input.

use thiserror::Error;

/// A record type that can travel through weir's channels.
///
/// Contract: `encode` writes exactly `encoded_len()` bytes, and `decode` reads back exactly
/// what `encode` wrote. The writer checks the first in debug builds. A type that sets
/// [`FIXED_SIZE`](Self::FIXED_SIZE) to `Some(n)` returns `n` from every `encoded_len`, and its
/// `decode` reads exactly `n` bytes (checked by [`round_trip`] and by the framing).
pub trait Codec: Sized + Send + 'static {
    /// `Some(n)` when every value encodes to exactly `n` bytes (a fixed-size record); `None`
    /// (the default) when the size depends on the value. See the module docs for what the
    /// framing does with it; [`fixed_size_sum`] composes it for records made of fields.
    const FIXED_SIZE: Option<usize> = None;
    /// The number of bytes [`Codec::encode`] writes for this value.
    fn encoded_len(&self) -> usize;
    /// Writes the value.
    fn encode(&self, out: &mut Encoder<'_>);
    /// Reads a value written by [`Codec::encode`].
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError>;
}

/// A decoding failure: the bytes do not hold what the codec expected.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer ended inside a value.
    #[error("buffer ended after {available} of {needed} bytes")]
    Truncated {
        /// Bytes the value needed.
        needed: usize,
        /// Bytes that were left.
        available: usize,
    },
    /// The bytes are not a valid value of the type.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

/// Writes a value into an exactly sized slice of a network buffer.
#[derive(Debug)]
pub struct Encoder<'a> {
    out: &'a mut [u8],
    pos: usize,
}

impl<'a> Encoder<'a> {
    /// An encoder over `out`, which must be exactly as long as the value's `encoded_len`.
    pub fn new(out: &'a mut [u8]) -> Self {
        Self { out, pos: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> usize {
        self.pos
    }

    /// Copies `bytes` as they are (fixed-size data).
    #[inline]
    pub fn put_raw(&mut self, bytes: &[u8]) {
        self.out[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }

    /// Writes one byte.
    #[inline]
    pub fn put_u8(&mut self, v: u8) {
        self.put_raw(&[v]);
    }

    /// Writes a `u32`, little endian.
    #[inline]
    pub fn put_u32(&mut self, v: u32) {
        self.put_raw(&v.to_le_bytes());
    }

    /// Writes a `u64`, little endian.
    #[inline]
    pub fn put_u64(&mut self, v: u64) {
        self.put_raw(&v.to_le_bytes());
    }

    /// Writes an `i64`, little endian.
    #[inline]
    pub fn put_i64(&mut self, v: i64) {
        self.put_raw(&v.to_le_bytes());
    }

    /// Writes a fixed-size value of `n` bytes: checks once that they fit, then `fill` writes the
    /// value's fields through an encoder over exactly them. With `n` a constant, every write
    /// inside `fill` is at a constant offset of a slice of constant length, so the compiler
    /// drops its checks.
    ///
    /// # Panics
    /// If the `n` bytes do not fit, or `fill` writes more than `n` (a codec that broke its
    /// contract, as with any write). In debug builds also if `fill` writes fewer than `n`.
    #[inline]
    pub fn put_fixed(&mut self, n: usize, fill: impl FnOnce(&mut Encoder<'_>)) {
        let mut fields = Encoder::new(&mut self.out[self.pos..self.pos + n]);
        fill(&mut fields);
        debug_assert_eq!(fields.written(), n, "a fixed-size value is written whole");
        self.pos += n;
    }

    /// Writes a `u32` length prefix and then the bytes (variable-size data).
    #[inline]
    pub fn put_bytes(&mut self, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).expect("a record field is at most 4 GiB");
        self.put_u32(len);
        self.put_raw(bytes);
    }
}

/// Reads values back from a network buffer.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// A decoder over `input`.
    pub fn new(input: &'a [u8]) -> Self {
        Self { input, pos: 0 }
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos == self.input.len()
    }

    /// Bytes read so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Reads `n` bytes as they are.
    #[inline]
    pub fn take_raw(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let available = self.input.len() - self.pos;
        if n > available {
            return Err(DecodeError::Truncated {
                needed: n,
                available,
            });
        }
        let bytes = &self.input[self.pos..self.pos + n];
        self.pos += n;
        Ok(bytes)
    }

    /// Reads a fixed-size value of `n` bytes: takes them in one bounds check, then `read` decodes
    /// the value's fields from a decoder over exactly them, which it must use up (else
    /// [`DecodeError::Invalid`]). With `n` a constant, every read inside `read` is at a constant
    /// offset of a slice of constant length, so the compiler drops its checks.
    #[inline]
    pub fn take_fixed<T>(
        &mut self,
        n: usize,
        read: impl FnOnce(&mut Decoder<'a>) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        let mut fields = Decoder::new(self.take_raw(n)?);
        let value = read(&mut fields)?;
        if !fields.is_empty() {
            return Err(DecodeError::Invalid(
                "a fixed-size value decoded from fewer bytes than its size",
            ));
        }
        Ok(value)
    }

    /// Reads `N` bytes as they are, into an array.
    #[inline]
    pub fn take_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let bytes = self.take_raw(N)?;
        Ok(bytes.try_into().expect("take_raw returned N bytes"))
    }

    /// Reads one byte.
    #[inline]
    pub fn take_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take_array::<1>()?[0])
    }

    /// Reads a little-endian `u32`.
    #[inline]
    pub fn take_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take_array()?))
    }

    /// Reads a little-endian `u64`.
    #[inline]
    pub fn take_u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take_array()?))
    }

    /// Reads a little-endian `i64`.
    #[inline]
    pub fn take_i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.take_array()?))
    }

    /// Reads a length-prefixed byte string written by [`Encoder::put_bytes`].
    #[inline]
    pub fn take_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.take_u32()? as usize;
        self.take_raw(len)
    }
}

macro_rules! fixed_int_codec {
    ($($ty:ty => $put:ident, $take:ident);* $(;)?) => {$(
        impl Codec for $ty {
            const FIXED_SIZE: Option<usize> = Some(size_of::<$ty>());
            #[inline]
            fn encoded_len(&self) -> usize {
                size_of::<$ty>()
            }
            #[inline]
            fn encode(&self, out: &mut Encoder<'_>) {
                out.$put(*self);
            }
            #[inline]
            fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                input.$take()
            }
        }
    )*};
}

fixed_int_codec! {
    u8 => put_u8, take_u8;
    u32 => put_u32, take_u32;
    u64 => put_u64, take_u64;
    i64 => put_i64, take_i64;
}

/// Little-endian fixed-size values without their own `Encoder` method.
macro_rules! le_bytes_codec {
    ($($ty:ty),* $(,)?) => {$(
        impl Codec for $ty {
            const FIXED_SIZE: Option<usize> = Some(size_of::<$ty>());
            #[inline]
            fn encoded_len(&self) -> usize {
                size_of::<$ty>()
            }
            #[inline]
            fn encode(&self, out: &mut Encoder<'_>) {
                out.put_raw(&self.to_le_bytes());
            }
            #[inline]
            fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                let bytes = input.take_raw(size_of::<$ty>())?;
                Ok(<$ty>::from_le_bytes(bytes.try_into().expect("take_raw returned the size")))
            }
        }
    )*};
}

le_bytes_codec!(u16, i32, f64);

impl Codec for bool {
    const FIXED_SIZE: Option<usize> = Some(1);
    #[inline]
    fn encoded_len(&self) -> usize {
        1
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_u8(u8::from(*self));
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match input.take_u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("bool is neither 0 nor 1")),
        }
    }
}

impl Codec for String {
    #[inline]
    fn encoded_len(&self) -> usize {
        4 + self.len()
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_bytes(self.as_bytes());
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let bytes = input.take_bytes()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError::Invalid("string is not UTF-8"))
    }
}

/// The fixed size of a record made of fields of these fixed sizes: their sum, or `None` if
/// any field's size depends on its value. For [`Codec::FIXED_SIZE`] of composite types.
pub const fn fixed_size_sum(fields: &[Option<usize>]) -> Option<usize> {
    let mut sum = 0;
    let mut i = 0;
    while i < fields.len() {
        match fields[i] {
            Some(n) => sum += n,
            None => return None,
        }
        i += 1;
    }
    Some(sum)
}

impl<A: Codec, B: Codec> Codec for (A, B) {
    const FIXED_SIZE: Option<usize> = fixed_size_sum(&[A::FIXED_SIZE, B::FIXED_SIZE]);
    #[inline]
    fn encoded_len(&self) -> usize {
        self.0.encoded_len() + self.1.encoded_len()
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        self.0.encode(out);
        self.1.encode(out);
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok((A::decode(input)?, B::decode(input)?))
    }
}

impl<A: Codec, B: Codec, C: Codec> Codec for (A, B, C) {
    const FIXED_SIZE: Option<usize> =
        fixed_size_sum(&[A::FIXED_SIZE, B::FIXED_SIZE, C::FIXED_SIZE]);
    #[inline]
    fn encoded_len(&self) -> usize {
        self.0.encoded_len() + self.1.encoded_len() + self.2.encoded_len()
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        self.0.encode(out);
        self.1.encode(out);
        self.2.encode(out);
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok((A::decode(input)?, B::decode(input)?, C::decode(input)?))
    }
}

impl<T: Codec> Codec for Option<T> {
    #[inline]
    fn encoded_len(&self) -> usize {
        1 + self.as_ref().map_or(0, Codec::encoded_len)
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        match self {
            None => out.put_u8(0),
            Some(v) => {
                out.put_u8(1);
                v.encode(out);
            }
        }
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match input.take_u8()? {
            0 => Ok(None),
            1 => Ok(Some(T::decode(input)?)),
            _ => Err(DecodeError::Invalid("option tag is neither 0 nor 1")),
        }
    }
}

/// Writes a `u32` element count, as sequences do before their elements.
///
/// # Panics
/// If `len` is above `u32::MAX` (a record field is at most 4 GiB).
#[inline]
pub fn put_len(out: &mut Encoder<'_>, len: usize) {
    out.put_u32(u32::try_from(len).expect("a sequence holds at most u32::MAX elements"));
}

impl<T: Codec> Codec for Vec<T> {
    #[inline]
    fn encoded_len(&self) -> usize {
        4 + self.iter().map(Codec::encoded_len).sum::<usize>()
    }
    #[inline]
    fn encode(&self, out: &mut Encoder<'_>) {
        put_len(out, self.len());
        for item in self {
            item.encode(out);
        }
    }
    #[inline]
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let len = input.take_u32()?;
        // Collecting `Result`s reserves nothing up front: a damaged count fails on the first
        // missing element instead of allocating for it.
        (0..len).map(|_| T::decode(input)).collect()
    }
}

/// Appends `value`'s encoding to `out` (snapshots build blobs this way), checking the codec
/// contract: exactly `encoded_len` bytes written.
///
/// # Panics
/// If the codec wrote other than `encoded_len` bytes: a checkpoint must not hold a value that
/// its codec cannot read back.
pub fn append_to_vec<T: Codec>(out: &mut Vec<u8>, value: &T) {
    let start = out.len();
    let len = value.encoded_len();
    out.resize(start + len, 0);
    let mut enc = Encoder::new(&mut out[start..]);
    value.encode(&mut enc);
    assert_eq!(
        enc.written(),
        len,
        "a codec wrote other than its encoded_len"
    );
}

/// Decodes one value that must take up all of `bytes`.
pub fn decode_exact<T: Codec>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut input = Decoder::new(bytes);
    let value = T::decode(&mut input)?;
    if !input.is_empty() {
        return Err(DecodeError::Invalid("bytes left after the value"));
    }
    Ok(value)
}

/// Encodes `value` into a fresh vector (tests and tools; the data plane writes into buffers).
pub fn encode_to_vec<T: Codec>(value: &T) -> Vec<u8> {
    let mut out = vec![0; value.encoded_len()];
    let mut enc = Encoder::new(&mut out);
    value.encode(&mut enc);
    debug_assert_eq!(enc.written(), out.len());
    out
}

/// Encodes `value` and decodes it back, checking the codec contract on the way: exactly
/// `encoded_len` bytes written (and [`Codec::FIXED_SIZE`] bytes for a fixed-size type), every
/// byte read back. For codec tests.
pub fn round_trip<T: Codec>(value: &T) -> Result<T, DecodeError> {
    let bytes = encode_to_vec(value);
    if bytes.len() != value.encoded_len() {
        return Err(DecodeError::Invalid(
            "encode wrote other than encoded_len bytes",
        ));
    }
    if T::FIXED_SIZE.is_some_and(|n| n != bytes.len()) {
        return Err(DecodeError::Invalid(
            "a fixed-size codec wrote other than FIXED_SIZE bytes",
        ));
    }
    let mut input = Decoder::new(&bytes);
    let decoded = T::decode(&mut input)?;
    if !input.is_empty() {
        return Err(DecodeError::Invalid("decode left bytes unread"));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Codec + PartialEq + std::fmt::Debug>(value: T) {
        assert_eq!(super::round_trip(&value), Ok(value));
    }

    #[test]
    fn fixed_and_variable_size_values_round_trip() {
        round_trip(7u64);
        round_trip(-3i64);
        round_trip(String::from("浙A12345"));
        round_trip((1u32, String::from("x"), Some(5i64)));
        round_trip(Option::<u64>::None);
        round_trip(vec![String::from("a"), String::new()]);
        round_trip((true, 7u16, -5i32));
        round_trip(1.5f64);
        round_trip(vec![7u8, 9]);
    }

    #[test]
    fn a_damaged_sequence_length_is_an_error_not_an_allocation() {
        let mut bytes = encode_to_vec(&vec![1u64, 2]);
        bytes[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode_exact::<Vec<u64>>(&bytes),
            Err(DecodeError::Truncated { .. })
        ));
        assert_eq!(
            decode_exact::<bool>(&[2]),
            Err(DecodeError::Invalid("bool is neither 0 nor 1"))
        );
    }

    #[test]
    fn append_to_vec_appends_exactly_the_encoding() {
        let mut out = vec![9u8];
        append_to_vec(&mut out, &String::from("ab"));
        assert_eq!(out, [9, 2, 0, 0, 0, b'a', b'b']);
        assert_eq!(decode_exact::<String>(&out[1..]), Ok(String::from("ab")));
    }

    #[test]
    fn fixed_sizes_compose_and_variable_fields_make_a_variable_record() {
        assert_eq!(<(u64, u8)>::FIXED_SIZE, Some(9));
        assert_eq!(<(bool, u16, i32)>::FIXED_SIZE, Some(7));
        assert_eq!(<(u64, String)>::FIXED_SIZE, None);
        assert_eq!(<Option<u64>>::FIXED_SIZE, None);
        assert_eq!(fixed_size_sum(&[]), Some(0));
    }

    #[test]
    fn fixed_values_are_written_and_read_in_one_piece() {
        let mut out = [0u8; 6];
        let mut enc = Encoder::new(&mut out);
        enc.put_u8(9);
        enc.put_fixed(4, |f| f.put_u32(0x0403_0201));
        enc.put_u8(8);
        assert_eq!(enc.written(), 6);
        assert_eq!(out, [9, 1, 2, 3, 4, 8]);
        let mut dec = Decoder::new(&out[1..]);
        assert_eq!(dec.take_fixed(4, |f| f.take_u32()), Ok(0x0403_0201));
        assert_eq!(dec.remaining(), 1);
        // A read that leaves part of the value's bytes is malformed input, not a shift of
        // everything after it.
        let mut dec = Decoder::new(&out);
        assert_eq!(
            dec.take_fixed(5, |f| f.take_u32()),
            Err(DecodeError::Invalid(
                "a fixed-size value decoded from fewer bytes than its size"
            ))
        );
        assert_eq!(
            Decoder::new(&out[..3]).take_fixed(4, |f| f.take_u32()),
            Err(DecodeError::Truncated {
                needed: 4,
                available: 3
            })
        );
    }

    #[test]
    fn truncated_input_is_an_error_not_a_panic() {
        let bytes = encode_to_vec(&String::from("hello"));
        let mut dec = Decoder::new(&bytes[..6]);
        assert_eq!(
            String::decode(&mut dec),
            Err(DecodeError::Truncated {
                needed: 5,
                available: 2
            })
        );
    }
}
