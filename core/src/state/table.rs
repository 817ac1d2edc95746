//! The keyed state table (Flink's `StateTable` of `CopyOnWriteStateMap`s): one flat hash map
//! per owned key group, shared with running snapshots and copied on the first write after one.

use std::fmt;
use std::hash::Hash;
use std::ops::Range;

use triomphe::Arc;

use super::backend::{KeyedBytes, StateBackend};
pub(super) use super::group_map::GroupMap;
use super::group_map::map_hash_of;
use super::scoped::KeyedState;
use super::snapshot::{TableSnapshot, View};
use super::{StateError, StateKey, StateSnapshotRestore, StateValue};
use crate::codec::{self, Codec};
use crate::keyed::{self, KeyGroups};

/// One key group's map as the table and its running snapshots hold it: shared by reference
/// count, cloned as a whole on the table's first write while a snapshot still holds it.
///
/// `triomphe::Arc` has no weak count, so the check before every write
/// ([`group_mut`]) is one acquire load of the count, where `std::sync::Arc::make_mut` does a
/// compare-and-swap. The acquire load pairs with the release decrement of a snapshot thread
/// dropping its view: a map it may still read is never written in place.
pub(super) type SharedGroup<K, V> = Arc<GroupMap<K, V>>;

/// The map of `group`, to write: in place if no snapshot shares it (the common case, one
/// load), or else first replaced by a copy of its own (O(entries of the group), once per group
/// and snapshot; the snapshot keeps the old map, unchanged).
#[inline]
pub(super) fn group_mut<K: Clone, V: Clone>(group: &mut SharedGroup<K, V>) -> &mut GroupMap<K, V> {
    Arc::make_mut(group)
}

/// How a table finds a key's group: its layout, and the hash the keyed exchange in front of
/// the operator routes the key by, [`hash_key`](keyed::hash_key) of the whole key unless the
/// table was made [`with_routed_hash`](KeyedTable::with_routed_hash).
pub(super) struct KeyGrouping<K> {
    layout: KeyGroups,
    routed_hash: Option<fn(&K) -> u64>,
}

impl<K> Clone for KeyGrouping<K> {
    fn clone(&self) -> Self {
        Self {
            layout: self.layout.clone(),
            routed_hash: self.routed_hash,
        }
    }
}

impl<K: Hash> KeyGrouping<K> {
    /// The key group of `key`.
    #[inline]
    pub(super) fn group_of(&self, key: &K) -> usize {
        self.group_by(key, || keyed::hash_key(key))
    }

    /// The key group of `key`, whose [`hash_key`](keyed::hash_key) `key_hash()` gives (asked
    /// for only when the table routes by it).
    #[inline]
    fn group_by(&self, key: &K, key_hash: impl FnOnce() -> u64) -> usize {
        match self.routed_hash {
            None => self.layout.group_of_hash(key_hash()),
            Some(route) => self.layout.group_of_hash(route(key)),
        }
    }
}

/// Keyed state of one subtask: per key group it owns, a map from key to value, kept by the
/// job's [`StateBackend`]: typed hash maps on the heap (the default), or the encoded
/// entries of a [`KeyedBytes`] store (decoded before and encoded after each call).
///
/// Costs on the heap: a lookup or change is expected O(1) (one hash, one probe);
/// [`len`](Self::len) and [`snapshot`](Self::snapshot) are O(key groups); the first change to
/// a key group that a running snapshot shares first copies that group's map, O(its entries)
/// (see the [module docs](super)). In a byte store each call also encodes the key, decodes the
/// value it reads and encodes the value it writes.
///
/// # Panics
/// Every keyed call panics if the key's group is not owned by this table: the keyed exchange
/// in front of the operator guarantees it is, so a stray key is a routing bug, not data. In a
/// byte store, a value that does not decode with its codec (a codec bug: stored bytes are
/// checksummed) panics naming the state.
pub struct KeyedTable<K, V> {
    name: String,
    grouping: KeyGrouping<K>,
    owned: Range<usize>,
    store: Store<K, V>,
}

/// Where a table's entries live.
pub(super) enum Store<K, V> {
    /// The map of key group `owned.start + i` at `i`.
    Heap(Vec<SharedGroup<K, V>>),
    /// Encoded entries in a backend's store.
    Bytes(Box<dyn KeyedBytes>),
}

/// Where a key lives in a [`KeyedTable`] ([`KeyedTable::locate`], [`KeyedTable::prefetch`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Located {
    /// The index of the key's group in the store.
    pub(super) index: usize,
    /// The key's hash in the group's map.
    pub(super) hash: u64,
}

impl<K, V> fmt::Debug for KeyedTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedTable")
            .field("name", &self.name)
            .field("key_groups", &self.owned)
            .field("entries", &self.len())
            .field(
                "store",
                &match self.store {
                    Store::Heap(_) => "heap",
                    Store::Bytes(_) => "bytes",
                },
            )
            .finish()
    }
}

impl<K, V> KeyedTable<K, V> {
    /// The state's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key groups this table owns.
    pub fn key_groups(&self) -> Range<usize> {
        self.owned.clone()
    }

    /// The key-group layout the table was made for.
    pub fn layout(&self) -> &KeyGroups {
        &self.grouping.layout
    }

    /// How the table finds a key's group, for restores.
    pub(super) fn grouping(&self) -> &KeyGrouping<K> {
        &self.grouping
    }

    /// Entries in the table. O(key groups).
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Heap(groups) => groups.iter().map(|g| g.len()).sum(),
            Store::Bytes(store) => (0..self.owned.len()).map(|g| store.group_len(g)).sum(),
        }
    }

    /// Whether the table has no entry. O(key groups).
    pub fn is_empty(&self) -> bool {
        match &self.store {
            Store::Heap(groups) => groups.iter().all(|g| g.is_empty()),
            Store::Bytes(store) => (0..self.owned.len()).all(|g| store.group_len(g) == 0),
        }
    }

    /// The store, for snapshots and restores.
    pub(super) fn store_mut(&mut self) -> &mut Store<K, V> {
        &mut self.store
    }
}

/// Decodes a value a byte store holds; see the panics of [`KeyedTable`].
fn decode_stored<T: Codec>(name: &str, what: &str, bytes: &[u8]) -> T {
    codec::decode_exact(bytes).unwrap_or_else(|e| {
        panic!("state {name:?}: a stored {what} does not decode with its codec: {e}")
    })
}

impl<K: StateKey, V: StateValue> KeyedTable<K, V> {
    /// An empty table on the heap named `name` (the name its snapshots carry) for subtask
    /// `subtask` of `layout`, owning `layout.range_of(subtask)`.
    pub fn new(name: impl Into<String>, layout: &KeyGroups, subtask: usize) -> Self {
        let owned = layout.range_of(subtask);
        Self {
            name: name.into(),
            grouping: KeyGrouping {
                layout: layout.clone(),
                routed_hash: None,
            },
            store: Store::Heap((0..owned.len()).map(|_| SharedGroup::default()).collect()),
            owned,
        }
    }

    /// An empty table as [`new`](Self::new) makes it, kept by `backend` (the job's, from
    /// the operator's context).
    ///
    /// # Errors
    /// If the backend cannot make its store (its files cannot be created).
    pub fn with_backend(
        name: impl Into<String>,
        layout: &KeyGroups,
        subtask: usize,
        backend: &dyn StateBackend,
    ) -> Result<Self, StateError> {
        let mut table = Self::new(name, layout, subtask);
        if let Some(store) = backend
            .create_store(&table.name, table.owned.clone())
            .map_err(|reason| StateError::Backend {
                name: table.name.clone(),
                reason,
            })?
        {
            table.store = Store::Bytes(store);
        }
        Ok(table)
    }

    /// The table, its keys grouped by `routed_hash` (what the keyed exchange in front of the
    /// operator routes them by: a part of the key, where the key's [`Hash`] covers all of
    /// it, so that the maps tell apart keys of one route) instead of
    /// [`hash_key`](keyed::hash_key) of the whole key. Two equal keys must have the same routed
    /// hash. Made before the first entry goes in: the window operators' (window, key) slots.
    pub(crate) fn with_routed_hash(mut self, routed_hash: fn(&K) -> u64) -> Self {
        debug_assert!(self.is_empty(), "a table is grouped before its first entry");
        self.grouping.routed_hash = Some(routed_hash);
        self
    }

    /// Where `key` lives: its group's index in the store and its hash in the group's map. One
    /// hash of the key ([`hash_key`](keyed::hash_key)) serves both, unless the table routes by
    /// another hash ([`with_routed_hash`](Self::with_routed_hash)).
    #[inline]
    pub(super) fn locate(&self, key: &K) -> Located {
        let key_hash = keyed::hash_key(key);
        let group = self.grouping.group_by(key, || key_hash);
        assert!(
            self.owned.contains(&group),
            "state {:?}: a key of key group {group} reached the subtask owning {:?}",
            self.name,
            self.owned
        );
        Located {
            index: group - self.owned.start,
            hash: map_hash_of(key_hash),
        }
    }

    /// The value of `key`, cloned.
    #[inline]
    pub fn get(&self, key: &K) -> Option<V> {
        self.with(key, |v| v.cloned())
    }

    /// Runs `f` on the value of `key` without cloning it.
    #[inline]
    pub fn with<R>(&self, key: &K, f: impl FnOnce(Option<&V>) -> R) -> R {
        self.with_at(self.locate(key), key, f)
    }

    #[inline]
    pub(super) fn with_at<R>(&self, at: Located, key: &K, f: impl FnOnce(Option<&V>) -> R) -> R {
        match &self.store {
            Store::Heap(groups) => f(groups[at.index].get_hashed(at.hash, key)),
            Store::Bytes(store) => {
                let value = self.read_bytes(store.as_ref(), at.index, &codec::encode_to_vec(key));
                f(value.as_ref())
            }
        }
    }

    /// The decoded value of encoded key `key` in a byte store.
    fn read_bytes(&self, store: &dyn KeyedBytes, index: usize, key: &[u8]) -> Option<V> {
        store
            .get(index, key)
            .map(|bytes| decode_stored(&self.name, "value", bytes))
    }

    /// Runs `f` on the slot of `key` in a byte store and writes back what it leaves there.
    fn update_bytes<R>(&mut self, index: usize, key: &K, f: impl FnOnce(&mut Option<V>) -> R) -> R {
        let key_bytes = codec::encode_to_vec(key);
        let Store::Bytes(store) = &self.store else {
            unreachable!("update_bytes is called on byte stores")
        };
        let mut slot = self.read_bytes(store.as_ref(), index, &key_bytes);
        let had = slot.is_some();
        let result = f(&mut slot);
        let Store::Bytes(store) = &mut self.store else {
            unreachable!("update_bytes is called on byte stores")
        };
        match slot {
            Some(value) => store.put(index, &key_bytes, &codec::encode_to_vec(&value)),
            None if had => {
                store.remove(index, &key_bytes);
            }
            None => {}
        }
        result
    }

    /// Whether `key` has a value.
    #[inline]
    pub fn contains(&self, key: &K) -> bool {
        let at = self.locate(key);
        match &self.store {
            Store::Heap(groups) => groups[at.index].contains_hashed(at.hash, key),
            Store::Bytes(store) => store.get(at.index, &codec::encode_to_vec(key)).is_some(),
        }
    }

    /// Sets the value of `key`, returning the one it replaces.
    #[inline]
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.insert_at(self.locate(&key), key, value)
    }

    #[inline]
    pub(super) fn insert_at(&mut self, at: Located, key: K, value: V) -> Option<V> {
        match &mut self.store {
            Store::Heap(groups) => {
                group_mut(&mut groups[at.index]).insert_hashed(at.hash, key, value)
            }
            Store::Bytes(_) => self.update_bytes(at.index, &key, |slot| slot.replace(value)),
        }
    }

    /// Removes the value of `key`, returning it.
    #[inline]
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.remove_at(self.locate(key), key)
    }

    #[inline]
    pub(super) fn remove_at(&mut self, at: Located, key: &K) -> Option<V> {
        match &mut self.store {
            Store::Heap(groups) => {
                let group = &mut groups[at.index];
                if Arc::get_mut(group).is_none() && !group.contains_hashed(at.hash, key) {
                    // A removal that finds nothing copies no shared group.
                    return None;
                }
                group_mut(group)
                    .remove_entry_hashed(at.hash, key)
                    .map(|(_, value)| value)
            }
            Store::Bytes(_) => self.update_bytes(at.index, key, Option::take),
        }
    }

    /// Runs `f` on the slot of `key`: `None` if it has no value; whatever `f` leaves there is
    /// the key's value afterwards (`None` removes it). Costs a removal and an insertion; prefer
    /// [`upsert_with`](Self::upsert_with) or [`merge`](Self::merge) when the value stays.
    #[inline]
    pub fn update_slot<R>(&mut self, key: &K, f: impl FnOnce(&mut Option<V>) -> R) -> R {
        self.update_slot_at(self.locate(key), key, f)
    }

    pub(super) fn update_slot_at<R>(
        &mut self,
        at: Located,
        key: &K,
        f: impl FnOnce(&mut Option<V>) -> R,
    ) -> R {
        let map = match &mut self.store {
            Store::Heap(groups) => group_mut(&mut groups[at.index]),
            Store::Bytes(_) => return self.update_bytes(at.index, key, f),
        };
        let (stored_key, mut slot) = match map.remove_entry_hashed(at.hash, key) {
            Some((k, v)) => (Some(k), Some(v)),
            None => (None, None),
        };
        let result = f(&mut slot);
        if let Some(value) = slot {
            map.insert_new_hashed(at.hash, stored_key.unwrap_or_else(|| key.clone()), value);
        }
        result
    }

    /// Runs `f` on the value of `key`, first set to `init()` if it has none.
    #[inline]
    pub fn upsert_with<R>(
        &mut self,
        key: &K,
        init: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        self.upsert_with_at(self.locate(key), key, init, f)
    }

    #[inline]
    pub(super) fn upsert_with_at<R>(
        &mut self,
        at: Located,
        key: &K,
        init: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let map = match &mut self.store {
            Store::Heap(groups) => group_mut(&mut groups[at.index]),
            Store::Bytes(_) => {
                return self.update_bytes(at.index, key, |slot| f(slot.get_or_insert_with(init)));
            }
        };
        if let Some(value) = map.get_mut_hashed(at.hash, key) {
            return f(value);
        }
        let mut value = init();
        let result = f(&mut value);
        map.insert_new_hashed(at.hash, key.clone(), value);
        result
    }

    /// Sets `key` to `value` if it has none, or else combines: `combine(&mut current, value)`
    /// (reducing state, accumulators).
    #[inline]
    pub fn merge(&mut self, key: &K, value: V, combine: impl FnOnce(&mut V, V)) {
        let at = self.locate(key);
        let map = match &mut self.store {
            Store::Heap(groups) => group_mut(&mut groups[at.index]),
            Store::Bytes(_) => {
                return self.update_bytes(at.index, key, |slot| match slot {
                    Some(current) => combine(current, value),
                    None => *slot = Some(value),
                });
            }
        };
        match map.get_mut_hashed(at.hash, key) {
            Some(current) => combine(current, value),
            None => map.insert_new_hashed(at.hash, key.clone(), value),
        }
    }

    /// Calls `f` on every entry, key group by key group in order (the order within a group is
    /// the store's, the same on every run with the same history).
    pub fn for_each(&self, mut f: impl FnMut(&K, &V)) {
        match &self.store {
            Store::Heap(groups) => {
                for map in groups {
                    for (key, value) in map.iter() {
                        f(key, value);
                    }
                }
            }
            Store::Bytes(store) => {
                for group in 0..self.owned.len() {
                    store.for_each(group, &mut |k, v| {
                        f(
                            &decode_stored(&self.name, "key", k),
                            &decode_stored(&self.name, "value", v),
                        );
                    });
                }
            }
        }
    }

    /// Keeps only the entries for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        let name = &self.name;
        match &mut self.store {
            Store::Heap(groups) => {
                for group in groups {
                    match Arc::get_mut(group) {
                        Some(map) => map.retain(&mut keep),
                        // Shared with a snapshot: a new map of the kept entries, nothing
                        // copied that goes.
                        None => {
                            let kept = group
                                .iter()
                                .filter(|(k, v)| keep(k, v))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect();
                            *group = Arc::new(kept);
                        }
                    }
                }
            }
            Store::Bytes(store) => {
                for group in 0..self.owned.len() {
                    let mut dropped = Vec::new();
                    store.for_each(group, &mut |k, v| {
                        let (key, value) = (
                            decode_stored(name, "key", k),
                            decode_stored(name, "value", v),
                        );
                        if !keep(&key, &value) {
                            dropped.push(k.to_vec());
                        }
                    });
                    for key in dropped {
                        store.remove(group, &key);
                    }
                }
            }
        }
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        match &mut self.store {
            // A group a snapshot shares is let go, not copied and then emptied.
            Store::Heap(groups) => groups.iter_mut().for_each(|g| match Arc::get_mut(g) {
                Some(map) => map.clear(),
                None => *g = SharedGroup::default(),
            }),
            Store::Bytes(store) => store.clear(),
        }
    }

    /// A handle on the state of `key` alone (the current key of a keyed process function).
    /// O(1): nothing is hashed until the handle is used.
    #[inline]
    pub fn scoped<'a>(&'a mut self, key: &'a K) -> KeyedState<'a, K, V> {
        KeyedState::new(self, key, None)
    }

    /// [`scoped`](Self::scoped), for a key already found by [`prefetch`](Self::prefetch) (`at`), or
    /// not (`None`: found on first use).
    #[inline]
    pub(crate) fn scoped_at<'a>(
        &'a mut self,
        key: &'a K,
        at: Option<Located>,
    ) -> KeyedState<'a, K, V> {
        KeyedState::new(self, key, at)
    }

    /// Starts loading the entry of `key` into the cache and returns where the key lives, for
    /// [`scoped_at`](Self::scoped_at). Nothing waits for the load: issued for several records in
    /// a row before any is processed, their cache misses overlap, where lookups interleaved
    /// with the records' processing wait for one miss at a time. Changes nothing; on a byte
    /// store, only locates.
    #[inline]
    pub(crate) fn prefetch(&self, key: &K) -> Located {
        let at = self.locate(key);
        if let Store::Heap(groups) = &self.store {
            groups[at.index].prefetch_hashed(at.hash);
        }
        at
    }

    /// The synchronous part of a snapshot: a view of the table as it is now, for a snapshot
    /// thread to serialize while the table goes on changing. O(key groups) on the heap: one
    /// reference-count increment per group, whatever the number of entries; a byte store's own cost
    /// (the memory-mapped one: O(key groups) too).
    pub fn snapshot(&self) -> TableSnapshot<K, V> {
        let view = match &self.store {
            Store::Heap(groups) => View::Heap(groups.clone()),
            Store::Bytes(store) => View::Bytes(store.snapshot()),
        };
        TableSnapshot::new(self.name.clone(), self.owned.clone(), view)
    }
}
impl<K: StateKey, V: StateValue> StateSnapshotRestore for KeyedTable<K, V> {
    type Key = K;
    type Stored = V;

    fn table(&self) -> &KeyedTable<K, V> {
        self
    }

    fn table_mut(&mut self) -> &mut KeyedTable<K, V> {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> KeyedTable<String, u64> {
        KeyedTable::new("counts", &KeyGroups::new(128, 1).unwrap(), 0)
    }

    #[test]
    fn the_access_calls_read_and_change_one_key() {
        let mut t = table();
        let k = String::from("a");
        assert_eq!(t.get(&k), None);
        assert_eq!(t.insert(k.clone(), 1), None);
        t.upsert_with(&k, || 0, |v| *v += 10);
        assert_eq!(t.get(&k), Some(11));
        t.merge(&k, 4, |acc, v| *acc += v);
        t.merge(&String::from("b"), 4, |acc, v| *acc += v);
        assert_eq!(t.with(&k, |v| v.copied()), Some(15));
        assert_eq!(t.get(&String::from("b")), Some(4));
        let old = t.update_slot(&k, |slot| slot.take());
        assert_eq!(old, Some(15));
        assert!(!t.contains(&k));
        t.update_slot(&k, |slot| *slot = Some(3));
        assert_eq!(t.len(), 2);
        assert_eq!(t.remove(&k), Some(3));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn for_each_retain_and_clear_cover_every_group() {
        let mut t = table();
        for i in 0..1000u64 {
            t.insert(i.to_string(), i);
        }
        let mut sum = 0;
        t.for_each(|_, v| sum += v);
        assert_eq!(sum, 999 * 1000 / 2);
        t.retain(|_, v| v % 2 == 0);
        assert_eq!(t.len(), 500);
        t.clear();
        assert!(t.is_empty());
    }

    #[test]
    #[should_panic(expected = "reached the subtask owning")]
    fn a_key_of_another_subtask_is_a_routing_bug() {
        let layout = KeyGroups::new(128, 2).unwrap();
        let mut t = KeyedTable::<u64, u64>::new("x", &layout, 0);
        let stray = (0..).find(|k: &u64| layout.group_of(k) >= 64).unwrap();
        t.insert(stray, 1);
    }
}
