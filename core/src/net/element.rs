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

/// Bytes a record takes in a buffer, tag included.
#[inline]
pub fn record_len<T: Codec>(record: &T) -> usize {
    1 + record.encoded_len()
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
            TAG_RECORD => StreamElement::Record(T::decode(&mut input)?),
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

    #[test]
    fn a_bad_tag_is_an_error() {
        let err = decode_elements::<u64, DecodeError>(&[9], |_| Ok(())).unwrap_err();
        assert_eq!(err, DecodeError::Invalid("stream element tag"));
    }
}
