//! Storm's `RotatingMap`: entries in a few generations (buckets); a rotation expires the
//! oldest bucket, so an entry lives between `buckets − 1` and `buckets` rotation periods
//! unless it is removed first. The spout's pending tuples and the acker's ledger both expire
//! this way (Storm: `RotatingMap` in the spout executor and in `Acker`).
//!
//! Allocation: the buckets are hash maps that keep their capacity across rotations; the
//! number of entries is bounded by what the owner inserts in `buckets` periods (the spout
//! bounds it by max spout pending). Every operation is O(buckets) hash look-ups.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;

/// Entries keyed by a 64-bit id, in `buckets` generations, newest first.
#[derive(Debug)]
pub struct RotatingMap<V> {
    buckets: VecDeque<FxHashMap<u64, V>>,
    len: usize,
}

impl<V> RotatingMap<V> {
    /// A map of `buckets` generations (at least 2: the newest and one that can expire).
    pub fn new(buckets: usize) -> Self {
        Self {
            buckets: (0..buckets.max(2)).map(|_| FxHashMap::default()).collect(),
            len: 0,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts `value` under `key` into the newest generation. The caller never inserts a key
    /// it holds (ids are fresh; the ledger removes before it re-inserts).
    pub fn insert(&mut self, key: u64, value: V) {
        debug_assert!(!self.contains(key), "key {key} inserted twice");
        self.buckets[0].insert(key, value);
        self.len += 1;
    }

    /// Removes and returns the entry of `key`, from whichever generation holds it.
    pub fn remove(&mut self, key: u64) -> Option<V> {
        let value = self.buckets.iter_mut().find_map(|b| b.remove(&key))?;
        self.len -= 1;
        Some(value)
    }

    fn contains(&self, key: u64) -> bool {
        self.buckets.iter().any(|b| b.contains_key(&key))
    }

    /// Expires the oldest generation: `expired` gets each of its entries; a new, empty
    /// generation becomes the newest.
    pub fn rotate(&mut self, mut expired: impl FnMut(u64, V)) {
        let mut oldest = self.buckets.pop_back().expect("at least two buckets");
        self.len -= oldest.len();
        for (key, value) in oldest.drain() {
            expired(key, value);
        }
        self.buckets.push_front(oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_expires_after_as_many_rotations_as_buckets() {
        let mut map = RotatingMap::new(3);
        map.insert(7, "seven");
        let mut expired = Vec::new();
        map.rotate(|k, v| expired.push((k, v)));
        map.rotate(|k, v| expired.push((k, v)));
        assert!(expired.is_empty());
        assert_eq!(map.len(), 1);
        map.rotate(|k, v| expired.push((k, v)));
        assert_eq!(expired, vec![(7, "seven")]);
        assert!(map.is_empty());
    }

    #[test]
    fn a_removed_entry_never_expires() {
        let mut map = RotatingMap::new(2);
        map.insert(1, ());
        map.rotate(|_, ()| panic!("nothing expires yet"));
        assert_eq!(map.remove(1), Some(()));
        assert_eq!(map.remove(1), None);
        map.rotate(|_, ()| panic!("removed"));
        map.rotate(|_, ()| panic!("removed"));
        assert!(map.is_empty());
    }
}
