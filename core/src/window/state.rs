//! Window contents of one operator instance, kept in a [`KeyedTable`] so that they are
//! checkpointed: one accumulator per (window, key) (one table lookup per record and window, or
//! per input batch and (window, key) through [`super::minibatch`]),
//! and two ordered indexes of windows: those waiting for the watermark, and fired ones kept for
//! allowed lateness. An operator has one assigner, so its windows all have one size and start
//! order is end order (also for the windows clamped at the ends of `i64`: those at `i64::MIN`
//! share a start and differ in end, those at `i64::MAX` share an end). Firing and clean-up
//! times come from [`arith`].
//!
//! # What a checkpoint holds
//! - The table: per (window, key) its accumulator and its sequence number (the order in which
//!   the subtask first saw it: within a window, keys fire in that order).
//! - Operator state: the watermark (so late decisions after a restore are the ones an
//!   uninterrupted run makes) and the next sequence number.
//!
//! The indexes are not written: a restore rebuilds them from the table, pending if the window's
//! end − 1 is above the watermark, fired otherwise, keys in sequence order. That is exactly what
//! they held at the snapshot: a window is pending if and only if the watermark has not reached
//! its end − 1.
//!
//! Keyed windows keep the table over the subtask's key groups (a [`Route`] says which part of
//! the (window, key) the exchange in front hashed), snapshot it as a copy-on-write view and
//! restore the groups they own now. The local step of local-global aggregation is not behind a
//! keyed exchange: its table has one key group and goes whole into operator state
//! ([`WindowState::write_local`], [`WindowState::restore_local`]).

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use super::Window;
use crate::checkpoint::RestoreContext;
use crate::codec::{Codec, DecodeError, Decoder, Encoder};
use crate::keyed::{self, KeyGroups};
use crate::state::{
    KeyedRestore, KeyedSnapshot, KeyedTable, OperatorStateReader, OperatorStateWriter,
    SnapshotMode, StateBackend, StateError, StateKey, StateValue,
};
use crate::time::arith;

/// The name of the window contents in snapshots.
const CONTENTS: &str = "window-contents";
/// Operator-state names.
const WATERMARK: &str = "watermark";
const NEXT_SEQ: &str = "next-seq";
const LOCAL_CONTENTS: &str = "local-window-contents";

/// Where a record's contribution went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Placed {
    /// Into a window that has not fired.
    Pending,
    /// Into a fired window still within lateness: it must fire again.
    Refire,
}

/// Which part of a (window, key) the exchange in front of the operator hashed: the table's key
/// must fall into the key group the record was routed by.
pub(crate) trait Route: Send + Sync + 'static {
    /// Feeds the routed part to `state`, exactly as the exchange's key hashes.
    fn hash<K: Hash, H: Hasher>(window: &Window, key: &K, state: &mut H);
}

/// Routed by the window key (keyed windows, window-all, and the local step's one group).
#[derive(Debug)]
pub(crate) enum ByKey {}

impl Route for ByKey {
    #[inline]
    fn hash<K: Hash, H: Hasher>(_: &Window, key: &K, state: &mut H) {
        key.hash(state);
    }
}

/// Routed by `(key, window start)` (the merge step of local-global aggregation).
#[derive(Debug)]
pub(crate) enum ByKeyAndStart {}

impl Route for ByKeyAndStart {
    #[inline]
    fn hash<K: Hash, H: Hasher>(window: &Window, key: &K, state: &mut H) {
        // The same bytes as the tuple `(key, start)` the exchange hashes.
        (key, window.start).hash(state);
    }
}

/// The table's key: a window and a window key. Its key group is what `R` routes
/// ([`Slot::routed_hash`]); its [`Hash`] covers the whole slot, so that the windows of one key
/// do not collide in their group's map.
pub(crate) struct Slot<K, R> {
    window: Window,
    key: K,
    _route: PhantomData<fn() -> R>,
}

impl<K, R> Slot<K, R> {
    #[inline]
    fn new(window: Window, key: K) -> Self {
        Self {
            window,
            key,
            _route: PhantomData,
        }
    }
}

impl<K: Clone, R> Clone for Slot<K, R> {
    fn clone(&self) -> Self {
        Self::new(self.window, self.key.clone())
    }
}

impl<K: PartialEq, R> PartialEq for Slot<K, R> {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        self.window == other.window && self.key == other.key
    }
}

impl<K: Eq, R> Eq for Slot<K, R> {}

/// Equal slots hash equally: the window and the key are what `eq` compares.
impl<K: Hash, R> Hash for Slot<K, R> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.window.hash(state);
        self.key.hash(state);
    }
}

/// The part of a slot that `R` routes, hashed as the exchange hashes it.
struct Routed<'a, K, R>(&'a Slot<K, R>);

impl<K: Hash, R: Route> Hash for Routed<'_, K, R> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        R::hash(&self.0.window, &self.0.key, state);
    }
}

impl<K: Hash, R: Route> Slot<K, R> {
    /// The hash the exchange in front of the operator routed the slot's records by: its key
    /// group's (equal slots have equal routed parts).
    #[inline]
    fn routed_hash(&self) -> u64 {
        keyed::hash_key(&Routed(self))
    }
}

impl<K: Codec, R: 'static> Codec for Slot<K, R> {
    fn encoded_len(&self) -> usize {
        self.window.encoded_len() + self.key.encoded_len()
    }
    fn encode(&self, out: &mut Encoder<'_>) {
        self.window.encode(out);
        self.key.encode(out);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self::new(Window::decode(input)?, K::decode(input)?))
    }
}

/// An accumulator and its place in its window's firing order.
#[derive(Debug, Clone)]
pub(crate) struct Entry<Acc> {
    acc: Acc,
    seq: u64,
}

impl<Acc: Codec> Codec for Entry<Acc> {
    fn encoded_len(&self) -> usize {
        self.acc.encoded_len() + 8
    }
    fn encode(&self, out: &mut Encoder<'_>) {
        self.acc.encode(out);
        out.put_u64(self.seq);
    }
    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            acc: Acc::decode(input)?,
            seq: input.take_u64()?,
        })
    }
}

/// Accumulators by window and key.
#[derive(Debug)]
pub(crate) struct WindowState<K, Acc, R> {
    accs: KeyedTable<Slot<K, R>, Entry<Acc>>,
    /// Windows not fired yet, with their keys in first-seen order (the firing order).
    pending: BTreeMap<Window, Vec<K>>,
    /// Fired windows kept until [`arith::cleanup_time`], `end − 1 + lateness`, with their keys.
    fired: BTreeMap<Window, Vec<K>>,
    watermark: i64,
    /// The window firing when the last [`fire_due`](Self::fire_due) ran out of budget.
    firing: Option<Firing<K>>,
    /// The sequence number of the next (window, key) seen.
    next_seq: u64,
    lateness_ms: i64,
}

/// A window part way through firing: its keys in firing order and the next to fire.
#[derive(Debug)]
struct Firing<K> {
    window: Window,
    keys: Vec<K>,
    next: usize,
}

/// The layout of a table that is not partitioned: one key group, owned.
fn one_group() -> KeyGroups {
    KeyGroups::new(1, 1).expect("one key group of one subtask is a valid layout")
}

impl<K: StateKey, Acc: StateValue, R: Route> WindowState<K, Acc, R> {
    /// Empty contents over one key group (the local step; keyed operators call
    /// [`partition`](Self::partition) when they open).
    pub(crate) fn new(lateness_ms: i64) -> Self {
        Self {
            accs: KeyedTable::new(CONTENTS, &one_group(), 0).with_routed_hash(Slot::routed_hash),
            pending: BTreeMap::new(),
            fired: BTreeMap::new(),
            watermark: i64::MIN,
            firing: None,
            next_seq: 0,
            lateness_ms,
        }
    }

    /// Keeps the contents over the key groups subtask `subtask` of `layout` owns, in
    /// `backend`. Only before the first record.
    pub(crate) fn partition(
        &mut self,
        layout: &KeyGroups,
        subtask: usize,
        backend: &dyn StateBackend,
    ) -> Result<(), StateError> {
        debug_assert!(self.accs.is_empty(), "partitioned before the first record");
        self.accs = KeyedTable::with_backend(CONTENTS, layout, subtask, backend)?
            .with_routed_hash(Slot::routed_hash);
        Ok(())
    }

    /// Whether `window` is past allowed lateness.
    #[inline]
    fn is_late(&self, window: Window) -> bool {
        arith::cleanup_time(window, self.lateness_ms) <= self.watermark
    }

    /// Where a record for `window` goes under the current watermark: `None` if the window is
    /// past allowed lateness.
    #[inline]
    pub(crate) fn placement(&self, window: Window) -> Option<Placed> {
        if self.is_late(window) {
            None
        } else if window.max_timestamp() <= self.watermark {
            Some(Placed::Refire)
        } else {
            Some(Placed::Pending)
        }
    }

    /// Runs `update` on the accumulator of (`window`, `key`), created with `create` if it has
    /// none, and returns what `update` returns; `None` if the window is past allowed lateness
    /// (nothing is changed). One table lookup, two when the accumulator is new.
    #[inline]
    pub(crate) fn place<T>(
        &mut self,
        window: Window,
        key: &K,
        create: impl FnOnce() -> Acc,
        update: impl FnOnce(&mut Acc, Placed) -> T,
    ) -> Option<T> {
        let placed = self.placement(window)?;
        let seq = self.next_seq;
        let mut created = false;
        let result = self.accs.upsert_with(
            &Slot::new(window, key.clone()),
            || {
                created = true;
                Entry { acc: create(), seq }
            },
            |entry| update(&mut entry.acc, placed),
        );
        if created {
            self.next_seq += 1;
            let index = match placed {
                Placed::Refire => &mut self.fired,
                Placed::Pending => &mut self.pending,
            };
            index.entry(window).or_default().push(key.clone());
        }
        Some(result)
    }

    /// Whether advancing to `watermark` fires a window (one that has not fired yet): only then
    /// does [`advance`](Self::advance) read pending windows' accumulators.
    #[inline]
    pub(crate) fn fires_at(&self, watermark: i64) -> bool {
        self.pending
            .first_key_value()
            .is_some_and(|(window, _)| window.max_timestamp() <= watermark)
    }

    /// Advances the watermark (one below the current one, from a source restarting behind the
    /// restored watermark, changes nothing); [`fire_due`](Self::fire_due) then fires what it
    /// made due.
    #[inline]
    pub(crate) fn advance(&mut self, watermark: i64) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Whether the watermark reached `window` but not its end of allowed lateness: it is due
    /// or fired, and an element for it fires it (again). Never with no allowed lateness.
    #[inline]
    pub(crate) fn may_fire_again(&self, window: Window) -> bool {
        self.placement(window) == Some(Placed::Refire)
    }

    /// Whether windows the watermark reached have not all fired: a [`fire_due`](Self::fire_due)
    /// ran out of budget, or the watermark advanced since the last one.
    #[inline]
    pub(crate) fn is_firing(&self) -> bool {
        self.firing.is_some() || self.fires_at(self.watermark)
    }

    /// Fires every pending window whose end − 1 the watermark reached (in window order, keys in
    /// first-seen order), at most `budget` results (`None`: all), then keeps fired windows for
    /// lateness and frees those past it. Returns whether everything due has fired; if not, the
    /// next call goes on where this one stopped.
    ///
    /// Between two calls records may arrive, but only those for which
    /// [`may_fire_again`](Self::may_fire_again) is false for each window (the runtime fires
    /// the rest at once before any other,
    /// [`Operator::waits_for_watermark`](crate::operator::Operator::waits_for_watermark)):
    /// each goes to windows the watermark has not reached, pending as ever, or is late for
    /// windows past lateness, as it would be after the whole firing, and changes no result of
    /// the firing.
    pub(crate) fn fire_due(
        &mut self,
        budget: Option<usize>,
        mut fire: impl FnMut(Window, &K, &Acc),
    ) -> bool {
        // A budget of 0 would never finish: it fires one.
        let mut left = budget.map_or(usize::MAX, |b| b.max(1));
        loop {
            let mut firing = match self.firing.take() {
                Some(firing) => firing,
                None => match self.pending.first_entry() {
                    Some(entry) if entry.key().max_timestamp() <= self.watermark => {
                        let (window, keys) = entry.remove_entry();
                        Firing {
                            window,
                            keys,
                            next: 0,
                        }
                    }
                    _ => break,
                },
            };
            let end = firing.keys.len().min(firing.next.saturating_add(left));
            let window = firing.window;
            for key in &firing.keys[firing.next..end] {
                self.accs.with(&Slot::new(window, key.clone()), |entry| {
                    if let Some(entry) = entry {
                        fire(window, key, &entry.acc);
                    }
                });
            }
            left -= end - firing.next;
            if end < firing.keys.len() {
                firing.next = end;
                self.firing = Some(firing);
                return false;
            }
            self.retire_fired(window, firing.keys);
            if left == 0 && self.fires_at(self.watermark) {
                return false;
            }
        }
        let (lateness_ms, watermark) = (self.lateness_ms, self.watermark);
        while let Some(entry) = self.fired.first_entry() {
            if arith::cleanup_time(*entry.key(), lateness_ms) > watermark {
                break;
            }
            let (window, keys) = entry.remove_entry();
            for key in keys {
                self.accs.remove(&Slot::new(window, key));
            }
        }
        true
    }

    /// After `window` fired for all of `keys`: frees it if it is past lateness already, else
    /// keeps it (and its keys) for late firings.
    fn retire_fired(&mut self, window: Window, keys: Vec<K>) {
        if self.is_late(window) {
            for key in keys {
                self.accs.remove(&Slot::new(window, key));
            }
        } else {
            self.fired.entry(window).or_default().extend(keys);
        }
    }

    /// Writes the watermark and the sequence counter.
    fn write_clock(&self, writer: &mut OperatorStateWriter) {
        // A restore takes every window the watermark reached for fired: none may be left due.
        debug_assert!(!self.is_firing(), "a snapshot while windows are due");
        writer
            .put(WATERMARK, &self.watermark)
            .put(NEXT_SEQ, &self.next_seq);
    }

    /// The keyed snapshot: the operator state (watermark, counter) as bytes now, the contents
    /// as a copy-on-write view over `key_groups` (O(key groups) here; serialized later).
    pub(crate) fn snapshot_keyed(
        &self,
        key_groups: std::ops::Range<usize>,
    ) -> (Vec<u8>, KeyedSnapshot) {
        let mut writer = OperatorStateWriter::new();
        self.write_clock(&mut writer);
        // Always a view: in synchronous mode the runtime serializes it on the task thread.
        let mut keyed = KeyedSnapshot::new(key_groups, SnapshotMode::Async);
        keyed.add(&self.accs);
        (writer.into_bytes(), keyed)
    }

    /// Restores keyed contents: the key groups this subtask owns now, whichever old subtask
    /// wrote them; its own watermark and counter when the parallelism is unchanged, or else
    /// the lowest watermark (all equal at an aligned checkpoint) and the highest counter. A
    /// window is pending if the watermark of the old subtask that wrote it had not reached its
    /// end − 1, so that no window fires twice or never.
    pub(crate) fn restore_keyed(
        &mut self,
        restore: &RestoreContext,
        subtask: usize,
        parallelism: usize,
    ) -> Result<(), StateError> {
        let own = restore.own_operator_state(subtask, parallelism);
        let clocks: Vec<(i64, u64)> = match own {
            Some(own) => vec![read_clock(own)?],
            None => restore
                .operator_states
                .iter()
                .map(|bytes| read_clock(bytes))
                .collect::<Result<_, _>>()?,
        };
        let mut keyed = KeyedRestore::from_context(restore)?;
        keyed.restore(&mut self.accs)?;
        keyed.finish()?;
        self.watermark = clocks.iter().map(|c| c.0).min().unwrap_or(i64::MIN);
        self.next_seq = clocks.iter().map(|c| c.1).max().unwrap_or(0);
        if own.is_some() {
            let watermark = self.watermark;
            return self.rebuild_indexes(|_| watermark);
        }
        let layout = self.accs.layout().clone();
        let old = KeyGroups::new(layout.max_parallelism(), restore.old_parallelism)
            .map_err(StateError::Layout)?;
        if clocks.len() != restore.old_parallelism {
            return Err(StateError::Layout(format!(
                "{} operator states of a window operator with {} subtasks",
                clocks.len(),
                restore.old_parallelism
            )));
        }
        self.rebuild_indexes(|slot| {
            clocks[old.subtask_of_group(layout.group_of_hash(slot.routed_hash()))].0
        })
    }

    /// The whole state as operator state (the local step): the watermark, the counter and the
    /// contents, serialized now. O(entries).
    pub(crate) fn write_local(&self) -> Vec<u8> {
        let mut writer = OperatorStateWriter::new();
        self.write_clock(&mut writer);
        let mut blob = vec![Vec::new()];
        self.accs.snapshot().write(&mut blob);
        writer.put(LOCAL_CONTENTS, &blob.swap_remove(0));
        writer.into_bytes()
    }

    /// Restores what [`write_local`](Self::write_local) wrote. At the same parallelism a
    /// subtask takes its own state; at another, new subtask `j` takes every old subtask `i`
    /// with `i % parallelism == j`, merging the accumulators of one (window, key) with
    /// `combine`, and the lowest of their watermarks (a new subtask without an old one the
    /// lowest of all). Sequence numbers keep each old subtask's order, the first old subtask's
    /// keys first.
    pub(crate) fn restore_local(
        &mut self,
        restore: &RestoreContext,
        subtask: usize,
        parallelism: usize,
        mut combine: impl FnMut(&mut Acc, Acc),
    ) -> Result<(), StateError> {
        let mine: Vec<&[u8]> = match restore.own_operator_state(subtask, parallelism) {
            Some(own) => vec![own],
            None => restore
                .operator_states
                .iter()
                .enumerate()
                .filter(|(i, _)| i % parallelism == subtask)
                .map(|(_, bytes)| bytes.as_slice())
                .collect(),
        };
        let mut watermark = None::<i64>;
        let mut offset = 0u64;
        for bytes in &mine {
            let reader = OperatorStateReader::new(bytes)?;
            let (old_watermark, old_next) = clock_of(&reader)?;
            let blob: Vec<u8> = required(&reader, LOCAL_CONTENTS)?;
            let mut old = KeyedTable::<Slot<K, R>, Entry<Acc>>::new(CONTENTS, &one_group(), 0)
                .with_routed_hash(Slot::routed_hash);
            let mut keyed = KeyedRestore::new();
            keyed.add(0..1, vec![blob])?.restore(&mut old)?;
            keyed.finish()?;
            let mut entries = Vec::with_capacity(old.len());
            old.for_each(|slot, entry| entries.push((slot.clone(), entry.clone())));
            for (slot, mut entry) in entries {
                check_seq(entry.seq, old_next)?;
                if slot.window.max_timestamp() <= old_watermark {
                    // Its old subtask emitted it already; a local step never emits a window
                    // twice (a later record for it is sent alone), so it is not needed.
                    continue;
                }
                entry.seq += offset;
                self.accs.merge(&slot, entry, |current, other| {
                    combine(&mut current.acc, other.acc);
                });
            }
            offset += old_next;
            watermark = Some(watermark.map_or(old_watermark, |w| w.min(old_watermark)));
        }
        self.watermark = match watermark {
            Some(w) => w,
            None => restore
                .operator_states
                .iter()
                .map(|bytes| read_clock(bytes).map(|c| c.0))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .min()
                .unwrap_or(i64::MIN),
        };
        self.next_seq = offset;
        // Every entry left is above its old subtask's watermark, so above the lowest one.
        let watermark = self.watermark;
        self.rebuild_indexes(|_| watermark)
    }

    /// Rebuilds the pending and fired indexes from the restored table (see the module docs):
    /// a window is pending if `fired_by(slot)`, the watermark its accumulator was written
    /// under, had not reached its end − 1.
    fn rebuild_indexes(&mut self, fired_by: impl Fn(&Slot<K, R>) -> i64) -> Result<(), StateError> {
        let mut slots = Vec::with_capacity(self.accs.len());
        self.accs.for_each(|slot, entry| {
            let pending = slot.window.max_timestamp() > fired_by(slot);
            slots.push((slot.window, entry.seq, slot.key.clone(), pending));
        });
        for &(_, seq, _, _) in &slots {
            check_seq(seq, self.next_seq)?;
        }
        slots.sort_by_key(|&(window, seq, _, _)| (window, seq));
        self.pending.clear();
        self.fired.clear();
        for (window, _, key, pending) in slots {
            let index = if pending {
                &mut self.pending
            } else {
                &mut self.fired
            };
            index.entry(window).or_default().push(key);
        }
        Ok(())
    }
}

/// Checked right after reading back: every accumulator was numbered below the counter.
fn check_seq(seq: u64, next: u64) -> Result<(), StateError> {
    if seq < next {
        return Ok(());
    }
    Err(StateError::Corrupt {
        name: CONTENTS.to_owned(),
        group: None,
        reason: format!("an accumulator numbered {seq}, not below the counter {next}"),
    })
}

fn required<T: Codec>(reader: &OperatorStateReader<'_>, name: &str) -> Result<T, StateError> {
    reader.get(name)?.ok_or_else(|| StateError::Corrupt {
        name: name.to_owned(),
        group: None,
        reason: "missing from the window operator's state".to_owned(),
    })
}

fn clock_of(reader: &OperatorStateReader<'_>) -> Result<(i64, u64), StateError> {
    Ok((required(reader, WATERMARK)?, required(reader, NEXT_SEQ)?))
}

fn read_clock(bytes: &[u8]) -> Result<(i64, u64), StateError> {
    clock_of(&OperatorStateReader::new(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire_at(state: &mut WindowState<(), u64, ByKey>, watermark: i64) -> Vec<(Window, u64)> {
        let mut fired = Vec::new();
        state.advance(watermark);
        assert!(state.fire_due(None, |window, _, acc| fired.push((window, *acc))));
        fired
    }

    fn count(state: &mut WindowState<(), u64, ByKey>, window: Window) -> Option<Placed> {
        state.place(
            window,
            &(),
            || 0,
            |n, placed| {
                *n += 1;
                placed
            },
        )
    }

    #[test]
    fn windows_at_the_ends_of_i64_fire_and_are_freed_without_overflow() {
        let first = Window {
            start: i64::MIN,
            end: i64::MIN + 10,
        };
        let last = Window {
            start: i64::MAX - 10,
            end: i64::MAX,
        };
        let mut state = WindowState::<(), u64, ByKey>::new(i64::MAX);
        for window in [last, first] {
            assert_eq!(count(&mut state, window), Some(Placed::Pending));
        }
        assert_eq!(fire_at(&mut state, i64::MIN + 9), vec![(first, 1)]);
        assert_eq!(fire_at(&mut state, i64::MAX - 2), vec![]);
        assert_eq!(fire_at(&mut state, i64::MAX - 1), vec![(last, 1)]);
        // The first window's clean-up time is MIN + 9 + MAX = 8; the last one's saturates, so
        // it is kept until the end-of-input watermark.
        assert_eq!(count(&mut state, first), None);
        assert_eq!(count(&mut state, last), Some(Placed::Refire));
        assert_eq!(fire_at(&mut state, i64::MAX), vec![]);
        assert!(state.accs.is_empty(), "end of input frees every window");
        assert_eq!(count(&mut state, last), None);
    }

    #[test]
    fn the_routed_part_hashes_as_the_exchange_key() {
        let window = Window { start: 40, end: 50 };
        let layout = KeyGroups::new(128, 1).unwrap();
        let by_key = Slot::<u64, ByKey>::new(window, 7);
        assert_eq!(
            layout.group_of_hash(by_key.routed_hash()),
            layout.group_of(&7u64)
        );
        let by_start = Slot::<u64, ByKeyAndStart>::new(window, 7);
        assert_eq!(
            layout.group_of_hash(by_start.routed_hash()),
            layout.group_of(&(7u64, 40i64))
        );
    }

    proptest::proptest! {
        /// Firing in budgets, with a record arriving between any two turns, emits what firing
        /// everything at once emits (each turn at most its budget), and leaves the same state.
        #[test]
        fn firing_in_budgets_is_firing_at_once(
            records in proptest::collection::vec((0i64..40, 0u64..6), 1..200),
            watermarks in proptest::collection::vec(0i64..50, 1..6),
            budget in 1usize..8,
        ) {
            let window = |t: i64| Window { start: t / 10 * 10, end: t / 10 * 10 + 10 };
            let fill = || {
                let mut state = WindowState::<u64, u64, ByKey>::new(0);
                for &(t, key) in &records {
                    state.place(window(t), &key, || 0, |n, _| *n += 1);
                }
                state
            };
            let (mut at_once, mut in_budgets) = (fill(), fill());
            for &watermark in &watermarks {
                let (mut all, mut turns) = (Vec::new(), Vec::new());
                at_once.advance(watermark);
                proptest::prop_assert!(at_once.fire_due(None, |w, k, n| all.push((w, *k, *n))));
                in_budgets.advance(watermark);
                loop {
                    let before = turns.len();
                    let done = in_budgets.fire_due(Some(budget), |w, k, n| turns.push((w, *k, *n)));
                    proptest::prop_assert!(turns.len() - before <= budget);
                    proptest::prop_assert_eq!(done, !in_budgets.is_firing());
                    // A late record between turns changes neither state.
                    if watermark >= 10 {
                        let late = in_budgets.place(window(watermark - 10), &0, || 0, |n, _| *n);
                        proptest::prop_assert_eq!(late, None);
                    }
                    if done {
                        break;
                    }
                }
                proptest::prop_assert_eq!(all, turns);
                proptest::prop_assert_eq!(at_once.accs.len(), in_budgets.accs.len());
            }
        }
    }
}
