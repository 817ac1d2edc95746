//! List state (Flink's `ListState`): per key, a list of values.

use imbl::Vector;

use super::table::KeyedTable;
use super::{StateKey, StateSnapshotRestore, StateValue};
use crate::codec::{self, Codec, DecodeError, Decoder, Encoder};
use crate::keyed::KeyGroups;

impl<T: Codec + Clone + Sync> Codec for Vector<T> {
    fn encoded_len(&self) -> usize {
        4 + self.iter().map(Codec::encoded_len).sum::<usize>()
    }

    fn encode(&self, out: &mut Encoder<'_>) {
        codec::put_len(out, self.len());
        for item in self {
            item.encode(out);
        }
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let len = input.take_u32()?;
        let mut list = Self::new();
        for _ in 0..len {
            list.push_back(T::decode(input)?);
        }
        Ok(list)
    }
}

/// Per key, a list of values in the order they were added. One table entry per key, holding a
/// persistent vector (cloned in O(1) when a snapshot shares it); a cleared key takes no memory.
#[derive(Debug)]
pub struct ListState<K, V> {
    table: KeyedTable<K, Vector<V>>,
}

impl<K: StateKey, V: StateValue> ListState<K, V> {
    /// An empty state named `name` for subtask `subtask` of `layout`.
    pub fn new(name: impl Into<String>, layout: &KeyGroups, subtask: usize) -> Self {
        Self {
            table: KeyedTable::new(name, layout, subtask),
        }
    }

    /// Appends `value` to `key`'s list.
    pub fn add(&mut self, key: &K, value: V) {
        self.table
            .upsert_with(key, Vector::new, |list| list.push_back(value));
    }

    /// Appends every value of `values` to `key`'s list.
    pub fn add_all(&mut self, key: &K, values: impl IntoIterator<Item = V>) {
        let mut values = values.into_iter().peekable();
        if values.peek().is_some() {
            self.table
                .upsert_with(key, Vector::new, |list| list.extend(values));
        }
    }

    /// `key`'s list, cloned (empty if it has none).
    pub fn get(&self, key: &K) -> Vec<V> {
        self.table.with(key, |list| {
            list.map_or_else(Vec::new, |l| l.iter().cloned().collect())
        })
    }

    /// Calls `f` on each value of `key`'s list, in order.
    pub fn for_each_of(&self, key: &K, mut f: impl FnMut(&V)) {
        self.table
            .with(key, |list| list.into_iter().flatten().for_each(&mut f));
    }

    /// The length of `key`'s list.
    pub fn len_of(&self, key: &K) -> usize {
        self.table.with(key, |list| list.map_or(0, Vector::len))
    }

    /// Replaces `key`'s list with `values` (an empty one clears it).
    pub fn update(&mut self, key: &K, values: Vec<V>) {
        if values.is_empty() {
            self.table.remove(key);
        } else {
            self.table.insert(key.clone(), values.into_iter().collect());
        }
    }

    /// Drops `key`'s list.
    pub fn clear(&mut self, key: &K) {
        self.table.remove(key);
    }
}

impl<K: StateKey, V: StateValue> StateSnapshotRestore for ListState<K, V> {
    type Key = K;
    type Stored = Vector<V>;

    fn table(&self) -> &KeyedTable<K, Vector<V>> {
        &self.table
    }

    fn table_mut(&mut self) -> &mut KeyedTable<K, Vector<V>> {
        &mut self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keep_their_order_per_key() {
        let mut s = ListState::<u64, String>::new("l", &KeyGroups::new(128, 1).unwrap(), 0);
        s.add(&1, "a".into());
        s.add_all(&1, ["b".to_owned(), "c".to_owned()]);
        s.add(&2, "z".into());
        s.add_all(&3, Vec::new());
        assert_eq!(s.get(&1), ["a", "b", "c"]);
        assert_eq!(s.len_of(&1), 3);
        assert_eq!(s.get(&3), Vec::<String>::new());
        assert!(!s.table().contains(&3));
        let mut seen = String::new();
        s.for_each_of(&1, |v| seen.push_str(v));
        assert_eq!(seen, "abc");
        s.update(&1, vec!["q".into()]);
        assert_eq!(s.get(&1), ["q"]);
        s.update(&1, Vec::new());
        assert_eq!(s.len_of(&1), 0);
        s.clear(&2);
        assert!(s.table().is_empty());
    }

    #[test]
    fn the_vector_codec_round_trips() {
        let list: Vector<String> = ["x", "", "yz"].into_iter().map(String::from).collect();
        assert_eq!(codec::round_trip(&list), Ok(list));
    }
}
