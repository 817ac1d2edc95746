//! One transactional output file and its per-subtask writers: the begin, write, pre-commit and
//! abort of Flink's `TwoPhaseCommitSinkFunction`, with FileSink's in-progress and pending parts.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::durable::{move_file, sync_dir};
use crate::checkpoint::{CheckpointId, PendingPart};
use crate::error::OperatorError;
use crate::sink::{BATCH_BYTES, Sink};

/// One output file (`OUTPUT/<name>`), handed out by
/// [`TransactionalOutputs::file`](super::TransactionalOutputs::file); shared by every subtask
/// that writes to it.
#[derive(Debug)]
pub struct TransactionalFile {
    name: String,
    path: PathBuf,
    in_progress_dir: PathBuf,
    /// The next part's number, unique among this file's parts while the job lives.
    next_part: AtomicU64,
}

impl TransactionalFile {
    pub(super) fn new(name: String, path: PathBuf, in_progress_dir: PathBuf) -> Self {
        Self {
            name,
            path,
            in_progress_dir,
            next_part: AtomicU64::new(0),
        }
    }

    /// The output's name in the output folder (`flow_1m.jsonl`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The committed file, `OUTPUT/<name>`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A writer for subtask `subtask`, with an empty open transaction. Several writers of one
    /// subtask are allowed (each has its own parts).
    pub fn writer<T: Serialize>(self: &Arc<Self>, subtask: usize) -> TxWriter<T> {
        TxWriter {
            file: Arc::clone(self),
            subtask,
            buffer: Vec::with_capacity(BATCH_BYTES),
            part: None,
            txn_bytes: 0,
            txn_lines: 0,
            last_checkpoint: 0,
            broken: false,
            _records: PhantomData,
        }
    }

    /// A new in-progress part's file name: `<name>.<subtask>.<part>`, zero-padded so that the
    /// commit's order by path is the order by subtask, then by part.
    fn part_name(&self, subtask: usize) -> String {
        let part = self.next_part.fetch_add(1, Ordering::Relaxed);
        format!("{}.{subtask:05}.{part:020}", self.name)
    }
}

/// The part file an open transaction has spilled into.
#[derive(Debug)]
struct InProgress {
    path: PathBuf,
    file: File,
}

/// One subtask's writer into a [`TransactionalFile`]: one open transaction at a time.
///
/// Lines are buffered and spilled into the in-progress part
/// `OUTPUT/.weir/in-progress/<name>.<subtask>.<part>` whenever the buffer passes
/// [`BATCH_BYTES`], so memory stays at most one batch plus one record, however long the epoch.
/// [`pre_commit`](Self::pre_commit) at a barrier makes the transaction a durable pending part and
/// begins the next one. After an I/O error the transaction is broken: every call but
/// [`abort`](Self::abort) fails until it is aborted. Dropping the writer aborts it.
///
/// No line ever contains `\n` (compact JSON escapes it), and one writer's lines go into its own
/// parts only: lines of different writers never interleave.
#[derive(Debug)]
pub struct TxWriter<T> {
    file: Arc<TransactionalFile>,
    subtask: usize,
    buffer: Vec<u8>,
    part: Option<InProgress>,
    /// Bytes and lines of the open transaction, spilled or buffered.
    txn_bytes: u64,
    txn_lines: u64,
    last_checkpoint: CheckpointId,
    broken: bool,
    _records: PhantomData<fn(T)>,
}

impl<T: Serialize> TxWriter<T> {
    /// Adds one record, as a JSON line, to the open transaction. A record that does not
    /// serialize leaves the transaction as it was.
    pub fn write_line(&mut self, record: &T) -> io::Result<()> {
        self.write_formatted(|out| serde_json::to_writer(out, record).map_err(Into::into))
    }

    /// Adds one line that `format` writes as JSON (without a newline) to the open
    /// transaction; a failing `format` leaves the transaction as it was.
    pub fn write_formatted(
        &mut self,
        format: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        self.usable()?;
        let start = self.buffer.len();
        if let Err(e) = format(&mut self.buffer) {
            self.buffer.truncate(start);
            return Err(e);
        }
        debug_assert!(!self.buffer[start..].contains(&b'\n'));
        self.buffer.push(b'\n');
        self.txn_bytes += (self.buffer.len() - start) as u64;
        self.txn_lines += 1;
        if self.buffer.len() >= BATCH_BYTES {
            self.spill()?;
        }
        Ok(())
    }

    /// Pre-commits the open transaction for checkpoint `checkpoint` (greater than the last one
    /// this writer pre-committed): flushes it, fsyncs and closes the part, moves it durably into
    /// `part_dir` (created if missing; the runtime passes the checkpoint's folder, e.g.
    /// `chk-N/parts/`) and begins a new transaction.
    ///
    /// Returns the pending part for the checkpoint's metadata, or `None` if the transaction
    /// holds no line: an empty epoch leaves no part for the commit to wait for. When this
    /// returns, the part is durable (file and folder entry synced). O(bytes not yet spilled).
    pub fn pre_commit(
        &mut self,
        checkpoint: CheckpointId,
        part_dir: &Path,
    ) -> io::Result<Option<PendingPart>> {
        self.usable()?;
        if checkpoint <= self.last_checkpoint {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: pre-commit for checkpoint {checkpoint} after checkpoint {}",
                    self.file.name, self.last_checkpoint
                ),
            ));
        }
        self.last_checkpoint = checkpoint;
        if self.txn_lines == 0 {
            debug_assert!(self.part.is_none() && self.buffer.is_empty());
            return Ok(None);
        }
        self.spill()?;
        let result = self.move_part(part_dir);
        self.broken = result.is_err();
        result.map(Some)
    }

    /// Aborts the open transaction: drops its buffered lines and deletes its in-progress part,
    /// then begins a new transaction (also after an error).
    pub fn abort(&mut self) -> io::Result<()> {
        self.buffer.clear();
        self.txn_bytes = 0;
        self.txn_lines = 0;
        self.broken = false;
        match self.part.take() {
            Some(part) => remove_if_present(&part.path),
            None => Ok(()),
        }
    }

    /// Lines in the open transaction.
    pub fn pending_lines(&self) -> u64 {
        self.txn_lines
    }

    fn usable(&self) -> io::Result<()> {
        if self.broken {
            return Err(io::Error::other(format!(
                "{}: the transaction of subtask {} broke on an earlier error; abort it",
                self.file.name, self.subtask
            )));
        }
        Ok(())
    }

    /// Appends the buffer to the in-progress part, creating it on the first spill.
    fn spill(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let result = self.append_buffer();
        self.broken = result.is_err();
        result
    }

    fn append_buffer(&mut self) -> io::Result<()> {
        if self.part.is_none() {
            let path = self
                .file
                .in_progress_dir
                .join(self.file.part_name(self.subtask));
            let file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)
                .map_err(|e| at(&path, e))?;
            self.part = Some(InProgress { path, file });
        }
        let part = self.part.as_mut().expect("created above");
        part.file
            .write_all(&self.buffer)
            .map_err(|e| at(&part.path, e))?;
        self.buffer.clear();
        Ok(())
    }

    /// Syncs the spilled part, moves it into `part_dir` and checks what arrived there.
    fn move_part(&mut self, part_dir: &Path) -> io::Result<PendingPart> {
        let part = self
            .part
            .as_ref()
            .expect("a transaction with lines has spilled");
        part.file.sync_all().map_err(|e| at(&part.path, e))?;
        if !part_dir.is_dir() {
            fs::create_dir_all(part_dir).map_err(|e| at(part_dir, e))?;
            if let Some(parent) = part_dir.parent() {
                sync_dir(parent).map_err(|e| at(parent, e))?;
            }
        }
        let target = std::path::absolute(
            part_dir.join(
                part.path
                    .file_name()
                    .expect("an in-progress part has a file name"),
            ),
        )?;
        // The part folder's entry becomes durable when the checkpoint completes: the storage
        // syncs every part's folder before it writes the metadata that names the part.
        move_file(&part.path, &target).map_err(|e| at(&target, e))?;
        let bytes = fs::metadata(&target).map_err(|e| at(&target, e))?.len();
        if bytes != self.txn_bytes {
            return Err(io::Error::other(format!(
                "{}: holds {bytes} bytes after the move, {} were written",
                target.display(),
                self.txn_bytes
            )));
        }
        let pending = PendingPart {
            output: self.file.name.clone(),
            path: target,
            bytes,
            lines: self.txn_lines,
        };
        self.part = None;
        self.txn_bytes = 0;
        self.txn_lines = 0;
        Ok(pending)
    }
}

impl<T> Drop for TxWriter<T> {
    fn drop(&mut self) {
        if let Some(part) = self.part.take() {
            // Best effort: a part left behind is removed by the next recovery.
            let _ = fs::remove_file(&part.path);
        }
    }
}

impl<T: Serialize + Send + 'static> Sink<T> for TxWriter<T> {
    fn write(&mut self, record: T) -> Result<(), OperatorError> {
        self.write_line(&record)
            .map_err(|e| format!("writing {}: {e}", self.file.name).into())
    }

    /// Checks that nothing was written after the last pre-commit: the lines of the last epoch
    /// become durable through the final checkpoint's pre-commit, which comes before end of input.
    fn finish(&mut self) -> Result<(), OperatorError> {
        if self.txn_lines == 0 {
            return Ok(());
        }
        Err(format!(
            "{}: {} lines of subtask {} were written after the last pre-commit; a transactional \
             output needs a final checkpoint before end of input",
            self.file.name, self.txn_lines, self.subtask
        )
        .into())
    }
}

/// Removes `path`; one that is already gone is fine.
pub(super) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(at(path, e)),
        _ => Ok(()),
    }
}

/// An I/O error that names its file.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
