//! The timestamp guard: quarantines records whose event timestamps are implausible, before
//! they can move a watermark (the seed's start-up problem: a few day-old timestamps made a
//! flood of old windows fire).
//!
//! Reference: one record is not a trustworthy reference, so each partition first holds its
//! first [`WARMUP_RECORDS`] records and takes their **median** timestamp as the reference; a
//! bogus first record is then an outlier, not the anchor. After the warm-up the reference is
//! the highest timestamp *accepted* so far, so a quarantined record never moves it. A record
//! is quarantined when it is more than `max_future_skew` ahead of the reference or more than
//! `max_past_skew` behind it.
//!
//! A real jump in time (a gap in the data longer than the future skew) would quarantine
//! everything after it; after [`REANCHOR_AFTER`] consecutive future-quarantined records the
//! guard accepts that time has moved and re-anchors on the next one.
//!
//! Limits and distances are computed without overflow over all of `i64` (the reason states
//! the unsigned distance, [`distance_ms`]).

use super::arith::distance_ms;

/// Records held per partition to choose the reference.
pub const WARMUP_RECORDS: usize = 16;
/// Consecutive records ahead of the reference after which the guard re-anchors.
pub const REANCHOR_AFTER: u32 = 64;

/// The guard's limits; `None` disables a side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GuardConfig {
    /// Largest accepted lead over the reference, ms.
    pub max_future_skew_ms: Option<i64>,
    /// Largest accepted lag behind the reference, ms.
    pub max_past_skew_ms: Option<i64>,
}

impl GuardConfig {
    /// The guard off.
    pub const OFF: GuardConfig = GuardConfig {
        max_future_skew_ms: None,
        max_past_skew_ms: None,
    };

    /// Whether either side is on.
    pub fn is_on(&self) -> bool {
        self.max_future_skew_ms.is_some() || self.max_past_skew_ms.is_some()
    }
}

/// Why a record was quarantined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantine {
    /// The record's timestamp, ms.
    pub timestamp_ms: i64,
    /// The reference it was judged against, ms.
    pub reference_ms: i64,
    /// The reason, in words.
    pub reason: String,
}

/// The guard's decision on one record.
#[derive(Debug)]
pub enum Offer<T> {
    /// Judged now: accepted (`None`) or quarantined.
    Judged(T, i64, Option<Quarantine>),
    /// Held for the warm-up.
    Held,
    /// The warm-up completed: every held record, judged, in arrival order.
    Released(Vec<(T, i64, Option<Quarantine>)>),
}

/// The guard of one partition.
#[derive(Debug)]
pub struct TimestampGuard<T> {
    config: GuardConfig,
    held: Vec<(T, i64)>,
    reference: Option<i64>,
    ahead_in_a_row: u32,
}

impl<T> TimestampGuard<T> {
    /// A guard with `config`.
    pub fn new(config: GuardConfig) -> Self {
        Self {
            config,
            held: Vec::new(),
            reference: None,
            ahead_in_a_row: 0,
        }
    }

    /// Offers a record with timestamp `ts`.
    #[inline]
    pub fn offer(&mut self, record: T, ts: i64) -> Offer<T> {
        if self.reference.is_some() {
            let verdict = self.judge(ts);
            return Offer::Judged(record, ts, verdict);
        }
        self.held.push((record, ts));
        if self.held.len() < WARMUP_RECORDS {
            return Offer::Held;
        }
        Offer::Released(self.release())
    }

    /// The partition ended: judge whatever the warm-up still holds.
    pub fn finish(&mut self) -> Vec<(T, i64, Option<Quarantine>)> {
        if self.held.is_empty() {
            return Vec::new();
        }
        self.release()
    }

    fn release(&mut self) -> Vec<(T, i64, Option<Quarantine>)> {
        let mut timestamps: Vec<i64> = self.held.iter().map(|(_, ts)| *ts).collect();
        timestamps.sort_unstable();
        self.reference = Some(timestamps[timestamps.len() / 2]);
        std::mem::take(&mut self.held)
            .into_iter()
            .map(|(record, ts)| {
                let verdict = self.judge(ts);
                (record, ts, verdict)
            })
            .collect()
    }

    /// Whether the warm-up is over: from then on [`offer`](Self::offer) judges every record at
    /// once, as [`judge`](Self::judge) does.
    pub fn is_warm(&self) -> bool {
        self.reference.is_some()
    }

    /// The verdict on a record of timestamp `ts` after the warm-up (`None`: accepted), as
    /// [`offer`](Self::offer) gives it, without handing over the record.
    ///
    /// # Panics
    /// During the warm-up ([`is_warm`](Self::is_warm) is false).
    pub fn judge(&mut self, ts: i64) -> Option<Quarantine> {
        let reference = self.reference.expect("judged after the warm-up");
        if let Some(max) = self.config.max_future_skew_ms
            && ts > reference.saturating_add(max)
        {
            self.ahead_in_a_row += 1;
            if self.ahead_in_a_row <= REANCHOR_AFTER {
                return Some(Quarantine {
                    timestamp_ms: ts,
                    reference_ms: reference,
                    reason: format!(
                        "timestamp {ts} is {} ms ahead of the reference {reference} (max future skew {max} ms)",
                        distance_ms(ts, reference)
                    ),
                });
            }
        }
        self.ahead_in_a_row = 0;
        if let Some(max) = self.config.max_past_skew_ms
            && ts < reference.saturating_sub(max)
        {
            return Some(Quarantine {
                timestamp_ms: ts,
                reference_ms: reference,
                reason: format!(
                    "timestamp {ts} is {} ms behind the reference {reference} (max past skew {max} ms)",
                    distance_ms(reference, ts)
                ),
            });
        }
        self.reference = Some(reference.max(ts));
        None
    }
}

/// A guard's state in a checkpoint (it is taken only when nothing is held: a source snapshots
/// a warming-up partition at the offset before its first held record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuardState {
    /// The reference, once the warm-up is over.
    pub reference: Option<i64>,
    /// Consecutive records quarantined as ahead of it.
    pub ahead_in_a_row: u32,
}

impl<T> TimestampGuard<T> {
    /// Records held for the warm-up now.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// The guard's state as a checkpoint keeps it; a warming-up guard is kept as fresh (its
    /// held records are read again from the source after a restore).
    pub fn state(&self) -> GuardState {
        GuardState {
            reference: self.reference,
            ahead_in_a_row: self.ahead_in_a_row,
        }
    }

    /// A guard restored from `state`.
    pub fn restored(config: GuardConfig, state: GuardState) -> Self {
        let mut guard = Self::new(config);
        guard.reference = state.reference;
        guard.ahead_in_a_row = state.ahead_in_a_row;
        guard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    fn guard() -> TimestampGuard<u32> {
        TimestampGuard::new(GuardConfig {
            max_future_skew_ms: Some(3_600_000),
            max_past_skew_ms: Some(12 * 3_600_000),
        })
    }

    fn judged(offers: Vec<Offer<u32>>) -> Vec<(u32, bool)> {
        let mut out = Vec::new();
        for offer in offers {
            match offer {
                Offer::Judged(r, _, q) => out.push((r, q.is_none())),
                Offer::Held => {}
                Offer::Released(all) => {
                    out.extend(all.into_iter().map(|(r, _, q)| (r, q.is_none())))
                }
            }
        }
        out
    }

    #[test]
    fn a_bogus_first_record_is_quarantined_not_trusted() {
        let mut g = guard();
        let base = 100 * DAY;
        // The very first record is 20 days old; the rest are a normal stream.
        let mut offers = vec![g.offer(0, base - 20 * DAY)];
        for i in 1..40u32 {
            offers.push(g.offer(i, base + i64::from(i) * 1000));
        }
        let verdicts = judged(offers);
        assert_eq!(verdicts.len(), 40);
        assert_eq!(
            verdicts[0],
            (0, false),
            "the day-old first record is quarantined"
        );
        assert!(verdicts[1..].iter().all(|(_, ok)| *ok));
    }

    #[test]
    fn late_but_plausible_records_pass_and_future_ones_do_not() {
        let mut g = guard();
        let base = 100 * DAY;
        for i in 0..WARMUP_RECORDS as u32 {
            g.offer(i, base);
        }
        let three_hours_late = g.offer(100, base - 3 * 3_600_000);
        assert!(matches!(three_hours_late, Offer::Judged(_, _, None)));
        let two_hours_ahead = g.offer(101, base + 2 * 3_600_000);
        match two_hours_ahead {
            Offer::Judged(_, _, Some(q)) => assert!(q.reason.contains("ahead"), "{}", q.reason),
            other => panic!("expected quarantine, got {other:?}"),
        }
    }

    #[test]
    fn a_short_partition_is_judged_at_its_end() {
        let mut g = guard();
        assert!(matches!(g.offer(1, DAY), Offer::Held));
        assert!(matches!(g.offer(2, DAY + 5), Offer::Held));
        let released = g.finish();
        assert_eq!(released.len(), 2);
        assert!(released.iter().all(|(_, _, q)| q.is_none()));
    }

    #[test]
    fn a_real_jump_in_time_re_anchors() {
        let mut g = guard();
        for i in 0..WARMUP_RECORDS as u32 {
            g.offer(i, 0);
        }
        let mut accepted = 0;
        for i in 0..200u32 {
            if let Offer::Judged(_, _, None) = g.offer(i, 10 * DAY + i64::from(i)) {
                accepted += 1;
            }
        }
        assert_eq!(accepted, 200 - REANCHOR_AFTER as usize);
    }

    #[test]
    fn timestamps_at_the_ends_of_i64_are_quarantined_with_their_true_distance() {
        let mut g = guard();
        let base = 20_000 * DAY;
        for i in 0..WARMUP_RECORDS as u32 {
            g.offer(i, base);
        }
        let reason = |offer: Offer<u32>| match offer {
            Offer::Judged(_, _, Some(q)) => q.reason,
            other => panic!("expected quarantine, got {other:?}"),
        };
        let behind = reason(g.offer(100, i64::MIN));
        let distance = (i128::from(base) - i128::from(i64::MIN)).to_string();
        assert!(
            behind.contains(&format!("is {distance} ms behind")),
            "{behind}"
        );
        assert!(!behind.contains("is -"), "a negative distance: {behind}");
        let ahead = reason(g.offer(101, i64::MAX));
        let distance = (i128::from(i64::MAX) - i128::from(base)).to_string();
        assert!(
            ahead.contains(&format!("is {distance} ms ahead")),
            "{ahead}"
        );

        // A reference at i64::MIN and a record at i64::MAX: the distance is u64::MAX.
        let mut g = guard();
        for i in 0..WARMUP_RECORDS as u32 {
            g.offer(i, i64::MIN);
        }
        let ahead = reason(g.offer(102, i64::MAX));
        assert!(
            ahead.contains(&format!("is {} ms ahead", u64::MAX)),
            "{ahead}"
        );
    }
}
