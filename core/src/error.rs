//! Errors: what failed, where, and why, in words a user can act on.

use thiserror::Error;

use crate::codec::DecodeError;
use crate::net::PoolError;

/// The error a user function returns; weir attributes it to the operator and subtask.
pub type OperatorError = Box<dyn std::error::Error + Send + Sync>;

/// Why a job failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JobError {
    /// An operator returned an error.
    #[error("operator '{operator}' (subtask {subtask}) failed: {message}")]
    Operator {
        /// The operator's name.
        operator: String,
        /// The subtask index.
        subtask: usize,
        /// What it said.
        message: String,
    },
    /// An operator panicked.
    #[error("operator '{operator}' (subtask {subtask}) panicked: {message}")]
    Panic {
        /// The operator's name (or the task's, where no operator was running).
        operator: String,
        /// The subtask index.
        subtask: usize,
        /// The panic message.
        message: String,
    },
    /// A record is larger than a network buffer.
    #[error(
        "task '{task}' (subtask {subtask}): a record of {bytes} bytes does not fit a {buffer_bytes}-byte network buffer; raise --segment-size"
    )]
    RecordTooLarge {
        /// The task.
        task: String,
        /// The subtask index.
        subtask: usize,
        /// The record's size.
        bytes: usize,
        /// The buffer size.
        buffer_bytes: usize,
    },
    /// A task could not decode what arrived on its input.
    #[error("task '{task}' (subtask {subtask}) received undecodable input: {source}")]
    Decode {
        /// The task.
        task: String,
        /// The subtask index.
        subtask: usize,
        /// The decoder's complaint.
        source: DecodeError,
    },
    /// The job graph or its configuration is not valid.
    #[error("invalid job: {0}")]
    Invalid(String),
    /// Checkpointing failed the job (too many failed checkpoints, a failed commit, a restore
    /// that found no usable checkpoint).
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A failure injected on purpose (`--inject-failures`).
    #[error("{0}")]
    Injected(String),
    /// The network buffer pool could not be set up.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A task thread could not be started.
    #[error("could not start task thread '{task}': {message}")]
    Spawn {
        /// The task.
        task: String,
        /// The OS error.
        message: String,
    },
}

/// How a task's work ended early.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskError {
    /// The job was cancelled (another task failed): stop quietly.
    Cancelled,
    /// This task failed.
    Failed(JobError),
}

impl From<JobError> for TaskError {
    fn from(err: JobError) -> Self {
        TaskError::Failed(err)
    }
}
