//! One key group's entries: a flat hash table (hashbrown's `HashTable`) that takes each key's
//! hash from its caller, so a [`KeyedTable`](super::KeyedTable) that hashed a key to find its
//! key group does not hash it again inside the group.
//!
//! The hash is [`hash_key`](keyed::hash_key) (FxHash finished with MurmurHash3's finalizer)
//! with its halves swapped. Plain FxHash is a multiply-add per word, whose top bits (the
//! table's 7-bit tags) can be shared by many keys that differ in few bits (window slots of
//! timestamps a minute apart, short byte strings): a lookup would then compare several keys;
//! the finalizer makes every bit depend on every input bit. The swap keeps the table's bits
//! apart from the key group's: every key of one group has the same low bits of `hash_key` (up
//! to 15 of them, at the largest max parallelism), and the table picks buckets by its hash's
//! low bits and tags by its top ones, here bits 32 and up and 25 to 31 of `hash_key`.
//!
//! Costs: a lookup is one probe (usually one cache miss); an insertion may grow the table,
//! rehashing its keys ([`map_hash`] of each) once per doubling.

use std::hash::Hash;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

use crate::keyed;

/// The hash a group map keeps `key` under.
#[inline]
pub(super) fn map_hash<K: Hash + ?Sized>(key: &K) -> u64 {
    map_hash_of(keyed::hash_key(key))
}

/// The hash a group map keeps a key under, from its [`hash_key`](keyed::hash_key).
#[inline(always)]
pub(super) fn map_hash_of(key_hash: u64) -> u64 {
    key_hash.rotate_right(32)
}

/// Asks the processor to bring the cache line of `value` into its caches, without waiting.
#[inline(always)]
fn prefetch<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it reads nothing into the program, cannot fault, and the
    // pointer comes from a live reference. SSE, which the instruction needs, is part of every
    // x86_64 processor.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            std::ptr::from_ref(value).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

/// The entries of one key group. Every `*_hashed` call takes `hash = map_hash(key)`.
#[derive(Clone)]
pub(super) struct GroupMap<K, V> {
    table: HashTable<(K, V)>,
}

impl<K, V> Default for GroupMap<K, V> {
    fn default() -> Self {
        Self {
            table: HashTable::new(),
        }
    }
}

impl<K, V> GroupMap<K, V> {
    /// Entries in the group.
    #[inline]
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the group has no entry.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Every entry, in the table's order (the same on every run with the same history).
    pub(super) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.table.iter().map(|(k, v)| (k, v))
    }

    /// Removes every entry (keeps the capacity).
    pub(super) fn clear(&mut self) {
        self.table.clear();
    }

    /// Keeps only the entries for which `keep` is true.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&K, &V) -> bool) {
        self.table.retain(|(k, v)| keep(k, v));
    }
}

impl<K: Hash + Eq, V> GroupMap<K, V> {
    /// Room for `more` entries without growing.
    pub(super) fn reserve(&mut self, more: usize) {
        self.table.reserve(more, |(k, _)| map_hash(k));
    }

    /// The value of `key`, hashed `hash`.
    #[inline]
    pub(super) fn get_hashed(&self, hash: u64, key: &K) -> Option<&V> {
        self.table.find(hash, |(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value of `key`, hashed `hash`, to change.
    #[inline]
    pub(super) fn get_mut_hashed(&mut self, hash: u64, key: &K) -> Option<&mut V> {
        self.table.find_mut(hash, |(k, _)| k == key).map(|(_, v)| v)
    }

    /// Starts loading into the cache the entry a lookup of `hash` will most likely compare,
    /// without reading it or waiting for it: the first entry whose 7-bit tag matches (found in
    /// the control bytes, which are small and usually cached). That is the key's entry unless
    /// the key is absent or a rare tag collision precedes it; then the load is only wasted.
    #[inline]
    pub(super) fn prefetch_hashed(&self, hash: u64) {
        if let Some(entry) = self.table.find(hash, |_| true) {
            prefetch(entry);
        }
    }

    /// Whether `key`, hashed `hash`, has a value.
    #[inline]
    pub(super) fn contains_hashed(&self, hash: u64, key: &K) -> bool {
        self.get_hashed(hash, key).is_some()
    }

    /// Sets the value of `key`, returning the one it replaces.
    #[inline]
    pub(super) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.insert_hashed(map_hash(&key), key, value)
    }

    /// Sets the value of `key`, hashed `hash`, returning the one it replaces.
    #[inline]
    pub(super) fn insert_hashed(&mut self, hash: u64, key: K, value: V) -> Option<V> {
        match self
            .table
            .entry(hash, |(k, _)| *k == key, |(k, _)| map_hash(k))
        {
            Entry::Occupied(mut entry) => Some(std::mem::replace(&mut entry.get_mut().1, value)),
            Entry::Vacant(entry) => {
                entry.insert((key, value));
                None
            }
        }
    }

    /// Adds `key`, hashed `hash`, which the caller found absent.
    #[inline]
    pub(super) fn insert_new_hashed(&mut self, hash: u64, key: K, value: V) {
        debug_assert!(self.get_hashed(hash, &key).is_none(), "the key is new");
        self.table
            .insert_unique(hash, (key, value), |(k, _)| map_hash(k));
    }

    /// Removes `key`, hashed `hash`, returning its entry.
    #[inline]
    pub(super) fn remove_entry_hashed(&mut self, hash: u64, key: &K) -> Option<(K, V)> {
        self.table
            .find_entry(hash, |(k, _)| k == key)
            .ok()
            .map(|entry| entry.remove().0)
    }
}

impl<K: Hash + Eq, V> FromIterator<(K, V)> for GroupMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(entries: I) -> Self {
        let mut map = Self::default();
        for (key, value) in entries {
            map.insert(key, value);
        }
        map
    }
}

impl<'a, K, V> IntoIterator for &'a GroupMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter =
        std::iter::Map<hashbrown::hash_table::Iter<'a, (K, V)>, fn(&'a (K, V)) -> (&'a K, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.table.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hashed_calls_agree_with_the_plain_ones() {
        let mut map = GroupMap::default();
        for k in 0..1000u64 {
            assert_eq!(map.insert(k, k * 2), None);
        }
        assert_eq!(map.insert(7, 0), Some(14));
        assert_eq!(map.len(), 1000);
        let h = map_hash(&7u64);
        assert_eq!(map.get_hashed(h, &7), Some(&0));
        *map.get_mut_hashed(h, &7).unwrap() = 5;
        assert_eq!(map.get_hashed(map_hash(&7u64), &7), Some(&5));
        assert_eq!(map.remove_entry_hashed(h, &7), Some((7, 5)));
        assert!(!map.contains_hashed(h, &7));
        map.insert_new_hashed(h, 7, 1);
        assert_eq!(map.get_hashed(h, &7), Some(&1));
        map.retain(|k, _| k % 2 == 0);
        assert_eq!(map.len(), 500);
        assert_eq!(
            map.iter().map(|(k, _)| *k).sum::<u64>(),
            (0..1000u64).step_by(2).sum::<u64>()
        );
        let copy: GroupMap<u64, u64> = map.iter().map(|(k, v)| (*k, *v)).collect();
        assert_eq!(copy.len(), 500);
        map.clear();
        assert!(map.is_empty());
    }
}
