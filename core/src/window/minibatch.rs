//! Mini-batch pre-aggregation (Flink SQL's `table.exec.mini-batch`, here one input batch at
//! a time): the placements of one batch's records are first grouped by (window, key) in a
//! small scratch, and each distinct slot then costs one window-state lookup per batch instead
//! of one per record and window.
//!
//! Grouping, not merging: the scratch keeps, per slot, the indexes of its records in input
//! order, and the fold adds each of them to the stored accumulator with
//! [`AggregateFunction::add`](super::AggregateFunction::add), in that order. So every
//! accumulator sees exactly the `add` calls the record-by-record path makes, whatever the
//! aggregate (no use of `merge`, no scratch accumulator), and slots are folded in the order
//! their first record came, so new (window, key) pairs get the sequence numbers (firing order)
//! the record-by-record path gives them.
//!
//! Costs: a placement is O(1): the slot of the previous placement is tried first (consecutive
//! records mostly share one), then a linear search while the batch has at most
//! [`LINEAR_SLOTS`] slots, a hash lookup beyond. A slot keeps its records as runs of
//! consecutive indexes, so a record that follows the slot's last one only extends a run (a
//! batch of one window and key is one run). Memory: one slot per distinct (window, key) and at
//! most one run per placement of the batch; cleared per batch, capacity kept (about the
//! placements of one network buffer), so a batch allocates nothing once the scratch has
//! grown to the largest batch.

use std::hash::Hash;

use hashbrown::HashTable;

use super::Window;
use crate::keyed::hash_key;

/// Slots searched linearly; a batch with more is indexed by hash.
const LINEAR_SLOTS: usize = 8;
/// The end of a slot's chain of records.
const END: usize = usize::MAX;

/// The placements of one batch's records, grouped by (window, key).
#[derive(Debug)]
pub(super) struct MiniBatch<K> {
    /// Distinct (window, key) pairs, in the order of their first placement.
    slots: Vec<BatchSlot<K>>,
    /// Runs of consecutive record indexes, chained per slot in input order.
    links: Vec<Link>,
    /// The slot of the previous placement, or [`END`].
    recent: usize,
    /// Slot indexes by the hash of their (window, key); filled once the batch has more than
    /// [`LINEAR_SLOTS`] slots.
    index: HashTable<usize>,
}

#[derive(Debug)]
struct BatchSlot<K> {
    window: Window,
    key: K,
    /// The slot's first and last run.
    head: usize,
    tail: usize,
}

impl<K: Eq> BatchSlot<K> {
    #[inline]
    fn is(&self, window: Window, key: &K) -> bool {
        self.window == window && self.key == *key
    }
}

/// The records `start..end` of the batch, and the slot's next run ([`END`] at the last).
#[derive(Debug, Clone, Copy)]
struct Link {
    start: usize,
    end: usize,
    next: usize,
}

impl<K> Default for MiniBatch<K> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            links: Vec::new(),
            recent: END,
            index: HashTable::new(),
        }
    }
}

#[inline]
fn slot_hash<K: Hash>(window: Window, key: &K) -> u64 {
    hash_key(&(window, key))
}

impl<K: Hash + Eq + Clone> MiniBatch<K> {
    /// Whether nothing was placed since the last [`drain`](Self::drain).
    pub(super) fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Places record number `record` of the batch into (`window`, `key`). Records are placed
    /// in input order (a record may go to several slots, never twice to one). The common case,
    /// a record that follows the previous placement's record in the same slot, only extends
    /// that slot's last run, inline; the rest is [`add_other`](Self::add_other).
    #[inline(always)]
    pub(super) fn add(&mut self, window: Window, key: &K, record: usize) {
        if let Some(recent) = self.slots.get(self.recent)
            && recent.is(window, key)
            && let Some(tail) = self.links.get_mut(recent.tail)
            && tail.end == record
        {
            tail.end += 1;
            return;
        }
        self.add_other(window, key, record);
    }

    /// [`add`](Self::add) beyond extending the recent slot's last run: another slot, or a new
    /// run.
    #[inline(never)]
    fn add_other(&mut self, window: Window, key: &K, record: usize) {
        let run = Link {
            start: record,
            end: record + 1,
            next: END,
        };
        let link = self.links.len();
        match self.find(window, key) {
            Some(slot) => {
                self.recent = slot;
                let tail = self.slots[slot].tail;
                if self.links[tail].end == record {
                    self.links[tail].end += 1;
                    return;
                }
                self.links.push(run);
                self.links[tail].next = link;
                self.slots[slot].tail = link;
            }
            None => {
                self.links.push(run);
                self.recent = self.slots.len();
                self.slots.push(BatchSlot {
                    window,
                    key: key.clone(),
                    head: link,
                    tail: link,
                });
                self.index_new_slot();
            }
        }
    }

    /// The slot of (`window`, `key`), if the batch has one.
    #[inline]
    fn find(&self, window: Window, key: &K) -> Option<usize> {
        if let Some(recent) = self.slots.get(self.recent)
            && recent.is(window, key)
        {
            return Some(self.recent);
        }
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

    /// Calls `fold(window, key, records)` for each slot, in the order of its first placement,
    /// with the indexes of its records in input order; then empties the scratch.
    pub(super) fn drain(&mut self, mut fold: impl FnMut(Window, &K, Records<'_>)) {
        for slot in &self.slots {
            fold(
                slot.window,
                &slot.key,
                Records {
                    links: &self.links,
                    run: 0..0,
                    next: slot.head,
                },
            );
        }
        self.clear();
    }

    /// Forgets every placement (keeps the capacity).
    pub(super) fn clear(&mut self) {
        self.slots.clear();
        self.links.clear();
        self.index.clear();
        self.recent = END;
    }
}

/// The indexes in the batch of one slot's records, in input order.
#[derive(Debug)]
pub(super) struct Records<'a> {
    links: &'a [Link],
    /// The rest of the current run.
    run: std::ops::Range<usize>,
    /// The run after it.
    next: usize,
}

impl Iterator for Records<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        loop {
            if let Some(record) = self.run.next() {
                return Some(record);
            }
            let link = self.links.get(self.next)?;
            self.run = link.start..link.end;
            self.next = link.next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grouped(placements: &[(i64, u64)]) -> Vec<(i64, u64, Vec<usize>)> {
        let mut batch = MiniBatch::default();
        for (i, &(start, key)) in placements.iter().enumerate() {
            batch.add(
                Window {
                    start,
                    end: start + 10,
                },
                &key,
                i,
            );
        }
        let mut slots = Vec::new();
        batch.drain(|window, key, records| slots.push((window.start, *key, records.collect())));
        assert!(batch.is_empty(), "drained");
        slots
    }

    #[test]
    fn slots_come_in_first_seen_order_with_their_records_in_input_order() {
        let slots = grouped(&[(0, 1), (0, 2), (0, 1), (10, 1), (0, 2), (0, 1)]);
        assert_eq!(
            slots,
            [(0, 1, vec![0, 2, 5]), (0, 2, vec![1, 4]), (10, 1, vec![3])]
        );
    }

    #[test]
    fn many_slots_are_found_by_hash_as_a_few_are_by_search() {
        // 40 keys, each placed three times, interleaved: past LINEAR_SLOTS the index finds them.
        let placements: Vec<(i64, u64)> = (0..120).map(|i| (0, (i * 7) % 40)).collect();
        let slots = grouped(&placements);
        assert_eq!(slots.len(), 40);
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
                Step::Watermark(_) | Step::Cut if !batch.is_empty() => {
                    op.process_batch(&mut batch, &mut out.collector()).unwrap();
                    assert!(batch.is_empty(), "the batch is taken");
                }
                _ => {}
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
        prop::collection::vec((0..12u8, 0..12u64, 0..80i64, 0..6i64), 0..300)
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
