//! A job's JSON-lines outputs with one switch for both guarantees: plain files when the job
//! does not checkpoint, transactional files (Flink's two-phase-commit sink, [`super::two_phase`])
//! when it does. A job builds its outputs once from [`JobOutputs`] and never asks which kind it
//! has: the sinks, late and quarantine handlers of a reference job are the same code either way.
//!
//! - Plain: each writer batches whole lines and appends them under the file's lock
//!   ([`JsonLinesFile`]); a line is in the file once its batch is flushed, whatever happens
//!   later. A failure can leave lines of records that a restart would produce again, which is
//!   why a checkpointed job must not use them.
//! - Transactional: each writer is registered with the subtask that creates it (it must be
//!   created inside a subtask: in an operator's construction or `open`, a sink factory, a
//!   source reader's opening) and its lines reach the file only when their checkpoint is
//!   committed. [`LineWriter::flush`] does nothing there: the barrier makes lines durable.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::{
    JsonLinesFile, JsonLinesWriter, OutputError, RegisteredWriter, Sink, TransactionalFile,
    TransactionalOutputs,
};
use crate::checkpoint::OutputCommitter;
use crate::error::OperatorError;

/// The output folder of one job run.
#[derive(Debug, Clone)]
pub enum JobOutputs {
    /// Plain files in this folder, truncated when opened.
    Plain(PathBuf),
    /// Transactional files, committed at checkpoints.
    Transactional(Arc<TransactionalOutputs>),
}

impl JobOutputs {
    /// The outputs in `dir`: transactional when `checkpointed`, plain otherwise.
    pub fn open(dir: impl AsRef<Path>, checkpointed: bool) -> Result<Self, OutputError> {
        Ok(if checkpointed {
            Self::Transactional(Arc::new(TransactionalOutputs::open(dir)?))
        } else {
            Self::Plain(dir.as_ref().to_path_buf())
        })
    }

    /// What commits the outputs when a checkpoint completes (the job's
    /// [`RuntimeConfig::committer`](crate::RuntimeConfig::committer)); `None` for plain files.
    pub fn committer(&self) -> Option<Arc<dyn OutputCommitter>> {
        match self {
            Self::Plain(_) => None,
            Self::Transactional(outputs) => {
                let committer: Arc<dyn OutputCommitter> = outputs.clone();
                Some(committer)
            }
        }
    }

    /// The outputs `names` ([`file`](Self::file) of each, in order); transactional ones are
    /// declared first in one marker write ([`TransactionalOutputs::declare`]).
    pub fn files<const N: usize>(&self, names: [&str; N]) -> io::Result<[OutputFile; N]> {
        if let Self::Transactional(outputs) = self {
            outputs.declare(&names).map_err(io::Error::other)?;
        }
        let files = names
            .iter()
            .map(|name| self.file(name))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(files
            .try_into()
            .unwrap_or_else(|_| unreachable!("one file per name")))
    }

    /// Output `name` in the folder: a plain file is created empty; a transactional one is
    /// brought to its committed length ([`TransactionalOutputs::file`]).
    pub fn file(&self, name: &str) -> io::Result<OutputFile> {
        match self {
            Self::Plain(dir) => JsonLinesFile::create(dir.join(name)).map(OutputFile::Plain),
            Self::Transactional(outputs) => outputs
                .file(name)
                .map(OutputFile::Transactional)
                .map_err(io::Error::other),
        }
    }
}

/// One output file, shared by every subtask that writes to it.
#[derive(Debug, Clone)]
pub enum OutputFile {
    /// A plain file.
    Plain(Arc<JsonLinesFile>),
    /// A transactional file.
    Transactional(Arc<TransactionalFile>),
}

impl OutputFile {
    /// The file's path.
    pub fn path(&self) -> &Path {
        match self {
            Self::Plain(file) => file.path(),
            Self::Transactional(file) => file.path(),
        }
    }

    /// A writer for subtask `subtask`. A transactional writer registers with the subtask whose
    /// scope the calling thread is in; outside one it is an error (its lines could never be
    /// committed).
    pub fn writer<T: Serialize + Send + 'static>(
        &self,
        subtask: usize,
    ) -> io::Result<LineWriter<T>> {
        Ok(match self {
            Self::Plain(file) => LineWriter::Plain(file.writer()),
            Self::Transactional(file) => {
                LineWriter::Transactional(RegisteredWriter::new(file, subtask)?)
            }
        })
    }
}

/// One subtask's writer of an [`OutputFile`]; a sink, or the writer of a side output.
#[derive(Debug)]
pub enum LineWriter<T> {
    /// Into a plain file.
    Plain(JsonLinesWriter<T>),
    /// Into the subtask's open transaction.
    Transactional(RegisteredWriter<T>),
}

impl<T: Serialize + Send + 'static> LineWriter<T> {
    /// Adds one record as a JSON line.
    pub fn write_line(&mut self, record: &T) -> io::Result<()> {
        match self {
            Self::Plain(writer) => writer.write_line(record),
            Self::Transactional(writer) => writer.write_line(record),
        }
    }

    /// Adds one line that `format` writes as JSON, without a newline (a record of a fixed
    /// shape writing itself, faster than serde's generic serializer).
    pub fn write_formatted(
        &mut self,
        format: impl FnOnce(&mut Vec<u8>) -> io::Result<()>,
    ) -> io::Result<()> {
        match self {
            Self::Plain(writer) => writer.write_formatted(format),
            Self::Transactional(writer) => writer.write_formatted(format),
        }
    }

    /// Plain: appends the batched lines to the file now. Transactional: nothing (the next
    /// barrier makes them durable, the checkpoint's completion visible).
    pub fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(writer) => writer.flush(),
            Self::Transactional(_) => Ok(()),
        }
    }
}

impl<T: Serialize + Send + 'static> Sink<T> for LineWriter<T> {
    fn write(&mut self, record: T) -> Result<(), OperatorError> {
        match self {
            Self::Plain(writer) => writer.write(record),
            Self::Transactional(writer) => writer.write(record),
        }
    }

    fn finish(&mut self) -> Result<(), OperatorError> {
        match self {
            Self::Plain(writer) => writer.finish(),
            Self::Transactional(writer) => writer.finish(),
        }
    }
}
