//! The runtime's view of transactional outputs: a writer registered with its subtask (which
//! pre-commits it at every barrier) and the coordinator's committer.

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use super::{TransactionalFile, TransactionalOutputs, TxWriter};
use crate::checkpoint::{
    CheckpointId, OutputCommitter, PendingPart, SharedTransaction, Transaction,
    register_transaction,
};
use crate::error::OperatorError;
use crate::sink::Sink;

impl<T: Serialize + Send> Transaction for TxWriter<T> {
    fn pre_commit(
        &mut self,
        checkpoint: CheckpointId,
        part_dir: &Path,
    ) -> io::Result<Option<PendingPart>> {
        TxWriter::pre_commit(self, checkpoint, part_dir)
    }
}

impl OutputCommitter for TransactionalOutputs {
    fn commit(&self, checkpoint: CheckpointId, parts: &[PendingPart]) -> Result<(), String> {
        TransactionalOutputs::commit(self, checkpoint, parts)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn recover(
        &self,
        restored: Option<(CheckpointId, &[PendingPart])>,
    ) -> Result<Vec<String>, String> {
        let recovery = TransactionalOutputs::recover(self, restored).map_err(|e| e.to_string())?;
        Ok(recovery.retracted.iter().map(ToString::to_string).collect())
    }

    fn last_committed(&self) -> CheckpointId {
        TransactionalOutputs::last_committed(self)
    }
}

/// A [`TxWriter`] registered with the subtask that created it: the subtask pre-commits it at
/// every barrier; the owner writes lines through it (a sink, a late or quarantine handler).
#[derive(Debug)]
pub struct RegisteredWriter<T> {
    writer: Arc<Mutex<TxWriter<T>>>,
}

impl<T: Serialize + Send + 'static> RegisteredWriter<T> {
    /// A writer of `file` for `subtask`, registered with the subtask whose scope the calling
    /// thread is in. Outside a checkpointed job's subtask it is an error: its lines could
    /// never be committed.
    pub fn new(file: &Arc<TransactionalFile>, subtask: usize) -> io::Result<Self> {
        let writer = Arc::new(Mutex::new(file.writer::<T>(subtask)));
        let shared: SharedTransaction = writer.clone();
        if !register_transaction(shared) {
            return Err(io::Error::other(format!(
                "{}: a transactional output needs a checkpointed job",
                file.name()
            )));
        }
        Ok(Self { writer })
    }

    /// Adds one record as a JSON line to the open transaction.
    pub fn write_line(&mut self, record: &T) -> io::Result<()> {
        self.writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_line(record)
    }

    /// Adds one line that `format` writes as JSON ([`TxWriter::write_formatted`]).
    pub fn write_formatted(
        &mut self,
        format: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_formatted(format)
    }
}

impl<T: Serialize + Send + 'static> Sink<T> for RegisteredWriter<T> {
    fn write(&mut self, record: T) -> Result<(), OperatorError> {
        self.write_line(&record).map_err(|e| e.to_string().into())
    }

    fn finish(&mut self) -> Result<(), OperatorError> {
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        Sink::finish(&mut *writer)
    }
}
