//! The keyed process operator (Flink's `KeyedProcessFunction`): a function that sees each
//! record with the state of its key.
//!
//! State lives in a per-subtask map from key to state value. The key-group layout of the
//! exchange in front guarantees that all records of a key reach the same subtask, so the map
//! holds exactly the keys of the subtask's key groups. State is reached lazily through
//! [`KeyedState`], as Flink's `ValueState`: a record that needs no state costs no lookup, and a
//! key that never needs state takes no memory.

use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::{Collector, Operator};
use crate::error::OperatorError;

/// A function over a keyed stream with one state value per key.
pub trait KeyedProcessFunction<K, In, Out>: Send + 'static {
    /// The per-key state; a key seen for the first time starts from `Default`.
    type State: Default + Send + 'static;

    /// Processes one record of `key`, with access to that key's state.
    fn process(
        &mut self,
        key: &K,
        state: &mut KeyedState<'_, K, Self::State>,
        record: In,
        out: &mut Collector<'_, Out>,
    ) -> Result<(), OperatorError>;

    /// The input ended; emit what is still pending.
    fn on_end_of_input(&mut self, _out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// The state of the current key, looked up only when asked for.
#[derive(Debug)]
pub struct KeyedState<'a, K, S> {
    map: &'a mut FxHashMap<K, S>,
    key: &'a K,
}

impl<K: Hash + Eq + Clone, S: Default> KeyedState<'_, K, S> {
    /// The key's state, if it has any.
    #[inline]
    pub fn get(&self) -> Option<&S> {
        self.map.get(self.key)
    }

    /// The key's state, created from `Default` if it has none.
    #[inline]
    pub fn get_or_default(&mut self) -> &mut S {
        self.map.entry(self.key.clone()).or_default()
    }

    /// Drops the key's state.
    pub fn clear(&mut self) {
        self.map.remove(self.key);
    }
}

/// Runs a [`KeyedProcessFunction`] with its per-key state.
pub struct KeyedProcess<K, In, F: KeyedProcessFunction<K, In, Out>, Out, KF> {
    key_of: KF,
    function: F,
    state: FxHashMap<K, F::State>,
    _types: std::marker::PhantomData<fn(In) -> Out>,
}

impl<K, In, F, Out, KF> std::fmt::Debug for KeyedProcess<K, In, F, Out, KF>
where
    F: KeyedProcessFunction<K, In, Out>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedProcess")
            .field("keys", &self.state.len())
            .finish()
    }
}

impl<K, In, F, Out, KF> KeyedProcess<K, In, F, Out, KF>
where
    F: KeyedProcessFunction<K, In, Out>,
{
    /// Keys records with `key_of` and runs `function` over them.
    pub fn new(key_of: KF, function: F) -> Self {
        Self {
            key_of,
            function,
            state: FxHashMap::default(),
            _types: std::marker::PhantomData,
        }
    }
}

impl<K, In, F, Out, KF> Operator<In, Out> for KeyedProcess<K, In, F, Out, KF>
where
    K: Hash + Eq + Clone + Send + 'static,
    In: 'static,
    Out: 'static,
    F: KeyedProcessFunction<K, In, Out>,
    KF: Fn(&In) -> K + Send + 'static,
{
    #[inline]
    fn process(&mut self, record: In, out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        let key = (self.key_of)(&record);
        let mut state = KeyedState {
            map: &mut self.state,
            key: &key,
        };
        self.function.process(&key, &mut state, record, out)
    }

    fn on_end_of_input(&mut self, out: &mut Collector<'_, Out>) -> Result<(), OperatorError> {
        self.function.on_end_of_input(out)
    }
}
