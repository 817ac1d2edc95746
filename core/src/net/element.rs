//! The elements serialized inside a buffer (Flink's `StreamElement`): records, watermarks,
//! watermark status changes and latency markers, each a one-byte tag and its payload.
//!
//! Watermarks travel inside buffers rather than as envelope events, as in Flink: a watermark
//! then costs a few bytes in the current buffer instead of a flush, which is what keeps
//! punctuated watermarks (one per record) affordable. They stay in order with the records
//! around them either way.

use crate::codec::{Codec, DecodeError, Decoder, Encoder};
use crate::time::{LatencyMarker, Watermark, WatermarkStatus};

const TAG_RECORD: u8 = 0;
const TAG_WATERMARK: u8 = 1;
const TAG_STATUS: u8 = 2;
const TAG_LATENCY: u8 = 3;

/// One element of a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamElement<T> {
    /// A data record.
    Record(T),
    /// Event time has reached this watermark on the sending channel.
    Watermark(Watermark),
    /// The sending channel became idle or active again.
    Status(WatermarkStatus),
    /// A latency marker on its way from a source to the sinks.
    LatencyMarker(LatencyMarker),
}

/// Bytes a record takes in a buffer, tag included: a constant for a fixed-size type.
#[inline]
pub fn record_len<T: Codec>(record: &T) -> usize {
    1 + match T::FIXED_SIZE {
        Some(n) => n,
        None => record.encoded_len(),
    }
}

/// Reads a record's payload (after its tag). A fixed-size record's bytes are taken in one
/// bounds check and decoded from exactly them ([`Decoder::take_fixed`]).
#[inline]
fn decode_record<T: Codec>(input: &mut Decoder<'_>) -> Result<T, DecodeError> {
    match T::FIXED_SIZE {
        Some(n) => input.take_fixed(n, T::decode),
        None => T::decode(input),
    }
}

/// Writes a record with its tag into `out` (exactly [`record_len`] bytes).
#[inline]
pub fn encode_record<T: Codec>(record: &T, out: &mut Encoder<'_>) {
    out.put_u8(TAG_RECORD);
    record.encode(out);
}

/// A control element and its encoded size, for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlElement {
    /// A watermark.
    Watermark(Watermark),
    /// A status change.
    Status(WatermarkStatus),
    /// A latency marker.
    LatencyMarker(LatencyMarker),
}

impl ControlElement {
    /// Bytes it takes in a buffer, tag included.
    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Watermark(_) => 1 + 8,
            Self::Status(_) => 1 + 1,
            Self::LatencyMarker(_) => 1 + 8 + 4,
        }
    }

    /// Writes it with its tag.
    pub fn encode(&self, out: &mut Encoder<'_>) {
        match *self {
            Self::Watermark(wm) => {
                out.put_u8(TAG_WATERMARK);
                out.put_i64(wm.0);
            }
            Self::Status(status) => {
                out.put_u8(TAG_STATUS);
                out.put_u8(u8::from(status == WatermarkStatus::Idle));
            }
            Self::LatencyMarker(marker) => {
                out.put_u8(TAG_LATENCY);
                out.put_u64(marker.emitted_ns);
                out.put_u32(marker.source_subtask);
            }
        }
    }
}

/// Decodes every element of a buffer's bytes, in order, into `each`.
///
/// A decoding failure means a codec broke its contract or memory was corrupted; the task fails
/// with it rather than guessing.
pub fn decode_elements<T: Codec, E: From<DecodeError>>(
    bytes: &[u8],
    mut each: impl FnMut(StreamElement<T>) -> Result<(), E>,
) -> Result<(), E> {
    let mut input = Decoder::new(bytes);
    while !input.is_empty() {
        let element = match input.take_u8()? {
            TAG_RECORD => StreamElement::Record(decode_record(&mut input)?),
            TAG_WATERMARK => StreamElement::Watermark(Watermark(input.take_i64()?)),
            TAG_STATUS => StreamElement::Status(match input.take_u8()? {
                0 => WatermarkStatus::Active,
                1 => WatermarkStatus::Idle,
                _ => return Err(DecodeError::Invalid("watermark status tag").into()),
            }),
            TAG_LATENCY => StreamElement::LatencyMarker(LatencyMarker {
                emitted_ns: input.take_u64()?,
                source_subtask: input.take_u32()?,
            }),
            _ => return Err(DecodeError::Invalid("stream element tag").into()),
        };
        each(element)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_control_elements_decode_in_order() {
        let controls = [
            ControlElement::Watermark(Watermark(42)),
            ControlElement::Status(WatermarkStatus::Idle),
            ControlElement::LatencyMarker(LatencyMarker {
                emitted_ns: 7,
                source_subtask: 1,
            }),
        ];
        let record = String::from("浙A12345");
        let len = record_len(&record) + controls.iter().map(|c| c.encoded_len()).sum::<usize>();
        let mut bytes = vec![0u8; len];
        let mut enc = Encoder::new(&mut bytes);
        encode_record(&record, &mut enc);
        for c in &controls {
            c.encode(&mut enc);
        }
        assert_eq!(enc.written(), len);
        let mut seen = Vec::new();
        decode_elements::<String, DecodeError>(&bytes, |e| {
            seen.push(e);
            Ok(())
        })
        .expect("decodes");
        assert_eq!(
            seen,
            vec![
                StreamElement::Record(record),
                StreamElement::Watermark(Watermark(42)),
                StreamElement::Status(WatermarkStatus::Idle),
                StreamElement::LatencyMarker(LatencyMarker {
                    emitted_ns: 7,
                    source_subtask: 1
                }),
            ]
        );
    }

    /// A fixed-size type whose decode breaks the contract: it reads 8 of its 9 bytes.
    #[derive(Debug, PartialEq)]
    struct ShortRead(u64);

    impl Codec for ShortRead {
        const FIXED_SIZE: Option<usize> = Some(9);
        fn encoded_len(&self) -> usize {
            9
        }
        fn encode(&self, out: &mut Encoder<'_>) {
            out.put_u64(self.0);
            out.put_u8(0);
        }
        fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
            input.take_u64().map(Self)
        }
    }

    fn decode_all<T: Codec>(bytes: &[u8]) -> Result<Vec<StreamElement<T>>, DecodeError> {
        let mut seen = Vec::new();
        decode_elements::<T, DecodeError>(bytes, |e| {
            seen.push(e);
            Ok(())
        })?;
        Ok(seen)
    }

    #[test]
    fn fixed_size_records_are_sized_by_their_type_and_checked_whole() {
        let records = [(1u64, 2u32), (3, 4)];
        let len = record_len(&records[0]);
        assert_eq!(len, 13);
        let mut bytes = vec![0u8; 2 * len];
        let mut enc = Encoder::new(&mut bytes);
        records.iter().for_each(|r| encode_record(r, &mut enc));
        assert_eq!(
            decode_all::<(u64, u32)>(&bytes),
            Ok(records.map(StreamElement::Record).to_vec())
        );
        // A buffer cut inside a fixed-size record fails on that record, whatever the cut.
        for cut in len + 1..bytes.len() {
            assert!(
                matches!(
                    decode_all::<(u64, u32)>(&bytes[..cut]),
                    Err(DecodeError::Truncated { needed: 12, .. })
                ),
                "cut at {cut}"
            );
        }
        let mut short = vec![0u8; record_len(&ShortRead(5))];
        encode_record(&ShortRead(5), &mut Encoder::new(&mut short));
        assert_eq!(
            decode_all::<ShortRead>(&short),
            Err(DecodeError::Invalid(
                "a fixed-size value decoded from fewer bytes than its size"
            ))
        );
    }

    #[test]
    fn a_bad_tag_is_an_error() {
        let err = decode_elements::<u64, DecodeError>(&[9], |_| Ok(())).unwrap_err();
        assert_eq!(err, DecodeError::Invalid("stream element tag"));
    }
}
