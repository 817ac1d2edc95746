//! Sinks: the ends of a job. JSON-lines files, an in-memory collector for tests, and a discard
//! sink for benches.
//!
//! [`JsonLinesFile`] is one output file shared by every subtask that writes to it (sinks of any
//! parallelism and side outputs such as `rejected.jsonl` or `late.jsonl`). Each subtask writes
//! through its own [`JsonLinesWriter`], which batches whole lines locally and appends a batch
//! under the file's lock only every [`BATCH_BYTES`] and at the end: the lock is off the
//! per-record path, and lines never interleave.
//!
//! With checkpointing on, outputs go through [`two_phase`] instead: [`TransactionalOutputs`]
//! hands out [`TxWriter`]s whose lines reach `OUTPUT/<name>` only once their checkpoint is
//! committed (Flink's two-phase-commit sink); the module docs are the contract for readers.
//! [`JobOutputs`] is the one switch between the two for jobs that run either way.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::error::OperatorError;

mod outputs;
pub mod two_phase;
pub use outputs::{JobOutputs, LineWriter, OutputFile};
pub use two_phase::{
    Commit, OutputError, Recovery, RegisteredWriter, Retraction, TransactionalFile,
    TransactionalOutputs, TxWriter,
};

/// Bytes a [`JsonLinesWriter`] batches before appending to its file.
pub const BATCH_BYTES: usize = 64 * 1024;

/// The receiving end of a job.
pub trait Sink<T>: Send + 'static {
    /// Writes one record.
    fn write(&mut self, record: T) -> Result<(), OperatorError>;
    /// The input ended: make everything durable.
    fn finish(&mut self) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// A JSON-lines file shared by the subtasks that write to it.
#[derive(Debug)]
pub struct JsonLinesFile {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
    lines: AtomicU64,
}

impl JsonLinesFile {
    /// Creates (or truncates) the file.
    pub fn create(path: impl AsRef<Path>) -> std::io::Result<Arc<Self>> {
        let path = path.as_ref().to_path_buf();
        let file = File::create(&path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot create {}: {e}", path.display()))
        })?;
        Ok(Arc::new(Self {
            path,
            file: Mutex::new(BufWriter::new(file)),
            lines: AtomicU64::new(0),
        }))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Lines appended so far.
    pub fn lines(&self) -> u64 {
        self.lines.load(Ordering::Relaxed)
    }

    fn append(&self, block: &[u8], lines: u64) -> std::io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(block)?;
        file.flush()?;
        self.lines.fetch_add(lines, Ordering::Relaxed);
        Ok(())
    }

    /// A writer for one subtask.
    pub fn writer<T: Serialize>(self: &Arc<Self>) -> JsonLinesWriter<T> {
        JsonLinesWriter {
            file: Arc::clone(self),
            batch: Vec::with_capacity(BATCH_BYTES),
            batch_lines: 0,
            _records: PhantomData,
        }
    }
}

/// One subtask's writer into a [`JsonLinesFile`]; usable as a sink or a side output.
#[derive(Debug)]
pub struct JsonLinesWriter<T> {
    file: Arc<JsonLinesFile>,
    batch: Vec<u8>,
    batch_lines: u64,
    _records: PhantomData<fn(T)>,
}

impl<T: Serialize> JsonLinesWriter<T> {
    /// Appends one record as a JSON line.
    pub fn write_line(&mut self, record: &T) -> std::io::Result<()> {
        self.write_formatted(|out| serde_json::to_writer(out, record).map_err(Into::into))
    }

    /// Appends one line that `format` writes as JSON (without a newline): for records of a
    /// fixed shape that write themselves faster than serde's generic serializer does.
    pub fn write_formatted(
        &mut self,
        format: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let start = self.batch.len();
        if let Err(e) = format(&mut self.batch) {
            self.batch.truncate(start);
            return Err(e);
        }
        debug_assert!(
            !self.batch[start..].contains(&b'\n'),
            "a line without newlines"
        );
        self.batch.push(b'\n');
        self.batch_lines += 1;
        if self.batch.len() >= BATCH_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Appends the batched lines to the file.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if !self.batch.is_empty() {
            self.file.append(&self.batch, self.batch_lines)?;
            self.batch.clear();
            self.batch_lines = 0;
        }
        Ok(())
    }
}

impl<T: Serialize + Send + 'static> Sink<T> for JsonLinesWriter<T> {
    fn write(&mut self, record: T) -> Result<(), OperatorError> {
        self.write_line(&record)
            .map_err(|e| format!("writing {}: {e}", self.file.path().display()).into())
    }

    fn finish(&mut self) -> Result<(), OperatorError> {
        self.flush()
            .map_err(|e| format!("writing {}: {e}", self.file.path().display()).into())
    }
}

/// Collects records in memory (tests): each subtask batches locally and appends at the end.
#[derive(Debug)]
pub struct CollectSink<T> {
    target: Arc<Mutex<Vec<T>>>,
    local: Vec<T>,
}

impl<T> CollectSink<T> {
    /// A sink appending into `target` when its input ends.
    pub fn new(target: Arc<Mutex<Vec<T>>>) -> Self {
        Self {
            target,
            local: Vec::new(),
        }
    }
}

impl<T: Send + 'static> Sink<T> for CollectSink<T> {
    fn write(&mut self, record: T) -> Result<(), OperatorError> {
        self.local.push(record);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), OperatorError> {
        self.target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&mut self.local);
        Ok(())
    }
}

/// Drops every record (benches); the task's `numRecordsOut` still counts them.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscardSink;

impl<T: Send + 'static> Sink<T> for DiscardSink {
    #[inline]
    fn write(&mut self, _record: T) -> Result<(), OperatorError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_of_one_file_never_interleave_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = JsonLinesFile::create(dir.path().join("out.jsonl")).unwrap();
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let mut w = file.writer::<(u32, String)>();
                std::thread::spawn(move || {
                    for i in 0..5000u32 {
                        w.write_line(&(t, format!("record {i}"))).unwrap();
                    }
                    w.flush().unwrap();
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(file.lines(), 10_000);
        let text = std::fs::read_to_string(file.path()).unwrap();
        for line in text.lines() {
            let _: (u32, String) = serde_json::from_str(line).expect("whole line");
        }
        assert_eq!(text.lines().count(), 10_000);
    }
}
