//! Operator state (Flink's `OperatorStateBackend`): state that is not keyed, such as source
//! offsets, a source's clock, a sink's open transactions, a counter.
//!
//! An operator writes its non-keyed state as named values, each in its codec, into the bytes
//! of [`OperatorSnapshot::operator_state`](crate::checkpoint::OperatorSnapshot::operator_state).
//! The snapshot is taken on the task thread (such state is small); nothing is shared with the
//! running operator afterwards.
//!
//! At another parallelism there is no key to route by: as with Flink's union list state, each
//! new subtask reads the values of every old subtask and keeps what it owns (a source keeps
//! the offsets of the partitions dealt to it).
//!
//! Layout: a sequence of sections, each a name (`String`'s codec) and the value's bytes
//! (length-prefixed).

use std::fmt;

use super::StateError;
use crate::codec::{self, Codec, Decoder};

/// Builds the non-keyed state of one operator subtask.
#[derive(Debug, Default)]
pub struct OperatorStateWriter {
    bytes: Vec<u8>,
    names: Vec<String>,
}

impl OperatorStateWriter {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `value` under `name`.
    ///
    /// # Panics
    /// If `name` was put already (a wiring bug: the restore could not tell the two apart).
    pub fn put<T: Codec>(&mut self, name: &str, value: &T) -> &mut Self {
        assert!(
            !self.names.iter().any(|n| n == name),
            "operator state {name:?} is put twice"
        );
        self.names.push(name.to_owned());
        codec::append_to_vec(&mut self.bytes, &name.to_owned());
        let len = value.encoded_len();
        let len32 = u32::try_from(len).expect("an operator state value is under 4 GiB");
        self.bytes.extend_from_slice(&len32.to_le_bytes());
        let start = self.bytes.len();
        codec::append_to_vec(&mut self.bytes, value);
        // Checked right before the bytes leave: the value reads back whole.
        debug_assert!(T::decode(&mut Decoder::new(&self.bytes[start..])).is_ok());
        self
    }

    /// The bytes, for [`OperatorSnapshot::operator_state`](crate::checkpoint::OperatorSnapshot::operator_state).
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads back the non-keyed state of one old subtask.
pub struct OperatorStateReader<'a> {
    sections: Vec<(String, &'a [u8])>,
}

impl fmt::Debug for OperatorStateReader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(
                self.sections
                    .iter()
                    .map(|(name, bytes)| (name, bytes.len())),
            )
            .finish()
    }
}

impl<'a> OperatorStateReader<'a> {
    /// Parses `bytes` written by [`OperatorStateWriter`], checking its shape (every section
    /// whole, no name twice).
    pub fn new(bytes: &'a [u8]) -> Result<Self, StateError> {
        let mut input = Decoder::new(bytes);
        let mut sections: Vec<(String, &'a [u8])> = Vec::new();
        while !input.is_empty() {
            let at = sections.len();
            let decode = |source| StateError::Decode {
                name: format!("<operator state section {at}>"),
                group: None,
                source,
            };
            let name = String::decode(&mut input).map_err(decode)?;
            let value = input.take_bytes().map_err(decode)?;
            if sections.iter().any(|(n, _)| *n == name) {
                return Err(StateError::Corrupt {
                    name,
                    group: None,
                    reason: "the operator state holds the name twice".to_owned(),
                });
            }
            sections.push((name, value));
        }
        Ok(Self { sections })
    }

    /// The names found.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(name, _)| name.as_str())
    }

    /// The value put under `name`, or `None` if there is none (state added since the snapshot);
    /// an error if its bytes do not decode exactly as a `T`.
    pub fn get<T: Codec>(&self, name: &str) -> Result<Option<T>, StateError> {
        let Some((_, bytes)) = self.sections.iter().find(|(n, _)| n == name) else {
            return Ok(None);
        };
        codec::decode_exact(bytes)
            .map(Some)
            .map_err(|source| StateError::Decode {
                name: name.to_owned(),
                group: None,
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::DecodeError;

    #[test]
    fn named_values_round_trip() {
        let mut w = OperatorStateWriter::new();
        w.put("offsets", &vec![(0u32, 17u64), (3, 5)])
            .put("clock", &Some(-4i64));
        let bytes = w.into_bytes();
        let r = OperatorStateReader::new(&bytes).unwrap();
        assert_eq!(r.names().collect::<Vec<_>>(), ["offsets", "clock"]);
        assert_eq!(
            r.get::<Vec<(u32, u64)>>("offsets"),
            Ok(Some(vec![(0, 17), (3, 5)]))
        );
        assert_eq!(r.get::<Option<i64>>("clock"), Ok(Some(Some(-4))));
        assert_eq!(r.get::<u64>("absent"), Ok(None));
    }

    #[test]
    fn damaged_bytes_are_errors_naming_the_state() {
        let mut w = OperatorStateWriter::new();
        w.put("n", &7u64);
        let bytes = w.into_bytes();
        for cut in 1..bytes.len() {
            assert!(
                OperatorStateReader::new(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let r = OperatorStateReader::new(&bytes).unwrap();
        assert_eq!(
            r.get::<u32>("n"),
            Err(StateError::Decode {
                name: "n".to_owned(),
                group: None,
                source: DecodeError::Invalid("bytes left after the value"),
            })
        );
    }
}
