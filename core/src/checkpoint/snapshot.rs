//! What a task hands to a checkpoint at a barrier, and what it gets back on restore.
//!
//! At barrier `n` every link of a chain adds its part to one [`TaskSnapshot`]: an operator its
//! non-keyed state (bytes, written now) and its keyed state (a copy-on-write view, serialized
//! later, on a snapshot thread); a sink the output part it pre-committed. The synchronous part
//! is what runs on the task thread: taking the views, never serializing keyed state (unless
//! [`SnapshotMode::Sync`](super::SnapshotMode::Sync) asks for the baseline).
//!
//! On restore an operator finds its state by uid in a [`RestoreContext`]: the non-keyed state
//! of every old subtask (the operator picks its own or merges them when the parallelism
//! changed) and the key-group blobs of the groups it now owns, whichever old subtask wrote
//! them.

use std::ops::Range;

use super::{OperatorSnapshot, PendingPart};
use crate::codec::DecodeError;
use crate::state::{KeyedParts, KeyedSnapshot, StateError};

/// Serializes the keyed state of one operator into one blob per key group; runs on a snapshot
/// thread (or on the task thread for synchronous snapshots).
pub type KeyedWrite = Box<dyn FnOnce() -> Vec<Vec<u8>> + Send>;

/// An operator's keyed state on its way to the snapshot thread.
pub(crate) enum PendingKeyed {
    /// A closure producing full blobs ([`SnapshotContext::set_keyed`]).
    Write(KeyedWrite),
    /// The views of its states ([`SnapshotContext::set_keyed_snapshot`]), incremental where
    /// their backend is.
    Snapshot(KeyedSnapshot),
    /// Written already (synchronous snapshots).
    Written(Result<KeyedParts, StateError>),
}

impl PendingKeyed {
    fn write(self) -> Result<KeyedParts, StateError> {
        match self {
            Self::Write(write) => Ok(KeyedParts {
                blobs: write(),
                ..KeyedParts::default()
            }),
            Self::Snapshot(snapshot) => snapshot.into_parts(),
            Self::Written(parts) => parts,
        }
    }
}

/// One operator's part of a task snapshot, before its keyed state is serialized.
pub(crate) struct PendingOperator {
    pub(crate) uid: String,
    pub(crate) operator_state: Vec<u8>,
    pub(crate) key_groups: Range<usize>,
    pub(crate) keyed: Option<PendingKeyed>,
}

impl std::fmt::Debug for PendingOperator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingOperator")
            .field("uid", &self.uid)
            .field("operator_state_bytes", &self.operator_state.len())
            .field("key_groups", &self.key_groups)
            .finish()
    }
}

impl PendingOperator {
    /// Serializes the keyed part now, on the calling thread (synchronous snapshots: the task
    /// thread); [`finish`](Self::finish) then only hands it over.
    pub(crate) fn write_keyed_now(&mut self) {
        if let Some(keyed) = self.keyed.take() {
            self.keyed = Some(PendingKeyed::Written(keyed.write()));
        }
    }

    /// Serializes the keyed part (the asynchronous phase).
    ///
    /// # Errors
    /// A state backend that could not write its part (its shared files).
    pub(crate) fn finish(
        self,
        subtask: usize,
        parallelism: usize,
    ) -> Result<OperatorSnapshot, StateError> {
        let parts = match self.keyed {
            Some(keyed) => keyed.write()?,
            None => KeyedParts::default(),
        };
        let keyed = parts.blobs;
        debug_assert!(
            keyed.is_empty() || keyed.len() == self.key_groups.len(),
            "one blob per owned key group"
        );
        Ok(OperatorSnapshot {
            uid: self.uid,
            subtask,
            parallelism,
            operator_state: self.operator_state,
            key_groups: if keyed.is_empty() {
                0..0
            } else {
                self.key_groups
            },
            keyed,
            shared: parts.shared,
            shared_written_bytes: parts.shared_written_bytes,
        })
    }
}

/// Everything one subtask contributes to checkpoint `n`.
#[derive(Debug, Default)]
pub struct TaskSnapshot {
    pub(crate) operators: Vec<PendingOperator>,
    pub(crate) parts: Vec<PendingPart>,
    /// Unaligned: the output side's channel state (the writers' open buffers).
    pub(crate) channel_chunks: Vec<super::ChannelChunk>,
    /// The folder of the checkpoint (sinks move their pre-committed parts under it).
    pub(crate) part_dir: std::path::PathBuf,
    pub(crate) checkpoint: super::CheckpointId,
}

impl TaskSnapshot {
    pub(crate) fn new(checkpoint: super::CheckpointId, part_dir: std::path::PathBuf) -> Self {
        Self {
            checkpoint,
            part_dir,
            ..Self::default()
        }
    }

    /// The checkpoint being taken.
    pub fn checkpoint(&self) -> super::CheckpointId {
        self.checkpoint
    }

    /// Where pre-committed output parts of this checkpoint go.
    pub fn part_dir(&self) -> &std::path::Path {
        &self.part_dir
    }

    /// Records a chunk of output channel state (unaligned checkpoints).
    pub(crate) fn add_channel_chunk(&mut self, chunk: super::ChannelChunk) {
        self.channel_chunks.push(chunk);
    }

    /// Records a pre-committed output part.
    pub fn add_part(&mut self, part: PendingPart) {
        self.parts.push(part);
    }

    /// Forgets the operator part started last if it holds no state (stateless operators write
    /// no file).
    pub(crate) fn drop_empty_operator(&mut self) {
        if self
            .operators
            .last()
            .is_some_and(|op| op.operator_state.is_empty() && op.keyed.is_none())
        {
            self.operators.pop();
        }
    }

    /// Starts the part of operator `uid` (keyed over `key_groups`, empty for non-keyed).
    pub fn operator(&mut self, uid: &str, key_groups: Range<usize>) -> SnapshotContext<'_> {
        self.operators.push(PendingOperator {
            uid: uid.to_owned(),
            operator_state: Vec::new(),
            key_groups,
            keyed: None,
        });
        SnapshotContext {
            part: self.operators.last_mut().expect("just pushed"),
        }
    }
}

/// What an operator writes into a checkpoint (handed to [`crate::operator::Operator::snapshot_state`]).
#[derive(Debug)]
pub struct SnapshotContext<'a> {
    part: &'a mut PendingOperator,
}

impl SnapshotContext<'_> {
    /// The operator's non-keyed state, written as it is now. Replaces what was set before.
    pub fn set_operator_state(&mut self, bytes: Vec<u8>) {
        self.part.operator_state = bytes;
    }

    /// The operator's keyed state: `write` serializes a copy-on-write view taken now into one
    /// blob per owned key group. It runs later, on a snapshot thread, while the task goes on.
    pub fn set_keyed(&mut self, write: KeyedWrite) {
        self.part.keyed = Some(PendingKeyed::Write(write));
    }

    /// The operator's keyed state as the views of its states, taken now: a snapshot thread
    /// writes them later, incrementally where their backend snapshots incrementally (the
    /// memory-mapped one). What keyed operators use.
    pub fn set_keyed_snapshot(&mut self, snapshot: KeyedSnapshot) {
        self.part.keyed = Some(PendingKeyed::Snapshot(snapshot));
    }

    /// The key groups the operator owns.
    pub fn key_groups(&self) -> Range<usize> {
        self.part.key_groups.clone()
    }
}

/// One operator's state as restored from a checkpoint.
#[derive(Debug, Clone, Default)]
pub struct RestoreContext {
    /// The checkpoint restored from.
    pub checkpoint: super::CheckpointId,
    /// The operator's parallelism when the checkpoint was taken.
    pub old_parallelism: usize,
    /// Non-keyed state of every old subtask, by old subtask index.
    pub operator_states: Vec<Vec<u8>>,
    /// The blobs of the key groups this subtask owns now: `(group, blob)`, in group order.
    pub keyed: Vec<(usize, Vec<u8>)>,
}

impl RestoreContext {
    /// This subtask's own non-keyed state when the parallelism did not change; `None` when it
    /// did (the operator must then merge [`Self::operator_states`]).
    pub fn own_operator_state(&self, subtask: usize, parallelism: usize) -> Option<&[u8]> {
        (self.old_parallelism == parallelism)
            .then(|| self.operator_states.get(subtask).map(Vec::as_slice))
            .flatten()
    }
}

/// Appends fixed-size fields to an operator's non-keyed state (little endian).
#[derive(Debug, Default, Clone)]
pub struct StateWriter {
    bytes: Vec<u8>,
}

impl StateWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }
    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends an `i64`.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// Appends a `bool`.
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.bytes.push(u8::from(v));
        self
    }
    /// Appends length-prefixed bytes.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u64(v.len() as u64);
        self.bytes.extend_from_slice(v);
        self
    }
    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads back what a [`StateWriter`] wrote; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct StateReader<'a> {
    bytes: &'a [u8],
}

impl<'a> StateReader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated {
                needed: n,
                available: self.bytes.len(),
            });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }
    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// Reads an `i64`.
    pub fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    /// Reads a `bool`.
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Invalid("a bool is 0 or 1")),
        }
    }
    /// Reads length-prefixed bytes.
    pub fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = usize::try_from(self.u64()?).map_err(|_| DecodeError::Invalid("length"))?;
        self.take(n)
    }
    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_fields_round_trip_and_truncation_is_an_error() {
        let mut w = StateWriter::new();
        w.u64(7).i64(-3).bool(true).bytes(b"abc");
        let bytes = w.finish();
        let mut r = StateReader::new(&bytes);
        assert_eq!(r.u64().unwrap(), 7);
        assert_eq!(r.i64().unwrap(), -3);
        assert!(r.bool().unwrap());
        assert_eq!(r.bytes().unwrap(), b"abc");
        assert!(r.is_empty());
        let mut short = StateReader::new(&bytes[..10]);
        short.u64().unwrap();
        assert!(short.i64().is_err());
    }

    #[test]
    fn keyed_state_is_serialized_only_when_the_part_is_finished() {
        let mut snapshot = TaskSnapshot::new(3, std::path::PathBuf::new());
        let mut ctx = snapshot.operator("windows", 0..2);
        ctx.set_operator_state(vec![1]);
        ctx.set_keyed(Box::new(|| vec![vec![10], vec![]]));
        let part = snapshot.operators.pop().unwrap();
        let done = part.finish(0, 1).unwrap();
        assert_eq!(done.keyed, vec![vec![10], vec![]]);
        assert_eq!(done.key_groups, 0..2);
        assert_eq!(done.operator_state, vec![1]);
    }
}
