//! Window assigners: tumbling and sliding, aligned to the epoch plus an offset.

use crate::codec::{Codec, DecodeError, Decoder, Encoder};

/// A window `[start, end)` of event time, ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct Window {
    /// First millisecond in the window.
    pub start: i64,
    /// First millisecond after the window.
    pub end: i64,
}

impl Window {
    /// The last timestamp in the window: it fires when the watermark reaches this.
    #[inline]
    pub fn max_timestamp(&self) -> i64 {
        self.end - 1
    }
}

impl Codec for Window {
    fn encoded_len(&self) -> usize {
        16
    }
    fn encode(&self, out: &mut Encoder<'_>) {
        out.put_i64(self.start);
        out.put_i64(self.end);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            start: input.take_i64()?,
            end: input.take_i64()?,
        })
    }
}

/// Which windows a timestamp belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum WindowAssigner {
    /// Consecutive windows of `size_ms`.
    Tumbling {
        /// Window length.
        size_ms: i64,
        /// Shift of the window starts from the epoch.
        offset_ms: i64,
    },
    /// Windows of `size_ms` starting every `slide_ms`: a timestamp is in `size / slide` of
    /// them.
    Sliding {
        /// Window length.
        size_ms: i64,
        /// Distance between window starts.
        slide_ms: i64,
        /// Shift of the window starts from the epoch.
        offset_ms: i64,
    },
}

impl WindowAssigner {
    /// Tumbling windows of `size_ms`, aligned to the epoch.
    pub fn tumbling(size_ms: i64) -> Self {
        Self::Tumbling {
            size_ms,
            offset_ms: 0,
        }
    }

    /// Sliding windows of `size_ms` every `slide_ms`, aligned to the epoch.
    pub fn sliding(size_ms: i64, slide_ms: i64) -> Self {
        Self::Sliding {
            size_ms,
            slide_ms,
            offset_ms: 0,
        }
    }

    /// Appends the windows of timestamp `ts` to `out`, latest start first.
    #[inline]
    pub fn assign(&self, ts: i64, out: &mut Vec<Window>) {
        match *self {
            Self::Tumbling { size_ms, offset_ms } => {
                let start = ts - (ts - offset_ms).rem_euclid(size_ms);
                out.push(Window {
                    start,
                    end: start + size_ms,
                });
            }
            Self::Sliding {
                size_ms,
                slide_ms,
                offset_ms,
            } => {
                let mut start = ts - (ts - offset_ms).rem_euclid(slide_ms);
                while start > ts - size_ms {
                    out.push(Window {
                        start,
                        end: start + size_ms,
                    });
                    start -= slide_ms;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(a: WindowAssigner, ts: i64) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        a.assign(ts, &mut out);
        out.into_iter().map(|w| (w.start, w.end)).collect()
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch_and_a_boundary_starts_the_next() {
        let t = WindowAssigner::tumbling(60_000);
        assert_eq!(windows(t, 59_999), vec![(0, 60_000)]);
        assert_eq!(windows(t, 60_000), vec![(60_000, 120_000)]);
        assert_eq!(windows(t, -1), vec![(-60_000, 0)]);
        let shifted = WindowAssigner::Tumbling {
            size_ms: 60_000,
            offset_ms: 15_000,
        };
        assert_eq!(windows(shifted, 14_999), vec![(-45_000, 15_000)]);
    }

    #[test]
    fn a_record_is_in_size_over_slide_sliding_windows() {
        let s = WindowAssigner::sliding(10_000, 2_000);
        assert_eq!(
            windows(s, 10_500),
            vec![
                (10_000, 20_000),
                (8_000, 18_000),
                (6_000, 16_000),
                (4_000, 14_000),
                (2_000, 12_000)
            ]
        );
    }
}
