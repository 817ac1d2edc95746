//! Map state (Flink's `MapState`): per key, a map from user key to value.

use std::hash::Hash;

use imbl::GenericHashMap;
use imbl::shared_ptr::DefaultSharedPtr;
use rustc_hash::FxBuildHasher;

use super::table::KeyedTable;
use super::{StateKey, StateSnapshotRestore, StateValue};
use crate::codec::{self, Codec, DecodeError, Decoder, Encoder};
use crate::keyed::KeyGroups;

/// The map of one key: persistent too, so a table node copied under a running snapshot clones
/// it in O(1), and a change inside it copies only its own path.
pub type UserMap<UK, V> = GenericHashMap<UK, V, FxBuildHasher, DefaultSharedPtr>;

impl<K, V> Codec for UserMap<K, V>
where
    K: Codec + Hash + Eq + Clone + Sync,
    V: Codec + Clone + Sync,
{
    fn encoded_len(&self) -> usize {
        4 + self
            .iter()
            .map(|(k, v)| k.encoded_len() + v.encoded_len())
            .sum::<usize>()
    }

    fn encode(&self, out: &mut Encoder<'_>) {
        codec::put_len(out, self.len());
        for (k, v) in self {
            k.encode(out);
            v.encode(out);
        }
    }

    fn decode(input: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let len = input.take_u32()?;
        let mut map = Self::default();
        for _ in 0..len {
            let key = K::decode(input)?;
            let value = V::decode(input)?;
            if map.insert(key, value).is_some() {
                return Err(DecodeError::Invalid("a map holds a key twice"));
            }
        }
        Ok(map)
    }
}

/// Per key, a map from user key `UK` to value `V`. One table entry per key, holding a
/// [`UserMap`]; a key whose map becomes empty is removed.
#[derive(Debug)]
pub struct MapState<K, UK, V> {
    table: KeyedTable<K, UserMap<UK, V>>,
}

impl<K, UK, V> MapState<K, UK, V>
where
    K: StateKey,
    UK: StateKey,
    V: StateValue,
{
    /// An empty state named `name` for subtask `subtask` of `layout`.
    pub fn new(name: impl Into<String>, layout: &KeyGroups, subtask: usize) -> Self {
        Self {
            table: KeyedTable::new(name, layout, subtask),
        }
    }

    /// The value of `user_key` under `key`, cloned.
    pub fn get(&self, key: &K, user_key: &UK) -> Option<V> {
        self.table
            .with(key, |map| map.and_then(|m| m.get(user_key).cloned()))
    }

    /// Whether `key` maps `user_key`.
    pub fn contains(&self, key: &K, user_key: &UK) -> bool {
        self.table
            .with(key, |map| map.is_some_and(|m| m.contains_key(user_key)))
    }

    /// Maps `user_key` to `value` under `key`, returning the value it replaces.
    pub fn put(&mut self, key: &K, user_key: UK, value: V) -> Option<V> {
        self.table
            .upsert_with(key, UserMap::default, |m| m.insert(user_key, value))
    }

    /// Removes `user_key` under `key`, returning its value.
    pub fn remove(&mut self, key: &K, user_key: &UK) -> Option<V> {
        self.table.update_slot(key, |slot| {
            let map = slot.as_mut()?;
            let removed = map.remove(user_key);
            if map.is_empty() {
                *slot = None;
            }
            removed
        })
    }

    /// Entries under `key`.
    pub fn len_of(&self, key: &K) -> usize {
        self.table.with(key, |map| map.map_or(0, UserMap::len))
    }

    /// Calls `f` on every entry under `key`.
    pub fn for_each_of(&self, key: &K, mut f: impl FnMut(&UK, &V)) {
        self.table.with(key, |map| {
            for (uk, v) in map.into_iter().flatten() {
                f(uk, v);
            }
        });
    }

    /// Removes every entry under `key`.
    pub fn clear(&mut self, key: &K) {
        self.table.remove(key);
    }
}

impl<K: StateKey, UK: StateKey, V: StateValue> StateSnapshotRestore for MapState<K, UK, V> {
    type Key = K;
    type Stored = UserMap<UK, V>;

    fn table(&self) -> &KeyedTable<K, UserMap<UK, V>> {
        &self.table
    }

    fn table_mut(&mut self) -> &mut KeyedTable<K, UserMap<UK, V>> {
        &mut self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_per_key_that_disappears_when_empty() {
        let mut s = MapState::<String, u64, String>::new("m", &KeyGroups::new(128, 1).unwrap(), 0);
        let k = String::from("k");
        assert_eq!(s.put(&k, 1, "a".into()), None);
        assert_eq!(s.put(&k, 2, "b".into()), None);
        assert_eq!(s.put(&k, 1, "c".into()), Some("a".into()));
        assert_eq!(s.get(&k, &1), Some("c".into()));
        assert!(s.contains(&k, &2));
        assert_eq!(s.len_of(&k), 2);
        let mut seen = Vec::new();
        s.for_each_of(&k, |uk, v| seen.push((*uk, v.clone())));
        seen.sort();
        assert_eq!(seen, [(1, "c".into()), (2, "b".into())]);
        assert_eq!(s.remove(&k, &1), Some("c".into()));
        assert_eq!(s.remove(&k, &2), Some("b".into()));
        assert_eq!(s.remove(&k, &2), None);
        assert!(s.table().is_empty());
        s.put(&k, 3, "x".into());
        s.clear(&k);
        assert_eq!(s.len_of(&k), 0);
    }

    #[test]
    fn the_user_map_codec_round_trips_and_refuses_a_key_twice() {
        let map: UserMap<u64, String> = [(1, "a".to_owned()), (2, "b".to_owned())]
            .into_iter()
            .collect();
        assert_eq!(codec::round_trip(&map), Ok(map));
        let twice = codec::encode_to_vec(&vec![(1u64, 0u8), (1u64, 0u8)]);
        assert_eq!(
            codec::decode_exact::<UserMap<u64, u8>>(&twice),
            Err(DecodeError::Invalid("a map holds a key twice"))
        );
    }
}
