//! A punctuated watermark deferred to the end of a source batch.
//!
//! A punctuated generator (Flink's `onEvent` emitting) produces a watermark after nearly every
//! record. Sending each one right after its record would cut the source's record batch at
//! every record; instead the source keeps gathering and sends only the newest watermark after
//! the batch, unless a record must see it first. The rule: a record with timestamp `ts` may
//! be gathered while a watermark `W` is deferred only if `ts > W`; a record at or behind `W`
//! cuts the batch (the records gathered so far go down, then `W`, then the record).
//!
//! Why nothing downstream can tell (the proof the source's batches rest on). Call `W(r)` the
//! watermark that record-by-record emission sends last before record `r`, and `W'(r)` the one
//! that arrives last before `r` with deferral. Watermarks only advance, so `W'(r) <= W(r)`,
//! and by the rule `W'(r) = W(r)` whenever `ts(r) <= W(r)`. Everything a window decides for a
//! record compares a bound at or above `ts` against the watermark: the record is late when
//! `cleanup(w) <= W`, refires `w` when `w.max_timestamp() <= W`, and
//! `ts <= w.max_timestamp() <= cleanup(w)` for every window `w` of the record. If
//! `ts > W(r)`, neither holds under `W(r)` nor under the smaller `W'(r)`; otherwise the two
//! watermarks are equal. So every record is placed, refires, or is dropped as late exactly as
//! record by record. A window fires with the same contents: the records that reach it before
//! its firing watermark are those behind no earlier watermark plus those before it, which
//! deferral does not reorder. Windows fire in the same order (window order, keys in first-seen
//! order, both independent of how many watermarks a span is split into), and fired windows are
//! freed later but never needed: a record for a freed window is behind the watermark that freed
//! it, so it cut the batch and sees it. Downstream a task's watermark is the minimum over its
//! channels: a channel's watermark that arrives later, but before any record it would make
//! late, changes only when windows fire in processing time, which the channels' interleaving
//! never fixed.
//!
//! What deferral does change: operators see fewer watermarks (each one that arrives is one
//! record-by-record emission would have sent, but intermediate ones between two records ahead
//! of them are skipped, as the record writer already skips a watermark overwritten in its open
//! buffer), and windows fire up to one source batch later in processing time.

use super::Watermark;

/// The punctuated watermark a source subtask owes after the records it has gathered, if any.
/// O(1) per call; holds one watermark.
#[derive(Debug, Default)]
pub(crate) struct DeferredWatermark(Option<Watermark>);

impl DeferredWatermark {
    /// Defers `watermark`, which replaces the one deferred before it: watermarks only advance,
    /// so the newest dominates.
    #[inline]
    pub(crate) fn defer(&mut self, watermark: Watermark) {
        debug_assert!(
            self.0.is_none_or(|deferred| deferred < watermark),
            "a deferred watermark only advances: {:?} then {watermark:?}",
            self.0
        );
        self.0 = Some(watermark);
    }

    /// Whether a record with timestamp `ts` must wait for the deferred watermark to go down
    /// first: it is at or behind it, so that watermark decides where the record goes.
    #[inline]
    pub(crate) fn holds_back(&self, ts: i64) -> bool {
        self.0.is_some_and(|deferred| ts <= deferred.0)
    }

    /// Whether a watermark is deferred.
    #[inline]
    pub(crate) fn is_deferred(&self) -> bool {
        self.0.is_some()
    }

    /// The deferred watermark, to send after the gathered records; none is deferred after.
    #[inline]
    pub(crate) fn take(&mut self) -> Option<Watermark> {
        self.0.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_at_or_behind_the_deferred_watermark_is_held_back_and_take_empties_it() {
        let mut deferred = DeferredWatermark::default();
        assert!(!deferred.holds_back(i64::MIN), "nothing deferred");
        deferred.defer(Watermark(10));
        deferred.defer(Watermark(20));
        assert!(deferred.is_deferred());
        assert!(deferred.holds_back(20), "at the watermark: late for it");
        assert!(deferred.holds_back(11), "the newest one counts");
        assert!(!deferred.holds_back(21));
        assert_eq!(deferred.take(), Some(Watermark(20)));
        assert_eq!(deferred.take(), None);
        assert!(!deferred.holds_back(0));
    }
}
