//! Mini-batch pre-aggregation (Flink SQL's `table.exec.mini-batch`, here the input batches
//! between two reads of the state): while records are placed, each distinct (window, key)
//! holds its accumulator in a small scratch, so that a slot costs window-state lookups once
//! per stretch of batches instead of once per record and window.
//!
//! Moving, not merging: a slot's accumulator is the stored one, taken out of the window state
//! at the slot's first placement (a fresh one left in its place) and put back when the scratch
//! is drained: before the operator next reads its state (a watermark that fires a window, a
//! snapshot, a record processed alone, a record refiring a window), or at the end of a batch
//! once the scratch holds more than [`KEPT_SLOTS`] slots. Records are added to it with
//! [`AggregateFunction::add`](super::AggregateFunction::add) as they are placed, in input
//! order, so every accumulator sees exactly the `add` calls the record-by-record path makes,
//! whatever the aggregate (no use of `merge`, no scratch accumulator). Taking creates a new
//! (window, key) in the state at its first record, so new pairs get the sequence numbers
//! (firing order) the record-by-record path gives them. Until the scratch is drained the state
//! holds fresh accumulators for its slots: nothing reads the state in between (the operators
//! drain the scratch first).
//!
//! Costs: a placement is O(1): the slot its key placed into last is tried first, found in a
//! small direct-mapped table by the key's hash ([`RECENT`] entries; consecutive records of a
//! key mostly share a window, and a few keys that interleave, such as a handful of origins,
//! each keep their entry, with no branch on which key came), then a linear search while the
//! scratch has at most [`LINEAR_SLOTS`] slots, a hash lookup beyond; a new slot costs one
//! state lookup to take its accumulator, and one more to put it back. Memory: one slot
//! (window, key, accumulator) per distinct (window, key) since the last drain, at most
//! [`KEPT_SLOTS`] past a batch's end (and a batch's own pairs within it); the capacity is
//! kept, so placements allocate nothing once the scratch has grown.

use std::hash::Hash;

use hashbrown::HashTable;

use super::Window;
use crate::keyed::hash_key;

/// Slots searched linearly; a scratch with more is indexed by hash.
const LINEAR_SLOTS: usize = 8;
/// Entries of the direct-mapped table of the slots placed into last (a power of two).
const RECENT: usize = 8;
/// Slots the scratch keeps past the end of a batch; beyond, the batch's end drains it, so the
/// scratch stays small (in cache) and does not double a large state's memory. The unit tests
/// keep few, so that their runs take both paths.
const KEPT_SLOTS: usize = if cfg!(test) { 8 } else { 1024 };
/// No slot.
const NONE: usize = usize::MAX;

/// The accumulators of the (window, key) pairs placed since the last drain, taken out of the
/// window state.
#[derive(Debug)]
pub(super) struct MiniBatch<K, S> {
    /// Distinct (window, key) pairs, in the order of their first placement.
    slots: Vec<BatchSlot<K, S>>,
    /// By the key's hash ([`recent_entry`]): the slot a key with that entry placed into last,
    /// or [`NONE`].
    recent: [usize; RECENT],
    /// Slot indexes by the hash of their (window, key); filled once the scratch has more than
    /// [`LINEAR_SLOTS`] slots.
    index: HashTable<usize>,
}

#[derive(Debug)]
struct BatchSlot<K, S> {
    window: Window,
    key: K,
    acc: S,
}

impl<K: Eq, S> BatchSlot<K, S> {
    #[inline]
    fn is(&self, window: Window, key: &K) -> bool {
        self.window == window && self.key == *key
    }
}

impl<K, S> Default for MiniBatch<K, S> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            recent: [NONE; RECENT],
            index: HashTable::new(),
        }
    }
}

#[inline]
fn slot_hash<K: Hash>(window: Window, key: &K) -> u64 {
    hash_key(&(window, key))
}

/// The entry of `key` in [`MiniBatch::recent`]: the top bits of its hash (a constant for a
/// global window's `()`).
#[inline(always)]
fn recent_entry<K: Hash>(key: &K) -> usize {
    (hash_key(key) >> (u64::BITS - RECENT.trailing_zeros())) as usize
}

impl<K: Hash + Eq + Clone, S> MiniBatch<K, S> {
    /// Whether nothing was placed since the last [`drain`](Self::drain).
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether the scratch holds more slots than it keeps past the end of a batch.
    pub(super) fn is_over_kept(&self) -> bool {
        self.slots.len() > KEPT_SLOTS
    }

    /// The accumulator of (`window`, `key`) in the scratch, to add a record to; at the pair's
    /// first placement since the last drain it is `take()`, the stored accumulator taken out
    /// of the window state. The common case, the slot the key's [`recent`](Self::recent) entry
    /// names, is inline; the rest is [`slot_of`](Self::slot_of).
    #[inline(always)]
    pub(super) fn acc(&mut self, window: Window, key: &K, take: impl FnOnce() -> S) -> &mut S {
        let entry = recent_entry(key);
        let slot = match self.slots.get(self.recent[entry]) {
            Some(recent) if recent.is(window, key) => self.recent[entry],
            _ => {
                let slot = self.slot_of(window, key, take);
                self.recent[entry] = slot;
                slot
            }
        };
        &mut self.slots[slot].acc
    }

    /// The slot of (`window`, `key`), made with `take()` if the scratch has none.
    #[inline(never)]
    fn slot_of(&mut self, window: Window, key: &K, take: impl FnOnce() -> S) -> usize {
        if let Some(slot) = self.find(window, key) {
            return slot;
        }
        self.slots.push(BatchSlot {
            window,
            key: key.clone(),
            acc: take(),
        });
        self.index_new_slot();
        self.slots.len() - 1
    }

    /// The slot of (`window`, `key`), if the scratch has one.
    #[inline]
    fn find(&self, window: Window, key: &K) -> Option<usize> {
        if self.slots.len() <= LINEAR_SLOTS {
            return self.slots.iter().position(|s| s.is(window, key));
        }
        let slots = &self.slots;
        self.index
            .find(slot_hash(window, key), |&i| slots[i].is(window, key))
            .copied()
    }

    /// Indexes the slot just pushed, and every earlier one when it is the first past
    /// [`LINEAR_SLOTS`].
    fn index_new_slot(&mut self) {
        let len = self.slots.len();
        if len <= LINEAR_SLOTS {
            return;
        }
        let first = if len == LINEAR_SLOTS + 1 { 0 } else { len - 1 };
        let slots = &self.slots;
        for (i, slot) in slots.iter().enumerate().skip(first) {
            self.index
                .insert_unique(slot_hash(slot.window, &slot.key), i, |&j| {
                    slot_hash(slots[j].window, &slots[j].key)
                });
        }
    }

    /// Calls `put_back(window, key, accumulator)` for each slot, in the order of its first
    /// placement; then empties the scratch.
    pub(super) fn drain(&mut self, mut put_back: impl FnMut(Window, &K, S)) {
        for slot in self.slots.drain(..) {
            put_back(slot.window, &slot.key, slot.acc);
        }
        self.clear();
    }

    /// Forgets every placement (keeps the capacity).
    fn clear(&mut self) {
        self.slots.clear();
        self.index.clear();
        self.recent = [NONE; RECENT];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (window start, key, what the drain put back).
    type Drained = Vec<(i64, u64, Vec<usize>)>;

    /// Places `placements` (window start, key) with the record numbers as accumulators'
    /// contents; what the drain puts back, and each first placement's take, in order.
    fn grouped(placements: &[(i64, u64)]) -> (Drained, Vec<(i64, u64)>) {
        let mut batch = MiniBatch::default();
        let mut taken = Vec::new();
        for (i, &(start, key)) in placements.iter().enumerate() {
            let window = Window {
                start,
                end: start + 10,
            };
            batch
                .acc(window, &key, || {
                    taken.push((start, key));
                    Vec::new()
                })
                .push(i);
        }
        let mut slots = Vec::new();
        batch.drain(|window, key, records| slots.push((window.start, *key, records)));
        assert!(batch.is_empty(), "drained");
        (slots, taken)
    }

    #[test]
    fn slots_come_in_first_seen_order_with_their_records_in_input_order() {
        let (slots, taken) = grouped(&[(0, 1), (0, 2), (0, 1), (10, 1), (0, 2), (0, 1)]);
        assert_eq!(
            slots,
            [(0, 1, vec![0, 2, 5]), (0, 2, vec![1, 4]), (10, 1, vec![3])]
        );
        assert_eq!(
            taken,
            [(0, 1), (0, 2), (10, 1)],
            "taken once, at first sight"
        );
    }

    #[test]
    fn many_slots_are_found_by_hash_as_a_few_are_by_search() {
        // 40 keys, each placed three times, interleaved: past LINEAR_SLOTS the index finds them.
        let placements: Vec<(i64, u64)> = (0..120).map(|i| (0, (i * 7) % 40)).collect();
        let (slots, taken) = grouped(&placements);
        assert_eq!(slots.len(), 40);
        assert_eq!(taken.len(), 40);
        for (_, key, records) in &slots {
            assert_eq!(records.len(), 3, "key {key}");
            assert!(
                records.iter().all(|&r| placements[r].1 == *key),
                "key {key}"
            );
            assert!(records.is_sorted(), "key {key}");
        }
        let firsts: Vec<usize> = slots.iter().map(|s| s.2[0]).collect();
        assert!(firsts.is_sorted(), "first-seen order");
    }
}

/// The batch path of the window operators against their record-by-record path.
#[cfg(all(test, not(weir_loom)))]
mod equivalence {
    use std::sync::{Arc, Mutex};

    use proptest::prelude::*;

    use crate::checkpoint::OperatorSnapshot;
    use crate::operator::Operator;
    use crate::operator::testing::{VecOutput, context, snapshot};
    use crate::time::Watermark;
    use crate::window::{
        AggregateFunction, LateOutput, LocalPreAggregate, Window, WindowAggregate, WindowAssigner,
        WindowSpec,
    };

    type Record = (u64, i64);

    /// Sums the timestamps of a window's records and remembers the last one: its result
    /// depends on the order of the `add` calls, as a float sum's would.
    #[derive(Debug, Clone, Copy)]
    struct SumAndLast;

    impl AggregateFunction<Record> for SumAndLast {
        type Acc = (i64, i64);
        type Out = (i64, i64);
        fn create(&self) -> (i64, i64) {
            (0, i64::MIN)
        }
        fn add(&self, acc: &mut (i64, i64), input: &Record) {
            acc.0 = acc.0.wrapping_add(input.1);
            acc.1 = input.1;
        }
        fn merge(&self, acc: &mut (i64, i64), other: &(i64, i64)) {
            acc.0 = acc.0.wrapping_add(other.0);
            acc.1 = acc.1.max(other.1);
        }
        fn result(&self, acc: &(i64, i64)) -> (i64, i64) {
            *acc
        }
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Record(Record),
        Watermark(i64),
        /// A batch boundary (nothing in the record-by-record run).
        Cut,
        /// A record processed alone in both runs (as a chain's record-by-record path does),
        /// after the batch before it: the accumulators that batches took must be back first.
        Alone(Record),
    }

    /// Steps over a clock that moves forward by `advance` per step: records up to 80 ms
    /// behind it (some late, some within lateness), watermarks 30 ms behind it.
    fn steps(raw: &[(u8, u64, i64, i64)]) -> Vec<Step> {
        let mut clock = 0;
        raw.iter()
            .map(|&(kind, key, behind, advance)| {
                clock += advance;
                match kind {
                    0 => Step::Watermark(clock - 30),
                    1 => Step::Cut,
                    2 => Step::Alone((key, clock - behind)),
                    _ => Step::Record((key, clock - behind)),
                }
            })
            .collect()
    }

    /// What a run shows: its output, the late handler's calls, the late-record count, and
    /// the snapshot before the end-of-input watermark.
    type Seen<Out> = (Vec<Out>, Vec<(Record, Window)>, u64, OperatorSnapshot);

    fn spec(
        assigner: WindowAssigner,
        lateness_ms: i64,
        late: &Arc<Mutex<Vec<(Record, Window)>>>,
    ) -> WindowSpec<Record> {
        let late = Arc::clone(late);
        let output: LateOutput<Record> = Arc::new(move |_| {
            let late = Arc::clone(&late);
            Ok(Box::new(move |record: &Record, window| {
                late.lock().unwrap().push((*record, window));
                Ok(())
            }))
        });
        WindowSpec {
            assigner,
            allowed_lateness_ms: lateness_ms,
            timestamp: Arc::new(|r: &Record| r.1),
            late: Some(output),
            late_partials: None,
        }
    }

    /// Runs `steps` through the operator `make` builds, record by record or in batches
    /// (cut at every watermark and [`Step::Cut`]).
    fn run<Out: Send, Op: Operator<Record, Out>>(
        make: impl FnOnce(WindowSpec<Record>) -> Op,
        assigner: WindowAssigner,
        lateness_ms: i64,
        steps: &[Step],
        batched: bool,
    ) -> Seen<Out> {
        let late = Arc::default();
        let mut op = make(spec(assigner, lateness_ms, &late));
        let ctx = context(0, 1, None);
        op.open(&ctx).unwrap();
        let mut out = VecOutput::new();
        let mut batch = Vec::new();
        for step in steps.iter().copied().chain([Step::Cut]) {
            match step {
                Step::Record(record) if batched => batch.push(record),
                Step::Record(record) => op.process(record, &mut out.collector()).unwrap(),
                Step::Watermark(_) | Step::Cut | Step::Alone(_) if !batch.is_empty() => {
                    op.process_batch(&mut batch, &mut out.collector()).unwrap();
                    assert!(batch.is_empty(), "the batch is taken");
                }
                _ => {}
            }
            if let Step::Alone(record) = step {
                op.process(record, &mut out.collector()).unwrap();
            }
            if let Step::Watermark(w) = step {
                op.on_watermark(Watermark(w), &mut out.collector()).unwrap();
            }
        }
        let taken = snapshot(&mut op, &ctx);
        op.on_watermark(Watermark(i64::MAX), &mut out.collector())
            .unwrap();
        let late = late.lock().unwrap().clone();
        (out.0, late, ctx.metrics.late_records_dropped.get(), taken)
    }

    fn assigners() -> impl Strategy<Value = WindowAssigner> {
        prop_oneof![
            (1..60i64).prop_map(WindowAssigner::tumbling),
            (1..4i64, 1..20i64).prop_map(|(n, slide)| WindowAssigner::sliding(n * slide, slide)),
        ]
    }

    fn raw_steps() -> impl Strategy<Value = Vec<(u8, u64, i64, i64)>> {
        prop::collection::vec((0..14u8, 0..12u64, 0..80i64, 0..6i64), 0..300)
    }

    proptest! {
        #[test]
        fn a_keyed_window_batch_emits_and_keeps_what_record_by_record_does(
            assigner in assigners(),
            lateness_ms in prop_oneof![Just(0i64), 1..40i64],
            raw in raw_steps(),
        ) {
            let steps = steps(&raw);
            let make = |spec| WindowAggregate::new(Arc::new(|r: &Record| r.0), spec, SumAndLast);
            let one_by_one = run(make, assigner, lateness_ms, &steps, false);
            let batched = run(make, assigner, lateness_ms, &steps, true);
            prop_assert_eq!(batched, one_by_one);
        }

        #[test]
        fn a_local_pre_aggregate_batch_emits_and_keeps_what_record_by_record_does(
            assigner in assigners(),
            lateness_ms in prop_oneof![Just(0i64), 1..40i64],
            raw in raw_steps(),
        ) {
            let steps = steps(&raw);
            let make = |spec| LocalPreAggregate::new(Arc::new(|r: &Record| r.0), spec, SumAndLast);
            let one_by_one = run(make, assigner, lateness_ms, &steps, false);
            let batched = run(make, assigner, lateness_ms, &steps, true);
            prop_assert_eq!(batched, one_by_one);
        }

        #[test]
        fn a_window_all_batch_emits_and_keeps_what_record_by_record_does(
            assigner in assigners(),
            raw in raw_steps(),
        ) {
            let steps = steps(&raw);
            let make = |spec| WindowAggregate::new(Arc::new(|_: &Record| ()), spec, SumAndLast);
            let one_by_one = run(make, assigner, 10, &steps, false);
            let batched = run(make, assigner, 10, &steps, true);
            prop_assert_eq!(batched, one_by_one);
        }
    }

    /// The generated runs cover what the properties are about: late records dropped, fired
    /// windows updated within lateness, records in several windows, many slots in a batch.
    #[test]
    fn the_generated_runs_drop_late_records_and_refire_windows() {
        let raw: Vec<(u8, u64, i64, i64)> = (0..400u64)
            .map(|i| {
                (
                    (i % 13) as u8,
                    (i * 7) % 12,
                    ((i * 37) % 80) as i64,
                    (i % 5) as i64,
                )
            })
            .collect();
        let steps = steps(&raw);
        let assigner = WindowAssigner::sliding(20, 10);
        let make = |spec| WindowAggregate::new(Arc::new(|r: &Record| r.0), spec, SumAndLast);
        let (results, late, dropped, _) = run(make, assigner, 15, &steps, true);
        assert!(
            dropped > 0 && dropped == late.len() as u64,
            "{dropped} dropped"
        );
        let mut fired = std::collections::HashMap::new();
        for r in &results {
            *fired.entry((r.window, r.key)).or_insert(0) += 1;
        }
        assert!(fired.values().any(|&n| n > 1), "a window fired again");
        assert_eq!(
            run(make, assigner, 15, &steps, false).0,
            results,
            "the same results record by record"
        );
    }
}
