//! State scoped to the current key (Flink's keyed state seen through the backend's current
//! key): what a keyed process function gets with each record.

use std::cell::Cell;
use std::fmt;

use super::table::{KeyedTable, Located};
use super::{StateKey, StateValue};

/// The state of one key in a [`KeyedTable`], looked up only when asked for: a record that
/// needs no state costs no lookup, and a key that never needs state takes no memory.
///
/// Made by [`KeyedTable::scoped`], which costs nothing: the key's group is found on the first
/// call that needs it and kept for the next ones. Like every state
/// call, nothing hands out a reference past the call: read with [`get`](Self::get) or
/// [`with`](Self::with), change with [`update`](Self::update) (the replacement of
/// `get_or_default() -> &mut S`), [`update_slot`](Self::update_slot), [`set`](Self::set) or
/// [`clear`](Self::clear).
pub struct KeyedState<'a, K, V> {
    table: &'a mut KeyedTable<K, V>,
    key: &'a K,
    /// Where the key lives in the table, once found.
    at: Cell<Option<Located>>,
}

impl<K, V> fmt::Debug for KeyedState<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedState")
            .field("state", &self.table.name())
            .finish_non_exhaustive()
    }
}

impl<'a, K: StateKey, V: StateValue> KeyedState<'a, K, V> {
    pub(super) fn new(table: &'a mut KeyedTable<K, V>, key: &'a K, at: Option<Located>) -> Self {
        Self {
            table,
            key,
            at: Cell::new(at),
        }
    }

    /// Where the key lives in the table: hashed on first use only.
    #[inline]
    fn at(&self) -> Located {
        match self.at.get() {
            Some(at) => at,
            None => {
                let at = self.table.locate(self.key);
                self.at.set(Some(at));
                at
            }
        }
    }

    /// The current key.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The key's value, cloned.
    #[inline]
    pub fn get(&self) -> Option<V> {
        self.with(|v| v.cloned())
    }

    /// Runs `f` on the key's value without cloning it.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(Option<&V>) -> R) -> R {
        self.table.with_at(self.at(), self.key, f)
    }

    /// Runs `f` on the key's value, created from `Default` if it has none.
    #[inline]
    pub fn update<R>(&mut self, f: impl FnOnce(&mut V) -> R) -> R
    where
        V: Default,
    {
        self.upsert_with(V::default, f)
    }

    /// Runs `f` on the key's value, first set to `init()` if it has none.
    #[inline]
    pub fn upsert_with<R>(&mut self, init: impl FnOnce() -> V, f: impl FnOnce(&mut V) -> R) -> R {
        self.table.upsert_with_at(self.at(), self.key, init, f)
    }

    /// Runs `f` on the key's slot; what it leaves there is the value afterwards (`None`
    /// removes it). See [`KeyedTable::update_slot`].
    #[inline]
    pub fn update_slot<R>(&mut self, f: impl FnOnce(&mut Option<V>) -> R) -> R {
        self.table.update_slot_at(self.at(), self.key, f)
    }

    /// Sets the key's value.
    #[inline]
    pub fn set(&mut self, value: V) {
        let at = self.at();
        self.table.insert_at(at, self.key.clone(), value);
    }

    /// Drops the key's state.
    #[inline]
    pub fn clear(&mut self) {
        let at = self.at();
        self.table.remove_at(at, self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyed::KeyGroups;

    #[test]
    fn a_scoped_handle_reads_and_changes_only_its_key() {
        let mut table = KeyedTable::<u64, u64>::new("n", &KeyGroups::new(128, 1).unwrap(), 0);
        table.insert(2, 20);
        let key = 1;
        let mut state = table.scoped(&key);
        assert_eq!(state.get(), None);
        assert_eq!(
            state.update(|n| {
                *n += 1;
                *n
            }),
            1
        );
        state.update(|n| *n += 1);
        assert_eq!(state.get(), Some(2));
        state.set(7);
        assert_eq!(state.with(|v| v.copied()), Some(7));
        state.update_slot(|slot| *slot = slot.map(|v| v * 2));
        assert_eq!(state.get(), Some(14));
        state.clear();
        assert_eq!(state.get(), None);
        assert_eq!(table.get(&2), Some(20));
        assert_eq!(table.len(), 1);
    }
}
