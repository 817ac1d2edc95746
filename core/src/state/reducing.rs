//! Reducing and aggregating state (Flink's `ReducingState` and `AggregatingState`): per key,
//! one value that every added input is folded into.

use std::fmt;
use std::marker::PhantomData;

use super::table::KeyedTable;
use super::{StateKey, StateSnapshotRestore, StateValue};
use crate::keyed::KeyGroups;
use crate::window::AggregateFunction;

/// Per key, the reduction of every value added: the first value as it is, each later one
/// combined into it with `reduce(&mut acc, value)`.
pub struct ReducingState<K, V, F> {
    table: KeyedTable<K, V>,
    reduce: F,
}

impl<K, V, F> fmt::Debug for ReducingState<K, V, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReducingState")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl<K: StateKey, V: StateValue, F: Fn(&mut V, V)> ReducingState<K, V, F> {
    /// An empty state named `name` for subtask `subtask` of `layout`, reducing with `reduce`.
    pub fn new(name: impl Into<String>, layout: &KeyGroups, subtask: usize, reduce: F) -> Self {
        Self {
            table: KeyedTable::new(name, layout, subtask),
            reduce,
        }
    }

    /// Folds `value` into `key`'s reduction.
    pub fn add(&mut self, key: &K, value: V) {
        self.table.merge(key, value, &self.reduce);
    }

    /// `key`'s reduction, cloned.
    pub fn get(&self, key: &K) -> Option<V> {
        self.table.get(key)
    }

    /// Drops `key`'s reduction.
    pub fn clear(&mut self, key: &K) {
        self.table.remove(key);
    }
}

impl<K: StateKey, V: StateValue, F> StateSnapshotRestore for ReducingState<K, V, F> {
    type Key = K;
    type Stored = V;

    fn table(&self) -> &KeyedTable<K, V> {
        &self.table
    }

    fn table_mut(&mut self) -> &mut KeyedTable<K, V> {
        &mut self.table
    }
}

/// Per key, an accumulator of an [`AggregateFunction`]: inputs are added to it, the result is
/// read from it. The accumulator is what is stored and snapshotted.
pub struct AggregatingState<K, In, A: AggregateFunction<In>> {
    table: KeyedTable<K, A::Acc>,
    function: A,
    _input: PhantomData<fn(&In)>,
}

impl<K, In, A: AggregateFunction<In>> fmt::Debug for AggregatingState<K, In, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AggregatingState")
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

impl<K, In, A> AggregatingState<K, In, A>
where
    K: StateKey,
    A: AggregateFunction<In>,
    A::Acc: StateValue,
{
    /// An empty state named `name` for subtask `subtask` of `layout`, aggregating with
    /// `function`.
    pub fn new(name: impl Into<String>, layout: &KeyGroups, subtask: usize, function: A) -> Self {
        Self {
            table: KeyedTable::new(name, layout, subtask),
            function,
            _input: PhantomData,
        }
    }

    /// Adds `input` to `key`'s accumulator, created first if it has none.
    pub fn add(&mut self, key: &K, input: &In) {
        let function = &self.function;
        self.table
            .upsert_with(key, || function.create(), |acc| function.add(acc, input));
    }

    /// The result of `key`'s accumulator, if it has one.
    pub fn get(&self, key: &K) -> Option<A::Out> {
        self.table
            .with(key, |acc| acc.map(|acc| self.function.result(acc)))
    }

    /// Drops `key`'s accumulator.
    pub fn clear(&mut self, key: &K) {
        self.table.remove(key);
    }
}

impl<K, In, A> StateSnapshotRestore for AggregatingState<K, In, A>
where
    K: StateKey,
    A: AggregateFunction<In>,
    A::Acc: StateValue,
{
    type Key = K;
    type Stored = A::Acc;

    fn table(&self) -> &KeyedTable<K, A::Acc> {
        &self.table
    }

    fn table_mut(&mut self) -> &mut KeyedTable<K, A::Acc> {
        &mut self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::Count;

    #[test]
    fn reducing_state_folds_every_value_of_a_key() {
        let layout = KeyGroups::new(128, 1).unwrap();
        let mut s = ReducingState::new("max", &layout, 0, |acc: &mut u64, v| *acc = (*acc).max(v));
        for v in [3, 9, 4] {
            s.add(&"a".to_owned(), v);
        }
        s.add(&"b".to_owned(), 1);
        assert_eq!(s.get(&"a".to_owned()), Some(9));
        assert_eq!(s.get(&"b".to_owned()), Some(1));
        s.clear(&"a".to_owned());
        assert_eq!(s.get(&"a".to_owned()), None);
    }

    #[test]
    fn aggregating_state_keeps_an_accumulator_per_key() {
        let layout = KeyGroups::new(128, 1).unwrap();
        let mut s = AggregatingState::<u64, &str, _>::new("count", &layout, 0, Count);
        assert_eq!(s.get(&1), None);
        for r in ["x", "y"] {
            s.add(&1, &r);
        }
        assert_eq!(s.get(&1), Some(2));
        s.clear(&1);
        assert_eq!(s.get(&1), None);
    }
}
