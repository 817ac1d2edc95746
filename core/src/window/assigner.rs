//! Window assigners: tumbling and sliding, aligned to the epoch plus an offset. The bounds come
//! from [`crate::time::arith`], which states how windows at the ends of `i64` are clamped.

use crate::codec::{Codec, DecodeError, Decoder, Encoder};
use crate::time::arith;

/// A window `[start, end)` of event time, ms; `start < end` (decoding checks it). The last
/// window ends at `i64::MAX` and holds `i64::MAX` too ([`arith`]).
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
        self.end.saturating_sub(1)
    }

    /// Whether timestamp `ts` is in the window: `start <= ts < end`, and `i64::MAX` is in the
    /// window that ends there.
    #[inline]
    pub fn holds(&self, ts: i64) -> bool {
        let ts = ts.min(i64::MAX - 1);
        self.start <= ts && ts < self.end
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
        let window = Self {
            start: input.take_i64()?,
            end: input.take_i64()?,
        };
        if window.end <= window.start {
            return Err(DecodeError::Invalid("window ends before it starts"));
        }
        Ok(window)
    }
}

/// Which windows a timestamp belongs to. Sizes and slides must be positive, and a sliding
/// assigner puts a record in at most [`arith::MAX_WINDOWS_PER_RECORD`] windows: building a job
/// with another assigner fails ([`WindowAssigner::check`]).
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

    /// Whether this assigner can be used: positive sizes and slides, and at most
    /// [`arith::MAX_WINDOWS_PER_RECORD`] windows per record.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Self::Tumbling { size_ms, .. } => arith::check_window_shape(size_ms, size_ms),
            Self::Sliding {
                size_ms, slide_ms, ..
            } => arith::check_window_shape(size_ms, slide_ms),
        }
    }

    /// Whether each timestamp has exactly one window.
    #[inline]
    pub(crate) fn is_tumbling(&self) -> bool {
        matches!(self, Self::Tumbling { .. })
    }

    /// Appends the windows of timestamp `ts` to `out`, latest start first: one for a tumbling
    /// assigner, at most `ceil(size / slide)` for a sliding one.
    #[inline]
    pub fn assign(&self, ts: i64, out: &mut Vec<Window>) {
        out.extend(self.windows(ts));
    }

    /// The windows of [`assign`](Self::assign), as an iterator.
    #[inline]
    pub(crate) fn windows(&self, ts: i64) -> impl Iterator<Item = Window> {
        let (one, sliding) = match *self {
            Self::Tumbling { size_ms, offset_ms } => {
                (Some(arith::tumbling_window(ts, size_ms, offset_ms)), None)
            }
            Self::Sliding {
                size_ms,
                slide_ms,
                offset_ms,
            } => (
                None,
                Some(arith::sliding_windows(ts, size_ms, slide_ms, offset_ms)),
            ),
        };
        one.into_iter().chain(sliding.into_iter().flatten())
    }

    /// The one window of `ts` for a tumbling assigner, `None` for a sliding one. It first tries
    /// `recent`, the window it gave last (kept there for the next call): records come mostly
    /// in time order, so consecutive ones mostly share a window, and a hit saves the division
    /// that aligns it. The window of [`assign`](Self::assign): tumbling windows tile time, so
    /// the one window of the assigner that holds `ts` is its window.
    #[inline(always)]
    pub(crate) fn tumbling_near(&self, ts: i64, recent: &mut Option<Window>) -> Option<Window> {
        let Self::Tumbling { size_ms, offset_ms } = *self else {
            return None;
        };
        let window = match *recent {
            Some(window) if window.holds(ts) => window,
            _ => arith::tumbling_window(ts, size_ms, offset_ms),
        };
        *recent = Some(window);
        Some(window)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn assigning_near_the_last_window_gives_the_windows_of_assign(
            size in 1..100i64,
            offset in -50..50i64,
            steps in prop::collection::vec(
                prop_oneof![-120..120i64, Just(i64::MAX), Just(i64::MIN), Just(i64::MAX - 1)],
                1..50,
            ),
        ) {
            let assigner = WindowAssigner::Tumbling { size_ms: size, offset_ms: offset };
            let (mut recent, mut ts) = (None, 0i64);
            for step in steps {
                // Small steps, and jumps to the ends of i64.
                ts = if step.unsigned_abs() > 1000 { step } else { ts.saturating_add(step) };
                let mut plain = Vec::new();
                assigner.assign(ts, &mut plain);
                let near = assigner.tumbling_near(ts, &mut recent);
                prop_assert_eq!(near.into_iter().collect::<Vec<_>>(), plain, "ts {}", ts);
            }
        }
    }

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
    fn windows_at_the_ends_of_i64_never_end_before_they_start() {
        let t = WindowAssigner::tumbling(60_000);
        let last = 153_722_867_280_912 * 60_000;
        assert_eq!(windows(t, i64::MAX - 1), vec![(last, i64::MAX)]);
        assert_eq!(windows(t, i64::MIN), vec![(i64::MIN, i64::MIN + 55_808)]);
        let s = WindowAssigner::sliding(10, 5);
        assert_eq!(
            windows(s, i64::MAX),
            vec![(i64::MAX - 2, i64::MAX), (i64::MAX - 7, i64::MAX)]
        );
        assert_eq!(
            windows(s, i64::MIN),
            vec![(i64::MIN, i64::MIN + 8), (i64::MIN, i64::MIN + 3)]
        );
        let bogus = Window { start: 10, end: 10 };
        let bytes = crate::codec::encode_to_vec(&bogus);
        assert!(Window::decode(&mut Decoder::new(&bytes)).is_err());
        assert!(WindowAssigner::tumbling(0).check().is_err());
        assert!(WindowAssigner::sliding(10, 0).check().is_err());
        assert!(WindowAssigner::sliding(86_400_000, 1).check().is_err());
        assert!(WindowAssigner::sliding(60_000, 1_000).check().is_ok());
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
