//! Event-time arithmetic, in one place: window bounds (tumbling and sliding, with an offset),
//! the bounded-out-of-orderness watermark, the lateness clean-up time, and distances between
//! timestamps. Every function is total over all of `i64`: nothing overflows, panics or loops
//! more than a stated bound, whatever the timestamp.
//!
//! The contract at the ends of the range:
//! - A window is `[start, end)` with `start < end`, aligned to `offset + k × size`. A window
//!   that would start below `i64::MIN` starts at `i64::MIN`; one that would end above
//!   `i64::MAX` ends at `i64::MAX`. A record's timestamp `t` lies in each of its windows:
//!   `start <= t < end`, except `t = i64::MAX`, which no half-open window can hold: it is
//!   assigned as if it were `i64::MAX − 1`, to the last window, which ends at `i64::MAX`.
//! - A window fires when the watermark reaches `end − 1`; [`Watermark::MAX`](super::Watermark::MAX)
//!   (end of input) fires every window. Data never produces it: [`watermark_for`] is at most
//!   `i64::MAX − 1`.
//! - A fired window is kept until the watermark reaches [`cleanup_time`], `end − 1 + lateness`,
//!   which saturates at `i64::MAX` (such a window is freed at end of input).
//! - Distances ([`distance_ms`]) are unsigned: `|a − b|`, never negative, never wrapped.

use std::time::Duration;

use crate::window::Window;

/// The most windows one record may be assigned to: a sliding assigner with
/// `ceil(size / slide)` above this is refused when the job is built.
pub const MAX_WINDOWS_PER_RECORD: i64 = 10_000;

/// `d` in whole milliseconds, saturating at `i64::MAX`.
#[inline]
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// The timestamp windows are computed for: `ts`, but `i64::MAX` counts as `i64::MAX − 1`.
#[inline]
fn assignable(ts: i64) -> i64 {
    ts.min(i64::MAX - 1)
}

/// How far `ts` is past the latest window start `offset + k × size` at or below it: in
/// `[0, size)`. `size` must be positive.
#[inline]
fn past_start(ts: i64, size_ms: i64, offset_ms: i64) -> i64 {
    match ts.checked_sub(offset_ms) {
        Some(shifted) => shifted.rem_euclid(size_ms),
        // Both remainders are in [0, size): their difference cannot overflow.
        None => (ts.rem_euclid(size_ms) - offset_ms.rem_euclid(size_ms)).rem_euclid(size_ms),
    }
}

/// The window `past` ms before `ts` reaches its start, `size` long, clamped to `i64`.
/// `0 <= past < size`, so `start <= ts < end` unless `end` is clamped to `i64::MAX`.
#[inline]
fn window_at(ts: i64, past: i64, size_ms: i64) -> Window {
    Window {
        start: ts.saturating_sub(past),
        end: ts.saturating_add(size_ms - past),
    }
}

/// The tumbling window of `size_ms` aligned to `offset_ms` that holds `ts` (clamped as the
/// module says). `size_ms` must be positive (checked when the job is built).
#[inline]
pub fn tumbling_window(ts: i64, size_ms: i64, offset_ms: i64) -> Window {
    debug_assert!(size_ms > 0, "window size {size_ms} is not positive");
    let ts = assignable(ts);
    window_at(ts, past_start(ts, size_ms, offset_ms), size_ms)
}

/// The sliding windows of `size_ms` starting every `slide_ms` from `offset_ms` that hold
/// `ts`, latest start first: at most `ceil(size / slide)` of them (none when `ts` falls in a
/// gap of a slide longer than the size). Both must be positive (checked when the job is built).
#[inline]
pub fn sliding_windows(ts: i64, size_ms: i64, slide_ms: i64, offset_ms: i64) -> SlidingWindows {
    debug_assert!(size_ms > 0, "window size {size_ms} is not positive");
    debug_assert!(slide_ms > 0, "window slide {slide_ms} is not positive");
    let ts = assignable(ts);
    SlidingWindows {
        ts,
        past: Some(past_start(ts, slide_ms, offset_ms)),
        size_ms,
        slide_ms,
    }
}

/// The windows of one timestamp, from [`sliding_windows`].
#[derive(Debug, Clone)]
pub struct SlidingWindows {
    ts: i64,
    /// How far the next window's start is before `ts`; `None` when done.
    past: Option<i64>,
    size_ms: i64,
    slide_ms: i64,
}

impl Iterator for SlidingWindows {
    type Item = Window;

    #[inline]
    fn next(&mut self) -> Option<Window> {
        let past = self.past.filter(|&past| past < self.size_ms)?;
        self.past = past.checked_add(self.slide_ms);
        Some(window_at(self.ts, past, self.size_ms))
    }
}

/// `ceil(size / slide)`: the most windows a record of a sliding assigner is in. Both must be
/// positive.
#[inline]
pub fn windows_per_record(size_ms: i64, slide_ms: i64) -> i64 {
    size_ms / slide_ms + i64::from(size_ms % slide_ms != 0)
}

/// Whether `size_ms`, `slide_ms` describe usable windows: both positive and at most
/// [`MAX_WINDOWS_PER_RECORD`] windows per record.
pub fn check_window_shape(size_ms: i64, slide_ms: i64) -> Result<(), String> {
    if size_ms <= 0 {
        return Err(format!("window size {size_ms} ms is not positive"));
    }
    if slide_ms <= 0 {
        return Err(format!("window slide {slide_ms} ms is not positive"));
    }
    let per_record = windows_per_record(size_ms, slide_ms);
    if per_record > MAX_WINDOWS_PER_RECORD {
        return Err(format!(
            "a window of {size_ms} ms sliding by {slide_ms} ms puts each record in {per_record} \
             windows, more than the {MAX_WINDOWS_PER_RECORD} allowed"
        ));
    }
    Ok(())
}

/// The bounded-out-of-orderness watermark for a highest timestamp `max_ts`:
/// `max_ts − out_of_orderness − 1`, saturating at `i64::MIN`; at most `i64::MAX − 1`. A
/// negative bound counts as zero.
#[inline]
pub fn watermark_for(max_ts: i64, out_of_orderness_ms: i64) -> i64 {
    max_ts
        .saturating_sub(out_of_orderness_ms.max(0))
        .saturating_sub(1)
}

/// The lowest highest-timestamp at which [`watermark_for`] reaches `window_end − 1`, that is
/// fires the window: `window_end + out_of_orderness`, saturating at `i64::MAX` (only end of
/// input fires a window whose time saturates).
#[inline]
pub fn fires_at(window_end: i64, out_of_orderness_ms: i64) -> i64 {
    window_end.saturating_add(out_of_orderness_ms.max(0))
}

/// The watermark at which a fired window's state is freed and records for it are late:
/// `end − 1 + lateness`, saturating at `i64::MAX`. A negative lateness counts as zero.
#[inline]
pub fn cleanup_time(window: Window, lateness_ms: i64) -> i64 {
    window.max_timestamp().saturating_add(lateness_ms.max(0))
}

/// `|a − b|` in ms, exact over all of `i64`.
#[inline]
pub fn distance_ms(a: i64, b: i64) -> u64 {
    a.abs_diff(b)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const MIN: i64 = 60_000;

    fn w(start: i64, end: i64) -> Window {
        Window { start, end }
    }

    fn sliding(ts: i64, size: i64, slide: i64, offset: i64) -> Vec<Window> {
        sliding_windows(ts, size, slide, offset).collect()
    }

    #[test]
    fn tumbling_windows_away_from_the_ends_are_exact() {
        assert_eq!(tumbling_window(59_999, MIN, 0), w(0, MIN));
        assert_eq!(tumbling_window(60_000, MIN, 0), w(MIN, 2 * MIN));
        assert_eq!(tumbling_window(-1, MIN, 0), w(-MIN, 0));
        assert_eq!(tumbling_window(14_999, MIN, 15_000), w(-45_000, 15_000));
        assert_eq!(tumbling_window(15_000, MIN, -45_000), w(15_000, 75_000));
    }

    #[test]
    fn tumbling_windows_at_the_ends_are_clamped() {
        // i64::MAX = 153_722_867_280_912 × 60_000 + 55_807: its window ends above i64::MAX.
        let last = 153_722_867_280_912 * MIN;
        assert_eq!(tumbling_window(i64::MAX, MIN, 0), w(last, i64::MAX));
        assert_eq!(tumbling_window(i64::MAX - 1, MIN, 0), w(last, i64::MAX));
        assert_eq!(tumbling_window(last - 1, MIN, 0), w(last - MIN, last));
        // i64::MIN = −153_722_867_280_913 × 60_000 + 4_192: its window starts below i64::MIN.
        let first_end = -153_722_867_280_912 * MIN;
        assert_eq!(tumbling_window(i64::MIN, MIN, 0), w(i64::MIN, first_end));
        assert_eq!(
            tumbling_window(first_end, MIN, 0),
            w(first_end, first_end + MIN)
        );
        // i64::MAX itself goes to the window of i64::MAX − 1, even with one-ms windows.
        assert_eq!(tumbling_window(i64::MAX, 1, 0), w(i64::MAX - 1, i64::MAX));
        assert_eq!(tumbling_window(i64::MIN, 1, 0), w(i64::MIN, i64::MIN + 1));
        // Offsets that overflow `ts − offset`, and the largest size.
        assert_eq!(tumbling_window(i64::MIN, MIN, i64::MAX).start, i64::MIN);
        assert_eq!(tumbling_window(i64::MAX, MIN, i64::MIN).end, i64::MAX);
        assert_eq!(tumbling_window(0, i64::MAX, 0), w(0, i64::MAX));
        assert_eq!(tumbling_window(-1, i64::MAX, 0), w(-i64::MAX, 0));
        assert_eq!(
            tumbling_window(i64::MIN, i64::MAX, 0),
            w(i64::MIN, -i64::MAX)
        );
    }

    #[test]
    fn sliding_windows_hold_the_record_and_clamp_at_the_ends() {
        assert_eq!(
            sliding(10_500, 10_000, 2_000, 0),
            [
                w(10_000, 20_000),
                w(8_000, 18_000),
                w(6_000, 16_000),
                w(4_000, 14_000),
                w(2_000, 12_000)
            ]
        );
        assert_eq!(sliding(500, 1_000, 3_000, 0), [w(0, 1_000)]);
        assert_eq!(sliding(1_500, 1_000, 3_000, 0), [], "in the gap");
        // Near i64::MIN the starts clamp and the ends stay distinct; near i64::MAX the ends
        // clamp and the starts stay distinct.
        assert_eq!(
            sliding(i64::MIN, 30, 10, 0),
            [
                w(i64::MIN, i64::MIN + 28),
                w(i64::MIN, i64::MIN + 18),
                w(i64::MIN, i64::MIN + 8),
            ]
        );
        assert_eq!(
            sliding(i64::MAX, 30, 10, 0),
            [
                w(i64::MAX - 7, i64::MAX),
                w(i64::MAX - 17, i64::MAX),
                w(i64::MAX - 27, i64::MAX),
            ]
        );
        assert_eq!(sliding(0, i64::MAX, i64::MAX, 0), [w(0, i64::MAX)]);
    }

    #[test]
    fn watermark_clean_up_and_distances_saturate() {
        assert_eq!(watermark_for(100, 5), 94);
        assert_eq!(watermark_for(i64::MAX, 0), i64::MAX - 1);
        assert_eq!(watermark_for(i64::MIN, 5), i64::MIN);
        assert_eq!(watermark_for(i64::MIN + 3, i64::MAX), i64::MIN);
        assert_eq!(watermark_for(10, -5), 9, "a negative bound counts as zero");
        assert_eq!(fires_at(60_000, 5_000), 65_000);
        assert_eq!(fires_at(i64::MAX - 1, 5_000), i64::MAX);
        let last = w(i64::MAX - 10, i64::MAX);
        assert_eq!(cleanup_time(last, 0), i64::MAX - 1);
        assert_eq!(cleanup_time(last, 1), i64::MAX);
        assert_eq!(cleanup_time(last, i64::MAX), i64::MAX);
        assert_eq!(cleanup_time(w(0, 10), -3), 9);
        assert_eq!(distance_ms(i64::MIN, i64::MAX), u64::MAX);
        assert_eq!(distance_ms(i64::MAX, i64::MIN), u64::MAX);
        assert_eq!(
            distance_ms(i64::MIN, 1_772_409_600_000),
            9_223_373_809_264_375_808
        );
        assert_eq!(millis(Duration::from_secs(u64::MAX)), i64::MAX);
        assert_eq!(millis(Duration::from_millis(1_500)), 1_500);
    }

    #[test]
    fn window_shapes_are_checked() {
        assert!(check_window_shape(60_000, 60_000).is_ok());
        assert!(check_window_shape(i64::MAX, i64::MAX).is_ok());
        assert!(check_window_shape(0, 1).unwrap_err().contains("size 0"));
        assert!(check_window_shape(10, -1).unwrap_err().contains("slide -1"));
        let err = check_window_shape(i64::MAX, 1).unwrap_err();
        assert!(err.contains("more than the 10000"), "{err}");
        assert!(check_window_shape(MAX_WINDOWS_PER_RECORD, 1).is_ok());
    }

    /// A timestamp anywhere in `i64`, often at or near its ends.
    fn timestamp() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            (0..100_000i64).prop_map(|d| i64::MAX - d),
            (0..100_000i64).prop_map(|d| i64::MIN + d),
            -10_000_000i64..10_000_000,
        ]
    }

    /// A positive size anywhere up to `i64::MAX`, often small.
    fn size() -> impl Strategy<Value = i64> {
        prop_oneof![
            1..=i64::MAX,
            1..1_000_000i64,
            (0..1_000i64).prop_map(|d| i64::MAX - d)
        ]
    }

    /// The exact window bounds of `ts` in 128-bit arithmetic, before clamping.
    fn exact_start(ts: i64, size: i64, offset: i64) -> i128 {
        let (ts, size, offset) = (i128::from(ts), i128::from(size), i128::from(offset));
        ts - (ts - offset).rem_euclid(size)
    }

    fn check_window(window: Window, ts: i64) -> Result<(), TestCaseError> {
        prop_assert!(window.start < window.end, "{window:?} is empty");
        prop_assert!(window.start <= ts, "{window:?} starts after {ts}");
        prop_assert!(
            ts < window.end || (ts == i64::MAX && window.end == i64::MAX),
            "{window:?} ends at or before {ts}"
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn tumbling_windows_hold_their_timestamp_over_all_of_i64(
            ts in timestamp(), size in size(), offset in any::<i64>(),
        ) {
            let window = tumbling_window(ts, size, offset);
            check_window(window, ts)?;
            let start = exact_start(assignable(ts), size, offset);
            let clamp = |x: i128| x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
            prop_assert_eq!(window, w(clamp(start), clamp(start + i128::from(size))));
            // The window's own start lies in the same window: bounds are stable.
            prop_assert_eq!(tumbling_window(window.start, size, offset), window);
        }

        #[test]
        fn sliding_windows_are_bounded_and_hold_their_timestamp(
            ts in timestamp(),
            size in size(),
            per_record in 1..=64i64,
            gaps in any::<bool>(),
            offset in any::<i64>(),
        ) {
            // Slides from a 64th of the size up to it, or longer than it (gaps between windows).
            let slide = if gaps {
                size.saturating_add(1 + size / 2)
            } else {
                (size / per_record).max(1)
            };
            let windows = sliding(ts, size, slide, offset);
            let bound = windows_per_record(size, slide);
            prop_assert!(windows.len() as i64 <= bound, "{} windows, bound {bound}", windows.len());
            prop_assert!(slide > size || !windows.is_empty(), "a record without windows");
            for pair in windows.windows(2) {
                prop_assert!(pair[0] > pair[1], "not latest first or repeated: {pair:?}");
                prop_assert!(pair[0].end >= pair[1].end, "start order is not end order: {pair:?}");
            }
            for window in windows {
                check_window(window, ts)?;
                prop_assert!(window.end.saturating_sub(window.start) <= size);
            }
        }

        #[test]
        fn watermarks_and_clean_up_never_wrap(
            max_ts in timestamp(), bound in any::<i64>(), lateness in any::<i64>(),
            size in size(),
        ) {
            let watermark = watermark_for(max_ts, bound);
            prop_assert!(watermark < i64::MAX, "data produced the end-of-input watermark");
            prop_assert!(watermark <= max_ts);
            let window = tumbling_window(max_ts, size, 0);
            let cleanup = cleanup_time(window, lateness);
            prop_assert!(cleanup >= window.max_timestamp());
            // A window fires once the highest timestamp reaches fires_at (unless it saturated).
            let at = fires_at(window.end, bound);
            // (The window [MIN, MIN + 1) is reached by the initial watermark already.)
            if at < i64::MAX && window.max_timestamp() > i64::MIN {
                prop_assert!(watermark_for(at, bound) >= window.max_timestamp());
                prop_assert!(watermark_for(at - 1, bound) < window.max_timestamp());
            }
        }
    }
}
