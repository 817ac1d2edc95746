//! Transactional outputs: Flink's two-phase-commit sink (`TwoPhaseCommitSinkFunction`) with
//! FileSink's in-progress, pending and finished parts, for exactly-once JSON-lines files.
//!
//! # What a reader of `OUTPUT/<name>.jsonl` may rely on
//! With checkpointing on:
//! - **Committed lines only.** A line reaches the file only after the checkpoint whose epoch
//!   produced it has completed (its `_metadata` is durable). Lines of an epoch that no completed
//!   checkpoint covers (the job failed or was killed first) never appear.
//! - **Whole lines, exactly once.** After any crash, SIGKILL included, the next start's
//!   [`recover`](TransactionalOutputs::recover) cuts off whatever an interrupted commit had
//!   half-appended and redoes the commit: every committed line is there once, whole, ending in
//!   `\n`. While a commit is running, a reader may see its last line still being appended: a
//!   line without its `\n` is incomplete.
//! - **Order.** The file is the concatenation of the committed epochs in checkpoint order; within
//!   an epoch, the parts in order of subtask, then of part (each part in the order its writer
//!   wrote). Lines of different subtasks never interleave.
//! - **Complete at the end.** A bounded job ends with a final checkpoint (after the final
//!   watermark, before end of input) whose commit is the last one: when the job has ended, every
//!   line is committed. A final epoch that wrote nothing commits no part and still completes.
//! - **The one retraction.** If a restart has to fall back to an older checkpoint `C` because the
//!   newer ones are damaged, lines committed after `C` are cut off (the replay from `C` writes
//!   them again) and [`Recovery::retracted`] says how many, per output. The fallback reaches at
//!   most [`HISTORY_LEN`] commits back; further is an error.
//!
//! # The protocol
//! - **Write** ([`TxWriter::write_line`]): into the subtask's open transaction, spilled into an
//!   in-progress part `OUTPUT/.weir/in-progress/<name>.<subtask>.<part>` past [`BATCH_BYTES`].
//! - **Pre-commit** at barrier `n` ([`TxWriter::pre_commit`]): the part is fsynced and moved into
//!   the checkpoint's folder; its [`PendingPart`] goes into checkpoint `n`'s metadata (the sink
//!   has no other state to snapshot). A new transaction begins.
//! - **Commit** after checkpoint `n`'s metadata is durable ([`TransactionalOutputs::commit`], on
//!   the coordinator's thread, for every completed checkpoint in order): truncate every output
//!   to the marker's lengths, append checkpoint `n`'s parts, fsync, then replace the commit
//!   marker `OUTPUT/.weir/committed.json` (last committed id, and every output's length for the
//!   last [`HISTORY_LEN`] commits). The marker is the commit point; everything before it is
//!   redone by the next commit or recovery. Idempotent: a checkpoint at or below the marker's is
//!   skipped.
//! - **Abort** ([`TxWriter::abort`], a dropped writer, or recovery): the in-progress part is
//!   deleted.
//! - Committed parts stay in their checkpoint's folder: checkpoint retention removes them with
//!   the folder (so disk holds at most the retained checkpoints' epochs twice), and a completed
//!   checkpoint's folder is never changed by the outputs.
//!
//! Invariant, at every instant: every output the marker names holds at least its committed
//! length, and an output is named in the marker before its first byte is appended.

pub(crate) mod durable;
mod marker;
mod registered;
mod writer;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use thiserror::Error;

use self::durable::sync_dir;
pub use self::marker::HISTORY_LEN;
use self::marker::{Committed, Lengths, Marker};
pub use self::registered::RegisteredWriter;
pub use self::writer::{TransactionalFile, TxWriter};
use crate::checkpoint::{CheckpointId, PendingPart};
#[cfg(doc)]
use crate::sink::BATCH_BYTES;

/// Why committing or recovering the outputs failed.
#[derive(Debug, Error)]
pub enum OutputError {
    /// An I/O failure on `path`.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A file does not hold what it should: a damaged marker or part, an output shorter than
    /// its committed length, a bad output name.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A restore from a checkpoint the marker no longer (or never) knew as committed.
    #[error(
        "{}: cannot roll the outputs back to checkpoint {checkpoint}: the commit marker knows the lengths after checkpoints {known:?} only; restore from one of those, or start afresh without --restore",
        marker.display()
    )]
    NotInHistory {
        /// The commit marker.
        marker: PathBuf,
        /// The checkpoint asked for.
        checkpoint: CheckpointId,
        /// The committed checkpoints the marker knows, oldest first.
        known: Vec<CheckpointId>,
    },
}

/// What a [`TransactionalOutputs::commit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// The checkpoint's parts are appended and the marker names it.
    Done {
        /// Lines appended, over all outputs.
        lines: u64,
        /// Bytes appended.
        bytes: u64,
    },
    /// The marker already names this checkpoint or a newer one: nothing was done.
    AlreadyCommitted,
}

/// Lines of one output cut off by a fallback to an older checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retraction {
    /// The output's name.
    pub output: String,
    /// The checkpoint the output is back at.
    pub to: CheckpointId,
    /// The checkpoint whose commit it had reached.
    pub from: CheckpointId,
    /// Committed lines cut off.
    pub lines: u64,
    /// Committed bytes cut off.
    pub bytes: u64,
}

impl fmt::Display for Retraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: retracted {} lines ({} bytes) committed after checkpoint {} (up to checkpoint {}); the replay from checkpoint {} writes them again",
            self.output, self.lines, self.bytes, self.to, self.from, self.to
        )
    }
}

/// What [`TransactionalOutputs::recover`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// The checkpoint whose commit the outputs now hold (0: none, all empty).
    pub committed: CheckpointId,
    /// Whether the restored checkpoint's commit was redone (it had not completed).
    pub redone: bool,
    /// Committed lines cut off by a fallback, per output that lost any.
    pub retracted: Vec<Retraction>,
    /// Stale in-progress parts deleted.
    pub discarded_parts: usize,
}

/// The transactional outputs of one output folder, living as long as the job (all attempts).
///
/// Hands out [`TransactionalFile`]s by name; commits checkpoints and recovers at start. One
/// `TransactionalOutputs` per folder and process. `commit` and `recover` take an internal lock:
/// they are meant for the coordinator's thread.
#[derive(Debug)]
pub struct TransactionalOutputs {
    dir: PathBuf,
    marker_path: PathBuf,
    in_progress_dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The marker as it is on disk.
    marker: Marker,
    files: BTreeMap<String, Arc<TransactionalFile>>,
}

impl TransactionalOutputs {
    /// Opens output folder `dir` (created if missing) and reads its commit marker.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, OutputError> {
        let dir = std::path::absolute(dir.as_ref()).map_err(io_at(dir.as_ref()))?;
        let in_progress_dir = dir.join(".weir").join("in-progress");
        fs::create_dir_all(&in_progress_dir).map_err(io_at(&in_progress_dir))?;
        let marker_path = dir.join(".weir").join("committed.json");
        let marker = Marker::read(&marker_path)?.unwrap_or_default();
        Ok(Self {
            dir,
            marker_path,
            in_progress_dir,
            inner: Mutex::new(Inner {
                marker,
                files: BTreeMap::new(),
            }),
        })
    }

    /// The output folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The output `name` (a plain file name such as `flow_1m.jsonl`). The first call for a
    /// name records it in the marker and brings `OUTPUT/<name>` to its committed length
    /// (created empty if new; an uncommitted tail, such as the stale file of an earlier run
    /// without checkpoints, is cut off).
    pub fn file(&self, name: &str) -> Result<Arc<TransactionalFile>, OutputError> {
        let mut inner = self.lock();
        if let Some(file) = inner.files.get(name) {
            return Ok(Arc::clone(file));
        }
        self.check_name(name)?;
        self.know(&mut inner.marker, [name])?;
        let path = self.dir.join(name);
        let committed = inner.marker.committed(name).bytes;
        truncate_output(&path, committed, &inner.marker)?;
        let file = Arc::new(TransactionalFile::new(
            name.to_owned(),
            path,
            self.in_progress_dir.clone(),
        ));
        inner.files.insert(name.to_owned(), Arc::clone(&file));
        Ok(file)
    }

    /// Records the outputs `names` in the marker at once, so that the [`file`](Self::file) of
    /// each writes no marker of its own: one durable marker write (file, rename, folder
    /// fsyncs) for a job's outputs instead of one per output. A name already known is left
    /// as it is; a bad name is refused before anything is written.
    pub fn declare(&self, names: &[&str]) -> Result<(), OutputError> {
        for name in names {
            self.check_name(name)?;
        }
        let mut inner = self.lock();
        self.know(&mut inner.marker, names.iter().copied())
    }

    /// The last committed checkpoint (0: none).
    pub fn last_committed(&self) -> CheckpointId {
        self.lock().marker.last_committed()
    }

    /// Committed lines of output `name`.
    pub fn committed_lines(&self, name: &str) -> u64 {
        self.lock().marker.committed(name).lines
    }

    /// Commits checkpoint `checkpoint`, whose metadata is durable, with its pending `parts`.
    ///
    /// Idempotent and crash-safe: a checkpoint at or below the marker's is skipped; otherwise
    /// every output is truncated to the marker's lengths (dropping the torn tail of an
    /// interrupted commit), the parts are appended in order of output, then path (each part's
    /// bytes and lines checked as they are read), the outputs fsynced, and the marker replaced.
    /// The runtime must commit every completed checkpoint, in order (a checkpoint's parts hold
    /// only its own epoch). O(bytes of the parts + outputs); memory O(one copy buffer).
    /// On an error the outputs are cut back to their committed lengths where possible; the job
    /// should then fail and recover, which redoes the commit.
    pub fn commit(
        &self,
        checkpoint: CheckpointId,
        parts: &[PendingPart],
    ) -> Result<Commit, OutputError> {
        let mut inner = self.lock();
        self.commit_locked(&mut inner, checkpoint, parts)
    }

    /// Brings the outputs to the state of the checkpoint a start restores from, before any
    /// writer of the new attempt (or process) exists; call it at every attempt.
    ///
    /// - `Some((c, parts))` with `c` newer than the marker: `c` completed but its commit did
    ///   not: commit it now (`redone`).
    /// - `Some((c, _))` with `c` at or below the marker (a fallback after damaged newer
    ///   checkpoints): cut every output back to its length after `c`'s commit and report the
    ///   lines cut off; an error if the marker no longer knows `c`. The marker is rolled back
    ///   first, so a crash here leaves a state the next recovery finishes.
    /// - `None` (no checkpoint): every output is emptied.
    ///
    /// In every case, stale in-progress parts are deleted and torn tails cut off.
    pub fn recover(
        &self,
        restore_from: Option<(CheckpointId, &[PendingPart])>,
    ) -> Result<Recovery, OutputError> {
        let mut inner = self.lock();
        let discarded_parts = self.discard_in_progress()?;
        let last = inner.marker.last_committed();
        let (committed, redone, retracted) = match restore_from {
            Some((c, parts)) if c > last => {
                self.commit_locked(&mut inner, c, parts)?;
                (c, true, Vec::new())
            }
            Some((c, _)) => (c, false, self.roll_back(&mut inner.marker, c)?),
            None => (0, false, self.roll_back(&mut inner.marker, 0)?),
        };
        Ok(Recovery {
            committed,
            redone,
            retracted,
            discarded_parts,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The in-memory marker changes only after the marker on disk did: a panic elsewhere
        // leaves it consistent.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records new output names in the marker, durably, before their first byte.
    /// Refuses an output name that is not a plain file name, naming the path it would be.
    fn check_name(&self, name: &str) -> Result<(), OutputError> {
        check_name(name).map_err(|reason| OutputError::Corrupt {
            path: self.dir.join(name),
            reason,
        })
    }

    fn know<'a>(
        &self,
        marker: &mut Marker,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), OutputError> {
        let mut next = marker.clone();
        if next.know(names) {
            next.write(&self.marker_path)?;
            *marker = next;
        }
        Ok(())
    }

    fn commit_locked(
        &self,
        inner: &mut Inner,
        checkpoint: CheckpointId,
        parts: &[PendingPart],
    ) -> Result<Commit, OutputError> {
        if checkpoint <= inner.marker.last_committed() {
            return Ok(Commit::AlreadyCommitted);
        }
        let mut sorted: Vec<&PendingPart> = parts.iter().collect();
        sorted.sort_by(|a, b| (&a.output, &a.path).cmp(&(&b.output, &b.path)));
        for (i, part) in sorted.iter().enumerate() {
            check_name(&part.output).map_err(|reason| OutputError::Corrupt {
                path: part.path.clone(),
                reason: format!("output {:?}: {reason}", part.output),
            })?;
            if i > 0 && sorted[i - 1].path == part.path {
                return Err(OutputError::Corrupt {
                    path: part.path.clone(),
                    reason: format!("listed twice in checkpoint {checkpoint}"),
                });
            }
        }
        self.know(&mut inner.marker, sorted.iter().map(|p| p.output.as_str()))?;
        let committed = inner.marker.current();
        self.truncate_outputs(&inner.marker, &committed)?;
        let mut lengths = committed.clone();
        if let Err(e) = self.append_parts(&sorted, &mut lengths) {
            // Best effort: the next commit or recovery truncates again.
            let _ = self.truncate_outputs(&inner.marker, &committed);
            return Err(e);
        }
        let (mut lines, mut bytes) = (0, 0);
        for part in &sorted {
            lines += part.lines;
            bytes += part.bytes;
        }
        let mut next = inner.marker.clone();
        next.record(checkpoint, lengths);
        next.write(&self.marker_path)?;
        inner.marker = next;
        Ok(Commit::Done { lines, bytes })
    }

    /// Appends the sorted parts to their outputs and fsyncs them, adding to `lengths`. The
    /// outputs are independent files, so each is appended and fsynced on a thread of its own
    /// (the first on this one): a commit then takes about as long as its largest output, not
    /// their sum. The marker is written only after every output is done (the caller), so a
    /// crash in between is what it was: the next recovery truncates and appends again.
    fn append_parts(
        &self,
        sorted: &[&PendingPart],
        lengths: &mut Lengths,
    ) -> Result<(), OutputError> {
        let groups: Vec<&[&PendingPart]> = sorted.chunk_by(|a, b| a.output == b.output).collect();
        let start =
            |group: &[&PendingPart]| lengths.get(&group[0].output).copied().unwrap_or_default();
        let appended: Vec<Result<Committed, OutputError>> = match groups.as_slice() {
            [] => Vec::new(),
            [first, rest @ ..] => std::thread::scope(|scope| {
                let others: Vec<_> = rest
                    .iter()
                    .map(|&group| {
                        let length = start(group);
                        scope.spawn(move || self.append_output(group, length))
                    })
                    .collect();
                let mut appended = vec![self.append_output(first, start(first))];
                // A panic (a bug) goes on as it would have on this thread.
                appended.extend(others.into_iter().map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                }));
                appended
            }),
        };
        for (group, length) in groups.iter().zip(appended) {
            lengths.insert(group[0].output.clone(), length?);
        }
        Ok(())
    }

    /// Appends one output's parts (`group`, all of one output, sorted) to it, fsyncs it and
    /// checks its length; `length` is what it held before. Returns what it holds after.
    fn append_output(
        &self,
        group: &[&PendingPart],
        mut length: Committed,
    ) -> Result<Committed, OutputError> {
        let path = self.dir.join(&group[0].output);
        let mut output = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_at(&path))?;
        let mut copy_buffer = vec![0; 64 * 1024];
        for part in group {
            append_part(part, &mut output, &path, &mut copy_buffer)?;
            length.bytes += part.bytes;
            length.lines += part.lines;
        }
        output.sync_all().map_err(io_at(&path))?;
        let on_disk = output.metadata().map_err(io_at(&path))?.len();
        if on_disk != length.bytes {
            return Err(OutputError::Corrupt {
                path,
                reason: format!(
                    "holds {on_disk} bytes after the commit, {} expected",
                    length.bytes
                ),
            });
        }
        Ok(length)
    }

    /// Brings every output the marker knows to its length in `lengths` (absent: empty).
    fn truncate_outputs(&self, marker: &Marker, lengths: &Lengths) -> Result<(), OutputError> {
        for name in marker.outputs() {
            let bytes = lengths.get(name).map_or(0, |c| c.bytes);
            truncate_output(&self.dir.join(name), bytes, marker)?;
        }
        Ok(())
    }

    /// Rolls the marker back to committed checkpoint `checkpoint` (0: nothing), then cuts the
    /// outputs to its lengths; returns what was cut off.
    fn roll_back(
        &self,
        marker: &mut Marker,
        checkpoint: CheckpointId,
    ) -> Result<Vec<Retraction>, OutputError> {
        let from = marker.last_committed();
        let target = marker
            .lengths_at(checkpoint)
            .ok_or_else(|| OutputError::NotInHistory {
                marker: self.marker_path.clone(),
                checkpoint,
                known: marker.known_checkpoints(),
            })?;
        let current = marker.current();
        let retracted = current
            .iter()
            .filter_map(|(output, now)| {
                let then = target.get(output).copied().unwrap_or_default();
                (now.bytes > then.bytes).then(|| Retraction {
                    output: output.clone(),
                    to: checkpoint,
                    from,
                    lines: now.lines - then.lines,
                    bytes: now.bytes - then.bytes,
                })
            })
            .collect();
        if from != checkpoint {
            let mut next = marker.clone();
            next.roll_back(checkpoint);
            next.write(&self.marker_path)?;
            *marker = next;
        }
        self.truncate_outputs(marker, &target)?;
        Ok(retracted)
    }

    /// Deletes every in-progress part; returns how many.
    fn discard_in_progress(&self) -> Result<usize, OutputError> {
        let dir = &self.in_progress_dir;
        let mut discarded = 0;
        for entry in fs::read_dir(dir).map_err(io_at(dir))? {
            let path = entry.map_err(io_at(dir))?.path();
            fs::remove_file(&path).map_err(io_at(&path))?;
            discarded += 1;
        }
        if discarded > 0 {
            sync_dir(dir).map_err(io_at(dir))?;
        }
        Ok(discarded)
    }
}

/// Appends one part to `output`, checking its bytes and lines as they are read.
fn append_part(
    part: &PendingPart,
    output: &mut File,
    output_path: &Path,
    buffer: &mut [u8],
) -> Result<(), OutputError> {
    let corrupt = |reason: String| OutputError::Corrupt {
        path: part.path.clone(),
        reason,
    };
    let mut file = File::open(&part.path).map_err(io_at(&part.path))?;
    let on_disk = file.metadata().map_err(io_at(&part.path))?.len();
    if on_disk != part.bytes {
        return Err(corrupt(format!(
            "holds {on_disk} bytes, the checkpoint recorded {}",
            part.bytes
        )));
    }
    let (mut bytes, mut lines, mut last) = (0u64, 0u64, b'\n');
    loop {
        let n = file.read(buffer).map_err(io_at(&part.path))?;
        if n == 0 {
            break;
        }
        let chunk = &buffer[..n];
        bytes += n as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        last = chunk[n - 1];
        output.write_all(chunk).map_err(io_at(output_path))?;
    }
    if bytes != part.bytes || lines != part.lines || last != b'\n' {
        return Err(corrupt(format!(
            "read {bytes} bytes in {lines} lines{}, the checkpoint recorded {} bytes in {} lines",
            if last == b'\n' {
                ""
            } else {
                " and a torn last line"
            },
            part.bytes,
            part.lines
        )));
    }
    Ok(())
}

/// Cuts the output at `path` to `bytes` (creating it empty if missing and `bytes` is 0), and
/// makes that durable. An output shorter than its committed length was changed outside weir.
fn truncate_output(path: &Path, bytes: u64, marker: &Marker) -> Result<(), OutputError> {
    let (file, created) = match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => (file, true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(io_at(path))?;
            (file, false)
        }
        Err(source) => {
            return Err(OutputError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let len = file.metadata().map_err(io_at(path))?.len();
    if len < bytes {
        return Err(OutputError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "holds {len} bytes but {bytes} are committed (checkpoint {}): the file was changed outside weir",
                marker.last_committed()
            ),
        });
    }
    if len > bytes {
        file.set_len(bytes).map_err(io_at(path))?;
        file.sync_all().map_err(io_at(path))?;
    }
    if created {
        let dir = path.parent().expect("an output lives in a folder");
        sync_dir(dir).map_err(io_at(dir))?;
    }
    Ok(())
}

/// An output name is a plain file name in the output folder, not hidden (`.weir` is ours).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an output needs a name".into());
    }
    if name.starts_with('.') {
        return Err("an output name cannot start with '.'".into());
    }
    if name.contains(['/', '\\', '\0']) {
        return Err("an output name is a plain file name, without '/', '\\' or NUL".into());
    }
    Ok(())
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |source| OutputError::Io { path, source }
}

#[cfg(test)]
mod tests;
