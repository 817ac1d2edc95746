//! The keyed process operator (Flink's `KeyedProcessFunction`): a function that sees each
//! record with the state of its key.
//!
//! State lives in a [`KeyedTable`] (Flink's `ValueState`) over the key groups the subtask owns;
//! the keyed exchange in front guarantees that every record of a key reaches the subtask owning
//! its group. The function reaches its key's value through the scoped [`KeyedState`] handle: a
//! record that needs no state costs no lookup, one that does costs one table lookup per call,
//! and a key that never needs state takes no memory. Nothing hands out a reference past a call:
//! change the value inside [`KeyedState::update`].
//!
//! Checkpoints: at a barrier the table is snapshotted as a copy-on-write view (O(key groups) on
//! the task thread; serialized by a snapshot thread, or on the task thread when the job asks for
//! synchronous snapshots) under the state name [`KeyedProcess::STATE`]. [`Operator::open`]
//! restores the key groups this subtask owns now, whichever old subtask wrote them, so a restore
//! at another parallelism is correct. State a function keeps in its own fields is not
//! snapshotted: after a failure it starts from what `make` built.

use crate::checkpoint::SnapshotContext;
use crate::error::OperatorError;
use crate::keyed::KeyGroups;
use crate::state::{
    KeyedRestore, KeyedSnapshot, KeyedState, KeyedTable, Located, SnapshotMode, StateKey,
    StateValue,
};

use super::{Collector, Operator, OperatorContext};

/// A function over a keyed stream with one state value per key.
pub trait KeyedProcessFunction<K, In, Out>: Send + 'static {
    /// The per-key state; a key seen for the first time starts from `Default`
    /// ([`KeyedState::update`]). Checkpointed with its [`Codec`](crate::codec::Codec).
    type State: StateValue + Default;

    /// Processes one record of `key`, with access to that key's state.
    fn process(
        &mut self,
        key: &K,
        state: &mut KeyedState<'_, K, Self::State>,
        record: In,
        out: &mut Collector<'_, Out>,
    ) -> Result<(), OperatorError>;

    /// Whether [`process`](Self::process) will use the state of `record` (of `key`). The
    /// operator looks up ahead the state of the records of a batch that will
    /// ([`KeyedProcess`]'s batch path); a record that will not costs no lookup. A wrong
    /// answer costs time, never correctness. The default, `true`, suits functions that use
    /// their state for every record.
    fn needs_state(&self, _key: &K, _record: &In) -> bool {
        true
    }

    /// The input ended; emit what is still pending.
    fn on_end_of_input(&mut self, _out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// Records of a batch whose state lookups are issued before the first of them is processed
/// ([`KeyedTable::prefetch`]). Enough for the processor to have several lookups' cache misses in
/// flight; few enough that their entries stay in the first-level cache until used.
const LOOK_AHEAD: usize = 16;

/// Runs a [`KeyedProcessFunction`] with its per-key state.
pub struct KeyedProcess<K, In, F: KeyedProcessFunction<K, In, Out>, Out, KF> {
    key_of: KF,
    function: F,
    /// Made in [`Operator::open`], for the subtask's key groups.
    state: Option<KeyedTable<K, F::State>>,
    /// The keys of the next records of a batch; empty between calls. Kept apart from
    /// [`located`](Self::located) and read in place, so a key is written once and never moved
    /// again (moving (key, location) pairs out of one vector cost the traffic job's 11-byte
    /// plates a stalled copy per record).
    keys: Vec<K>,
    /// Where the state of each of [`keys`](Self::keys) lives, if the function needs it.
    located: Vec<Option<Located>>,
    _types: std::marker::PhantomData<fn(In) -> Out>,
}

impl<K, In, F, Out, KF> std::fmt::Debug for KeyedProcess<K, In, F, Out, KF>
where
    F: KeyedProcessFunction<K, In, Out>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedProcess")
            .field("state", &self.state)
            .finish()
    }
}

impl<K, In, F, Out, KF> KeyedProcess<K, In, F, Out, KF>
where
    F: KeyedProcessFunction<K, In, Out>,
{
    /// The name of the operator's state in its snapshots.
    pub const STATE: &'static str = "keyed-process";

    /// Keys records with `key_of` and runs `function` over them.
    pub fn new(key_of: KF, function: F) -> Self {
        Self {
            key_of,
            function,
            state: None,
            keys: Vec::with_capacity(LOOK_AHEAD),
            located: Vec::with_capacity(LOOK_AHEAD),
            _types: std::marker::PhantomData,
        }
    }
}

/// The key-group layout an operator subtask was opened with.
pub(crate) fn layout_of(context: &OperatorContext) -> Result<KeyGroups, OperatorError> {
    let layout = KeyGroups::new(context.max_parallelism, context.parallelism)?;
    let owned = layout.range_of(context.subtask);
    if owned != context.key_groups {
        return Err(format!(
            "subtask {} of {} owns key groups {:?}, not the {owned:?} of its layout",
            context.subtask, context.parallelism, context.key_groups
        )
        .into());
    }
    Ok(layout)
}

impl<K, In, F, Out, KF> Operator<In, Out> for KeyedProcess<K, In, F, Out, KF>
where
    K: StateKey,
    In: 'static,
    Out: 'static,
    F: KeyedProcessFunction<K, In, Out>,
    KF: Fn(&In) -> K + Send + 'static,
{
    fn open(&mut self, context: &OperatorContext) -> Result<(), OperatorError> {
        let mut table = KeyedTable::with_backend(
            Self::STATE,
            &layout_of(context)?,
            context.subtask,
            context.state_backend.as_ref(),
        )?;
        if let Some(restore) = &context.restore {
            let mut keyed = KeyedRestore::from_context(restore)?;
            keyed.restore(&mut table)?;
            keyed.finish()?;
        }
        self.state = Some(table);
        Ok(())
    }

    #[inline]
    fn process(&mut self, record: In, out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        let key = (self.key_of)(&record);
        let table = self.state.as_mut().expect("KeyedProcess is opened first");
        self.function
            .process(&key, &mut table.scoped(&key), record, out)
    }

    /// [`LOOK_AHEAD`] records at a time: their keys and lookups first, for the records whose
    /// state the function needs ([`KeyedProcessFunction::needs_state`]), then the function on
    /// each, in order, with its key's state already found. What the function sees is what
    /// record-by-record [`process`](Operator::process) shows it.
    fn process_batch(
        &mut self,
        records: &mut Vec<In>,
        out: &mut Collector<'_, Out>,
    ) -> Result<(), OperatorError> {
        let table = self.state.as_mut().expect("KeyedProcess is opened first");
        let (function, keys, located) = (&mut self.function, &mut self.keys, &mut self.located);
        let mut rest = records.drain(..);
        loop {
            let next = rest.as_slice();
            if next.is_empty() {
                return Ok(());
            }
            keys.clear();
            located.clear();
            for record in next.iter().take(LOOK_AHEAD) {
                let key = (self.key_of)(record);
                located.push(
                    function
                        .needs_state(&key, record)
                        .then(|| table.prefetch(&key)),
                );
                keys.push(key);
            }
            for ((key, &at), record) in keys.iter().zip(located.iter()).zip(&mut rest) {
                function.process(key, &mut table.scoped_at(key, at), record, out)?;
            }
        }
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        self.function.on_end_of_input(out)
    }

    fn snapshot_state(&mut self, ctx: &mut SnapshotContext<'_>) -> Result<(), OperatorError> {
        let table = self.state.as_ref().expect("KeyedProcess is opened first");
        // Always a copy-on-write view: in synchronous mode the runtime runs the write on the
        // task thread before the task goes on.
        let mut snapshot = KeyedSnapshot::new(ctx.key_groups(), SnapshotMode::Async);
        snapshot.add(table);
        ctx.set_keyed_snapshot(snapshot);
        Ok(())
    }
}

#[cfg(all(test, not(weir_loom)))]
mod tests {
    use super::*;
    use crate::operator::testing::{VecOutput, context, restore_from, snapshot};

    /// Counts records per key; emits (key, count so far).
    struct Counts;

    impl KeyedProcessFunction<u64, u64, (u64, u64)> for Counts {
        type State = u64;

        fn process(
            &mut self,
            key: &u64,
            state: &mut KeyedState<'_, u64, u64>,
            _record: u64,
            out: &mut Collector<'_, (u64, u64)>,
        ) -> Result<(), OperatorError> {
            let n = state.update(|n| {
                *n += 1;
                *n
            });
            out.collect((*key, n));
            Ok(())
        }

        /// Wrong for two keys in three, which must cost nothing but time.
        fn needs_state(&self, key: &u64, _record: &u64) -> bool {
            key.is_multiple_of(3)
        }
    }

    type Op = KeyedProcess<u64, u64, Counts, (u64, u64), fn(&u64) -> u64>;

    fn opened(
        subtask: usize,
        parallelism: usize,
        restore: Option<crate::checkpoint::RestoreContext>,
    ) -> Op {
        let mut op: Op = KeyedProcess::new(|x| *x % 50, Counts);
        op.open(&context(subtask, parallelism, restore)).unwrap();
        op
    }

    #[test]
    fn counts_continue_after_a_restore_at_another_parallelism() {
        let mut before = opened(0, 1, None);
        let mut out = VecOutput::new();
        for x in 0..500 {
            before.process(x, &mut out.collector()).unwrap();
        }
        let taken = snapshot(&mut before, &context(0, 1, None));
        assert_eq!(taken.keyed.len(), 128, "one blob per key group");
        // Changes after the barrier are not in the snapshot (copy-on-write view).
        before.process(0, &mut out.collector()).unwrap();

        let layout = KeyGroups::new(128, 3).unwrap();
        let mut seen = Vec::new();
        for subtask in 0..3 {
            let restore = restore_from(std::slice::from_ref(&taken), layout.range_of(subtask));
            let mut after = opened(subtask, 3, Some(restore));
            let mut out = VecOutput::new();
            for key in
                (0..50).filter(|k| layout.subtask_of_hash(crate::keyed::hash_key(k)) == subtask)
            {
                after.process(key, &mut out.collector()).unwrap();
            }
            seen.extend(out.0);
        }
        seen.sort();
        assert_eq!(seen, (0..50).map(|k| (k, 11)).collect::<Vec<_>>());
    }

    #[test]
    fn a_batch_sees_and_leaves_what_record_by_record_does() {
        let records: Vec<u64> = (0..1000).map(|i| (i * 7919) % 613).collect();
        let mut one_by_one = opened(0, 1, None);
        let mut expected = VecOutput::new();
        for &x in &records {
            one_by_one.process(x, &mut expected.collector()).unwrap();
        }
        let mut batched = opened(0, 1, None);
        let mut got = VecOutput::new();
        // Batches of every length around the look-ahead, and a long one.
        let mut rest = records.as_slice();
        for len in (1..=2 * LOOK_AHEAD + 1).chain([usize::MAX]) {
            let (batch, after) = rest.split_at(len.min(rest.len()));
            let mut batch = batch.to_vec();
            batched
                .process_batch(&mut batch, &mut got.collector())
                .unwrap();
            assert!(batch.is_empty(), "the batch is taken");
            rest = after;
        }
        assert_eq!(got.0, expected.0);
        let state = |op: &Op| {
            let mut entries = Vec::new();
            op.state
                .as_ref()
                .unwrap()
                .for_each(|k, v| entries.push((*k, *v)));
            entries.sort();
            entries
        };
        assert_eq!(state(&batched), state(&one_by_one));
    }

    #[test]
    fn a_damaged_snapshot_fails_the_open_with_the_state_name() {
        let mut before = opened(0, 1, None);
        let mut out = VecOutput::new();
        before.process(7, &mut out.collector()).unwrap();
        let mut taken = snapshot(&mut before, &context(0, 1, None));
        let group = taken.keyed.iter().position(|b| !b.is_empty()).unwrap();
        let blob = &mut taken.keyed[group];
        blob.truncate(blob.len() - 1);
        let restore = restore_from(&[taken], 0..128);
        let mut op: Op = KeyedProcess::new(|x| *x % 50, Counts);
        let error = op.open(&context(0, 1, Some(restore))).unwrap_err();
        assert!(error.to_string().contains("keyed-process"), "{error}");
    }
}
